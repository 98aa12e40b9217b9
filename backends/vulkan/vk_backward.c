/* The Vulkan backward pass (stile_plan_backward): shaders/sta_backward.comp over the plan's query
 * blocks twice, dQ per query row then dK and dV per key row, on the plan's schedule table (which holds
 * the transposed schedules). Core has checked every tensor against the plan and that no output
 * overlaps another tensor by address; the same check for tensors given as VkBuffer handles is here. */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <stdio.h>
#include <string.h>

#include "vk_internal.h"

typedef struct vk_bpush {
    uint32_t off[9]; /* q, k, v, o, lse, d_o, d_q, d_k, d_v: element offsets in their buffers */
    uint32_t block_base, pass;
} vk_bpush;

typedef struct vk_bbound {
    vk_device *d;
    VkPipeline pipe;
    VkDescriptorSet set;
    vk_bpush pc;
    int nblocks;
    uint32_t heads, batch;
    const vk_kt *kt;
} vk_bbound;

double vk_backward_flops(const stile_plan *plan)
{
    /* per attended pair: S, dP and dS K in the dQ pass; S, dP, D_i = dO . O, dV and dK in the other:
     * 2 D each, against the forward's 4 D */
    return 4.0 * plan->info.flops;
}

static void record_backward(VkCommandBuffer cmd, void *ctx)
{
    const vk_bbound *b = ctx;
    vk_device *d = b->d;
    vk_key_tiles_record(d, cmd, b->kt); /* caller-chosen key tiles first, transposed too (nothing otherwise) */
    d->vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, b->pipe);
    d->vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->blayout, 0, 1, &b->set, 0, NULL);
    vk_bpush pc = b->pc;
    for (pc.pass = 0; pc.pass < 2; pc.pass++) /* the dQ pass, then the dK/dV pass (the dispatches run in order) */
        vk_dispatch_blocks(d, cmd, d->blayout, &pc, sizeof pc, &pc.block_base, b->nblocks, b->heads, b->batch);
    /* the gradients are read next by the host (mapped), a staged download, or another execution */
    vk_barrier_after_writes(d, cmd);
}

/* 16-bit gradients are written two at a time, as 16-bit outputs are (vk_supports). */
static stile_status pairs_ok(const stile_resolved *r)
{
    static const char *nm[3] = {"q", "k", "v"};
    for (int i = 0; i < 3 && stile_dtype_size(r->p.dtype) == 2; i++)
        if (!vk_pairs_ok(r, i))
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: the backward writes 16-bit gradients two at a time: %s's dim stride "
                                                     "1, its other strides even", nm[i]);
    return STILE_OK;
}

stile_status vk_backward(void *device, const stile_plan *plan, void *impl, const stile_grad_io *io, stile_exec_info *info)
{
    static const char *nm[9] = {"q", "k", "v", "o", "lse", "d_o", "d_q", "d_k", "d_v"};
    vk_device *d = device;
    vk_plan *vp = impl;
    const stile_resolved *r = &plan->r;
    stile_status st = vk_check_lost(d);
    if (st == STILE_OK) st = pairs_ok(r);
    if (st != STILE_OK) return st;
    const size_t es = stile_dtype_size(r->p.dtype);
    const stile_tensor *t[9] = {&io->q, &io->k, &io->v, &io->o, &io->lse, &io->d_o, &io->d_q, &io->d_k, &io->d_v};
    const int layout_of[9] = {STILE_Q, STILE_K, STILE_V, STILE_O, -1, STILE_O, STILE_Q, STILE_K, STILE_V};
    VkBuffer key[VK_MAX_BINDINGS];
    size_t at[9], span[9];
    vk_bbound b = {.d = d};
    for (int i = 0; i < 9; i++) {
        const size_t unit = i == 4 ? sizeof(float) : es;
        span[i] = i == 4 ? (size_t)(r->p.batch * r->p.heads * r->tokens) * sizeof(float) : (size_t)r->extent[layout_of[i]] * es;
        VkBuffer buf = VK_NULL_HANDLE;
        size_t byte_off = 0;
        if ((st = vk_locate(d, t[i], span[i], unit, nm[i], &buf, &byte_off)) != STILE_OK) return st;
        if (i >= 6 && es == 2 && byte_off % 4)
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: 16-bit io->%s must start on a 4-byte boundary of its buffer", nm[i]);
        key[i < 5 ? i : i + 1] = buf; /* binding 5 is the table */
        b.pc.off[i] = (uint32_t)(byte_off / unit);
        at[i] = byte_off;
    }
    key[5] = vp->table->buf;
    /* one memory named twice (an address and the same VkBuffer as a handle): an output over any other
     * tensor, which core cannot see across the two kinds */
    for (int w = 6; w < 9; w++)
        for (int i = 0; i < 9; i++) {
            const VkBuffer bi = key[i < 5 ? i : i + 1], bw = key[w + 1];
            if (i != w && bi == bw && at[i] < at[w] + span[w] && at[w] < at[i] + span[i])
                return stile_fail(STILE_ERR_ALIASING, "vulkan: io->%s overlaps io->%s in the same VkBuffer", nm[w], nm[i]);
        }
    if ((st = vk_get_pipeline(d, VK_PATH_BACKWARD, vp->head_dim, vp->dtype, (uint32_t)vp->block_rows, &b.pipe)) != STILE_OK) return st;
    if ((st = vk_get_set(vp, VK_MAX_BINDINGS, key, &b.set)) != STILE_OK) return st;
    b.nblocks = vp->nblocks;
    b.heads = (uint32_t)r->p.heads;
    b.batch = (uint32_t)r->p.batch;
    snprintf(info->path, sizeof info->path, "portable backward");
    vk_kt kt;
    b.kt = &kt;
    pthread_mutex_lock(&vp->kt_lock); /* caller-chosen key tiles: the table's region, one execution at a time */
    st = vk_key_tiles_bind(d, plan, vp, &io->key_tiles, &io->key_tile_errors, 1, &kt);
    if (st == STILE_OK) st = vk_submit(d, record_backward, &b, "running the STA backward shader");
    if (st == STILE_OK) st = vk_key_tiles_verdict(d, &kt);
    pthread_mutex_unlock(&vp->kt_lock);
    return st;
}
