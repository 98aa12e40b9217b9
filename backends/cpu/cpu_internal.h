/* What the CPU backend's forward (cpu.c) and backward (cpu_backward.c) passes share: the device, the
 * plan's work items, token positions and the row loads and stores of any dtype and strides. */
#ifndef STILE_CPU_INTERNAL_H
#define STILE_CPU_INTERNAL_H

#include "stile_internal.h"

enum {
    CPU_ROW_BLOCK = 384, /* query rows per work item: bounds the score block and feeds both threads */
    CPU_KEY_CHUNK = 384, /* keys per score block: row block x chunk floats stay in L2 */
    CPU_MAX_HEAD_DIM = 1024
};

typedef struct cpu_device {
    int threads;
    int holds_blas; /* this device set OpenBLAS to one thread and restores it on close */
} cpu_device;

/* A block of at most CPU_ROW_BLOCK tokens of one tile (tiled order) or of the text: the forward's
 * query blocks, and the backward's query and key blocks. */
typedef struct cpu_item {
    int64_t tile;  /* tile, or -1 for a block of text tokens */
    int64_t first; /* first row in tiled order (video) or token index (text) */
    int64_t local; /* first row's index inside its tile */
    int64_t rows;
} cpu_item;

typedef struct cpu_plan {
    int64_t nitems;
    cpu_item *items;
    int64_t max_rows;   /* rows of the largest tile or text block: the per-thread position buffer */
} cpu_plan;

/* A plan's caller-chosen key tiles as the kernels walk them (stile_key_tiles_read): row r of
 * [B, heads, tiles] holds count[r] distinct tiles, ascending, at rows + r * key_tiles_k; both NULL for
 * a window plan. */
typedef struct cpu_key_tiles {
    int32_t *rows, *count;
} cpu_key_tiles;

/* Read io's key tiles for plan (nothing for a window plan); an entry outside -1..tiles-1 is
 * STILE_ERR_OUT_OF_RANGE, naming the first, with nothing kept. */
stile_status stile_cpu_key_tiles_read(const stile_plan *plan, const stile_tensor *key_tiles, cpu_key_tiles *out);
void stile_cpu_key_tiles_free(cpu_key_tiles *kt);

/* Tiles list[i .. n) ascending: the end of the run of consecutive tiles that starts at i (one
 * contiguous range of the packed, tiled-order rows, one GEMM operand). */
static inline int32_t stile_cpu_run_end(const int32_t *list, int32_t i, int32_t n)
{
    int32_t j = i + 1;
    while (j < n && list[j] == list[j - 1] + 1) j++;
    return j;
}

/* Problem-order token index of each of `rows` rows of a tile (video) starting at local row `local`. */
void stile_cpu_tile_positions(const stile_plan *plan, int64_t tile, int64_t local, int64_t rows, int64_t *pos);

/* Token pos of tensor data (dtype dt, strides s) for batch b, head h: D floats into dst, times mul. */
void stile_cpu_load_row(const void *data, stile_dtype dt, const stile_strides *s, int64_t b, int64_t h, int64_t pos, int64_t D,
                        float *dst, float mul);
/* The reverse: D floats of src times mul, converted to dt, at token pos. */
void stile_cpu_store_row(void *data, stile_dtype dt, const stile_strides *s, int64_t b, int64_t h, int64_t pos, int64_t D,
                         const float *src, float mul);

/* The backward pass (cpu_backward.c) and the FLOPs it computes. */
stile_status stile_cpu_backward(void *device, const stile_plan *plan, void *impl, const stile_grad_io *io, stile_exec_info *info);
double stile_cpu_backward_flops(const stile_plan *plan);

/* The VSA steps (cpu_vsa.c): step is STILE_VSA_POOL .. COMBINE, io checked by core/vsa.c. */
stile_status stile_cpu_vsa(void *device, const stile_plan *plan, void *impl, int step, const struct stile_vsa_io *io);

/* Distributed plans' steps (cpu_dist.c): the strided copy and the merge of partial attentions. */
stile_status stile_cpu_copy_rows(void *device, const stile_copy_rows *c, void *stream);
stile_status stile_cpu_merge(void *device, const stile_merge *m, void *stream);

#endif
