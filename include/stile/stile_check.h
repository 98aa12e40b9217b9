/* stile_check — the fp64 oracle, output checks and the conformance harness, as a library of their own
 * (libstile_check, pkg-config `stile-check`) beside libstile.
 *
 * The oracle computes attention in double precision from the definition in docs/contract.md and
 * shares no code with what it checks: not libstile's planner, not its problem resolution, not its
 * dtype conversion. The harness runs a plan on any device with seeded inputs, guard bands after every
 * buffer, poisoned outputs, a second run for determinism, and checks the result against the oracle
 * (or, on shapes too large for it, against the mask probe, which sees a single missing key on every
 * row). The case table is the one every backend of stile is judged by (`stile conformance`).
 *
 * Failures report as libstile's own do: a status, the sentence in stile_last_error() and the log sink.
 * ABI: this library follows libstile's release exactly (its soname carries the full version), so a
 * program built against one release's stile_check.h needs that release's libstile_check. */
#ifndef STILE_STILE_CHECK_H
#define STILE_STILE_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "stile.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STILE_CHECK_BUILDING) && defined(__GNUC__)
#define STILE_CHECK_API __attribute__((visibility("default")))
#else
#define STILE_CHECK_API
#endif

/* ---------------------------------------------------------------------------------------------
 * The fp64 oracle and output checks
 * ------------------------------------------------------------------------------------------- */

/** Attention computed in double precision token by token, each (query, key) pair decided from the
 * definition in docs/contract.md, independently of the planner. Reads io->q, io->k, io->v (host
 * memory: tensors with a data address) through p's strides and dtype. Computes the query tokens
 * listed in rows (indices along the token axis in p's order; NULL: all tokens, nrows ignored).
 * out_o: [B, nrows, heads, head_dim] doubles; out_lse (optional): [B, heads, nrows]. Cost grows as
 * rows x tokens x heads x head_dim. Thread-safety: reentrant. */
STILE_CHECK_API stile_status stile_oracle(const stile_problem *p, const stile_io *io, const int64_t *rows, int64_t nrows,
                                          double *out_o, double *out_lse);

/** Gradients of attention in double precision from the same definition, for the loss
 * L = sum over every query token, head and dim of d_o * o (so d_o is dL/dO): dQ, dK and dV over all
 * tokens. Reads io->q, io->k, io->v as stile_oracle does and d_o (host memory of p's dtype, laid out
 * with p's o strides); io->o and io->lse are not read. out_dq, out_dk, out_dv: [B, tokens, heads,
 * head_dim] doubles each, or NULL for a gradient not wanted (not all three). Cost grows as
 * tokens^2 x heads x head_dim x batch: for small problems. Thread-safety: reentrant. */
STILE_CHECK_API stile_status stile_oracle_backward(const stile_problem *p, const stile_io *io, const stile_tensor *d_o,
                                                   double *out_dq, double *out_dk, double *out_dv);

/** VSA's steps (include/stile/stile_vsa.h; docs/contract.md, "VSA steps") in double precision, for a
 * video-only problem p of caller-chosen key tiles. Arrays are [B, heads, tiles, head_dim] (pooled,
 * coarse output) and [B, heads, tiles, tiles] (scores), tiles in raster order. Thread-safety:
 * reentrant.
 * stile_oracle_vsa_pool: the tile means of io->q, io->k, io->v (host memory, p's strides and dtype;
 * each output NULL to skip). */
STILE_CHECK_API stile_status stile_oracle_vsa_pool(const stile_problem *p, const stile_io *io, double *q_c, double *k_c, double *v_c);
/** The coarse attention over given tile means: o_c, and scores (optional: the scaled logits). */
STILE_CHECK_API stile_status stile_oracle_vsa_coarse(const stile_problem *p, const double *q_c, const double *k_c, const double *v_c,
                                                     double *o_c, double *scores);
/** Whether key_tiles (i32 [B, heads, tiles, k]) is a top-k of scores: k distinct tiles per row, none
 * left out scoring more than tol above the lowest kept; with tol 0 exactly stile_vsa_select's answer
 * (largest first, ties to the lower tile). STILE_OK, or STILE_ERR_INVALID_ARGUMENT naming the row. */
STILE_CHECK_API stile_status stile_oracle_vsa_topk_check(const stile_problem *p, const double *scores, const int32_t *key_tiles,
                                                         double tol);
/** The gated sum o + gate * o_c[tile of the token] of host tensors o and gate (p's dtype, o strides)
 * as doubles [B, video tokens, heads, head_dim] (tokens in p's order). */
STILE_CHECK_API stile_status stile_oracle_vsa_combine(const stile_problem *p, const stile_tensor *o, const stile_tensor *gate,
                                                      const double *o_c, double *out);

/** Error figures of an output against the oracle. Thread-safety: plain data. */
typedef struct stile_check {
    double nmse;          /**< sum (o - ref)^2 / sum ref^2 over the checked elements */
    double max_abs_error; /**< max |o - ref| */
    double lse_max_abs_error; /**< max |lse - ref| (0 if lse was not checked) */
    int64_t nonfinite;    /**< NaN or Inf elements in o (and lse) */
    int64_t elements;     /**< elements compared */
    double threshold;     /**< the dtype's NMSE bound: f32 1e-10, f16 1e-5, bf16 1e-4 */
    int passed;           /**< nmse <= threshold, no non-finite values, lse within 1e-3 (f32: 1e-5) */
    uint8_t reserved[32]; /**< room for later fields; zero */
} stile_check;

/** The NMSE bound of a dtype, as in stile_check.threshold (0 for an unknown dtype). */
STILE_CHECK_API double stile_nmse_threshold(stile_dtype dtype);

/** Compare io->o (and io->lse if its data is set and ref_lse is given) against the oracle's
 * ref_o/ref_lse for the same rows (NULL rows: all tokens). Thread-safety: reentrant. */
STILE_CHECK_API stile_status stile_check_output(const stile_problem *p, const stile_io *io, const int64_t *rows,
                                                int64_t nrows, const double *ref_o, const double *ref_lse,
                                                stile_check *out);

/** Compare the gradients in io->d_q, d_k and d_v (host memory of p's dtype, laid out with p's q, k and
 * v strides; the other tensors of io are not read) against the oracle's ref_dq, ref_dk and ref_dv
 * ([B, tokens, heads, head_dim] doubles, as stile_oracle_backward writes them). out: the worst NMSE
 * of the three, the largest absolute error, the non-finite elements of all three (lse figures 0);
 * passed when every gradient is within the dtype's NMSE bound and finite. Thread-safety: reentrant. */
STILE_CHECK_API stile_status stile_check_gradients(const stile_problem *p, const stile_grad_io *io, const double *ref_dq,
                                                   const double *ref_dk, const double *ref_dv, stile_check *out);

/* ---------------------------------------------------------------------------------------------
 * The conformance harness
 * ------------------------------------------------------------------------------------------- */

/** Bytes of the guard band after every buffer the harness allocates, and the value they must keep. */
#define STILE_CONF_GUARD_BYTES 256
#define STILE_CONF_GUARD_BYTE 0xA5

/** A verdict. Mistrusted: the harness could not judge (its own allocation or the oracle failed). */
typedef enum stile_conf_status {
    STILE_CONF_PASS = 0,
    STILE_CONF_FAIL = 1,
    STILE_CONF_UNSUPPORTED = 2,
    STILE_CONF_MISTRUSTED = 3
} stile_conf_status;

/** "pass", "fail", "unsupported", "mistrusted" ("?" for an unknown value). */
STILE_CHECK_API const char *stile_conf_status_name(stile_conf_status s);

/** How the harness lays out q, k, v and o. UNALIGNED: [B, S, H, D] with every tensor 4 bytes past a
 * 16-byte boundary; PACKED_QKV: q, k and v views of one [B, S, 3, H, D] buffer. */
typedef enum stile_conf_layout {
    STILE_CONF_BSHD = 0,
    STILE_CONF_BHSD = 1,
    STILE_CONF_PADDED = 2,
    STILE_CONF_PACKED_QKV = 3,
    STILE_CONF_UNALIGNED = 4
} stile_conf_layout;

/** What a case checks: the oracle's NMSE and LSE, and/or the mask probe (q = 0, so every attended key
 * weighs the same: LSE = ln(keys attended) and o counts keys by their tile, checked on every row). */
#define STILE_CONF_CHECK_ORACLE 1u
#define STILE_CONF_CHECK_PROBE 2u

/** One row of the case table; it expands over its dtypes, head dims and checks. */
typedef struct stile_conf_case {
    const char *name;
    int64_t batch, canvas[3], tile[3], window[3];
    const int64_t (*head_windows)[3]; /**< one window per head, or NULL */
    int64_t heads;
    int64_t text, text_padding;
    stile_token_order order;
    stile_conf_layout layout;
    unsigned dtypes;     /**< bit (1 << dtype); 0: f32, f16 and bf16 */
    unsigned dims;       /**< bit 1: d 64, bit 2: d 128; 0: both */
    int64_t sample_rows; /**< 0: check every query row; else this many spread rows (oracle only) */
    unsigned checks;     /**< STILE_CONF_CHECK_* bits; 0: both */
    const char *unsupported_on; /**< backends ("vulkan,cuda") that may refuse it; elsewhere unsupported fails */
    int64_t key_tiles_k; /**< > 0: the key tiles are the caller's (window and head_windows unset): seeded lists of up to
                              this many per row, fewer for lower heads, with gaps, repeats and empty rows */
} stile_conf_case;

/** The case table: *n (if n is set) receives the number of cases. Thread-safety: constant data. */
STILE_CHECK_API const stile_conf_case *stile_conf_cases(int *n);

/** A case expanded to one concrete problem. */
typedef struct stile_conf_variant {
    const stile_conf_case *c;
    stile_problem p;
    int probe;           /**< 1: the mask probe, 0: the oracle */
    int backward;        /**< 1: the backward pass against the oracle's gradients (stile_conf_run_backward) */
    char label[176];
} stile_conf_variant;

/** Every variant of the table (*n of them), to be freed with free(); NULL on out of memory. */
STILE_CHECK_API stile_conf_variant *stile_conf_expand(int *n);

/** Everything one run of the harness found. */
typedef struct stile_conf_result {
    stile_conf_status status;
    char reason[256];      /**< why it failed, was unsupported or mistrusted */
    stile_status api;      /**< of plan_create / execute */
    stile_check check;     /**< against the oracle */
    int guard_ok;          /**< every guard band intact, inputs unchanged */
    int gaps_ok;           /**< elements of o that no index reaches (stride gaps) still poisoned */
    int deterministic;     /**< two runs gave bitwise the same o and lse (the probe runs once: 1) */
    int unsupported;       /**< the backend refused the problem (status unsupported, or fail if not expected) */
    int probe;             /**< a mask probe: the figures below, not check, say how it went */
    int backward;          /**< a backward case: check holds the worst of the three gradients' figures */
    int64_t probe_bad_rows;    /**< (batch, head, row) whose LSE or channels are off */
    double probe_lse_ratio;    /**< max |lse - ln n| / (0.4 ln(1 + 1/n)): <= 1 is closer to n keys than to n +- 1 */
    double probe_channel_ratio;/**< max |o_c n - m_c| / its bound (the output dtype's rounding) */
    int64_t rows_checked;
    char path[48];         /**< the kernel the first execute ran (stile_exec_info.path) */
    double ms;             /**< the first execution */
    uint64_t seed;
} stile_conf_result;

/** Plan p on dev, run it twice with seeded inputs (seed, seed+1, seed+2 for q, k, v; seed+3 for the key
 * tiles of a problem with key_tiles_k, and no entry of them may be counted out of range) and lse, and
 * check everything; sample_rows 0 checks every query row. With STILE_CONF_PACKED_QKV, p's q/k/v
 * strides must describe views of one [B, S, 3, H, D] buffer (stile_conf_expand sets them so).
 * Thread-safety: reentrant (the device's own rules apply). */
STILE_CHECK_API stile_conf_result stile_conf_run(stile_device *dev, const stile_problem *p, stile_conf_layout layout,
                                                 uint64_t seed, int64_t sample_rows);
/** The mask probe of p on dev, with the harness's guard bands and poisoned outputs: q = 0, k seeded,
 * v one-hot channels naming each key's tile along t, h and w (folded modulo when the grid is wider
 * than head_dim allows), whether it is a valid or a padding text key; every (batch, head, row) must
 * give LSE = ln(n) for exactly the n keys the contract attends, and o = the counts per channel / n. */
STILE_CHECK_API stile_conf_result stile_conf_run_probe(stile_device *dev, const stile_problem *p, stile_conf_layout layout,
                                                       uint64_t seed);
/** The backward pass of p on dev (stile_plan_backward after the forward, with seeded q, k, v and dO:
 * seed .. seed + 3), run twice on poisoned gradients, each gradient against the fp64 oracle's
 * (stile_oracle_backward: every row, so for small problems) within the forward's NMSE bound; guard
 * bands, unchanged inputs, untouched stride gaps and bitwise-equal runs. Thread-safety: reentrant. */
STILE_CHECK_API stile_conf_result stile_conf_run_backward(stile_device *dev, const stile_problem *p, stile_conf_layout layout,
                                                          uint64_t seed);

/** Backends without a backward pass yet, whose backward variants may be unsupported (issue 15):
 * a backend leaves this list when it gets one. Every backend has one now: empty. */
#define STILE_CONF_BACKWARD_PENDING ""

/** A variant of the table on dev: the oracle, the probe or the backward pass, and an unsupported
 * verdict turned into a failure unless the case names dev's backend in unsupported_on (for a
 * backward variant, also STILE_CONF_BACKWARD_PENDING). */
STILE_CHECK_API stile_conf_result stile_conf_run_variant(stile_device *dev, const stile_conf_variant *v, uint64_t seed);
/** Whether c lists backend (a whole name in its comma-separated unsupported_on). */
STILE_CHECK_API int stile_conf_unsupported_expected(const stile_conf_case *c, const char *backend);
/** One line of figures into buf: "NMSE 1.2e-06 (bound 1e-04)" or "probe: 0 bad rows, lse 0.01, ...". */
STILE_CHECK_API void stile_conf_summary(const stile_conf_result *r, char *buf, size_t size);

/** Fill n elements of dtype dt with seeded standard normal values. */
STILE_CHECK_API void stile_conf_fill_normal(void *dst, stile_dtype dt, int64_t n, uint64_t seed);
/** Elements [i0, i1) (i0 even) of the stream stile_conf_fill_normal(seed) writes: the values do not
 * depend on how a large tensor is split into ranges. */
STILE_CHECK_API void stile_conf_fill_normal_range(void *dst, stile_dtype dt, int64_t i0, int64_t i1, uint64_t seed);
/** Query rows to check: NULL (all) when tokens <= 4096 or want >= tokens, else `want` rows spread
 * evenly with a seeded offset, the first and last token included (*nrows of them; free() them).
 * NULL with *nrows = -1 on out of memory. */
STILE_CHECK_API int64_t *stile_conf_sample_rows(int64_t tokens, int64_t want, uint64_t seed, int64_t *nrows);

#ifdef __cplusplus
}
#endif

#endif /* STILE_STILE_CHECK_H */
