/* The conformance runner and its declarative case table, shared by the meson tests and
 * `stile conformance`: seeded inputs, guard bands, poisoned outputs, run-to-run determinism, and
 * the check of a backend's run against the fp64 oracle (all rows, or sampled rows on big shapes),
 * or against the mask probe, which checks every row of any shape for exactly the attended keys. */
#ifndef STILE_CONFORMANCE_H
#define STILE_CONFORMANCE_H

#include <stdint.h>

#include "stile/stile.h"

/* Guard band after every buffer: must hold GUARD_BYTE after the run. */
#define GUARD_BYTES 256
#define GUARD_BYTE 0xA5

typedef enum conf_status { CONF_PASS, CONF_FAIL, CONF_UNSUPPORTED, CONF_MISTRUSTED } conf_status;
const char *conf_status_name(conf_status s);

/* CONF_UNALIGNED: [B, S, H, D] with q, k, v and o 4 bytes past a 16-byte boundary. */
typedef enum conf_layout { CONF_BSHD = 0, CONF_BHSD, CONF_PADDED, CONF_PACKED_QKV, CONF_UNALIGNED } conf_layout;

/* What a case checks: the oracle's NMSE and LSE, and/or the mask probe (q = 0, so every attended key
 * weighs the same: LSE = ln(keys attended) and o counts keys by their tile, checked on every row). */
#define CONF_CHECK_ORACLE 1u
#define CONF_CHECK_PROBE 2u

/* One row of the case table; it expands over its dtypes, head dims and checks. */
typedef struct conf_case {
    const char *name;
    int64_t batch, canvas[3], tile[3], window[3];
    const int64_t (*head_windows)[3];
    int64_t heads;
    int64_t text, text_padding;
    stile_token_order order;
    conf_layout layout;
    unsigned dtypes;     /* bit (1 << dtype); 0: f32, f16 and bf16 */
    unsigned dims;       /* bit 1: d 64, bit 2: d 128; 0: both */
    int64_t sample_rows; /* 0: check every query row; else this many spread rows (oracle only) */
    unsigned checks;     /* CONF_CHECK_* bits; 0: both */
    const char *unsupported_on; /* backends ("vulkan,cuda") that may refuse it; elsewhere unsupported fails */
} conf_case;

extern const conf_case conf_cases[];
extern const int conf_ncases;

/* A case expanded to one concrete problem. */
typedef struct conf_variant {
    const conf_case *c;
    stile_problem p;
    int probe;           /* 1: the mask probe, 0: the oracle */
    char label[176];
} conf_variant;

/* All variants of the table (malloc'd, *n of them); NULL on out of memory. */
conf_variant *conf_expand(int *n);

typedef struct conf_result {
    conf_status status;
    char reason[256];      /* why it failed, was unsupported or mistrusted */
    stile_status api;      /* of plan_create / execute */
    stile_check check;     /* against the oracle */
    int guard_ok;          /* every guard band intact, inputs unchanged */
    int gaps_ok;           /* elements of o that no index reaches (stride gaps) still poisoned */
    int deterministic;     /* two runs gave bitwise the same o and lse (the probe runs once: 1) */
    int unsupported;       /* the backend refused the problem (status unsupported, or fail if not expected) */
    int probe;             /* a mask probe: the figures below, not check, say how it went */
    int64_t probe_bad_rows;    /* (batch, head, row) whose LSE or channels are off */
    double probe_lse_ratio;    /* max |lse - ln n| / (0.4 ln(1 + 1/n)): <= 1 is closer to n keys than to n +- 1 */
    double probe_channel_ratio;/* max |o_c n - m_c| / its bound (the output dtype's rounding) */
    int64_t rows_checked;
    char path[48];         /* the kernel the plan chose (stile_plan_info.path) */
    double ms;             /* the first execution */
    uint64_t seed;
} conf_result;

/* Plan p on dev, run it twice with seeded inputs (seed, seed+1, seed+2 for q, k, v) and lse, and
 * check everything; sample_rows 0 checks every query row. With CONF_PACKED_QKV, q, k and v are
 * views of one [B, S, 3, H, D] buffer (p's q/k/v strides must say so, as conf_expand sets them). */
conf_result conf_run(stile_device *dev, const stile_problem *p, conf_layout layout, uint64_t seed, int64_t sample_rows);
/* The mask probe of p on dev, with the harness's guard bands and poisoned outputs: q = 0, k seeded,
 * v one-hot channels naming each key's tile along t, h and w (folded modulo when the grid is wider
 * than head_dim allows), whether it is a valid or a padding text key; every (batch, head, row) must
 * give LSE = ln(n) for exactly the n keys the contract attends, and o = the counts per channel / n. */
conf_result conf_run_probe(stile_device *dev, const stile_problem *p, conf_layout layout, uint64_t seed);
/* A variant of the table on dev: the oracle or the probe, and an unsupported verdict turned into a
 * failure unless the case names dev's backend in unsupported_on. */
conf_result conf_run_variant(stile_device *dev, const conf_variant *v, uint64_t seed);
/* Whether c lists backend (a whole name in its comma-separated unsupported_on). */
int conf_unsupported_expected(const conf_case *c, const char *backend);
/* One line of figures: "NMSE 1.2e-06 (bound 1e-04)" or "probe: lse 0.01, channels 0.2 of bound". */
void conf_summary(const conf_result *r, char *buf, size_t size);

/* Fill n elements with seeded standard normal values. */
void conf_fill_normal(void *dst, stile_dtype dt, int64_t n, uint64_t seed);
/* Elements [i0, i1) (i0 even) of the same stream conf_fill_normal(seed) writes: it fills large tensors
 * in blocks on all processors with this, and the values do not depend on the split. */
void conf_fill_normal_range(void *dst, stile_dtype dt, int64_t i0, int64_t i1, uint64_t seed);
/* Query rows to check: NULL (all) when tokens <= 4096 or want >= tokens, else `want` rows spread
 * evenly with a seeded offset, the first and last token included. */
int64_t *conf_sample_rows(int64_t tokens, int64_t want, uint64_t seed, int64_t *nrows);

/* Capture library log lines (printing them too if STILE_TEST_VERBOSE is set). */
void conf_log_init(void);
const char *conf_last_log(void);

/* cmocka group setup/teardown for unit tests on the CPU: logs captured, conf_cpu open for the group. */
extern stile_device *conf_cpu;
int conf_group_open_cpu(void **state);
int conf_group_close_cpu(void **state);

/* A fresh directory /tmp/stile-WHAT-XXXXXX for a test's files (0 on success), and its removal with
 * everything in it (0 on success). */
int conf_tmpdir(char *dir, size_t size, const char *what);
int conf_tmpdir_remove(const char *dir);

/* Convenience for unit tests: print the result line, return 1 if it passed. */
int conf_report(const conf_result *r, const char *label);

#endif
