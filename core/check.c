/* Output checks against the oracle: NMSE per dtype, max error, non-finite values, LSE. */
#include <math.h>
#include <string.h>

#include "stile_internal.h"

double stile_nmse_threshold(stile_dtype dtype)
{
    switch (dtype) {
    case STILE_DTYPE_F32: return 1e-10;
    case STILE_DTYPE_F16: return 1e-5;
    case STILE_DTYPE_BF16: return 1e-4;
    }
    return 0;
}

stile_status stile_check_output(const stile_problem *problem, const stile_io *io, const int64_t *rows, int64_t nrows,
                                const double *ref_o, const double *ref_lse, stile_check *out)
{
    if (!io || !ref_o || !out)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_check_output: %s is NULL", !io ? "io" : !ref_o ? "ref_o" : "out");
    stile_resolved r;
    stile_status rc = stile_resolve(problem, &r);
    if (rc != STILE_OK) return rc;
    const stile_problem *p = &r.p;
    if (!io->o.data) { rc = stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_check_output: io->o.data is NULL"); goto done; }
    if (io->o.dtype != p->dtype) { rc = stile_fail(STILE_ERR_DTYPE_MISMATCH, "stile_check_output: io->o.dtype differs"); goto done; }
    if (io->o.bytes < (size_t)r.extent[STILE_O] * stile_dtype_size(p->dtype)) {
        rc = stile_fail(STILE_ERR_OUT_OF_RANGE, "stile_check_output: io->o is smaller than its strides reach");
        goto done;
    }
    if (!rows) nrows = r.tokens;
    memset(out, 0, sizeof *out);
    out->threshold = stile_nmse_threshold(p->dtype);
    const stile_strides *so = &r.strides[STILE_O];
    double num = 0, den = 0;
    const float *lse = io->lse.data;
    for (int64_t b = 0; b < p->batch; b++)
        for (int64_t ri = 0; ri < nrows; ri++) {
            int64_t t = rows ? rows[ri] : ri;
            if (t < 0 || t >= r.tokens) { rc = stile_fail(STILE_ERR_OUT_OF_RANGE, "stile_check_output: row %lld", (long long)t); goto done; }
            for (int64_t h = 0; h < p->heads; h++) {
                for (int64_t d = 0; d < p->head_dim; d++) {
                    double o = stile_load_f64(io->o.data, p->dtype, b * so->batch + t * so->token + h * so->head + d * so->dim);
                    double ref = ref_o[((b * nrows + ri) * p->heads + h) * p->head_dim + d];
                    if (!isfinite(o)) { out->nonfinite++; continue; }
                    double e = o - ref;
                    num += e * e;
                    den += ref * ref;
                    if (fabs(e) > out->max_abs_error) out->max_abs_error = fabs(e);
                    out->elements++;
                }
                if (lse && ref_lse) {
                    double l = lse[(b * p->heads + h) * r.tokens + t];
                    double e = fabs(l - ref_lse[(b * p->heads + h) * nrows + ri]);
                    if (!isfinite(l)) out->nonfinite++;
                    else if (e > out->lse_max_abs_error) out->lse_max_abs_error = e;
                }
            }
        }
    out->nmse = den > 0 ? num / den : num;
    double lse_bound = p->dtype == STILE_DTYPE_F32 ? 1e-5 : 1e-3;
    out->passed = out->nonfinite == 0 && out->nmse <= out->threshold && out->lse_max_abs_error <= lse_bound;
done:
    stile_resolved_free(&r);
    return rc;
}
