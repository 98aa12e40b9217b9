/* The VSA steps' public calls (include/stile/stile_vsa.h): the checks every step shares, dispatch to
 * the backend's vsa entry, and stile_vsa_forward's composition of the steps with stile_plan_execute. */
#include <string.h>

#include "stile/stile_vsa.h"
#include "stile_internal.h"

/* The io's tensors, in the order of stile_vsa_io. */
enum { T_Q, T_K, T_V, T_GATE, T_O, T_QC, T_KC, T_VC, T_OC, T_SCORES, T_KT, T_N };
#define BIT(t) (1u << (t))
static const char *const names[T_N] = {"q", "k", "v", "gate", "o", "q_c", "k_c", "v_c", "o_c", "scores", "key_tiles"};

static const stile_tensor *tensor(const stile_vsa_io *io, int i)
{
    const stile_tensor *all[T_N] = {&io->q, &io->k, &io->v, &io->gate, &io->o, &io->q_c, &io->k_c, &io->v_c, &io->o_c, &io->scores, &io->key_tiles};
    return all[i];
}

static int is_set(const stile_tensor *t) { return t->data || t->handle; }

/* Bytes tensor i spans for plan, and its dtype; 0 when the count overflows. */
static size_t need_of(const stile_plan *plan, int i, stile_dtype *dt)
{
    const stile_resolved *r = &plan->r;
    const uint64_t bht = (uint64_t)(r->p.batch * r->p.heads) * (uint64_t)r->tiles;
    uint64_t n;
    switch (i) {
    case T_Q: case T_K: case T_V: case T_O: case T_GATE:
        *dt = r->p.dtype;
        return (size_t)r->extent[i < T_GATE ? i : STILE_O] * stile_dtype_size(r->p.dtype); /* gate: o's strides */
    case T_SCORES:
        *dt = STILE_DTYPE_F32;
        return __builtin_mul_overflow(bht, (uint64_t)r->tiles * sizeof(float), &n) || n > SIZE_MAX ? 0 : (size_t)n;
    case T_KT:
        *dt = STILE_DTYPE_I32;
        return (size_t)(bht * (uint64_t)r->p.key_tiles_k * sizeof(int32_t)); /* < 2^33: stile_resolve */
    default: /* q_c, k_c, v_c, o_c */
        *dt = STILE_DTYPE_F32;
        return __builtin_mul_overflow(bht, (uint64_t)r->p.head_dim * sizeof(float), &n) || n > SIZE_MAX ? 0 : (size_t)n;
    }
}

/* Checks io for a call that reads `in` and writes `out` (masks of tensors; those in `optional` may be
 * unset) before any memory is touched. */
static stile_status vsa_check(const stile_plan *plan, const stile_vsa_io *io, unsigned in, unsigned out, unsigned optional,
                              const char *what)
{
    if (!plan || !io) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: %s is NULL", what, plan ? "io" : "plan");
    if (io->struct_size != sizeof *io)
        return stile_fail(STILE_ERR_INVALID_SIZE, "%s: io->struct_size=%u: expected sizeof(stile_vsa_io) = %zu", what,
                          (unsigned)io->struct_size, sizeof *io);
    const stile_problem *p = &plan->r.p;
    if (!p->key_tiles_k)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "%s: the plan has windows; VSA needs a plan of caller-chosen key tiles "
                                                      "(stile_problem.key_tiles_k = the top-k count)", what);
    if (p->text)
        return stile_fail(STILE_ERR_UNSUPPORTED, "%s: text=%lld: the VSA steps take video-only problems (text = 0)", what,
                          (long long)p->text);
    if (!plan->device->backend->vsa)
        return stile_fail(STILE_ERR_UNSUPPORTED, "%s: the %s backend has no VSA steps", what, plan->device->backend->name);
    size_t need[T_N] = {0};
    for (int i = 0; i < T_N; i++) {
        if (!((in | out) & BIT(i))) continue;
        const stile_tensor *t = tensor(io, i);
        if (!is_set(t)) {
            if (optional & BIT(i)) continue;
            return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: io->%s is required", what, names[i]);
        }
        stile_dtype dt;
        if (!(need[i] = need_of(plan, i, &dt)))
            return stile_fail(STILE_ERR_OVERFLOW, "%s: io->%s would span more bytes than a size_t holds", what, names[i]);
        stile_status st = stile_tensor_check_as(plan, t, names[i], dt, need[i]);
        if (st != STILE_OK) return st;
    }
    for (int i = 0; i < T_N; i++) {
        if (!(out & BIT(i)) || !need[i]) continue;
        for (int j = 0; j < T_N; j++)
            if (j != i && need[j] && stile_tensor_overlaps(tensor(io, i), need[i], tensor(io, j), need[j]))
                return stile_fail(STILE_ERR_ALIASING, "%s: io->%s overlaps io->%s", what, names[i], names[j]);
    }
    return STILE_OK;
}

static stile_status vsa_step(const stile_plan *plan, const stile_vsa_io *io, int step, unsigned in, unsigned out, unsigned optional,
                             const char *what)
{
    const stile_device *previous = stile_log_enter(plan ? plan->device : NULL);
    stile_status rc = vsa_check(plan, io, in, out, optional, what);
    if (rc == STILE_OK) rc = plan->device->backend->vsa(plan->device->impl, plan, plan->impl, step, io);
    stile_log_leave(previous);
    return rc;
}

#define QKV (BIT(T_Q) | BIT(T_K) | BIT(T_V))
#define POOLED (BIT(T_QC) | BIT(T_KC) | BIT(T_VC))

stile_status stile_vsa_pool(const stile_plan *plan, const stile_vsa_io *io)
{
    return vsa_step(plan, io, STILE_VSA_POOL, QKV, POOLED, 0, "stile_vsa_pool");
}

stile_status stile_vsa_coarse(const stile_plan *plan, const stile_vsa_io *io)
{
    return vsa_step(plan, io, STILE_VSA_COARSE, POOLED, BIT(T_OC) | BIT(T_SCORES), BIT(T_SCORES), "stile_vsa_coarse");
}

stile_status stile_vsa_select(const stile_plan *plan, const stile_vsa_io *io)
{
    return vsa_step(plan, io, STILE_VSA_SELECT, BIT(T_SCORES), BIT(T_KT), 0, "stile_vsa_select");
}

stile_status stile_vsa_combine(const stile_plan *plan, const stile_vsa_io *io)
{
    return vsa_step(plan, io, STILE_VSA_COMBINE, BIT(T_GATE) | BIT(T_OC) | BIT(T_O), BIT(T_O), 0, "stile_vsa_combine");
}

stile_status stile_vsa_forward(const stile_plan *plan, const stile_vsa_io *io)
{
    static const char what[] = "stile_vsa_forward";
    const unsigned inter = POOLED | BIT(T_OC) | BIT(T_SCORES) | BIT(T_KT);
    const stile_device *previous = stile_log_enter(plan ? plan->device : NULL);
    stile_status rc = vsa_check(plan, io, QKV | BIT(T_GATE), BIT(T_O) | inter, inter, what);
    stile_buffer *held[T_N] = {0};
    stile_vsa_io cur;
    if (rc == STILE_OK) {
        cur = *io;
        stile_tensor *all[T_N] = {&cur.q, &cur.k, &cur.v, &cur.gate, &cur.o, &cur.q_c, &cur.k_c, &cur.v_c, &cur.o_c, &cur.scores, &cur.key_tiles};
        /* the intermediates the caller did not give: buffers of the device, for this call (freed on
         * return: a backend whose steps run asynchronously must order that free after its work) */
        for (int i = T_QC; i <= T_KT && rc == STILE_OK; i++) {
            if (is_set(all[i])) continue;
            stile_dtype dt;
            const size_t bytes = need_of(plan, i, &dt);
            rc = stile_buffer_create(plan->device, bytes, &held[i]);
            if (rc == STILE_OK) *all[i] = stile_tensor_at(stile_buffer_data(held[i]), bytes, dt);
        }
    }
    const stile_backend *be = rc == STILE_OK ? plan->device->backend : NULL;
    for (int step = STILE_VSA_POOL; step <= STILE_VSA_SELECT && rc == STILE_OK; step++)
        rc = be->vsa(plan->device->impl, plan, plan->impl, step, &cur);
    if (rc == STILE_OK) {
        stile_io fine = {.struct_size = sizeof fine, .q = cur.q, .k = cur.k, .v = cur.v, .o = cur.o, .stream = cur.stream,
                         .key_tiles = cur.key_tiles};
        rc = stile_plan_execute(plan, &fine);
    }
    if (rc == STILE_OK) rc = be->vsa(plan->device->impl, plan, plan->impl, STILE_VSA_COMBINE, &cur);
    for (int i = 0; i < T_N; i++) stile_buffer_destroy(&held[i]);
    stile_log_leave(previous);
    return rc;
}
