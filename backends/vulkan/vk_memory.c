/* Vulkan buffers: device-local memory where the device has it, copies staged through one host-visible
 * buffer, and addresses that find a buffer again at execute time (vk_internal.h). */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vk_internal.h"

enum { VK_STAGE_BYTES = 32 << 20 };

stile_status vk_fail(vk_device *d, VkResult r, const char *what)
{
    if (r == VK_ERROR_DEVICE_LOST) {
        if (d) __atomic_store_n(&d->lost, 1, __ATOMIC_SEQ_CST);
        return stile_fail(STILE_ERR_DEVICE_LOST, "vulkan: %s: the device was lost (VK_ERROR_DEVICE_LOST)", what);
    }
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "vulkan: %s: out of %s memory", what,
                          r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? "device" : "host");
    return stile_fail(STILE_ERR_BACKEND, "vulkan: %s: VkResult %d", what, (int)r);
}

stile_status vk_check_lost(const vk_device *d)
{
    if (__atomic_load_n(&d->lost, __ATOMIC_SEQ_CST))
        return stile_fail(STILE_ERR_DEVICE_LOST, "vulkan: the device was lost earlier: close it and open it again");
    return STILE_OK;
}

/* An address range nobody else will be handed: reserved, inaccessible, backed by nothing. */
static char *reserve_address(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void link_buffer(vk_device *d, vk_buffer *b)
{
    pthread_mutex_lock(&d->lock);
    b->next = d->buffers;
    d->buffers = b;
    pthread_mutex_unlock(&d->lock);
}

static uint32_t pick_type(const vk_device *d, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer)
{
    uint32_t found = UINT32_MAX;
    for (uint32_t i = 0; i < d->memprops.memoryTypeCount; i++) {
        const VkMemoryPropertyFlags f = d->memprops.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & want) != want) continue;
        if ((f & prefer) == prefer) return i;
        if (found == UINT32_MAX) found = i;
    }
    return found;
}

/* host: a staging buffer (host-visible, cached if possible, not listed); else a device buffer. */
static stile_status make_buffer(vk_device *d, size_t bytes, int host, vk_buffer **out)
{
    *out = NULL;
    const size_t rounded = (bytes + 15) & ~(size_t)15;
    if (rounded < bytes || rounded > d->max_alloc)
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "vulkan: %zu bytes exceed the device's largest allocation (%llu bytes)", bytes,
                          (unsigned long long)d->max_alloc);
    vk_buffer *b = calloc(1, sizeof *b);
    if (!b) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a Vulkan buffer");
    b->bytes = rounded;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = rounded,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = d->vk.vkCreateBuffer(d->dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        free(b);
        return vk_fail(d, r, "creating a buffer");
    }
    VkMemoryRequirements req;
    d->vk.vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = host ? pick_type(d, req.memoryTypeBits, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                         : pick_type(d, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type == UINT32_MAX && !host) type = pick_type(d, req.memoryTypeBits, hv, 0);
    stile_status st = STILE_OK;
    if (type == UINT32_MAX) {
        st = stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: no memory type for a %s buffer", host ? "staging" : "device");
        goto fail;
    }
    const VkMemoryType *mt = &d->memprops.memoryTypes[type];
    if (req.size > d->memprops.memoryHeaps[mt->heapIndex].size) {
        st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "vulkan: %zu bytes exceed the memory heap (%llu bytes)", bytes,
                        (unsigned long long)d->memprops.memoryHeaps[mt->heapIndex].size);
        goto fail;
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size, .memoryTypeIndex = type};
    if ((r = d->vk.vkAllocateMemory(d->dev, &ai, NULL, &b->mem)) != VK_SUCCESS) {
        b->mem = VK_NULL_HANDLE;
        st = vk_fail(d, r, "allocating buffer memory");
        goto fail;
    }
    if ((r = d->vk.vkBindBufferMemory(d->dev, b->buf, b->mem, 0)) != VK_SUCCESS) {
        st = vk_fail(d, r, "binding buffer memory");
        goto fail;
    }
    b->mapped = host || ((mt->propertyFlags & hv) == hv && !d->force_staging);
    if (b->mapped) {
        if ((r = d->vk.vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, (void **)&b->addr)) != VK_SUCCESS) {
            st = vk_fail(d, r, "mapping buffer memory");
            goto fail;
        }
    } else if (!(b->addr = reserve_address(b->bytes))) {
        st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "vulkan: reserving %zu bytes of address space: %s", b->bytes, strerror(errno));
        goto fail;
    }
    if (!host) link_buffer(d, b);
    *out = b;
    return STILE_OK;
fail:
    if (b->mem) d->vk.vkFreeMemory(d->dev, b->mem, NULL);
    d->vk.vkDestroyBuffer(d->dev, b->buf, NULL);
    free(b);
    return st;
}

stile_status vk_make_buffer(vk_device *d, size_t bytes, vk_buffer **out) { return make_buffer(d, bytes, 0, out); }

stile_status vk_wrap_buffer(vk_device *d, VkBuffer buf, size_t bytes, vk_buffer **out)
{
    vk_buffer *b = calloc(1, sizeof *b);
    if (!b) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a Vulkan buffer");
    b->buf = buf;
    b->bytes = bytes;
    if (!(b->addr = reserve_address(bytes))) {
        free(b);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "vulkan: reserving %zu bytes of address space: %s", bytes, strerror(errno));
    }
    link_buffer(d, b);
    *out = b;
    return STILE_OK;
}

void vk_free_buffer(vk_device *d, vk_buffer *b)
{
    if (!b) return;
    pthread_mutex_lock(&d->lock);
    for (vk_buffer **p = &d->buffers; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    pthread_mutex_unlock(&d->lock);
    if (b->mapped) d->vk.vkUnmapMemory(d->dev, b->mem);
    else if (b->addr) munmap(b->addr, b->bytes ? b->bytes : 1);
    if (b->mem) {
        d->vk.vkFreeMemory(d->dev, b->mem, NULL);
        d->vk.vkDestroyBuffer(d->dev, b->buf, NULL);
    }
    free(b);
}

vk_buffer *vk_find_buffer(vk_device *d, const void *addr, size_t bytes)
{
    vk_buffer *hit = NULL;
    const char *a = addr;
    pthread_mutex_lock(&d->lock);
    for (vk_buffer *b = d->buffers; b && !hit; b = b->next)
        if (a >= b->addr && a < b->addr + b->bytes && bytes <= (size_t)(b->addr + b->bytes - a)) hit = b;
    pthread_mutex_unlock(&d->lock);
    return hit;
}

/* ---- one-shot submissions ---- */

stile_status vk_submit(vk_device *d, vk_recorder rec, void *ctx, const char *what)
{
    stile_status st = vk_check_lost(d);
    if (st != STILE_OK) return st;
    if (!d->queue) return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: %s: the device was wrapped without a queue (record only)", what);
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    pthread_mutex_lock(&d->plock); /* the command pool needs external synchronisation while recording */
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = d->pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkResult r = d->vk.vkAllocateCommandBuffers(d->dev, &cai, &cmd);
    if (r == VK_SUCCESS) r = d->vk.vkCreateFence(d->dev, &fci, NULL, &fence);
    if (r == VK_SUCCESS) {
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
        r = d->vk.vkBeginCommandBuffer(cmd, &bi);
    }
    if (r == VK_SUCCESS) {
        rec(cmd, ctx);
        r = d->vk.vkEndCommandBuffer(cmd);
    }
    pthread_mutex_unlock(&d->plock);
    if (r == VK_SUCCESS) { /* the queue, under the application's lock or stile's, for the submission alone */
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
        if (d->lock_queue) d->lock_queue(d->queue_user, d->family, d->queue_index);
        else pthread_mutex_lock(&d->qlock);
        r = d->vk.vkQueueSubmit(d->queue, 1, &si, fence);
        if (d->unlock_queue) d->unlock_queue(d->queue_user, d->family, d->queue_index);
        else pthread_mutex_unlock(&d->qlock);
    }
    if (r == VK_SUCCESS) r = d->vk.vkWaitForFences(d->dev, 1, &fence, VK_TRUE, UINT64_MAX); /* no lock held */
    if (fence) d->vk.vkDestroyFence(d->dev, fence, NULL);
    pthread_mutex_lock(&d->plock);
    if (cmd) d->vk.vkFreeCommandBuffers(d->dev, d->pool, 1, &cmd);
    pthread_mutex_unlock(&d->plock);
    if (r != VK_SUCCESS) return vk_fail(d, r, what);
    if (d->validation_errors)
        return stile_fail(STILE_ERR_BACKEND, "vulkan: %d validation message(s) so far on this device", d->validation_errors);
    return STILE_OK;
}

/* ---- copies ---- */

typedef struct copy_job {
    const vk_device *d;
    VkBuffer src, dst;
    VkBufferCopy region;
    int to_device;
} copy_job;

static void record_copy(VkCommandBuffer cmd, void *ctx)
{
    const copy_job *j = ctx;
    const vk_device *d = j->d;
    d->vk.vkCmdCopyBuffer(cmd, j->src, j->dst, 1, &j->region);
    /* uploads feed compute shaders, downloads the host; later submissions are in the second scope */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = j->to_device ? VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT : VK_ACCESS_HOST_READ_BIT};
    d->vk.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         j->to_device ? VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT : VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

stile_status vk_copy(vk_device *d, vk_buffer *b, size_t offset, void *host, size_t bytes, int to_device)
{
    stile_status st = vk_check_lost(d);
    if (st != STILE_OK) return st;
    if (b->mapped) {
        if (to_device) memcpy(b->addr + offset, host, bytes);
        else memcpy(host, b->addr + offset, bytes);
        return STILE_OK;
    }
    if (!d->queue) return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: copies need a queue: the device was wrapped without one");
    pthread_mutex_lock(&d->lock); /* the staging buffer is made once, under the list lock */
    if (!d->stage) st = make_buffer(d, VK_STAGE_BYTES, 1, &d->stage);
    vk_buffer *stage = d->stage;
    pthread_mutex_unlock(&d->lock);
    if (st != STILE_OK) return st;
    pthread_mutex_lock(&d->slock);
    for (size_t done = 0; done < bytes && st == STILE_OK;) {
        const size_t n = bytes - done < (size_t)VK_STAGE_BYTES ? bytes - done : (size_t)VK_STAGE_BYTES;
        copy_job j = {.d = d, .to_device = to_device};
        if (to_device) {
            memcpy(stage->addr, (char *)host + done, n);
            j.src = stage->buf;
            j.dst = b->buf;
            j.region = (VkBufferCopy){0, offset + done, n};
        } else {
            j.src = b->buf;
            j.dst = stage->buf;
            j.region = (VkBufferCopy){offset + done, 0, n};
        }
        st = vk_submit(d, record_copy, &j, to_device ? "uploading" : "downloading");
        if (st == STILE_OK && !to_device) memcpy((char *)host + done, stage->addr, n);
        done += n;
    }
    pthread_mutex_unlock(&d->slock);
    return st;
}

/* ---- the vtable's buffer entry points ---- */

stile_status vk_buffer_alloc(void *device, size_t bytes, void **ptr)
{
    vk_device *d = device;
    stile_status st = vk_check_lost(d);
    if (st != STILE_OK) return st;
    vk_buffer *b;
    st = vk_make_buffer(d, bytes, &b);
    if (st == STILE_OK) *ptr = b->addr;
    return st;
}

void vk_buffer_free(void *device, void *ptr)
{
    vk_buffer *b = vk_find_buffer(device, ptr, 0);
    if (b) vk_free_buffer(device, b);
}

stile_status vk_buffer_copy(void *device, void *dst, const void *src, size_t bytes, int to_device)
{
    vk_device *d = device;
    const char *dev = to_device ? dst : src;
    vk_buffer *b = vk_find_buffer(d, dev, bytes);
    if (!b) return stile_fail(STILE_ERR_INVALID_ARGUMENT, "vulkan: copy outside any buffer of this device");
    return vk_copy(d, b, (size_t)(dev - b->addr), to_device ? (void *)src : dst, bytes, to_device);
}
