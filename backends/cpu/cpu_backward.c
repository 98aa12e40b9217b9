/* The CPU backend's backward pass (docs/contract.md, "Gradients"), in two passes per (batch, head)
 * over the q, k, v, o and dO rows packed in tiled order, with GEMMs through CBLAS:
 *
 *   pass dQ, one work item per block of query rows (its forward schedule's key tiles, then the valid
 *   text keys):  S = Q K^T,  P = 2^(S c - lse2),  dP = dO V^T,  dS = P (dP - D),  dQ += dS K
 *   pass dK/dV, one work item per block of key rows (the query tiles of the plan's transposed
 *   schedule, then every text query):  the same S, P, dP, dS,  dV += P^T dO,  dK += dS^T Q
 *
 * with c = scale log2(e), lse2 the forward's LSE in log2 units and D_i = dO_i . o_i. Each output row
 * belongs to one work item, which sums its terms in a fixed order: no atomics, and the result is
 * bitwise the same whatever the thread count. S and dP are computed twice (once per pass), the price
 * of that determinism: 7 GEMMs per block pair where a pass with atomics on dQ needs 5. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_threads.h"

typedef struct cpu_grad {
    const stile_plan *plan;
    const cpu_plan *cp;
    const stile_grad_io *io;
    int64_t b, h;
    float *qp, *kp, *vp, *dop; /* [tokens x D], tiled order then text */
    float *dvec, *lse2;        /* [tokens]: dO . o, and the LSE in log2 units */
    int64_t *pos;              /* [tokens]: each packed row's token index in the problem's order */
    float *work;               /* per thread: work_floats */
    size_t work_floats;
    float c;                   /* scale * log2(e) */
    /* plans with key_tiles_k: the caller's rows, and this (batch, head)'s transposed rows (the query
     * tiles listing each key tile, ascending: tiles + 1 starts into a list of up to tiles x k) */
    cpu_key_tiles kt;
    int32_t *kt_qstart, *kt_qtiles;
} cpu_grad;

/* This (batch, head)'s rows of the caller's key tiles, transposed: a counting sort, query tiles ascending. */
static void key_tiles_transpose(cpu_grad *x)
{
    const int64_t tiles = x->plan->r.tiles, k = x->plan->r.p.key_tiles_k, base = (x->b * x->plan->r.p.heads + x->h) * tiles;
    int32_t *start = x->kt_qstart;
    memset(start, 0, (size_t)(tiles + 1) * sizeof *start);
    for (int64_t q = 0; q < tiles; q++)
        for (int32_t i = 0; i < x->kt.count[base + q]; i++) start[x->kt.rows[(base + q) * k + i] + 1]++;
    for (int64_t t = 0; t < tiles; t++) start[t + 1] += start[t];
    for (int64_t q = 0; q < tiles; q++)
        for (int32_t i = 0; i < x->kt.count[base + q]; i++) x->kt_qtiles[start[x->kt.rows[(base + q) * k + i]]++] = (int32_t)q;
    for (int64_t t = tiles; t > 0; t--) start[t] = start[t - 1]; /* the fill advanced each start to the next row's */
    start[0] = 0;
}

/* Pack phase: item t < tiles packs tile t's rows, item == tiles the text rows. */
static void pack_item(void *ctx, int64_t item, int thread)
{
    cpu_grad *x = ctx;
    const stile_plan *plan = x->plan;
    const stile_resolved *r = &plan->r;
    const int64_t D = r->p.head_dim;
    const stile_grad_io *io = x->io;
    float *orow = x->work + (size_t)thread * x->work_floats;
    int64_t first, rows;
    if (item == plan->layout.tiles) {
        first = r->video;
        rows = r->p.text;
        for (int64_t i = 0; i < rows; i++) x->pos[first + i] = first + i;
    } else {
        first = plan->layout.tile_start[item];
        rows = plan->layout.tile_start[item + 1] - first;
        stile_cpu_tile_positions(plan, item, 0, rows, x->pos + first);
    }
    const float *lse = io->lse.data;
    for (int64_t i = first; i < first + rows; i++) {
        const int64_t p = x->pos[i];
        stile_cpu_load_row(io->q.data, r->p.dtype, &r->strides[STILE_Q], x->b, x->h, p, D, x->qp + i * D, 1.0f);
        stile_cpu_load_row(io->k.data, r->p.dtype, &r->strides[STILE_K], x->b, x->h, p, D, x->kp + i * D, 1.0f);
        stile_cpu_load_row(io->v.data, r->p.dtype, &r->strides[STILE_V], x->b, x->h, p, D, x->vp + i * D, 1.0f);
        stile_cpu_load_row(io->d_o.data, r->p.dtype, &r->strides[STILE_O], x->b, x->h, p, D, x->dop + i * D, 1.0f);
        stile_cpu_load_row(io->o.data, r->p.dtype, &r->strides[STILE_O], x->b, x->h, p, D, orow, 1.0f);
        double dot = 0;
        for (int64_t d = 0; d < D; d++) dot += (double)x->dop[i * D + d] * orow[d];
        x->dvec[i] = (float)dot;
        x->lse2[i] = (float)(lse[(x->b * r->p.heads + x->h) * r->tokens + p] * M_LOG2E);
    }
}

/* For a block of m query rows [q0, q0 + m) against n key rows [k0, k0 + n): s <- P, dp <- dS. */
static void block_p_ds(const cpu_grad *x, int64_t q0, int64_t m, int64_t k0, int64_t n, float *s, float *dp)
{
    const int64_t D = x->plan->r.p.head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)D, 1.0f, x->qp + q0 * D, (int)D, x->kp + k0 * D,
                (int)D, 0.0f, s, (int)n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)D, 1.0f, x->dop + q0 * D, (int)D, x->vp + k0 * D,
                (int)D, 0.0f, dp, (int)n);
    for (int64_t i = 0; i < m; i++) {
        const float l2 = x->lse2[q0 + i], di = x->dvec[q0 + i];
        float *si = s + i * n, *dpi = dp + i * n;
        for (int64_t j = 0; j < n; j++) {
            const float p = exp2f(si[j] * x->c - l2);
            si[j] = p;
            dpi[j] = p * (dpi[j] - di);
        }
    }
}

/* Pass dQ: the query rows [q0, q0 + m) against the keys [start, end), into acc (m x D). */
static void dq_span(const cpu_grad *x, int64_t q0, int64_t m, int64_t start, int64_t end, float *s, float *dp, float *acc)
{
    const int64_t D = x->plan->r.p.head_dim;
    for (int64_t k0 = start; k0 < end; k0 += CPU_KEY_CHUNK) {
        const int64_t n = end - k0 < CPU_KEY_CHUNK ? end - k0 : CPU_KEY_CHUNK;
        block_p_ds(x, q0, m, k0, n, s, dp);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)D, (int)n, 1.0f, dp, (int)n, x->kp + k0 * D, (int)D,
                    1.0f, acc, (int)D);
    }
}

static void dq_item(void *ctx, int64_t item, int thread)
{
    cpu_grad *x = ctx;
    const stile_plan *plan = x->plan;
    const stile_resolved *r = &plan->r;
    const cpu_item *it = &x->cp->items[item];
    const int64_t D = r->p.head_dim, m = it->rows, q0 = it->first;
    float *s = x->work + (size_t)thread * x->work_floats, *dp = s + (size_t)CPU_ROW_BLOCK * CPU_KEY_CHUNK;
    float *acc = dp + (size_t)CPU_ROW_BLOCK * CPU_KEY_CHUNK;
    memset(acc, 0, (size_t)(m * D) * sizeof *acc);
    if (it->tile >= 0 && x->kt.rows) { /* the caller's tiles, ascending, in runs of consecutive ones */
        const int64_t row = (x->b * r->p.heads + x->h) * plan->layout.tiles + it->tile, *ts = plan->layout.tile_start;
        const int32_t *list = x->kt.rows + row * r->p.key_tiles_k, cnt = x->kt.count[row];
        for (int32_t i = 0, j; i < cnt; i = j) {
            j = stile_cpu_run_end(list, i, cnt);
            dq_span(x, q0, m, ts[list[i]], ts[list[j - 1] + 1], s, dp, acc);
        }
        dq_span(x, q0, m, r->video, r->video + r->text_valid, s, dp, acc);
    } else if (it->tile >= 0) {
        const stile_schedule *sc = &plan->schedules[plan->head_schedule[x->h]];
        const int64_t *ts = plan->layout.tile_start;
        for (int32_t k = sc->run_start[it->tile]; k < sc->run_start[it->tile + 1]; k++)
            dq_span(x, q0, m, ts[sc->runs[k].first], ts[sc->runs[k].end], s, dp, acc);
        dq_span(x, q0, m, r->video, r->video + r->text_valid, s, dp, acc);
    } else {
        dq_span(x, q0, m, 0, r->video + r->text_valid, s, dp, acc);
    }
    for (int64_t i = 0; i < m; i++)
        stile_cpu_store_row(x->io->d_q.data, r->p.dtype, &r->strides[STILE_Q], x->b, x->h, x->pos[q0 + i], D, acc + i * D,
                            (float)r->p.scale);
}

/* Pass dK/dV: the key rows [k0, k0 + n) against the queries [start, end), into dk and dv (n x D). */
static void dkv_span(const cpu_grad *x, int64_t k0, int64_t n, int64_t start, int64_t end, float *s, float *dp, float *dk, float *dv)
{
    const int64_t D = x->plan->r.p.head_dim;
    for (int64_t q0 = start; q0 < end; q0 += CPU_ROW_BLOCK) {
        const int64_t m = end - q0 < CPU_ROW_BLOCK ? end - q0 : CPU_ROW_BLOCK;
        block_p_ds(x, q0, m, k0, n, s, dp);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)D, (int)m, 1.0f, s, (int)n, x->dop + q0 * D, (int)D, 1.0f,
                    dv, (int)D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)D, (int)m, 1.0f, dp, (int)n, x->qp + q0 * D, (int)D, 1.0f,
                    dk, (int)D);
    }
}

static void dkv_item(void *ctx, int64_t item, int thread)
{
    cpu_grad *x = ctx;
    const stile_plan *plan = x->plan;
    const stile_resolved *r = &plan->r;
    const cpu_item *it = &x->cp->items[item];
    const int64_t D = r->p.head_dim, k0 = it->first;
    float *s = x->work + (size_t)thread * x->work_floats, *dp = s + (size_t)CPU_ROW_BLOCK * CPU_KEY_CHUNK;
    float *dk = dp + (size_t)CPU_ROW_BLOCK * CPU_KEY_CHUNK, *dv = dk + (size_t)CPU_ROW_BLOCK * D;
    /* text key blocks: the valid keys get gradients, padding keys none */
    const int64_t n = it->tile >= 0 ? it->rows : (k0 + it->rows <= r->video + r->text_valid ? it->rows
                                                  : k0 < r->video + r->text_valid ? r->video + r->text_valid - k0 : 0);
    memset(dk, 0, (size_t)(it->rows * D) * sizeof *dk);
    memset(dv, 0, (size_t)(it->rows * D) * sizeof *dv);
    if (it->tile >= 0) {
        /* the query tiles whose window (or list) holds this key tile, merged into runs of consecutive tiles */
        const stile_schedule *sc = x->kt.rows ? NULL : &plan->schedules[plan->head_schedule[x->h]];
        const int32_t *qs = sc ? sc->query_start : x->kt_qstart, *qt = sc ? sc->query_tiles : x->kt_qtiles;
        const int64_t *ts = plan->layout.tile_start;
        for (int32_t i = qs[it->tile]; i < qs[it->tile + 1];) {
            const int32_t j = stile_cpu_run_end(qt, i, qs[it->tile + 1]);
            dkv_span(x, k0, n, ts[qt[i]], ts[qt[j - 1] + 1], s, dp, dk, dv);
            i = j;
        }
        dkv_span(x, k0, n, r->video, r->tokens, s, dp, dk, dv); /* every text query attends every video key */
    } else if (n > 0) {
        dkv_span(x, k0, n, 0, r->tokens, s, dp, dk, dv);
    }
    for (int64_t i = 0; i < it->rows; i++) {
        const int64_t p = x->pos[k0 + i];
        stile_cpu_store_row(x->io->d_k.data, r->p.dtype, &r->strides[STILE_K], x->b, x->h, p, D, dk + i * D, (float)r->p.scale);
        stile_cpu_store_row(x->io->d_v.data, r->p.dtype, &r->strides[STILE_V], x->b, x->h, p, D, dv + i * D, 1.0f);
    }
}

double stile_cpu_backward_flops(const stile_plan *plan)
{
    return 3.5 * plan->info.flops; /* per attended pair: S, dP, dQ in one pass, S, dP, dV, dK in the other: 2 D each */
}

stile_status stile_cpu_backward(void *device, const stile_plan *plan, void *impl, const stile_grad_io *io, stile_exec_info *info)
{
    snprintf(info->path, sizeof info->path, "cblas");
    const cpu_device *dev = device;
    const stile_resolved *r = &plan->r;
    const int64_t D = r->p.head_dim, T = r->tokens;
    cpu_grad x = {.plan = plan, .cp = impl, .io = io, .c = (float)(r->p.scale * M_LOG2E)};
    /* per thread: S and dP blocks, then dQ (pass one) or dK and dV (pass two), or an o row (packing) */
    x.work_floats = (size_t)(2 * CPU_ROW_BLOCK * CPU_KEY_CHUNK + 2 * CPU_ROW_BLOCK * D);
    x.work_floats = (x.work_floats + 15) & ~(size_t)15;
    const size_t rows = (size_t)(T * D) * sizeof(float);
    x.qp = malloc(rows);
    x.kp = malloc(rows);
    x.vp = malloc(rows);
    x.dop = malloc(rows);
    x.dvec = malloc((size_t)T * sizeof *x.dvec);
    x.lse2 = malloc((size_t)T * sizeof *x.lse2);
    x.pos = malloc((size_t)T * sizeof *x.pos);
    x.work = aligned_alloc(64, (size_t)dev->threads * x.work_floats * sizeof(float));
    stile_status rc = STILE_OK;
    if (!x.qp || !x.kp || !x.vp || !x.dop || !x.dvec || !x.lse2 || !x.pos || !x.work) {
        rc = stile_fail(STILE_ERR_OUT_OF_MEMORY, "CPU backward: out of memory for %lld packed rows x %lld", (long long)T, (long long)D);
        goto done;
    }
    if ((rc = stile_cpu_key_tiles_read(plan, &io->key_tiles, &x.kt)) != STILE_OK) goto done; /* before anything is written */
    if (x.kt.rows) {
        x.kt_qstart = malloc((size_t)(plan->r.tiles + 1) * sizeof *x.kt_qstart);
        x.kt_qtiles = malloc((size_t)(plan->r.tiles * r->p.key_tiles_k) * sizeof *x.kt_qtiles);
        if (!x.kt_qstart || !x.kt_qtiles) {
            rc = stile_fail(STILE_ERR_OUT_OF_MEMORY, "CPU backward: out of memory for transposed key tiles");
            goto done;
        }
    }
    for (x.b = 0; x.b < r->p.batch; x.b++)
        for (x.h = 0; x.h < r->p.heads; x.h++) {
            if (x.kt.rows) key_tiles_transpose(&x);
            if (stile_cpu_parallel_for(dev->threads, plan->layout.tiles + 1, pack_item, &x) != 0 ||
                stile_cpu_parallel_for(dev->threads, x.cp->nitems, dq_item, &x) != 0 ||
                stile_cpu_parallel_for(dev->threads, x.cp->nitems, dkv_item, &x) != 0) {
                rc = stile_fail(STILE_ERR_BACKEND, "CPU backward: no thread could be started");
                goto done;
            }
        }
done:
    free(x.qp);
    free(x.kp);
    free(x.vp);
    free(x.dop);
    free(x.dvec);
    free(x.lse2);
    free(x.pos);
    free(x.work);
    stile_cpu_key_tiles_free(&x.kt);
    free(x.kt_qstart);
    free(x.kt_qtiles);
    return rc;
}
