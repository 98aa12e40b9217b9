/* Output checks against the oracle: NMSE per dtype, max error, non-finite values, LSE. Like the
 * oracle it reads the problem and decodes f16/bf16 on its own (oracle_problem.c). */
#include <math.h>
#include <string.h>

#include "oracle_problem.h"

double stile_nmse_threshold(stile_dtype dtype)
{
    switch (dtype) {
    case STILE_DTYPE_F32: return 1e-10;
    case STILE_DTYPE_F16: return 1e-5;
    case STILE_DTYPE_BF16: return 1e-4;
    case STILE_DTYPE_I32: break; /* an index type: no bound */
    }
    return 0;
}

stile_status stile_check_host_tensor(const oracle_problem *op, const stile_tensor *t, int64_t span, const char *who, const char *name)
{
    const size_t es = stile_oracle_dtype_bytes(op->dtype);
    if (t->handle)
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: io->%s is a buffer handle: the checks read host memory (data)", who, name);
    if (!t->data) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: io->%s.data is NULL", who, name);
    if (t->dtype != op->dtype) return check_fail(STILE_ERR_DTYPE_MISMATCH, "%s: io->%s.dtype differs", who, name);
    if ((uintptr_t)t->data % es != 0) /* the same rule as stile_plan_execute */
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: io->%s.data=%p: not aligned to its %zu-byte elements", who, name, t->data, es);
    if (t->bytes / es < (size_t)span) return check_fail(STILE_ERR_OUT_OF_RANGE, "%s: io->%s is smaller than its strides reach", who, name);
    return STILE_OK;
}

stile_status stile_check_output(const stile_problem *problem, const stile_io *io_in, const int64_t *rows, int64_t nrows,
                                const double *ref_o, const double *ref_lse, stile_check *out)
{
    if (!io_in || !ref_o || !out)
        return check_fail(STILE_ERR_NULL_ARGUMENT, "stile_check_output: %s is NULL", !io_in ? "io" : !ref_o ? "ref_o" : "out");
    stile_io io_cur;
    stile_status st = check_io_import(io_in, &io_cur, "stile_check_output");
    if (st != STILE_OK) return st;
    const stile_io *io = &io_cur;
    if (io->o.handle || io->lse.handle)
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "stile_check_output: io->%s is a buffer handle: the checks read host memory (data)",
                          io->o.handle ? "o" : "lse");
    oracle_problem op;
    stile_status rc = stile_oracle_problem_read(problem, "stile_check_output", &op);
    if (rc != STILE_OK) goto done;
    if ((rc = stile_check_host_tensor(&op, &io->o, op.span[ORACLE_O], "stile_check_output", "o")) != STILE_OK) goto done;
    const float *lse = ref_lse ? io->lse.data : NULL; /* read only when there is a reference to compare with */
    if (lse && io->lse.dtype != STILE_DTYPE_F32) {
        rc = check_fail(STILE_ERR_DTYPE_MISMATCH, "stile_check_output: io->lse.dtype=%d: the lse is always f32", (int)io->lse.dtype);
        goto done;
    }
    if (lse && (uintptr_t)io->lse.data % sizeof(float) != 0) {
        rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "stile_check_output: io->lse.data=%p: not aligned to its 4-byte f32 elements",
                        io->lse.data);
        goto done;
    }
    const size_t lse_elems = (size_t)(op.batch * op.heads * op.tokens);
    if (lse && io->lse.bytes / sizeof(float) < lse_elems) {
        rc = check_fail(STILE_ERR_OUT_OF_RANGE, "stile_check_output: io->lse.bytes=%zu: [B, heads, tokens] f32 needs %zu",
                        io->lse.bytes, lse_elems * sizeof(float));
        goto done;
    }
    if (!rows) nrows = op.tokens;
    memset(out, 0, sizeof *out);
    out->threshold = stile_nmse_threshold(op.dtype);
    const stile_strides *so = &op.strides[ORACLE_O];
    double num = 0, den = 0;
    for (int64_t b = 0; b < op.batch; b++)
        for (int64_t ri = 0; ri < nrows; ri++) {
            int64_t t = rows ? rows[ri] : ri;
            if (t < 0 || t >= op.tokens) { rc = check_fail(STILE_ERR_OUT_OF_RANGE, "stile_check_output: row %lld", (long long)t); goto done; }
            for (int64_t h = 0; h < op.heads; h++) {
                for (int64_t d = 0; d < op.head_dim; d++) {
                    double o = stile_oracle_load(io->o.data, op.dtype, b * so->batch + t * so->token + h * so->head + d * so->dim);
                    double ref = ref_o[((b * nrows + ri) * op.heads + h) * op.head_dim + d];
                    if (!isfinite(o)) { out->nonfinite++; continue; }
                    double e = o - ref;
                    num += e * e;
                    den += ref * ref;
                    if (fabs(e) > out->max_abs_error) out->max_abs_error = fabs(e);
                    out->elements++;
                }
                if (lse) {
                    double l = lse[(b * op.heads + h) * op.tokens + t], ref = ref_lse[(b * op.heads + h) * nrows + ri];
                    double e = fabs(l - ref);
                    if (isinf(ref) && ref < 0) { /* a row of no keys: its LSE is -inf exactly */
                        if (!(isinf(l) && l < 0)) out->lse_max_abs_error = INFINITY;
                    } else if (!isfinite(l)) out->nonfinite++;
                    else if (e > out->lse_max_abs_error) out->lse_max_abs_error = e;
                }
            }
        }
    out->nmse = den > 0 ? num / den : num;
    double lse_bound = op.dtype == STILE_DTYPE_F32 ? 1e-5 : 1e-3;
    out->passed = out->nonfinite == 0 && out->nmse <= out->threshold && out->lse_max_abs_error <= lse_bound;
done:
    stile_oracle_problem_free(&op);
    return rc;
}
