/* Caller-chosen key tiles on Vulkan (stile_problem.key_tiles_k): each execution first runs
 * shaders/sta_key_tiles.comp, which reads the caller's lists into the region of the plan's table the
 * other shaders walk (core/schedule_table.h, STILE_TAB_KT_*), then the forward or backward shaders in
 * the same submission. The region belongs to the plan, so its executions take turns (kt_lock). */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <string.h>

#include "vk_internal.h"

typedef struct kt_push {
    uint32_t kt_off, err_off, has_err, mode, unused0, unused1, block_base;
} kt_push;

size_t vk_key_tiles_region(const stile_plan *plan)
{
    const int64_t k = plan->r.p.key_tiles_k, tiles = plan->r.tiles, bh = plan->r.p.batch * plan->r.p.heads, rows = bh * tiles;
    if (!k) return 0;
    /* rows, counts, the error count, transposed starts, transposed rows, cursors */
    return (size_t)(rows * k + rows + 1 + bh * (tiles + 1) + rows * k + rows) * sizeof(int32_t);
}

void vk_key_tiles_header(const stile_plan *plan, int32_t *t, size_t at)
{
    const int64_t k = plan->r.p.key_tiles_k, tiles = plan->r.tiles, bh = plan->r.p.batch * plan->r.p.heads, rows = bh * tiles;
    int64_t o = (int64_t)(at / sizeof(int32_t));
    t[STILE_TAB_KT_K] = (int32_t)k;
    if (!k) return;
    t[STILE_TAB_KT_ROWS] = (int32_t)o;
    t[STILE_TAB_KT_COUNT] = (int32_t)(o += rows * k);
    t[STILE_TAB_KT_BAD] = (int32_t)(o += rows);
    t[STILE_TAB_KT_QSTART] = (int32_t)(o += 1);
    t[STILE_TAB_KT_QTILES] = (int32_t)(o + bh * (tiles + 1)); /* then the cursors, after rows x k of them */
}

stile_status vk_key_tiles_bind(vk_device *d, const stile_plan *plan, vk_plan *vp, const stile_tensor *kt, const stile_tensor *err,
                               int transpose, vk_kt *out)
{
    memset(out, 0, sizeof *out);
    const int64_t k = plan->r.p.key_tiles_k, bh = plan->r.p.batch * plan->r.p.heads;
    if (!k) return STILE_OK;
    VkBuffer key[6];
    size_t kt_at = 0, err_at = 0;
    stile_status st = vk_locate(d, kt, (size_t)(bh * plan->r.tiles * k) * sizeof(int32_t), sizeof(int32_t), "key_tiles", &key[0], &kt_at);
    if (st != STILE_OK) return st;
    const int has_err = err->data || err->handle;
    key[1] = vp->table->buf; /* no error count: any buffer, unused */
    if (has_err && (st = vk_locate(d, err, sizeof(int32_t), sizeof(int32_t), "key_tile_errors", &key[1], &err_at)) != STILE_OK) return st;
    for (int i = 2; i < 6; i++) key[i] = vp->table->buf;
    if ((st = vk_get_pipeline(d, VK_PATH_KEY_TILES, 0, 0, 0, &out->pipe)) != STILE_OK) return st;
    if ((st = vk_get_set(vp, 6, key, &out->set)) != STILE_OK) return st;
    out->kt_off = (uint32_t)(kt_at / sizeof(int32_t));
    out->err_off = (uint32_t)(err_at / sizeof(int32_t));
    out->has_err = has_err;
    out->rows = (int)(bh * plan->r.tiles);
    out->bh = (int)bh;
    out->transpose = transpose;
    out->table = vp->table;
    out->bad_at = vp->kt_bad_at;
    out->active = 1;
    return STILE_OK;
}

void vk_key_tiles_record(vk_device *d, VkCommandBuffer cmd, const vk_kt *k)
{
    if (!k->active) return;
    d->vk.vkCmdFillBuffer(cmd, k->table->buf, k->bad_at, sizeof(int32_t), 0); /* this execution's count of bad entries */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    d->vk.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    d->vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipe);
    d->vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->layout, 0, 1, &k->set, 0, NULL);
    kt_push pc = {k->kt_off, k->err_off, (uint32_t)k->has_err, 0, 0, 0, 0};
    vk_dispatch_blocks(d, cmd, d->layout, &pc, sizeof pc, &pc.block_base, k->rows, 1, 1);
    vk_barrier_after_writes(d, cmd);
    if (!k->transpose) return;
    pc.mode = 1;
    vk_dispatch_blocks(d, cmd, d->layout, &pc, sizeof pc, &pc.block_base, k->bh, 1, 1);
    vk_barrier_after_writes(d, cmd);
}

stile_status vk_key_tiles_verdict(vk_device *d, const vk_kt *k)
{
    if (!k->active) return STILE_OK;
    int32_t bad = 0;
    stile_status st = vk_copy(d, k->table, k->bad_at, &bad, sizeof bad, 0);
    if (st != STILE_OK) return st;
    if (bad)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "io->key_tiles: %d entries outside -1..tiles-1 were skipped (the outputs hold "
                                                  "the attention without them)", (int)bad);
    return STILE_OK;
}
