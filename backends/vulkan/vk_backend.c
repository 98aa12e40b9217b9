/* The Vulkan backend (portable path): any Vulkan 1.1 device, compute shader from shaders/ embedded
 * as SPIR-V, specialised per head dim and dtype at plan time. Buffers are host-visible, coherent and
 * persistently mapped: the mapped address is what stile_buffer_data() hands out, so tensors are
 * found again by address (with pointer arithmetic, e.g. a packed qkv buffer) at execute time.
 * With STILE_VULKAN_VALIDATION=1 the Khronos validation layer is enabled; any message it sends is
 * logged as an error and fails the call that caused it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#include "stile_internal.h"

static const uint32_t spv_d64[] =
#include "sta_portable_d64.spv.h"
    ;
static const uint32_t spv_d128[] =
#include "sta_portable_d128.spv.h"
    ;

enum { VK_BLOCK_ROWS = 16, VK_MAX_DISPATCH = 65535 };

typedef struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    char *map;
    size_t bytes;
    struct vk_buffer *next;
} vk_buffer;

typedef struct vk_pipeline {
    uint32_t head_dim, dtype;
    VkPipeline pipe;
    struct vk_pipeline *next;
} vk_pipeline;

typedef struct vk_device {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t family;
    VkPhysicalDeviceMemoryProperties memprops;
    VkDeviceSize max_range;
    VkShaderModule shader[2]; /* head dim 64, 128 */
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkCommandPool pool;
    pthread_mutex_t lock;    /* buffers list, pipelines, command pool, queue */
    vk_buffer *buffers;
    vk_pipeline *pipelines;
    int validation_errors;
} vk_device;

typedef struct vk_plan {
    vk_buffer *table;        /* the params header and schedule tables (ints) */
    VkPipeline pipe;
    int nblocks;
} vk_plan;

typedef struct vk_push {
    uint32_t q_off, k_off, v_off, o_off, lse_off, has_lse, block_base;
} vk_push;

static stile_status vk_fail(VkResult r, const char *what)
{
    stile_status st = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY) ? STILE_ERR_OUT_OF_MEMORY
                                                                                               : STILE_ERR_BACKEND;
    return stile_fail(st, "vulkan: %s: VkResult %d%s", what, (int)r, r == VK_ERROR_DEVICE_LOST ? " (device lost)" : "");
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT type,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)type;
    vk_device *d = user;
    if (sev < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    __atomic_add_fetch(&d->validation_errors, 1, __ATOMIC_SEQ_CST);
    stile_log(STILE_LOG_ERROR, "vulkan validation: %s", data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static int want_validation(void)
{
    const char *v = getenv("STILE_VULKAN_VALIDATION");
    return v && *v && strcmp(v, "0") != 0;
}

static VkResult make_instance(vk_device *d, VkInstance *out)
{
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "stile",
                             .pEngineName = "stile", .apiVersion = VK_API_VERSION_1_1};
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation,
        .pUserData = d};
    const int val = d && want_validation();
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app,
                               .enabledLayerCount = val ? 1u : 0u, .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = val ? 1u : 0u, .ppEnabledExtensionNames = exts,
                               .pNext = val ? &dbg : NULL};
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r == VK_SUCCESS && val) {
        PFN_vkCreateDebugUtilsMessengerEXT mk =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
        if (mk) r = mk(*out, &dbg, NULL, &d->messenger);
    }
    return r;
}

static int vk_device_count(char *reason, size_t size)
{
    VkInstance inst;
    VkResult r = make_instance(NULL, &inst);
    if (r != VK_SUCCESS) {
        snprintf(reason, size, "no Vulkan loader or driver (vkCreateInstance: %d)", (int)r);
        return 0;
    }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    vkDestroyInstance(inst, NULL);
    if (n == 0) snprintf(reason, size, "the Vulkan loader finds no device");
    return (int)n;
}

static void vk_device_close(void *impl)
{
    vk_device *d = impl;
    if (!d) return;
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        for (vk_pipeline *p = d->pipelines, *n; p; p = n) {
            n = p->next;
            vkDestroyPipeline(d->dev, p->pipe, NULL);
            free(p);
        }
        if (d->pool) vkDestroyCommandPool(d->dev, d->pool, NULL);
        if (d->layout) vkDestroyPipelineLayout(d->dev, d->layout, NULL);
        if (d->dsl) vkDestroyDescriptorSetLayout(d->dev, d->dsl, NULL);
        for (int i = 0; i < 2; i++)
            if (d->shader[i]) vkDestroyShaderModule(d->dev, d->shader[i], NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    if (d->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT rm =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(d->inst, "vkDestroyDebugUtilsMessengerEXT");
        if (rm) rm(d->inst, d->messenger, NULL);
    }
    if (d->inst) vkDestroyInstance(d->inst, NULL);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static stile_status vk_device_open(int index, const stile_device_params *params, void **impl, stile_device_info *info)
{
    (void)params;
    vk_device *d = calloc(1, sizeof *d);
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory opening a Vulkan device");
    pthread_mutex_init(&d->lock, NULL);
    stile_status st = STILE_OK;
    VkResult r = make_instance(d, &d->inst);
    if (r != VK_SUCCESS) { st = vk_fail(r, "creating the instance"); goto fail; }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(d->inst, &n, NULL);
    VkPhysicalDevice *all = calloc(n ? n : 1, sizeof *all);
    if (!all) { st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory"); goto fail; }
    vkEnumeratePhysicalDevices(d->inst, &n, all);
    if ((uint32_t)index >= n) {
        free(all);
        st = stile_fail(STILE_ERR_NO_DEVICE, "vulkan:%d: only %u device(s)", index, n);
        goto fail;
    }
    d->phys = all[index];
    free(all);
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(d->phys, &props);
    vkGetPhysicalDeviceMemoryProperties(d->phys, &d->memprops);
    d->max_range = props.limits.maxStorageBufferRange;
    uint32_t nf = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nf, NULL);
    VkQueueFamilyProperties qf[16];
    nf = nf > 16 ? 16 : nf;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nf, qf);
    d->family = UINT32_MAX;
    for (uint32_t i = 0; i < nf && d->family == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) d->family = i;
    if (d->family == UINT32_MAX) { st = stile_fail(STILE_ERR_UNSUPPORTED, "vulkan:%d: no compute queue", index); goto fail; }
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = d->family,
                                   .queueCount = 1, .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci};
    if ((r = vkCreateDevice(d->phys, &dci, NULL, &d->dev)) != VK_SUCCESS) { st = vk_fail(r, "creating the device"); goto fail; }
    vkGetDeviceQueue(d->dev, d->family, 0, &d->queue);
    const uint32_t *code[2] = {spv_d64, spv_d128};
    const size_t size[2] = {sizeof spv_d64, sizeof spv_d128};
    for (int i = 0; i < 2; i++) {
        VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = size[i], .pCode = code[i]};
        if ((r = vkCreateShaderModule(d->dev, &smi, NULL, &d->shader[i])) != VK_SUCCESS) { st = vk_fail(r, "loading the shader"); goto fail; }
    }
    VkDescriptorSetLayoutBinding bind[6];
    for (int i = 0; i < 6; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                 .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dli = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, .bindingCount = 6,
                                           .pBindings = bind};
    if ((r = vkCreateDescriptorSetLayout(d->dev, &dli, NULL, &d->dsl)) != VK_SUCCESS) { st = vk_fail(r, "descriptor layout"); goto fail; }
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = sizeof(vk_push)};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &d->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pcr};
    if ((r = vkCreatePipelineLayout(d->dev, &pli, NULL, &d->layout)) != VK_SUCCESS) { st = vk_fail(r, "pipeline layout"); goto fail; }
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = d->family};
    if ((r = vkCreateCommandPool(d->dev, &cpi, NULL, &d->pool)) != VK_SUCCESS) { st = vk_fail(r, "command pool"); goto fail; }
    static const char *types[] = {"other", "integrated GPU", "discrete GPU", "virtual GPU", "CPU"};
    snprintf(info->card, sizeof info->card, "%.95s", props.deviceName);
    snprintf(info->driver, sizeof info->driver, "Vulkan %u.%u, driver %u", VK_API_VERSION_MAJOR(props.apiVersion),
             VK_API_VERSION_MINOR(props.apiVersion), props.driverVersion);
    snprintf(info->description, sizeof info->description, "%.80s (%s), %.60s, portable path%s", props.deviceName,
             props.deviceType <= 4 ? types[props.deviceType] : "?", info->driver, want_validation() ? ", validation on" : "");
    if (d->validation_errors) { st = stile_fail(STILE_ERR_BACKEND, "vulkan: validation messages while opening the device"); goto fail; }
    *impl = d;
    return STILE_OK;
fail:
    vk_device_close(d);
    return st;
}

/* ---- buffers: host-visible, coherent, mapped for their lifetime ---- */

static stile_status vk_make_buffer(vk_device *d, size_t bytes, vk_buffer **out)
{
    vk_buffer *b = calloc(1, sizeof *b);
    if (!b) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a Vulkan buffer");
    bytes = (bytes + 15) & ~(size_t)15;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(d->dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) { free(b); return vk_fail(r, "creating a buffer"); }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    for (uint32_t i = 0; i < d->memprops.memoryTypeCount && type == UINT32_MAX; i++)
        if ((req.memoryTypeBits & (1u << i)) && (d->memprops.memoryTypes[i].propertyFlags & want) == want) type = i;
    if (type == UINT32_MAX) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        free(b);
        return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: no host-visible coherent memory for buffers");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size, .memoryTypeIndex = type};
    if ((r = vkAllocateMemory(d->dev, &ai, NULL, &b->mem)) != VK_SUCCESS ||
        (r = vkBindBufferMemory(d->dev, b->buf, b->mem, 0)) != VK_SUCCESS ||
        (r = vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, (void **)&b->map)) != VK_SUCCESS) {
        if (b->mem) vkFreeMemory(d->dev, b->mem, NULL);
        vkDestroyBuffer(d->dev, b->buf, NULL);
        free(b);
        return vk_fail(r, "allocating buffer memory");
    }
    b->bytes = bytes;
    pthread_mutex_lock(&d->lock);
    b->next = d->buffers;
    d->buffers = b;
    pthread_mutex_unlock(&d->lock);
    *out = b;
    return STILE_OK;
}

static void vk_free_buffer(vk_device *d, vk_buffer *b)
{
    pthread_mutex_lock(&d->lock);
    for (vk_buffer **p = &d->buffers; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    pthread_mutex_unlock(&d->lock);
    vkUnmapMemory(d->dev, b->mem);
    vkFreeMemory(d->dev, b->mem, NULL);
    vkDestroyBuffer(d->dev, b->buf, NULL);
    free(b);
}

static stile_status vk_buffer_alloc(void *device, size_t bytes, void **ptr)
{
    vk_buffer *b;
    stile_status st = vk_make_buffer(device, bytes, &b);
    if (st == STILE_OK) *ptr = b->map;
    return st;
}

static vk_buffer *find_buffer(vk_device *d, const void *addr, size_t bytes)
{
    vk_buffer *hit = NULL;
    pthread_mutex_lock(&d->lock);
    for (vk_buffer *b = d->buffers; b && !hit; b = b->next)
        if ((const char *)addr >= b->map && (const char *)addr + bytes <= b->map + b->bytes) hit = b;
    pthread_mutex_unlock(&d->lock);
    return hit;
}

static void vk_buffer_free(void *device, void *ptr)
{
    vk_buffer *b = find_buffer(device, ptr, 0);
    if (b) vk_free_buffer(device, b);
}

static stile_status vk_buffer_copy(void *device, void *dst, const void *src, size_t bytes, int to_device)
{
    (void)device;
    (void)to_device;
    memcpy(dst, src, bytes); /* coherent mapped memory */
    return STILE_OK;
}

/* ---- plans ---- */

static stile_status vk_supports(void *device, const stile_plan *plan)
{
    vk_device *d = device;
    const stile_resolved *r = &plan->r;
    const size_t es = stile_dtype_size(r->p.dtype);
    if (r->p.head_dim != 64 && r->p.head_dim != 128)
        return stile_fail(STILE_ERR_UNSUPPORTED, "head_dim=%lld: the Vulkan portable path is built for 64 and 128",
                          (long long)r->p.head_dim);
    for (int i = 0; i < 4; i++) {
        const stile_strides *s = &r->strides[i];
        if ((size_t)r->extent[i] * es > d->max_range || r->extent[i] > INT32_MAX)
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: a tensor spans %zu bytes, over the device's storage buffer range %llu",
                              (size_t)r->extent[i] * es, (unsigned long long)d->max_range);
        if (es == 2 && i == STILE_O && (r->p.head_dim % 2 || s->dim != 1 || s->batch % 2 || s->token % 2 || s->head % 2))
            return stile_fail(STILE_ERR_UNSUPPORTED,
                              "vulkan: 16-bit outputs are written two at a time: head_dim even, o's dim stride 1, other strides even");
    }
    if (r->tokens * r->p.heads * r->p.batch > INT32_MAX)
        return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: more than 2^31 lse entries");
    return STILE_OK;
}

static stile_status get_pipeline(vk_device *d, uint32_t head_dim, uint32_t dtype, VkPipeline *out)
{
    pthread_mutex_lock(&d->lock);
    for (vk_pipeline *p = d->pipelines; p; p = p->next)
        if (p->head_dim == head_dim && p->dtype == dtype) {
            *out = p->pipe;
            pthread_mutex_unlock(&d->lock);
            return STILE_OK;
        }
    const uint32_t spec[1] = {dtype};
    const VkSpecializationMapEntry map[1] = {{1, 0, 4}};
    VkSpecializationInfo si = {.mapEntryCount = 1, .pMapEntries = map, .dataSize = sizeof spec, .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = d->shader[head_dim == 64 ? 0 : 1], .pName = "main", .pSpecializationInfo = &si},
        .layout = d->layout};
    vk_pipeline *p = calloc(1, sizeof *p);
    VkResult r = p ? vkCreateComputePipelines(d->dev, VK_NULL_HANDLE, 1, &ci, NULL, &p->pipe) : VK_ERROR_OUT_OF_HOST_MEMORY;
    if (r != VK_SUCCESS) {
        free(p);
        pthread_mutex_unlock(&d->lock);
        return vk_fail(r, "creating the pipeline");
    }
    p->head_dim = head_dim;
    p->dtype = dtype;
    p->next = d->pipelines;
    d->pipelines = p;
    *out = p->pipe;
    pthread_mutex_unlock(&d->lock);
    return STILE_OK;
}

/* The table buffer is in the device's buffer list: the plan keeps the device to free it. */
typedef struct vk_plan_full {
    vk_plan base;
    vk_device *dev;
} vk_plan_full;

static void vk_plan_destroy_full(void *impl)
{
    vk_plan_full *vp = impl;
    if (!vp) return;
    if (vp->base.table) vk_free_buffer(vp->dev, vp->base.table);
    free(vp);
}

static stile_status vk_plan_create(void *device, const stile_plan *plan, void **impl)
{
    vk_device *d = device;
    const stile_resolved *r = &plan->r;
    const stile_layout *l = &plan->layout;
    const int64_t tiles = l->tiles, heads = r->p.heads;
    stile_flat_schedule f;
    stile_status fst = stile_flat_schedule_build(plan, VK_BLOCK_ROWS, &f);
    if (fst != STILE_OK) return fst;
    const int64_t nrows = f.nrows, nkeys = f.nkeys, nblocks = f.nblocks;
    enum { HEADER = 40 };
    const int64_t o_ts = HEADER, o_rows = o_ts + tiles + 1, o_head = o_rows + nrows, o_keys = o_head + heads,
                  o_blocks = o_keys + nkeys, total = o_blocks + 4 * nblocks;
    vk_plan_full *vp = total > INT32_MAX / 4 ? NULL : calloc(1, sizeof *vp);
    if (!vp) {
        stile_flat_schedule_free(&f);
        return total > INT32_MAX / 4 ? stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: the schedule tables exceed 2^29 entries")
                                     : stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning for Vulkan");
    }
    vp->dev = d;
    stile_status st = get_pipeline(d, (uint32_t)r->p.head_dim, (uint32_t)r->p.dtype, &vp->base.pipe);
    if (st == STILE_OK) st = vk_make_buffer(d, (size_t)total * sizeof(int32_t), &vp->base.table);
    if (st != STILE_OK) {
        free(vp);
        stile_flat_schedule_free(&f);
        return st;
    }
    int32_t *t = (int32_t *)vp->base.table->map;
    memset(t, 0, (size_t)HEADER * sizeof *t);
    t[0] = (int32_t)r->p.batch;
    t[1] = (int32_t)heads;
    t[2] = (int32_t)r->p.head_dim;
    t[3] = (int32_t)r->p.dtype;
    for (int a = 0; a < 3; a++) {
        t[4 + a] = (int32_t)r->p.canvas[a];
        t[7 + a] = (int32_t)r->p.tile[a];
        t[10 + a] = (int32_t)r->grid[a];
    }
    t[13] = (int32_t)tiles;
    t[14] = (int32_t)r->video;
    t[15] = (int32_t)r->tokens;
    t[16] = (int32_t)r->text_valid;
    t[17] = r->p.order == STILE_ORDER_TILED;
    float scale = (float)(r->p.scale * 1.4426950408889634);
    memcpy(&t[18], &scale, sizeof scale);
    for (int i = 0; i < 4; i++) {
        const stile_strides *s = &r->strides[i];
        t[19 + 4 * i] = (int32_t)s->batch;
        t[20 + 4 * i] = (int32_t)s->token;
        t[21 + 4 * i] = (int32_t)s->head;
        t[22 + 4 * i] = (int32_t)s->dim;
    }
    t[35] = (int32_t)o_ts;
    t[36] = (int32_t)o_rows;
    t[37] = (int32_t)o_head;
    t[38] = (int32_t)o_keys;
    t[39] = (int32_t)o_blocks;
    for (int64_t i = 0; i <= tiles; i++) t[o_ts + i] = (int32_t)l->tile_start[i];
    memcpy(t + o_rows, f.row_start, (size_t)nrows * sizeof(int32_t));
    for (int64_t h = 0; h < heads; h++) t[o_head + h] = (int32_t)(o_rows + f.head_row[h]); /* the shader wants tab indices */
    memcpy(t + o_keys, f.key_tiles, (size_t)nkeys * sizeof(int32_t));
    memcpy(t + o_blocks, f.blocks, (size_t)(4 * nblocks) * sizeof(int32_t));
    stile_flat_schedule_free(&f);
    vp->base.nblocks = (int)nblocks;
    if (d->validation_errors) {
        vk_plan_destroy_full(vp);
        return stile_fail(STILE_ERR_BACKEND, "vulkan: validation messages while planning");
    }
    *impl = vp;
    return STILE_OK;
}

/* ---- execute ---- */

static stile_status vk_execute(void *device, const stile_plan *plan, void *impl, const stile_io *io)
{
    vk_device *d = device;
    vk_plan_full *vp = impl;
    const size_t es = stile_dtype_size(plan->r.p.dtype);
    const stile_tensor *t[5] = {&io->q, &io->k, &io->v, &io->o, &io->lse};
    vk_buffer *b[5] = {0};
    uint32_t off[5] = {0};
    for (int i = 0; i < 5; i++) {
        if (i == 4 && !io->lse.data) continue;
        size_t need = i == 4 ? io->lse.bytes : t[i]->bytes;
        b[i] = find_buffer(d, t[i]->data, need);
        size_t unit = i == 4 ? sizeof(float) : es;
        if (!b[i])
            return stile_fail(STILE_ERR_INVALID_ARGUMENT, "vulkan: io tensor %d is not inside a buffer of this device "
                                                          "(stile_buffer_create)", i);
        size_t byte_off = (size_t)((const char *)t[i]->data - b[i]->map);
        if (byte_off % (unit == 2 ? 2 : 4))
            return stile_fail(STILE_ERR_INVALID_ARGUMENT, "vulkan: io tensor %d starts at a misaligned offset", i);
        if (i == 3 && es == 2 && byte_off % 4)
            return stile_fail(STILE_ERR_UNSUPPORTED, "vulkan: 16-bit o must start on a 4-byte boundary");
        off[i] = (uint32_t)(byte_off / unit);
    }
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 6};
    VkDescriptorPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = 1, .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    VkDescriptorPool dpool = VK_NULL_HANDLE;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    stile_status st = STILE_OK;
    VkResult r = vkCreateDescriptorPool(d->dev, &pci, NULL, &dpool);
    VkDescriptorSet set = VK_NULL_HANDLE;
    if (r == VK_SUCCESS) {
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, .descriptorPool = dpool,
                                          .descriptorSetCount = 1, .pSetLayouts = &d->dsl};
        r = vkAllocateDescriptorSets(d->dev, &ai, &set);
    }
    if (r != VK_SUCCESS) { st = vk_fail(r, "descriptors"); goto done; }
    VkDescriptorBufferInfo dbi[6];
    VkWriteDescriptorSet w[6];
    for (int i = 0; i < 6; i++) {
        vk_buffer *src = i == 5 ? vp->base.table : b[i] ? b[i] : vp->base.table; /* no lse: any buffer, unused */
        dbi[i] = (VkDescriptorBufferInfo){src->buf, 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set, .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &dbi[i]};
    }
    vkUpdateDescriptorSets(d->dev, 6, w, 0, NULL);

    pthread_mutex_lock(&d->lock); /* the command pool and the queue need external synchronisation */
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = d->pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    r = vkAllocateCommandBuffers(d->dev, &cai, &cmd);
    if (r == VK_SUCCESS) r = vkCreateFence(d->dev, &fci, NULL, &fence);
    if (r == VK_SUCCESS) {
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
        vkBeginCommandBuffer(cmd, &bi);
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vp->base.pipe);
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->layout, 0, 1, &set, 0, NULL);
        for (int base = 0; base < vp->base.nblocks; base += VK_MAX_DISPATCH) {
            vk_push pc = {off[0], off[1], off[2], off[3], off[4], io->lse.data != NULL, (uint32_t)base};
            vkCmdPushConstants(cmd, d->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof pc, &pc);
            const int n = vp->base.nblocks - base < VK_MAX_DISPATCH ? vp->base.nblocks - base : VK_MAX_DISPATCH;
            vkCmdDispatch(cmd, (uint32_t)n, (uint32_t)plan->r.p.heads, (uint32_t)plan->r.p.batch);
        }
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        r = vkEndCommandBuffer(cmd);
    }
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
        r = vkQueueSubmit(d->queue, 1, &si, fence);
    }
    pthread_mutex_unlock(&d->lock);
    if (r == VK_SUCCESS) r = vkWaitForFences(d->dev, 1, &fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) st = vk_fail(r, "running the STA shader");
done:
    if (fence) vkDestroyFence(d->dev, fence, NULL);
    if (cmd) {
        pthread_mutex_lock(&d->lock);
        vkFreeCommandBuffers(d->dev, d->pool, 1, &cmd);
        pthread_mutex_unlock(&d->lock);
    }
    if (dpool) vkDestroyDescriptorPool(d->dev, dpool, NULL);
    if (st == STILE_OK && d->validation_errors)
        st = stile_fail(STILE_ERR_BACKEND, "vulkan: %d validation message(s) so far on this device", d->validation_errors);
    return st;
}

/* "auto" prefers real GPUs: a CPU implementation (lavapipe) is there for testing. */
static int vk_auto_ok(int index)
{
    VkInstance inst;
    if (make_instance(NULL, &inst) != VK_SUCCESS) return 0;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    int ok = 0;
    if ((uint32_t)index < n) {
        VkPhysicalDevice *all = calloc(n, sizeof *all);
        if (all) {
            vkEnumeratePhysicalDevices(inst, &n, all);
            VkPhysicalDeviceProperties props;
            vkGetPhysicalDeviceProperties(all[index], &props);
            ok = props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
            free(all);
        }
    }
    vkDestroyInstance(inst, NULL);
    return ok;
}

const stile_backend stile_backend_vulkan = {
    .name = "vulkan",
    .device_count = vk_device_count,
    .device_open = vk_device_open,
    .device_close = vk_device_close,
    .supports = vk_supports,
    .plan = vk_plan_create,
    .plan_destroy = vk_plan_destroy_full,
    .execute = vk_execute,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_copy = vk_buffer_copy,
    .auto_ok = vk_auto_ok,
};
