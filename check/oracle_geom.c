/* The mask as the oracle reads it: the contract's axis rule written out once more, independently of
 * the planner (see check/oracle.c). */
#include <stdlib.h>
#include <string.h>

#include "oracle_geom.h"

/* The axis rule of the contract. */
static int axis_attends(int64_t qtile, int64_t ktile, int64_t w, int64_t n)
{
    if (w >= n) return 1;
    int64_t s = qtile - w / 2;
    if (s < 0) s = 0;
    if (s > n - w) s = n - w;
    return ktile >= s && ktile < s + w;
}

/* Tile coordinates of video token i (problem order). */
static void tile_coords(const oracle_geom *g, int64_t i, int64_t c[3])
{
    const int64_t n = g->natural[i];
    c[0] = n / (g->canvas[1] * g->canvas[2]) / g->tile[0];
    c[1] = (n / g->canvas[2]) % g->canvas[1] / g->tile[1];
    c[2] = n % g->canvas[2] / g->tile[2];
}

/* The tile of video token i, numbered in raster order over the grid. */
static int64_t tile_of(const oracle_geom *g, int64_t i)
{
    int64_t c[3];
    tile_coords(g, i, c);
    return (c[0] * g->n[1] + c[1]) * g->n[2] + c[2];
}

void oracle_row(oracle_geom *g, int64_t b, int64_t h, int64_t qi)
{
    if (!g->key_tiles || qi >= g->video) return;
    const int64_t tiles = g->n[0] * g->n[1] * g->n[2];
    const int32_t *row = g->key_tiles + ((b * g->heads + h) * tiles + tile_of(g, qi)) * g->k;
    memset(g->row_tiles, 0, (size_t)tiles);
    for (int64_t i = 0; i < g->k; i++)
        if (row[i] >= 0) g->row_tiles[row[i]] = 1; /* the set the entries name: -1 none, repeats once */
}

int oracle_attends(const oracle_geom *g, const int64_t win[3], int64_t qi, int64_t ki)
{
    int q_text = qi >= g->video, k_text = ki >= g->video;
    if (k_text) return ki - g->video < g->text_valid; /* valid text keys: everyone; padding: nobody */
    if (q_text) return 1;                              /* text queries see every video key */
    if (g->key_tiles) return g->row_tiles[tile_of(g, ki)];
    int64_t qc[3], kc[3];
    tile_coords(g, qi, qc);
    tile_coords(g, ki, kc);
    for (int a = 0; a < 3; a++)
        if (!axis_attends(qc[a], kc[a], win[a], g->n[a])) return 0;
    return 1;
}

/* Tiled order by its definition: tiles in raster order over the grid, tokens of a tile in raster order. */
static void natural_of_tiled(const oracle_geom *g, int64_t *map)
{
    int64_t pos = 0;
    for (int64_t a = 0; a < g->n[0]; a++)
        for (int64_t b = 0; b < g->n[1]; b++)
            for (int64_t c = 0; c < g->n[2]; c++)
                for (int64_t t = a * g->tile[0]; t < g->canvas[0] && t < (a + 1) * g->tile[0]; t++)
                    for (int64_t h = b * g->tile[1]; h < g->canvas[1] && h < (b + 1) * g->tile[1]; h++)
                        for (int64_t w = c * g->tile[2]; w < g->canvas[2] && w < (c + 1) * g->tile[2]; w++)
                            map[pos++] = (t * g->canvas[1] + h) * g->canvas[2] + w;
}

/* The caller's key tiles: host i32 data covering [B, heads, tiles, k], entries -1..tiles-1. */
static stile_status key_tiles_init(const oracle_problem *op, const stile_io *io, const char *who, oracle_geom *g)
{
    const int64_t tiles = op->grid[0] * op->grid[1] * op->grid[2], n = op->batch * op->heads * tiles * op->key_tiles_k;
    const stile_tensor *t = &io->key_tiles;
    if (t->handle) return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: io->key_tiles is a buffer handle: the oracle reads host memory (data)", who);
    if (!t->data) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: io->key_tiles.data is NULL (the problem has key_tiles_k)", who);
    if (t->dtype != STILE_DTYPE_I32) return check_fail(STILE_ERR_DTYPE_MISMATCH, "%s: io->key_tiles.dtype is not i32", who);
    if ((uintptr_t)t->data % sizeof(int32_t) || t->bytes / sizeof(int32_t) < (size_t)n)
        return check_fail(STILE_ERR_OUT_OF_RANGE, "%s: io->key_tiles: misaligned, or fewer than %lld i32 entries", who, (long long)n);
    const int32_t *e = t->data;
    for (int64_t i = 0; i < n; i++)
        if (e[i] < -1 || e[i] >= tiles)
            return check_fail(STILE_ERR_OUT_OF_RANGE, "%s: io->key_tiles entry %lld is %d: outside -1..%lld", who, (long long)i, (int)e[i],
                              (long long)tiles - 1);
    g->key_tiles = e;
    g->k = op->key_tiles_k;
    g->heads = op->heads;
    g->row_tiles = malloc((size_t)tiles);
    if (!g->row_tiles) return check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    return STILE_OK;
}

stile_status oracle_geom_init(const oracle_problem *op, const stile_io *io, const char *who, oracle_geom *g)
{
    *g = (oracle_geom){.video = op->video, .text = op->text, .text_valid = op->text_valid};
    for (int a = 0; a < 3; a++) {
        g->canvas[a] = op->canvas[a];
        g->tile[a] = op->tile[a];
        g->n[a] = op->grid[a];
    }
    g->natural = malloc((size_t)(op->video > 0 ? op->video : 1) * sizeof *g->natural);
    if (!g->natural) return check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    if (op->order == STILE_ORDER_TILED) natural_of_tiled(g, g->natural);
    else for (int64_t i = 0; i < op->video; i++) g->natural[i] = i;
    return op->key_tiles_k ? key_tiles_init(op, io, who, g) : STILE_OK;
}

void oracle_geom_free(oracle_geom *g)
{
    free(g->natural);
    free(g->row_tiles);
    g->natural = NULL;
    g->row_tiles = NULL;
}

stile_status oracle_inputs_check(const stile_io *io, const oracle_problem *op, const char *who)
{
    if (io->q.handle || io->k.handle || io->v.handle)
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: a tensor is a buffer handle: the oracle reads host memory (data)", who);
    const size_t es = stile_oracle_dtype_bytes(op->dtype);
    const stile_tensor *in[3] = {&io->q, &io->k, &io->v};
    static const char *nm[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        if (!in[i]->data) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: io->%s.data is NULL", who, nm[i]);
        if (in[i]->dtype != op->dtype) return check_fail(STILE_ERR_DTYPE_MISMATCH, "%s: io->%s.dtype differs", who, nm[i]);
        if ((uintptr_t)in[i]->data % es != 0) /* the same rule as stile_plan_execute */
            return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: io->%s.data=%p: not aligned to its %zu-byte elements", who, nm[i],
                              in[i]->data, es);
        if (in[i]->bytes / es < (size_t)op->span[i])
            return check_fail(STILE_ERR_OUT_OF_RANGE, "%s: io->%s is smaller than its strides reach", who, nm[i]);
    }
    return STILE_OK;
}
