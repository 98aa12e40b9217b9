/* The CPU backend's VSA steps (include/stile/stile_vsa.h; docs/contract.md, "VSA steps"), io checked
 * by core/vsa.c: tile means, the coarse attention through CBLAS (f32), top-k with ties to the lower
 * tile, and the gated sum. One thread per call (the steps are small next to the fine attention). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "stile/stile_vsa.h"

/* The tile's tokens' positions (pos: the plan's largest tile) and their count. */
static int64_t tile_tokens(const stile_plan *plan, int64_t tile, int64_t *pos)
{
    const int64_t n = plan->layout.tile_start[tile + 1] - plan->layout.tile_start[tile];
    stile_cpu_tile_positions(plan, tile, 0, n, pos);
    return n;
}

static int64_t largest_tile(const stile_plan *plan)
{
    int64_t m = 0;
    for (int64_t t = 0; t < plan->r.tiles; t++) {
        const int64_t n = plan->layout.tile_start[t + 1] - plan->layout.tile_start[t];
        if (n > m) m = n;
    }
    return m;
}

static stile_status pool(const stile_plan *plan, const stile_vsa_io *io)
{
    const stile_resolved *r = &plan->r;
    const int64_t B = r->p.batch, H = r->p.heads, D = r->p.head_dim, T = r->tiles;
    const stile_tensor *in[3] = {&io->q, &io->k, &io->v}, *out[3] = {&io->q_c, &io->k_c, &io->v_c};
    int64_t *pos = malloc((size_t)largest_tile(plan) * sizeof *pos);
    float *row = malloc((size_t)D * sizeof *row);
    if (!pos || !row) {
        free(pos);
        free(row);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_vsa_pool: cpu: out of memory");
    }
    for (int64_t t = 0; t < T; t++) {
        const int64_t n = tile_tokens(plan, t, pos);
        for (int x = 0; x < 3; x++)
            for (int64_t b = 0; b < B; b++)
                for (int64_t h = 0; h < H; h++) {
                    float *dst = (float *)out[x]->data + ((b * H + h) * T + t) * D;
                    memset(dst, 0, (size_t)D * sizeof *dst);
                    for (int64_t i = 0; i < n; i++) {
                        stile_cpu_load_row(in[x]->data, r->p.dtype, &r->strides[x], b, h, pos[i], D, row, 1.0f);
                        for (int64_t d = 0; d < D; d++) dst[d] += row[d];
                    }
                    for (int64_t d = 0; d < D; d++) dst[d] /= (float)n;
                }
    }
    free(pos);
    free(row);
    return STILE_OK;
}

static stile_status coarse(const stile_plan *plan, const stile_vsa_io *io)
{
    const stile_resolved *r = &plan->r;
    const int64_t BH = r->p.batch * r->p.heads, D = r->p.head_dim, T = r->tiles;
    float *s = malloc((size_t)(T * T) * sizeof *s);
    if (!s) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_vsa_coarse: cpu: out of memory");
    for (int64_t bh = 0; bh < BH; bh++) {
        const float *qc = (const float *)io->q_c.data + bh * T * D, *kc = (const float *)io->k_c.data + bh * T * D,
                    *vc = (const float *)io->v_c.data + bh * T * D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)D, (float)r->p.scale, qc, (int)D, kc, (int)D, 0.0f, s,
                    (int)T);
        if (io->scores.data) memcpy((float *)io->scores.data + bh * T * T, s, (size_t)(T * T) * sizeof *s);
        for (int64_t i = 0; i < T; i++) { /* softmax of row i in place */
            float *row = s + i * T, mx = row[0], sum = 0.0f;
            for (int64_t j = 1; j < T; j++) mx = fmaxf(mx, row[j]);
            for (int64_t j = 0; j < T; j++) sum += row[j] = expf(row[j] - mx);
            for (int64_t j = 0; j < T; j++) row[j] /= sum;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)D, (int)T, 1.0f, s, (int)T, vc, (int)D, 0.0f,
                    (float *)io->o_c.data + bh * T * D, (int)D);
    }
    free(s);
    return STILE_OK;
}

/* Larger score first; equal scores: lower tile first. */
static _Thread_local const float *sort_scores;
static int by_score(const void *a, const void *b)
{
    const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    const float x = sort_scores[i], y = sort_scores[j];
    if (x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

static stile_status select_topk(const stile_plan *plan, const stile_vsa_io *io)
{
    const stile_resolved *r = &plan->r;
    const int64_t rows = r->p.batch * r->p.heads * r->tiles, T = r->tiles, k = r->p.key_tiles_k;
    int32_t *idx = malloc((size_t)T * sizeof *idx);
    if (!idx) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_vsa_select: cpu: out of memory");
    for (int64_t row = 0; row < rows; row++) {
        const float *sc = (const float *)io->scores.data + row * T;
        for (int64_t j = 0; j < T; j++)
            if (isnan(sc[j])) {
                free(idx);
                return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_vsa_select: io->scores holds NaN (row %lld, key tile %lld)",
                                  (long long)row, (long long)j);
            }
        for (int64_t j = 0; j < T; j++) idx[j] = (int32_t)j;
        sort_scores = sc; /* qsort has no context argument in C11: the row, per thread */
        qsort(idx, (size_t)T, sizeof *idx, by_score);
        memcpy((int32_t *)io->key_tiles.data + row * k, idx, (size_t)k * sizeof *idx);
    }
    free(idx);
    return STILE_OK;
}

static stile_status combine(const stile_plan *plan, const stile_vsa_io *io)
{
    const stile_resolved *r = &plan->r;
    const int64_t B = r->p.batch, H = r->p.heads, D = r->p.head_dim, T = r->tiles;
    int64_t *pos = malloc((size_t)largest_tile(plan) * sizeof *pos);
    float *o = malloc((size_t)(2 * D) * sizeof *o);
    if (!pos || !o) {
        free(pos);
        free(o);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_vsa_combine: cpu: out of memory");
    }
    float *g = o + D;
    for (int64_t t = 0; t < T; t++) {
        const int64_t n = tile_tokens(plan, t, pos);
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++) {
                const float *oc = (const float *)io->o_c.data + ((b * H + h) * T + t) * D;
                for (int64_t i = 0; i < n; i++) {
                    stile_cpu_load_row(io->o.data, r->p.dtype, &r->strides[STILE_O], b, h, pos[i], D, o, 1.0f);
                    stile_cpu_load_row(io->gate.data, r->p.dtype, &r->strides[STILE_O], b, h, pos[i], D, g, 1.0f);
                    for (int64_t d = 0; d < D; d++) o[d] += g[d] * oc[d];
                    stile_cpu_store_row(io->o.data, r->p.dtype, &r->strides[STILE_O], b, h, pos[i], D, o, 1.0f);
                }
            }
    }
    free(pos);
    free(o);
    return STILE_OK;
}

stile_status stile_cpu_vsa(void *device, const stile_plan *plan, void *impl, int step, const stile_vsa_io *io)
{
    (void)device;
    (void)impl;
    switch (step) {
    case STILE_VSA_POOL: return pool(plan, io);
    case STILE_VSA_COARSE: return coarse(plan, io);
    case STILE_VSA_SELECT: return select_topk(plan, io);
    case STILE_VSA_COMBINE: return combine(plan, io);
    default: return stile_fail(STILE_ERR_INVALID_ARGUMENT, "cpu: VSA step %d is unknown", step);
    }
}
