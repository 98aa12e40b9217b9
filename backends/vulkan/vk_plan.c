/* Vulkan plans: the schedule tables in a device buffer, the pipeline of the chosen path (tensor-core or
 * portable), descriptor sets cached per set of buffers, and the recording of the dispatches, either
 * into stile's own one-shot command buffer (stile_plan_execute) or the application's
 * (stile_vulkan_record). */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"
#include "stile/stile_vulkan.h"
#include "vk_ext.h"
#include "vk_internal.h"

typedef struct vk_push {
    uint32_t q_off, k_off, v_off, o_off, lse_off, has_lse, block_base;
} vk_push;


static int coop_strides_ok(const stile_resolved *r)
{
    for (int i = 0; i < 3; i++) {
        const stile_strides *s = &r->strides[i];
        if (s->dim != 1 || s->batch % 8 || s->token % 8 || s->head % 8) return 0;
    }
    return 1;
}

/* The subgroup shader reads q, k, v a 32-bit word at a time: contiguous head dims, and for 16-bit
 * dtypes even strides (offsets are checked per execution). */
static int subgroup_strides_ok(const stile_resolved *r)
{
    const int two = stile_dtype_size(r->p.dtype) == 2;
    for (int i = 0; i < 3; i++) {
        const stile_strides *s = &r->strides[i];
        if (s->dim != 1 || (two && (s->batch % 2 || s->token % 2 || s->head % 2))) return 0;
    }
    return 1;
}

int vk_pairs_ok(const stile_resolved *r, int t)
{
    const stile_strides *s = &r->strides[t];
    return r->p.head_dim % 2 == 0 && s->dim == 1 && s->batch % 2 == 0 && s->token % 2 == 0 && s->head % 2 == 0;
}

static stile_status vk_supports(void *device, const stile_plan *plan)
{
    vk_device *d = device;
    const stile_resolved *r = &plan->r;
    const size_t es = stile_dtype_size(r->p.dtype);
    stile_status st = vk_check_lost(d);
    if (st != STILE_OK) return st;
    if (r->p.head_dim != 64 && r->p.head_dim != 128)
        return stile_fail(STILE_ERR_UNSUPPORTED, "head_dim=%lld: the Vulkan shaders are built for 64 and 128", (long long)r->p.head_dim);
    if (r->p.key_tiles_k && plan->layout.tiles > STILE_TAB_KT_MAX_TILES)
        return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: caller-chosen key tiles over %lld tiles: at most %d (a row's set is a "
                                                 "bitmap in 16 KiB of shared memory)", (long long)plan->layout.tiles, STILE_TAB_KT_MAX_TILES);
    if (r->p.heads > VK_MAX_DISPATCH || r->p.batch > VK_MAX_DISPATCH)
        return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: heads and batch must be <= %d (one dispatch dimension each)", VK_MAX_DISPATCH);
    for (int i = 0; i < 4; i++) {
        if ((size_t)r->extent[i] * es > d->max_range || r->extent[i] > INT32_MAX)
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: a tensor spans %zu bytes, over the device's storage buffer range %llu",
                              (size_t)r->extent[i] * es, (unsigned long long)d->max_range);
        if (es == 2 && i == STILE_O && !vk_pairs_ok(r, STILE_O))
            return stile_fail(STILE_ERR_UNSUPPORTED,
                              "vulkan: 16-bit outputs are written two at a time: head_dim even, o's dim stride 1, other strides even");
    }
    if (r->tokens * r->p.heads * r->p.batch > INT32_MAX)
        return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: more than 2^31 lse entries");
    return STILE_OK;
}

stile_status vk_get_pipeline(vk_device *d, uint32_t kind, uint32_t head_dim, uint32_t dtype, uint32_t rows, VkPipeline *out)
{
    pthread_mutex_lock(&d->lock);
    for (vk_pipeline *p = d->pipelines; p; p = p->next)
        if (p->kind == kind && p->head_dim == head_dim && p->dtype == dtype && p->rows == rows) {
            *out = p->pipe;
            pthread_mutex_unlock(&d->lock);
            return STILE_OK;
        }
    const uint32_t spec[2] = {rows, dtype};
    const VkSpecializationMapEntry map[2] = {{0, 0, 4}, {1, 4, 4}};
    /* the portable and backward shaders take their workgroup size (rows) and dtype; the others fix their size */
    VkSpecializationInfo si = kind != VK_PATH_PORTABLE && kind != VK_PATH_BACKWARD
                                  ? (VkSpecializationInfo){.mapEntryCount = 1, .pMapEntries = &map[1], .dataSize = sizeof spec, .pData = spec}
                                  : (VkSpecializationInfo){.mapEntryCount = 2, .pMapEntries = map, .dataSize = sizeof spec, .pData = spec};
    const int hdi = head_dim == 64 ? 0 : 1;
    if (kind == VK_PATH_KEY_TILES) si.mapEntryCount = 0; /* a fixed workgroup, integers only */
    VkShaderModule mod = kind == VK_PATH_KEY_TILES  ? d->key_tiles
                         : kind == VK_PATH_BACKWARD ? d->backward[hdi]
                         : kind == VK_PATH_COOPMAT2 ? d->coop2[hdi]
                         : kind == VK_PATH_COOPMAT  ? d->coop[hdi]
                         : kind == VK_PATH_SUBGROUP ? d->subgroup[(dtype == STILE_DTYPE_F32 ? 0 : 2) + hdi]
                                                    : d->portable[hdi];
    /* the tensor-core shader assumes 32-wide subgroups: required where the device's default differs */
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT sg32 = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT, .requiredSubgroupSize = 32};
    const int need32 = kind == VK_PATH_COOPMAT && d->coop_sg32;
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .flags = d->stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR : 0,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .pNext = need32 ? &sg32 : NULL,
                  .flags = need32 ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT_EXT : 0,
                  .module = mod, .pName = "main", .pSpecializationInfo = &si},
        .layout = kind == VK_PATH_BACKWARD ? d->blayout : d->layout};
    vk_pipeline *p = calloc(1, sizeof *p);
    VkResult r = p ? d->vk.vkCreateComputePipelines(d->dev, d->cache, 1, &ci, NULL, &p->pipe) : VK_ERROR_OUT_OF_HOST_MEMORY;
    if (r != VK_SUCCESS) {
        free(p);
        pthread_mutex_unlock(&d->lock);
        return vk_fail(d, r, "creating the pipeline");
    }
    *p = (vk_pipeline){kind, head_dim, dtype, rows, p->pipe, d->pipelines};
    if (d->stats) vk_stats_log(d, p->pipe, kind, head_dim, dtype);
    d->pipelines = p;
    *out = p->pipe;
    vk_cache_save(d); /* the next process finds the compiled pipeline */
    pthread_mutex_unlock(&d->lock);
    return STILE_OK;
}

static void vk_plan_destroy(void *impl)
{
    vk_plan *vp = impl;
    if (!vp) return;
    for (vk_dset *s = vp->sets, *n; s; s = n) {
        n = s->next;
        vp->dev->vk.vkDestroyDescriptorPool(vp->dev->dev, s->pool, NULL);
        free(s);
    }
    if (vp->table) vk_free_buffer(vp->dev, vp->table);
    pthread_mutex_destroy(&vp->lock);
    pthread_mutex_destroy(&vp->kt_lock);
    free(vp);
}

/* The schedule table with its Vulkan header (core/schedule_table.h): the shaders' one source of sizes,
 * strides and the arrays' offsets. */
static stile_status build_table(const stile_plan *plan, int64_t block_rows, int32_t **out, stile_sched_table *tab)
{
    const stile_resolved *r = &plan->r;
    void *host;
    stile_status st = stile_sched_table_pack(plan, block_rows, STILE_TAB_HEADER_INTS * sizeof(int32_t), sizeof(int32_t), &host, tab);
    if (st != STILE_OK) return st;
    const size_t region = vk_key_tiles_region(plan); /* caller-chosen key tiles: filled at each execution */
    if (region) {
        void *grown = realloc(host, tab->bytes + region);
        if (!grown) {
            free(host);
            return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for the key tiles' table");
        }
        host = grown;
        memset((char *)host + tab->bytes, 0, region);
    }
    const size_t region_at = tab->bytes;
    tab->bytes += region;
    if (tab->bytes / sizeof(int32_t) > INT32_MAX / 4) {
        free(host);
        return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: the schedule tables exceed 2^29 entries");
    }
    int32_t *t = host;
    t[STILE_TAB_BATCH] = (int32_t)r->p.batch;
    t[STILE_TAB_HEADS] = (int32_t)r->p.heads;
    t[STILE_TAB_HEAD_DIM] = (int32_t)r->p.head_dim;
    t[STILE_TAB_DTYPE] = (int32_t)r->p.dtype;
    for (int a = 0; a < 3; a++) {
        t[STILE_TAB_CANVAS + a] = (int32_t)r->p.canvas[a];
        t[STILE_TAB_TILE + a] = (int32_t)r->p.tile[a];
        t[STILE_TAB_GRID + a] = (int32_t)r->grid[a];
    }
    t[STILE_TAB_TILES] = (int32_t)plan->layout.tiles;
    t[STILE_TAB_VIDEO] = (int32_t)r->video;
    t[STILE_TAB_TOKENS] = (int32_t)r->tokens;
    t[STILE_TAB_TEXT_VALID] = (int32_t)r->text_valid;
    t[STILE_TAB_TILED] = r->p.order == STILE_ORDER_TILED;
    float scale = (float)(r->p.scale * 1.4426950408889634);
    memcpy(&t[STILE_TAB_SCALE], &scale, sizeof scale);
    const int strides_at[4] = {STILE_TAB_SQ, STILE_TAB_SK, STILE_TAB_SV, STILE_TAB_SO};
    for (int i = 0; i < 4; i++) {
        const stile_strides *s = &r->strides[i]; /* STILE_Q, _K, _V, _O */
        t[strides_at[i]] = (int32_t)s->batch;
        t[strides_at[i] + 1] = (int32_t)s->token;
        t[strides_at[i] + 2] = (int32_t)s->head;
        t[strides_at[i] + 3] = (int32_t)s->dim;
    }
    t[STILE_TAB_TILE_START] = (int32_t)(tab->tile_start / sizeof(int32_t));
    t[STILE_TAB_ROW_START] = (int32_t)(tab->row_start / sizeof(int32_t));
    t[STILE_TAB_HEAD_ROW] = (int32_t)(tab->head_row / sizeof(int32_t));
    t[STILE_TAB_KEY_TILES] = (int32_t)(tab->key_tiles / sizeof(int32_t));
    t[STILE_TAB_BLOCKS] = (int32_t)(tab->blocks / sizeof(int32_t));
    t[STILE_TAB_QUERY_START] = (int32_t)(tab->query_start / sizeof(int32_t));
    t[STILE_TAB_QUERY_TILES] = (int32_t)(tab->query_tiles / sizeof(int32_t));
    vk_key_tiles_header(plan, t, region_at);
    *out = t;
    return STILE_OK;
}

static stile_status vk_plan_create(void *device, const stile_plan *plan, void **impl)
{
    vk_device *d = device;
    const stile_resolved *r = &plan->r;
    vk_plan *vp = calloc(1, sizeof *vp);
    if (!vp) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning for Vulkan");
    vp->dev = d;
    pthread_mutex_init(&vp->lock, NULL);
    pthread_mutex_init(&vp->kt_lock, NULL);
    const uint32_t hd = (uint32_t)r->p.head_dim, dt = (uint32_t)r->p.dtype;
    const int tensor = (r->p.dtype == STILE_DTYPE_F16 || r->p.dtype == STILE_DTYPE_BF16) && coop_strides_ok(r);
    const int coop2 = d->nv2 && tensor, coop = !coop2 && d->coop_n && tensor;
    if ((d->coop_n || d->nv2) && !tensor)
        stile_log(STILE_LOG_INFO, "vulkan: portable path: the tensor-core paths take f16/bf16 with a contiguous head dim and "
                                  "q/k/v strides that are multiples of 8");
    const int subgroup = !coop && !coop2 && d->subgroup_ok && subgroup_strides_ok(r);
    vp->path = coop2 ? VK_PATH_COOPMAT2 : coop ? VK_PATH_COOPMAT : subgroup ? VK_PATH_SUBGROUP : VK_PATH_PORTABLE;
    vp->block_rows = coop2 ? STILE_BLOCK_ROWS_VK_COOPMAT2 : coop ? STILE_BLOCK_ROWS_VK_COOPMAT : STILE_BLOCK_ROWS_VK_PORTABLE;
    stile_status st = vk_get_pipeline(d, (uint32_t)vp->path, hd, dt, (uint32_t)vp->block_rows, &vp->pipe);
    vp->head_dim = hd;
    vp->dtype = dt;
    int32_t *t = NULL;
    stile_sched_table tab;
    if (st == STILE_OK) st = build_table(plan, vp->block_rows, &t, &tab);
    if (st == STILE_OK && tab.bytes > d->max_range) /* the shaders bind the whole table as one storage buffer */
        st = stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: the plan's schedule table (%zu bytes%s) exceeds the device's storage buffer "
                                               "range (%llu bytes)", tab.bytes, r->p.key_tiles_k ? ", caller-chosen key tiles included" : "",
                        (unsigned long long)d->max_range);
    if (st != STILE_OK) {
        free(t);
        vk_plan_destroy(vp);
        return st;
    }
    vp->nblocks = tab.nblocks;
    st = vk_make_buffer(d, tab.bytes, &vp->table);
    if (st == STILE_OK) st = vk_copy(d, vp->table, 0, t, tab.bytes, 1);
    vp->kt_bad_at = r->p.key_tiles_k ? (size_t)t[STILE_TAB_KT_BAD] * sizeof(int32_t) : 0;
    free(t);
    if (st == STILE_OK && d->validation_errors) st = stile_fail(STILE_ERR_BACKEND, "vulkan: validation messages while planning");
    if (st != STILE_OK) {
        vk_plan_destroy(vp);
        return st;
    }
    *impl = vp;
    return STILE_OK;
}

static void vk_plan_path(void *device, void *impl, char *buf, size_t size)
{
    const vk_device *d = device;
    const vk_plan *vp = impl;
    if (vp->path == VK_PATH_COOPMAT2) snprintf(buf, size, "nv-coopmat2");
    else if (vp->path == VK_PATH_COOPMAT) snprintf(buf, size, "khr-coopmat 16x%ux16", d->coop_n);
    else if (vp->path == VK_PATH_SUBGROUP) snprintf(buf, size, "subgroup");
    else snprintf(buf, size, "portable");
}

/* ---- binding an execution's tensors ---- */

typedef struct vk_bound {
    vk_device *d;
    VkPipeline pipe;
    VkDescriptorSet set;
    vk_push pc;
    int nblocks;
    uint32_t heads, batch;
} vk_bound;

stile_status vk_get_set(vk_plan *vp, int n, const VkBuffer *key, VkDescriptorSet *out)
{
    vk_device *d = vp->dev;
    const VkDescriptorSetLayout dsl = n == 6 ? d->dsl : d->bdsl; /* the forward's set, or the backward's (10) */
    pthread_mutex_lock(&vp->lock);
    for (vk_dset *s = vp->sets; s; s = s->next)
        if (s->n == n && memcmp(s->key, key, (size_t)n * sizeof *key) == 0) {
            *out = s->set;
            pthread_mutex_unlock(&vp->lock);
            return STILE_OK;
        }
    vk_dset *s = calloc(1, sizeof *s);
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, (uint32_t)n};
    VkDescriptorPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = 1, .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    VkResult r = s ? d->vk.vkCreateDescriptorPool(d->dev, &pci, NULL, &s->pool) : VK_ERROR_OUT_OF_HOST_MEMORY;
    if (r == VK_SUCCESS) {
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, .descriptorPool = s->pool,
                                          .descriptorSetCount = 1, .pSetLayouts = &dsl};
        r = d->vk.vkAllocateDescriptorSets(d->dev, &ai, &s->set);
        if (r != VK_SUCCESS) d->vk.vkDestroyDescriptorPool(d->dev, s->pool, NULL);
    }
    if (r != VK_SUCCESS) {
        free(s);
        pthread_mutex_unlock(&vp->lock);
        return vk_fail(d, r, "allocating a descriptor set");
    }
    VkDescriptorBufferInfo dbi[VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[VK_MAX_BINDINGS];
    for (int i = 0; i < n; i++) {
        dbi[i] = (VkDescriptorBufferInfo){key[i], 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = s->set, .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &dbi[i]};
    }
    d->vk.vkUpdateDescriptorSets(d->dev, (uint32_t)n, w, 0, NULL);
    memcpy(s->key, key, (size_t)n * sizeof *key);
    s->n = n;
    s->next = vp->sets;
    vp->sets = s;
    *out = s->set;
    pthread_mutex_unlock(&vp->lock);
    return STILE_OK;
}

stile_status vk_locate(vk_device *d, const stile_tensor *t, size_t span, size_t unit, const char *name, VkBuffer *buf,
                       size_t *byte_off)
{
    if (t->handle) { /* the application's VkBuffer and offset (stile_vulkan_tensor): taken as given */
        memcpy(buf, &t->handle, sizeof *buf);
        /* the buffer is bound whole: the tensor must lie within what one descriptor reaches */
        if (t->offset > d->max_range || span > d->max_range - t->offset)
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: io->%s: offset %llu + %zu bytes past the device's storage buffer "
                              "range (%llu bytes)", name, (unsigned long long)t->offset, span, (unsigned long long)d->max_range);
        *byte_off = (size_t)t->offset;
    } else {
        vk_buffer *b = vk_find_buffer(d, t->data, t->bytes);
        if (!b)
            return stile_fail(STILE_ERR_INVALID_ARGUMENT, "vulkan: io->%s (%zu bytes) is not inside one buffer of this device "
                                                          "(stile_buffer_create or stile_vulkan_buffer_wrap)", name, t->bytes);
        *buf = b->buf;
        *byte_off = (size_t)((const char *)t->data - b->addr);
    }
    if (*byte_off % (unit == 2 ? 2 : 4))
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "vulkan: io->%s starts at byte %zu of its buffer, not a multiple of %zu", name,
                          *byte_off, unit == 2 ? (size_t)2 : (size_t)4);
    return STILE_OK;
}

static stile_status bind_io(vk_device *d, const stile_plan *plan, vk_plan *vp, const stile_io *io, vk_bound *out)
{
    static const char *nm[5] = {"q", "k", "v", "o", "lse"};
    const size_t es = stile_dtype_size(plan->r.p.dtype);
    const stile_tensor *t[5] = {&io->q, &io->k, &io->v, &io->o, &io->lse};
    VkBuffer key[6];
    uint32_t off[5] = {0};
    size_t at[5] = {0}, span[5];
    for (int i = 0; i < 4; i++) span[i] = (size_t)plan->r.extent[i] * es;
    span[4] = (size_t)(plan->r.p.batch * plan->r.p.heads * plan->r.tokens) * sizeof(float);
    int aligned16 = 1, even = 1;
    for (int i = 0; i < 5; i++) {
        key[i] = vp->table->buf; /* no lse: any buffer, unused */
        if (i == 4 && !io->lse.data && !io->lse.handle) continue;
        VkBuffer buf = VK_NULL_HANDLE;
        size_t byte_off = 0;
        const size_t unit = i == 4 ? sizeof(float) : es;
        stile_status st = vk_locate(d, t[i], span[i], unit, nm[i], &buf, &byte_off);
        if (st != STILE_OK) return st;
        if (i == 3 && es == 2 && byte_off % 4)
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: 16-bit o must start on a 4-byte boundary of its buffer");
        if (i < 3 && byte_off % 16) aligned16 = 0;
        if (i < 3 && byte_off % 4) even = 0; /* 16-bit tensors not on a word boundary */
        key[i] = buf;
        off[i] = (uint32_t)(byte_off / unit);
        at[i] = byte_off;
    }
    /* One memory named twice (an address in a buffer and the same VkBuffer as a handle): o or lse over
     * another tensor, which core cannot see across the two kinds. */
    for (int w = 3; w < 5; w++) {
        if (w == 4 && !io->lse.data && !io->lse.handle) continue;
        for (int i = 0; i < w; i++)
            if (key[i] == key[w] && at[i] < at[w] + span[w] && at[w] < at[i] + span[i])
                return stile_fail(STILE_ERR_ALIASING, "vulkan: io->%s overlaps io->%s in the same VkBuffer", nm[w], nm[i]);
    }
    key[5] = vp->table->buf;
    out->d = d;
    out->pipe = vp->pipe;
    const int tensor = vp->path == VK_PATH_COOPMAT || vp->path == VK_PATH_COOPMAT2;
    if ((tensor && !aligned16) || (vp->path == VK_PATH_SUBGROUP && !even)) {
        stile_log(STILE_LOG_INFO, "vulkan: portable shader for this call: q, k and v must start %s of their buffers for the %s shader",
                  tensor ? "16-byte aligned" : "on 4-byte boundaries", tensor ? "tensor-core" : "subgroup");
        stile_status st = vk_get_pipeline(d, VK_PATH_PORTABLE, vp->head_dim, vp->dtype, (uint32_t)vp->block_rows, &out->pipe);
        if (st != STILE_OK) return st;
    }
    out->pc = (vk_push){off[0], off[1], off[2], off[3], off[4], io->lse.data != NULL || io->lse.handle != 0, 0};
    out->nblocks = vp->nblocks;
    out->heads = (uint32_t)plan->r.p.heads;
    out->batch = (uint32_t)plan->r.p.batch;
    return vk_get_set(vp, 6, key, &out->set);
}

void vk_dispatch_blocks(vk_device *d, VkCommandBuffer cmd, VkPipelineLayout layout, void *pc, uint32_t pc_size,
                        uint32_t *block_base, int nblocks, uint32_t heads, uint32_t batch)
{
    for (int base = 0; base < nblocks; base += VK_MAX_DISPATCH) {
        *block_base = (uint32_t)base;
        d->vk.vkCmdPushConstants(cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pc_size, pc);
        const int n = nblocks - base < VK_MAX_DISPATCH ? nblocks - base : VK_MAX_DISPATCH;
        d->vk.vkCmdDispatch(cmd, (uint32_t)n, heads, batch);
    }
}

void vk_barrier_after_writes(vk_device *d, VkCommandBuffer cmd)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_SHADER_READ_BIT |
                                           VK_ACCESS_SHADER_WRITE_BIT};
    d->vk.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                               VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                               &mb, 0, NULL, 0, NULL);
}

static void record_dispatch(VkCommandBuffer cmd, const vk_bound *b)
{
    b->d->vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, b->pipe);
    b->d->vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, b->d->layout, 0, 1, &b->set, 0, NULL);
    vk_push pc = b->pc;
    vk_dispatch_blocks(b->d, cmd, b->d->layout, &pc, sizeof pc, &pc.block_base, b->nblocks, b->heads, b->batch);
}

static void record_execute(VkCommandBuffer cmd, void *ctx)
{
    record_dispatch(cmd, ctx);
    const vk_bound *b = ctx;
    /* outputs are read next by the host (mapped), a staged download, or another execution */
    vk_barrier_after_writes(b->d, cmd);
}

typedef struct vk_kt_execute {
    const vk_kt *kt;
    vk_bound *b;
} vk_kt_execute;

static void record_kt_execute(VkCommandBuffer cmd, void *ctx)
{
    const vk_kt_execute *x = ctx;
    vk_key_tiles_record(x->b->d, cmd, x->kt);
    record_execute(cmd, x->b);
}

static stile_status vk_execute(void *device, const stile_plan *plan, void *impl, const stile_io *io, stile_exec_info *info)
{
    vk_device *d = device;
    stile_status st = vk_check_lost(d);
    if (st != STILE_OK) return st;
    vk_bound b;
    st = bind_io(d, plan, impl, io, &b);
    if (st != STILE_OK) return st;
    vk_plan *vp = impl;
    if (b.pipe == vp->pipe) vk_plan_path(d, impl, info->path, sizeof info->path);
    else snprintf(info->path, sizeof info->path, "portable");
    if (!plan->r.p.key_tiles_k) return vk_submit(d, record_execute, &b, "running the STA shader");
    /* caller-chosen key tiles: read into the table's region, walked, and the verdict, one execution at a time */
    vk_kt kt;
    pthread_mutex_lock(&vp->kt_lock);
    st = vk_key_tiles_bind(d, plan, vp, &io->key_tiles, &io->key_tile_errors, 0, &kt);
    vk_kt_execute x = {&kt, &b};
    if (st == STILE_OK) st = vk_submit(d, record_kt_execute, &x, "running the STA shader");
    if (st == STILE_OK) st = vk_key_tiles_verdict(d, &kt);
    pthread_mutex_unlock(&vp->kt_lock);
    return st;
}

/* ---- the public bring-your-own-Vulkan entry points for buffers and recording ---- */

static vk_device *vulkan_of(const stile_device *device) { return device && device->backend == &stile_backend_vulkan ? device->impl : NULL; }

stile_status vk_api_buffer_wrap(stile_device *device, VkBuffer buffer, VkDeviceSize size, stile_buffer **out)
{
    if (out) *out = NULL;
    if (!device || !out || !buffer)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_vulkan_buffer_wrap: %s is NULL", !device ? "device" : !out ? "out" : "buffer");
    vk_device *d = vulkan_of(device);
    if (!d) return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_vulkan_buffer_wrap: %s is not a Vulkan device", device->info.name);
    if (size == 0) return stile_fail(STILE_ERR_INVALID_SIZE, "stile_vulkan_buffer_wrap: size=0: must be >= 1");
    if (size > SIZE_MAX / 2) return stile_fail(STILE_ERR_OUT_OF_RANGE, "stile_vulkan_buffer_wrap: size=%llu is too large", (unsigned long long)size);
    vk_buffer *b;
    stile_status st = vk_wrap_buffer(d, buffer, (size_t)size, &b);
    if (st != STILE_OK) return st;
    st = stile_buffer_adopt(device, b->addr, (size_t)size, out);
    if (st != STILE_OK) vk_free_buffer(d, b);
    return st;
}

stile_status vk_api_buffer_get(const stile_buffer *buffer, VkBuffer *out)
{
    if (!buffer || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_vulkan_buffer_get: %s is NULL", buffer ? "out" : "buffer");
    vk_device *d = vulkan_of(buffer->device);
    vk_buffer *b = d ? vk_find_buffer(d, buffer->ptr, 0) : NULL;
    if (!b) return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_vulkan_buffer_get: not a buffer of a Vulkan device");
    *out = b->buf;
    return STILE_OK;
}

stile_status vk_api_record(const stile_plan *plan, const stile_io *io, VkCommandBuffer cmd)
{
    if (!cmd) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_vulkan_record: cmd is NULL");
    stile_io cur;
    stile_status st = stile_io_check(plan, io, &cur, "stile_vulkan_record");
    if (st != STILE_OK) return st;
    io = &cur;
    vk_device *d = vulkan_of(plan->device);
    if (!d) return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_vulkan_record: the plan is for %s, not a Vulkan device", plan->info.device);
    if ((st = vk_check_lost(d)) != STILE_OK) return st;
    if (plan->r.p.key_tiles_k) /* the lists are read into the plan's table: one execution at a time, under stile's submission */
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_vulkan_record: a plan with caller-chosen key tiles runs through "
                                                 "stile_plan_execute only");
    vk_bound b;
    st = bind_io(d, plan, plan->impl, io, &b);
    if (st == STILE_OK) record_dispatch(cmd, &b);
    return st;
}

const stile_backend stile_backend_vulkan = {
    .name = "vulkan",
    .device_count = vk_device_count,
    .device_open = vk_device_open,
    .device_close = vk_device_close,
    .supports = vk_supports,
    .plan = vk_plan_create,
    .plan_destroy = vk_plan_destroy,
    .execute = vk_execute,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_copy = vk_buffer_copy,
    .auto_ok = vk_auto_ok,
    .takes_handles = 1,
    .plan_path = vk_plan_path,
    .backward = vk_backward,
    .backward_flops = vk_backward_flops,
};

static stile_status vk_fail_impl(void *device_impl, VkResult r, const char *what) { return vk_fail(device_impl, r, what); }

static const vk_ext vk_public = {
    .device_wrap = vk_api_device_wrap,
    .buffer_wrap = vk_api_buffer_wrap,
    .buffer_get = vk_api_buffer_get,
    .record = vk_api_record,
    .device_fail = vk_fail_impl,
};

const stile_module_info stile_module_vulkan = {"vulkan", &stile_backend_vulkan, &vk_public};

