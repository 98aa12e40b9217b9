/* Gradient checks against the oracle's (stile_check_gradients): the worst NMSE of dQ, dK and dV, the
 * largest error and the non-finite elements. Like the forward's check it reads the problem and decodes
 * f16/bf16 on its own (oracle_problem.c). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oracle_problem.h"

/* one gradient: a host tensor of op's dtype with strides s against ref [B, tokens, heads, head_dim] */
static stile_status one(const oracle_problem *op, const stile_tensor *g, const char *name, const stile_strides *s, int64_t span,
                        const double *ref, stile_check *out)
{
    if (!ref) return check_fail(STILE_ERR_NULL_ARGUMENT, "stile_check_gradients: ref_%s is NULL", name);
    const stile_status st = stile_check_host_tensor(op, g, span, "stile_check_gradients", name);
    if (st != STILE_OK) return st;
    double num = 0, den = 0;
    for (int64_t b = 0; b < op->batch; b++)
        for (int64_t t = 0; t < op->tokens; t++)
            for (int64_t h = 0; h < op->heads; h++)
                for (int64_t d = 0; d < op->head_dim; d++) {
                    const double got = stile_oracle_load(g->data, op->dtype, b * s->batch + t * s->token + h * s->head + d * s->dim);
                    const double want = ref[((b * op->tokens + t) * op->heads + h) * op->head_dim + d], e = got - want;
                    den += want * want;
                    out->elements++;
                    if (!isfinite(got)) {
                        out->nonfinite++;
                        continue;
                    }
                    num += e * e;
                    if (fabs(e) > out->max_abs_error) out->max_abs_error = fabs(e);
                }
    const double nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0);
    if (nmse > out->nmse) out->nmse = nmse;
    return STILE_OK;
}

stile_status stile_check_gradients(const stile_problem *problem, const stile_grad_io *io, const double *ref_dq, const double *ref_dk,
                                   const double *ref_dv, stile_check *out)
{
    if (!io || !out) return check_fail(STILE_ERR_NULL_ARGUMENT, "stile_check_gradients: %s is NULL", !io ? "io" : "out");
    if (io->struct_size < offsetof(stile_grad_io, d_v) + sizeof io->d_v)
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "stile_check_gradients: io->struct_size=%u: set it to sizeof(stile_grad_io)",
                          io->struct_size);
    oracle_problem op;
    stile_status rc = stile_oracle_problem_read(problem, "stile_check_gradients", &op);
    if (rc != STILE_OK) return rc;
    memset(out, 0, sizeof *out);
    out->threshold = stile_nmse_threshold(op.dtype);
    const stile_tensor *g[3] = {&io->d_q, &io->d_k, &io->d_v};
    const double *ref[3] = {ref_dq, ref_dk, ref_dv};
    static const char *const name[3] = {"d_q", "d_k", "d_v"};
    for (int i = 0; i < 3 && rc == STILE_OK; i++) rc = one(&op, g[i], name[i], &op.strides[i], op.span[i], ref[i], out);
    out->passed = rc == STILE_OK && out->nonfinite == 0 && out->nmse <= out->threshold;
    stile_oracle_problem_free(&op);
    return rc;
}
