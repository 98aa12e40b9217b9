/* Gradients of the fp64 oracle's attention, from the definition and nothing else (the planner's
 * transposed schedule, which the backends' backward passes use, is not consulted: see check/oracle.c).
 *
 * For one batch entry and head, with S_ij = scale q_i . k_j over the keys j that query i attends,
 * P_i = softmax(S_i), O_i = sum_j P_ij v_j and the upstream gradient dO:
 *   dV_j = sum_i P_ij dO_i
 *   dP_ij = dO_i . v_j,   D_i = sum_j P_ij dP_ij (= dO_i . O_i),   dS_ij = P_ij (dP_ij - D_i)
 *   dQ_i = scale sum_j dS_ij k_j,   dK_j = scale sum_i dS_ij q_i
 * Keys a query does not attend take no part (P_ij = 0); every query row, padded text included, has
 * its output and so its gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_geom.h"

stile_status stile_oracle_backward(const stile_problem *problem, const stile_io *io_in, const stile_tensor *d_o, double *out_dq,
                                   double *out_dk, double *out_dv)
{
    static const char *who = "stile_oracle_backward";
    if (!io_in || !d_o) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: %s is NULL", who, io_in ? "d_o" : "io");
    if (!out_dq && !out_dk && !out_dv)
        return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: out_dq, out_dk and out_dv are all NULL: nothing to compute", who);
    stile_io io_cur;
    stile_status rc = check_io_import(io_in, &io_cur, who);
    if (rc != STILE_OK) return rc;
    const stile_io *io = &io_cur;
    oracle_problem op;
    if ((rc = stile_oracle_problem_read(problem, who, &op)) != STILE_OK) goto done;
    if ((rc = oracle_inputs_check(io, &op, who)) != STILE_OK) goto done;
    const size_t es = stile_oracle_dtype_bytes(op.dtype);
    if (d_o->handle) rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: d_o is a buffer handle: the oracle reads host memory (data)", who);
    else if (!d_o->data) rc = check_fail(STILE_ERR_NULL_ARGUMENT, "%s: d_o->data is NULL", who);
    else if (d_o->dtype != op.dtype) rc = check_fail(STILE_ERR_DTYPE_MISMATCH, "%s: d_o->dtype differs from the problem's", who);
    else if ((uintptr_t)d_o->data % es != 0)
        rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: d_o->data=%p: not aligned to its %zu-byte elements", who, d_o->data, es);
    else if (d_o->bytes / es < (size_t)op.span[3])
        rc = check_fail(STILE_ERR_OUT_OF_RANGE, "%s: d_o is smaller than o's strides reach", who);
    if (rc != STILE_OK) goto done;

    const int64_t T = op.tokens, D = op.head_dim, H = op.heads;
    oracle_geom g;
    if ((rc = oracle_geom_init(&op, io, who, &g)) != STILE_OK) {
        oracle_geom_free(&g);
        goto done;
    }
    double *qd = malloc((size_t)(T * D) * sizeof *qd), *kd = malloc((size_t)(T * D) * sizeof *kd);
    double *vd = malloc((size_t)(T * D) * sizeof *vd), *dod = malloc((size_t)(T * D) * sizeof *dod);
    double *dq = malloc((size_t)(T * D) * sizeof *dq), *dk = malloc((size_t)(T * D) * sizeof *dk);
    double *dv = malloc((size_t)(T * D) * sizeof *dv), *p = malloc((size_t)T * sizeof *p), *dp = malloc((size_t)T * sizeof *dp);
    if (!qd || !kd || !vd || !dod || !dq || !dk || !dv || !p || !dp) {
        rc = check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
        goto cleanup;
    }
    for (int64_t b = 0; b < op.batch; b++)
        for (int64_t h = 0; h < H; h++) {
            stile_oracle_load_head(io->q.data, &op, &op.strides[0], b, h, qd);
            stile_oracle_load_head(io->k.data, &op, &op.strides[1], b, h, kd);
            stile_oracle_load_head(io->v.data, &op, &op.strides[2], b, h, vd);
            stile_oracle_load_head(d_o->data, &op, &op.strides[3], b, h, dod);
            memset(dq, 0, (size_t)(T * D) * sizeof *dq);
            memset(dk, 0, (size_t)(T * D) * sizeof *dk);
            memset(dv, 0, (size_t)(T * D) * sizeof *dv);
            for (int64_t i = 0; i < T; i++) {
                const double *q = qd + i * D, *go = dod + i * D;
                double mx = -INFINITY, sum = 0, di = 0;
                oracle_row(&g, b, h, i);
                for (int64_t j = 0; j < T; j++) {
                    if (!oracle_attends(&g, op.windows[h], i, j)) { p[j] = NAN; continue; }
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += q[d] * kd[j * D + d];
                    p[j] = s * op.scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j < T; j++)
                    if (!isnan(p[j])) sum += (p[j] = exp(p[j] - mx));
                for (int64_t j = 0; j < T; j++) {
                    if (isnan(p[j])) continue;
                    p[j] /= sum;
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += go[d] * vd[j * D + d];
                    dp[j] = s;
                    di += p[j] * s;
                }
                for (int64_t j = 0; j < T; j++) {
                    if (isnan(p[j])) continue;
                    const double ds = p[j] * (dp[j] - di) * op.scale;
                    for (int64_t d = 0; d < D; d++) {
                        dq[i * D + d] += ds * kd[j * D + d];
                        dk[j * D + d] += ds * q[d];
                        dv[j * D + d] += p[j] * go[d];
                    }
                }
            }
            double *outs[3] = {out_dq, out_dk, out_dv}, *src[3] = {dq, dk, dv};
            for (int t = 0; t < 3; t++)
                for (int64_t j = 0; outs[t] && j < T; j++)
                    memcpy(outs[t] + ((b * T + j) * H + h) * D, src[t] + j * D, (size_t)D * sizeof(double));
        }
cleanup:
    oracle_geom_free(&g);
    free(qd); free(kd); free(vd); free(dod); free(dq); free(dk); free(dv); free(p); free(dp);
done:
    stile_oracle_problem_free(&op);
    return rc;
}
