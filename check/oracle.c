/* The fp64 oracle: attention token by token, each (query, key) pair decided straight from the
 * contract (docs/contract.md). It shares nothing with the planner, stile_resolve or the dtype
 * conversions on purpose: a bug there must show up as a mismatch, not be reproduced here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_problem.h"

typedef struct oracle_geom {
    int64_t canvas[3], tile[3], n[3];
    int64_t video, text, text_valid;
    int64_t *natural; /* token index (problem order) -> natural raster index, video tokens only */
} oracle_geom;

/* The axis rule of the contract, written out once more on purpose (see the file comment). */
static int axis_attends(int64_t qtile, int64_t ktile, int64_t w, int64_t n)
{
    if (w >= n) return 1;
    int64_t s = qtile - w / 2;
    if (s < 0) s = 0;
    if (s > n - w) s = n - w;
    return ktile >= s && ktile < s + w;
}

static int attends(const oracle_geom *g, const int64_t win[3], int64_t qi, int64_t ki)
{
    int q_text = qi >= g->video, k_text = ki >= g->video;
    if (k_text) return ki - g->video < g->text_valid; /* valid text keys: everyone; padding: nobody */
    if (q_text) return 1;                              /* text queries see every video key */
    int64_t qn = g->natural[qi], kn = g->natural[ki];
    int64_t qc[3] = {qn / (g->canvas[1] * g->canvas[2]), (qn / g->canvas[2]) % g->canvas[1], qn % g->canvas[2]};
    int64_t kc[3] = {kn / (g->canvas[1] * g->canvas[2]), (kn / g->canvas[2]) % g->canvas[1], kn % g->canvas[2]};
    for (int a = 0; a < 3; a++)
        if (!axis_attends(qc[a] / g->tile[a], kc[a] / g->tile[a], win[a], g->n[a])) return 0;
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

stile_status stile_oracle(const stile_problem *problem, const stile_io *io_in, const int64_t *rows, int64_t nrows,
                          double *out_o, double *out_lse)
{
    if (!io_in || !out_o) return check_fail(STILE_ERR_NULL_ARGUMENT, "stile_oracle: %s is NULL", io_in ? "out_o" : "io");
    stile_io io_cur;
    stile_status rc = check_io_import(io_in, &io_cur, "stile_oracle");
    if (rc != STILE_OK) return rc;
    const stile_io *io = &io_cur;
    if (io->q.handle || io->k.handle || io->v.handle)
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "stile_oracle: a tensor is a buffer handle: the oracle reads host memory (data)");
    oracle_problem op;
    rc = stile_oracle_problem_read(problem, "stile_oracle", &op);
    if (rc != STILE_OK) goto done;
    const size_t es = stile_oracle_dtype_bytes(op.dtype);
    const stile_tensor *in[3] = {&io->q, &io->k, &io->v};
    for (int i = 0; i < 3; i++) {
        static const char *nm[3] = {"q", "k", "v"};
        if (!in[i]->data) rc = check_fail(STILE_ERR_NULL_ARGUMENT, "stile_oracle: io->%s.data is NULL", nm[i]);
        else if (in[i]->dtype != op.dtype) rc = check_fail(STILE_ERR_DTYPE_MISMATCH, "stile_oracle: io->%s.dtype differs", nm[i]);
        else if ((uintptr_t)in[i]->data % es != 0) /* the same rule as stile_plan_execute */
            rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "stile_oracle: io->%s.data=%p: not aligned to its %zu-byte elements", nm[i],
                            in[i]->data, es);
        else if (in[i]->bytes / es < (size_t)op.span[i])
            rc = check_fail(STILE_ERR_OUT_OF_RANGE, "stile_oracle: io->%s is smaller than its strides reach", nm[i]);
        if (rc != STILE_OK) goto done;
    }
    if (!rows) nrows = op.tokens;
    if (nrows < 0) { rc = check_fail(STILE_ERR_INVALID_SIZE, "stile_oracle: nrows=%lld", (long long)nrows); goto done; }
    for (int64_t i = 0; rows && i < nrows; i++)
        if (rows[i] < 0 || rows[i] >= op.tokens) {
            rc = check_fail(STILE_ERR_OUT_OF_RANGE, "stile_oracle: rows[%lld]=%lld outside 0..%lld", (long long)i,
                            (long long)rows[i], (long long)op.tokens - 1);
            goto done;
        }

    oracle_geom g = {.video = op.video, .text = op.text, .text_valid = op.text_valid};
    for (int a = 0; a < 3; a++) {
        g.canvas[a] = op.canvas[a];
        g.tile[a] = op.tile[a];
        g.n[a] = op.grid[a];
    }
    const int64_t T = op.tokens, D = op.head_dim;
    g.natural = malloc((size_t)op.video * sizeof *g.natural);
    double *kd = malloc((size_t)(T * D) * sizeof *kd), *vd = malloc((size_t)(T * D) * sizeof *vd);
    double *qd = malloc((size_t)D * sizeof *qd), *sc = malloc((size_t)T * sizeof *sc);
    if (!g.natural || !kd || !vd || !qd || !sc) {
        rc = check_fail(STILE_ERR_OUT_OF_MEMORY, "stile_oracle: out of memory");
        goto cleanup;
    }
    if (op.order == STILE_ORDER_TILED) natural_of_tiled(&g, g.natural);
    else for (int64_t i = 0; i < op.video; i++) g.natural[i] = i;

    const stile_strides *sq = &op.strides[0], *sk = &op.strides[1], *sv = &op.strides[2];
    for (int64_t b = 0; b < op.batch; b++)
        for (int64_t h = 0; h < op.heads; h++) {
            for (int64_t j = 0; j < T; j++)
                for (int64_t d = 0; d < D; d++) {
                    kd[j * D + d] = stile_oracle_load(io->k.data, op.dtype, b * sk->batch + j * sk->token + h * sk->head + d * sk->dim);
                    vd[j * D + d] = stile_oracle_load(io->v.data, op.dtype, b * sv->batch + j * sv->token + h * sv->head + d * sv->dim);
                }
            for (int64_t ri = 0; ri < nrows; ri++) {
                int64_t qi = rows ? rows[ri] : ri;
                for (int64_t d = 0; d < D; d++)
                    qd[d] = stile_oracle_load(io->q.data, op.dtype, b * sq->batch + qi * sq->token + h * sq->head + d * sq->dim);
                double mx = -INFINITY;
                for (int64_t j = 0; j < T; j++) {
                    if (!attends(&g, op.windows[h], qi, j)) { sc[j] = NAN; continue; }
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += qd[d] * kd[j * D + d];
                    sc[j] = s * op.scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                double sum = 0, *o = out_o + ((b * nrows + ri) * op.heads + h) * D;
                for (int64_t d = 0; d < D; d++) o[d] = 0;
                for (int64_t j = 0; j < T; j++) {
                    if (isnan(sc[j])) continue;
                    double e = exp(sc[j] - mx);
                    sum += e;
                    for (int64_t d = 0; d < D; d++) o[d] += e * vd[j * D + d];
                }
                for (int64_t d = 0; d < D; d++) o[d] /= sum;
                if (out_lse) out_lse[(b * op.heads + h) * nrows + ri] = mx + log(sum);
            }
        }
cleanup:
    free(g.natural); free(kd); free(vd); free(qd); free(sc);
done:
    stile_oracle_problem_free(&op);
    return rc;
}
