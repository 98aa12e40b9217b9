/* stile_plan_backward: the checks made before a backward pass (every tensor against the plan, no
 * output overlapping anything), then the backend's pass. The gradients' definition is in
 * docs/contract.md ("Gradients"); the transposed schedule the backends order dK/dV by is core/plan.c's. */
#include <string.h>

#include "stile_internal.h"

static stile_status grad_io_check(const stile_plan *plan, const stile_grad_io *io)
{
    const stile_resolved *r = &plan->r;
    const size_t esz = stile_dtype_size(r->p.dtype);
    /* the tensors with the stride set each one takes (q, k, v, o) */
    const stile_tensor *t[8] = {&io->q, &io->k, &io->v, &io->o, &io->d_o, &io->d_q, &io->d_k, &io->d_v};
    static const char *nm[8] = {"q", "k", "v", "o", "d_o", "d_q", "d_k", "d_v"};
    static const int set[8] = {STILE_Q, STILE_K, STILE_V, STILE_O, STILE_O, STILE_Q, STILE_K, STILE_V};
    size_t need[9];
    stile_status st;
    for (int i = 0; i < 8; i++) {
        need[i] = (size_t)r->extent[set[i]] * esz;
        if ((st = stile_tensor_check(plan, t[i], nm[i], need[i])) != STILE_OK) return st;
    }
    if (!io->lse.data && !io->lse.handle)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "io->lse: the backward pass needs the forward's LSE (f32 [B, heads, tokens])");
    if ((st = stile_lse_check(plan, &io->lse, &need[8])) != STILE_OK) return st;
    /* outputs (5..7) against every other tensor, lse included */
    for (int i = 5; i < 8; i++) {
        for (int j = 0; j < 8; j++)
            if (j != i && stile_tensor_overlaps(t[i], need[i], t[j], need[j]))
                return stile_fail(STILE_ERR_ALIASING, "io->%s overlaps io->%s", nm[i], nm[j]);
        if (stile_tensor_overlaps(t[i], need[i], &io->lse, need[8]))
            return stile_fail(STILE_ERR_ALIASING, "io->%s overlaps io->lse", nm[i]);
    }
    return stile_key_tiles_check(plan, &io->key_tiles, &io->key_tile_errors, t + 5, need + 5, nm + 5, 3);
}

double stile_plan_backward_flops(const stile_plan *plan)
{
    if (!plan || !plan->device->backend->backward || !plan->device->backend->backward_flops) return 0;
    return plan->device->backend->backward_flops(plan);
}

stile_status stile_plan_backward(const stile_plan *plan, const stile_grad_io *in)
{
    if (!plan || !in) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_backward: %s is NULL", plan ? "io" : "plan");
    const stile_device *previous = stile_log_enter(plan->device);
    stile_grad_io io;
    stile_status rc = stile_grad_io_import(in, &io, "stile_plan_backward");
    if (rc == STILE_OK && !plan->device->backend->backward)
        rc = stile_fail(STILE_ERR_UNSUPPORTED, "stile_plan_backward: the %s backend has no backward pass", plan->device->backend->name);
    if (rc == STILE_OK) rc = grad_io_check(plan, &io);
    if (rc == STILE_OK) {
        stile_exec_info info;
        memset(&info, 0, sizeof info);
        rc = plan->device->backend->backward(plan->device->impl, plan, plan->impl, &io, &info);
        if (rc == STILE_OK && io.info) *io.info = info;
    }
    stile_log_leave(previous);
    return rc;
}
