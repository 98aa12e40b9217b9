/* The fp64 oracle: attention token by token, each (query, key) pair decided straight from the
 * contract (docs/contract.md). It shares nothing with the planner, stile_resolve or the dtype
 * conversions on purpose: a bug there must show up as a mismatch, not be reproduced here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_geom.h"

stile_status stile_oracle(const stile_problem *problem, const stile_io *io_in, const int64_t *rows, int64_t nrows,
                          double *out_o, double *out_lse)
{
    if (!io_in || !out_o) return check_fail(STILE_ERR_NULL_ARGUMENT, "stile_oracle: %s is NULL", io_in ? "out_o" : "io");
    stile_io io_cur;
    stile_status rc = check_io_import(io_in, &io_cur, "stile_oracle");
    if (rc != STILE_OK) return rc;
    const stile_io *io = &io_cur;
    oracle_problem op;
    rc = stile_oracle_problem_read(problem, "stile_oracle", &op);
    if (rc != STILE_OK) goto done;
    if ((rc = oracle_inputs_check(io, &op, "stile_oracle")) != STILE_OK) goto done;
    if (!rows) nrows = op.tokens;
    if (nrows < 0) { rc = check_fail(STILE_ERR_INVALID_SIZE, "stile_oracle: nrows=%lld", (long long)nrows); goto done; }
    for (int64_t i = 0; rows && i < nrows; i++)
        if (rows[i] < 0 || rows[i] >= op.tokens) {
            rc = check_fail(STILE_ERR_OUT_OF_RANGE, "stile_oracle: rows[%lld]=%lld outside 0..%lld", (long long)i,
                            (long long)rows[i], (long long)op.tokens - 1);
            goto done;
        }

    const int64_t T = op.tokens, D = op.head_dim;
    oracle_geom g;
    if ((rc = oracle_geom_init(&op, io, "stile_oracle", &g)) != STILE_OK) {
        oracle_geom_free(&g);
        goto done;
    }
    double *kd = malloc((size_t)(T * D) * sizeof *kd), *vd = malloc((size_t)(T * D) * sizeof *vd);
    double *qd = malloc((size_t)D * sizeof *qd), *sc = malloc((size_t)T * sizeof *sc);
    if (!kd || !vd || !qd || !sc) {
        rc = check_fail(STILE_ERR_OUT_OF_MEMORY, "stile_oracle: out of memory");
        goto cleanup;
    }

    const stile_strides *sq = &op.strides[0];
    for (int64_t b = 0; b < op.batch; b++)
        for (int64_t h = 0; h < op.heads; h++) {
            stile_oracle_load_head(io->k.data, &op, &op.strides[1], b, h, kd);
            stile_oracle_load_head(io->v.data, &op, &op.strides[2], b, h, vd);
            for (int64_t ri = 0; ri < nrows; ri++) {
                int64_t qi = rows ? rows[ri] : ri;
                for (int64_t d = 0; d < D; d++)
                    qd[d] = stile_oracle_load(io->q.data, op.dtype, b * sq->batch + qi * sq->token + h * sq->head + d * sq->dim);
                double mx = -INFINITY;
                oracle_row(&g, b, h, qi);
                for (int64_t j = 0; j < T; j++) {
                    if (!oracle_attends(&g, op.windows[h], qi, j)) { sc[j] = NAN; continue; }
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
                /* a row that attends no key (caller-chosen tiles: an empty set and no valid text): o = 0, lse = -inf */
                for (int64_t d = 0; d < D; d++) o[d] = sum > 0 ? o[d] / sum : 0;
                if (out_lse) out_lse[(b * op.heads + h) * nrows + ri] = sum > 0 ? mx + log(sum) : -INFINITY;
            }
        }
cleanup:
    oracle_geom_free(&g);
    free(kd); free(vd); free(qd); free(sc);
done:
    stile_oracle_problem_free(&op);
    return rc;
}
