/* The STA kernels' parameter blocks and launchers (forward and backward): plain C, shared by the host code (C11) and
 * the kernel sources (CUDA or HIP), across an extern "C" boundary (sta_launch.cu). */
#ifndef STILE_STA_KERNEL_H
#define STILE_STA_KERNEL_H

#include <stddef.h>

#include "schedule_table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sta_params {
    const void *q, *k, *v;
    void *o;
    float *lse;                       /* NULL: not wanted */
    long long sq[4], sk[4], so[4], sv[4]; /* element strides: batch, token, head, dim */
    int batch, heads, head_dim, dtype; /* dtype: stile_dtype */
    int canvas[3], tile[3], grid[3];
    int tiles, video, tokens, text_valid;
    int tiled_order;                  /* tokens of q/k/v/o/lse in tiled order */
    float scale_log2;                 /* softmax scale * log2(e) */
    /* the schedule table (schedule_table.h), query blocks of STILE_BLOCK_ROWS_GPU rows */
    const long long *tile_start;
    const int *row_start, *head_row, *key_tiles;
    const int *blocks;                /* STILE_BLOCK_INTS per query block */
    int nblocks;
    const int *query_start, *query_tiles; /* the transposed schedules (the backward's key blocks) */
    /* caller-chosen key tiles (key_tiles_k > 0; else kt_rows NULL), made walkable on the device at each
     * execution (stile_gpu_key_tiles_prepare): query tile t of (batch b, head h) is row
     * r = (b * heads + h) * tiles + t, kt_count[r] distinct tiles ascending at kt_rows + r * kt_k; the
     * backward's transposed rows: key tile t of (b, h) is attended by the query tiles
     * kt_qtiles[kt_qstart[s] .. kt_qstart[s + 1]) with s = (b * heads + h) * (tiles + 1) + t */
    const int *kt_rows, *kt_count, *kt_qstart, *kt_qtiles;
    int kt_k;
    /* a region of the forward's queries (distributed plans: core's stile_region; natural order): video
     * query tiles outside the box [run_lo, run_hi) are skipped; q, o and lse hold the tokens of the box
     * of tokens q_org + [0, q_ext) (natural order within it), q_video of them, then the text, q_tokens in
     * all; text query blocks run only with text_queries, attending the tiles of the box [hold_lo,
     * hold_hi) and the valid text keys only with text_keys. The plan's own (stile_gpu_region_whole): the
     * boxes the grid, q_* the canvas, text_queries and text_keys 1. */
    int run_lo[3], run_hi[3], hold_lo[3], hold_hi[3];
    int q_org[3], q_ext[3], q_video, q_tokens;
    int text_queries, text_keys;
} sta_params;

/* Set p's region fields to the whole plan (every query; q, o and lse over the plan's tokens). */
static inline void stile_gpu_region_whole(sta_params *p)
{
    for (int a = 0; a < 3; a++) {
        p->run_lo[a] = p->hold_lo[a] = p->q_org[a] = 0;
        p->run_hi[a] = p->hold_hi[a] = p->grid[a];
        p->q_ext[a] = p->canvas[a];
    }
    p->q_video = p->video;
    p->q_tokens = p->tokens;
    p->text_queries = p->text_keys = 1;
}

/* The backward's: the forward's problem, tensors and table (o and lse are its inputs here), dO with
 * o's strides, dQ, dK and dV with q's, k's and v's, and delta: scratch of batch x heads x tokens
 * floats (D_i = dO_i . o_i: the dQ kernel writes it, the dK/dV kernel after it reads it). */
typedef struct sta_bwd_params {
    sta_params f;
    const void *d_o;
    void *d_q, *d_k, *d_v;
    float *delta;
    float scale; /* the softmax scale (dQ and dK carry it) */
} sta_bwd_params;

/* The CUDA and HIP builds of the kernels live in one library under their own names. */
#ifdef STILE_HIP
#define stile_gpu_mma_eligible stile_hip_mma_eligible
#define stile_gpu_sta_launch stile_hip_sta_launch
#define stile_gpu_path_select stile_hip_path_select
#define stile_gpu_path_name stile_hip_path_name
#define stile_gpu_sta_backward stile_hip_sta_backward
#define stile_gpu_backward_path stile_hip_backward_path
#define stile_gpu_key_tiles_prepare stile_hip_key_tiles_prepare
#define stile_gpu_key_tiles_scratch stile_hip_key_tiles_scratch
#define stile_gpu_vsa_launch stile_hip_vsa_launch
#define stile_gpu_copy_rows stile_hip_copy_rows
#define stile_gpu_merge stile_hip_merge
#endif

/* Which kernel a launch takes (one per kernel file; sta_launch.cu dispatches). */
enum { STA_PATH_MMA = 1, STA_PATH_SCALAR = 2, STA_PATH_HOPPER = 3 };

/* Whether the tensor-core path can run p (f16/bf16, head_dim 64 or 128, contiguous head dim, 16-byte
 * aligned rows) on a device of compute capability cc (major*10+minor); 0 means the portable path. */
int stile_gpu_mma_eligible(const sta_params *p, int cc);

/* The path for p on a device of compute capability cc: the Hopper kernel (sta_sm90.cu, sm_90a) where
 * it covers p, else mma.sync where eligible, else portable. STILE_CUDA_PATH=mma or portable caps it
 * (for comparisons and tests); hopper (or unset) takes the best eligible one. */
int stile_gpu_path_select(const sta_params *p, int cc);
const char *stile_gpu_path_name(int path);

/* Enqueue the forward on stream by *path; 0 on success, else the runtime's error code with err filled.
 * Where the Hopper kernel cannot run here after all (the driver lacks tensor maps or refuses one),
 * the sm_80 kernel runs instead: *path says so and err holds why. */
int stile_gpu_sta_launch(const sta_params *p, int *path, void *stream, char *err, size_t err_size);

/* The backward's path on a device of compute capability cc allowing smem_optin bytes of shared memory
 * per block: where stile_gpu_mma_eligible holds for the forward's tensors and the gradients' pointers
 * are 16-byte aligned too, STA_PATH_HOPPER on 9.0 (built with sm_90a) and STA_PATH_MMA elsewhere, each
 * where its kernels' shared memory fits; else STA_PATH_SCALAR. STILE_CUDA_PATH=mma or portable caps it. */
int stile_gpu_backward_path(const sta_bwd_params *p, int cc, size_t smem_optin);

/* Enqueue the backward by path on stream: dQ per query block, then dK/dV per key block (no atomics:
 * every gradient row is summed by one thread or warp in schedule order). 0 on success, else the
 * runtime's error code with err filled. */
int stile_gpu_sta_backward(const sta_bwd_params *p, int path, void *stream, char *err, size_t err_size);

/* Ints of device scratch stile_gpu_key_tiles_prepare needs for p's caller-chosen key tiles (with
 * transpose: the backward's rows too), or -1 where the grid is too large for it (over STA_KT_MAX_TILES:
 * a row's set of tiles is a bitmap in 48 KiB of shared memory). */
long long stile_gpu_key_tiles_scratch(const sta_params *p, int transpose);
/* The most tiles stile_gpu_key_tiles_prepare takes (its bitmap of a row: STA_KT_MAX_TILES / 32 words). */
#define STA_KT_MAX_TILES 393216

/* Enqueue on stream: the caller's key tiles `in` (i32 [B, heads, tiles, kt_k]) made walkable in
 * scratch (stile_gpu_key_tiles_scratch ints), setting p's kt_ pointers: each row's entries within
 * 0..tiles-1 as a set, ascending; -1 entries skipped; any other entry skipped and counted into
 * scratch's error count (*bad: the address of that count) and into caller_bad when given. With
 * transpose, the transposed rows too (deterministic: each row sorted). 0 or the runtime's error. */
int stile_gpu_key_tiles_prepare(sta_params *p, const int *in, int *scratch, int transpose, int *caller_bad, int **bad, void *stream,
                                char *err, size_t err_size);

/* VSA's steps (sta_vsa.cu; docs/contract.md, "VSA steps"): p's q, k, v, o (the problem's dtype and
 * strides; gate with o's) and the f32 intermediates [B, heads, tiles, head_dim] (q_c .. o_c) and
 * [B, heads, tiles, tiles] (scores, may be NULL for the coarse step), key_tiles i32 [B, heads, tiles, k]. */
typedef struct sta_vsa_args {
    const void *gate;
    float *q_c, *k_c, *v_c, *o_c, *scores;
    int *key_tiles;
    int k;
    float scale;
} sta_vsa_args;
enum { STA_VSA_POOL = 1, STA_VSA_COARSE, STA_VSA_SELECT, STA_VSA_COMBINE }; /* stile_internal.h's STILE_VSA_* */

/* Enqueue one VSA step on stream: 0, the runtime's error code (err filled), or -1 for a grid whose
 * rows do not fit the kernels' shared memory (err says the limit). */
int stile_gpu_vsa_launch(const sta_params *p, int step, const sta_vsa_args *a, void *stream, char *err, size_t err_size);

/* Distributed plans' steps (sta_dist.cu; core's stile_copy_rows and stile_merge as plain data). */
typedef struct sta_copy_args {
    long long ext[4]; /* rows (n, t, h, w) */
    long long bytes;  /* per row */
    char *dst;
    const char *src;
    long long ds[4], ss[4]; /* byte strides per level */
} sta_copy_args;
typedef struct sta_merge_args {
    int n, dtype;
    long long batch, rows, heads, dim;
    const void *o_parts;
    const float *lse_parts;
    void *o;
    long long o_batch, o_row;
    float *lse;
    long long lse_row;
} sta_merge_args;
/* Enqueue on stream: the copy of every row of a (a warp per row, 16-byte words where everything is
 * aligned to them); the merge of m's n partial attentions. 0 or the runtime's error code. */
int stile_gpu_copy_rows(const sta_copy_args *a, void *stream);
int stile_gpu_merge(const sta_merge_args *m, void *stream);

#ifdef __cplusplus
}
#endif

#endif
