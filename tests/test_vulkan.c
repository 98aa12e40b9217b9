/* The Vulkan backend beyond the conformance table: bring-your-own Vulkan (the application's instance,
 * device, queue, VkBuffers and command buffer), staged copies, out-of-memory and device-loss statuses,
 * the pipeline cache on disk.
 * Runs on whatever device the loader finds (lavapipe in CI); exits 77 (skipped) without one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "stile/stile_vulkan.h"
#include "stile_internal.h"
#include "module.h"
#include "vk_ext.h"

/* ---- the application's side: its own instance, device, queue and host-visible buffers ---- */

typedef struct app {
    VkInstance inst;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t family;
    VkCommandPool pool;
    VkPhysicalDeviceMemoryProperties mem;
} app;

typedef struct app_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    size_t bytes;
} app_buffer;

static app A;

static int app_open(char *why, size_t size)
{
    VkApplicationInfo ai = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "stile-test", .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &ai};
    if (vkCreateInstance(&ci, NULL, &A.inst) != VK_SUCCESS) {
        snprintf(why, size, "no Vulkan loader or driver");
        return -1;
    }
    uint32_t n = 1;
    VkResult r = vkEnumeratePhysicalDevices(A.inst, &n, &A.phys);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
        snprintf(why, size, "the Vulkan loader finds no device");
        return -1;
    }
    VkQueueFamilyProperties qf[16];
    uint32_t nf = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(A.phys, &nf, qf);
    A.family = UINT32_MAX;
    for (uint32_t i = 0; i < nf && A.family == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) A.family = i;
    if (A.family == UINT32_MAX) {
        snprintf(why, size, "no compute queue");
        return -1;
    }
    float prio = 1;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = A.family, .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci};
    if (vkCreateDevice(A.phys, &dci, NULL, &A.dev) != VK_SUCCESS) {
        snprintf(why, size, "vkCreateDevice failed");
        return -1;
    }
    vkGetDeviceQueue(A.dev, A.family, 0, &A.queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = A.family};
    vkCreateCommandPool(A.dev, &pci, NULL, &A.pool);
    vkGetPhysicalDeviceMemoryProperties(A.phys, &A.mem);
    return 0;
}

static void app_close(void)
{
    if (A.pool) vkDestroyCommandPool(A.dev, A.pool, NULL);
    if (A.dev) vkDestroyDevice(A.dev, NULL);
    if (A.inst) vkDestroyInstance(A.inst, NULL);
    memset(&A, 0, sizeof A);
}

static app_buffer app_buffer_make(size_t bytes)
{
    app_buffer b = {.bytes = bytes};
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    assert_int_equal(vkCreateBuffer(A.dev, &bi, NULL, &b.buf), VK_SUCCESS);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(A.dev, b.buf, &req);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    for (uint32_t i = 0; i < A.mem.memoryTypeCount && type == UINT32_MAX; i++)
        if ((req.memoryTypeBits & (1u << i)) && (A.mem.memoryTypes[i].propertyFlags & want) == want) type = i;
    assert_true(type != UINT32_MAX);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size, .memoryTypeIndex = type};
    assert_int_equal(vkAllocateMemory(A.dev, &ai, NULL, &b.mem), VK_SUCCESS);
    assert_int_equal(vkBindBufferMemory(A.dev, b.buf, b.mem, 0), VK_SUCCESS);
    assert_int_equal(vkMapMemory(A.dev, b.mem, 0, VK_WHOLE_SIZE, 0, &b.map), VK_SUCCESS);
    return b;
}

static void app_buffer_free(app_buffer *b)
{
    vkUnmapMemory(A.dev, b->mem);
    vkFreeMemory(A.dev, b->mem, NULL);
    vkDestroyBuffer(A.dev, b->buf, NULL);
}

static stile_vulkan_context app_context(void)
{
    return (stile_vulkan_context){.struct_size = sizeof(stile_vulkan_context), .instance = A.inst, .physical_device = A.phys, .device = A.dev, .queue = A.queue,
                                  .queue_family = A.family};
}

/* ---- tests ---- */

static const stile_problem small = {.struct_size = sizeof small, .canvas = {4, 6, 6}, .tile = {2, 4, 4}, .window = {1, 1, 3}, .heads = 2, .head_dim = 64,
                                    .text = 7, .text_padding = 2, .dtype = STILE_DTYPE_F32};

/* The application records stile's dispatches into its own command buffer between its own barriers,
 * on its own VkBuffers; the output is checked against the oracle. */
static void test_record_into_the_applications_command_buffer(void **state)
{
    (void)state;
    stile_vulkan_context ctx = app_context();
    stile_device *dev = NULL;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_OK);
    stile_device_info di;
    assert_int_equal(stile_device_get_info(dev, &di), STILE_OK);
    assert_string_equal(di.name, "vulkan:app");
    assert_string_equal(di.backend, "vulkan");

    const stile_problem *p = &small;
    const int64_t tokens = 4 * 6 * 6 + p->text, n = tokens * p->heads * p->head_dim;
    const size_t bytes = (size_t)n * sizeof(float), lse_bytes = (size_t)(tokens * p->heads) * sizeof(float);
    /* q, k and v share one application buffer (offsets), o and lse have their own */
    app_buffer in = app_buffer_make(3 * bytes), out = app_buffer_make(bytes + 64), lse = app_buffer_make(lse_bytes);
    const uint64_t seed = 4242;
    printf("  seed %llu\n", (unsigned long long)seed);
    for (int i = 0; i < 3; i++) stile_conf_fill_normal((char *)in.map + (size_t)i * bytes, STILE_DTYPE_F32, n, seed + (uint64_t)i);
    memset(out.map, 0xff, out.bytes); /* poisoned: NaN, and the guard band after o must stay so */
    memset(lse.map, 0xff, lse_bytes);

    stile_buffer *bin = NULL, *bout = NULL, *blse = NULL;
    assert_int_equal(stile_vulkan_buffer_wrap(dev, in.buf, in.bytes, &bin), STILE_OK);
    assert_int_equal(stile_vulkan_buffer_wrap(dev, out.buf, out.bytes, &bout), STILE_OK);
    assert_int_equal(stile_vulkan_buffer_wrap(dev, lse.buf, lse_bytes, &blse), STILE_OK);
    VkBuffer got;
    assert_int_equal(stile_vulkan_buffer_get(bout, &got), STILE_OK);
    assert_true(got == out.buf);

    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, p, &plan), STILE_OK);
    stile_plan_info pi;
    assert_int_equal(stile_plan_get_info(plan, &pi), STILE_OK);
    assert_string_equal(pi.path, "portable"); /* f32 never takes the tensor-core path */
    assert_string_equal(pi.device, "vulkan:app");
    char *base = stile_buffer_data(bin);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(base, bytes, STILE_DTYPE_F32), .k = stile_tensor_at(base + bytes, bytes, STILE_DTYPE_F32),
                   .v = stile_tensor_at(base + 2 * bytes, bytes, STILE_DTYPE_F32), .o = stile_tensor_at(stile_buffer_data(bout), bytes, STILE_DTYPE_F32),
                   .lse = stile_tensor_at(stile_buffer_data(blse), lse_bytes, STILE_DTYPE_F32)};

    VkCommandBuffer cmd;
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = A.pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    assert_int_equal(vkAllocateCommandBuffers(A.dev, &cai, &cmd), VK_SUCCESS);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    assert_int_equal(vkBeginCommandBuffer(cmd, &bi), VK_SUCCESS);
    VkMemoryBarrier before = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_HOST_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &before, 0, NULL, 0, NULL);
    assert_int_equal(stile_vulkan_record(plan, &io, cmd), STILE_OK);
    VkMemoryBarrier after = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                             .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &after, 0, NULL, 0, NULL);
    assert_int_equal(vkEndCommandBuffer(cmd), VK_SUCCESS);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
    assert_int_equal(vkQueueSubmit(A.queue, 1, &si, VK_NULL_HANDLE), VK_SUCCESS);
    assert_int_equal(vkQueueWaitIdle(A.queue), VK_SUCCESS);

    /* check on host copies (the oracle reads host memory) */
    stile_io host = {.struct_size = sizeof host, .q = stile_tensor_at(in.map, bytes, STILE_DTYPE_F32), .k = stile_tensor_at((char *)in.map + bytes, bytes, STILE_DTYPE_F32),
                     .v = stile_tensor_at((char *)in.map + 2 * bytes, bytes, STILE_DTYPE_F32), .o = stile_tensor_at(out.map, bytes, STILE_DTYPE_F32),
                     .lse = stile_tensor_at(lse.map, lse_bytes, STILE_DTYPE_F32)};
    double *ref = malloc((size_t)n * sizeof *ref), *ref_lse = malloc((size_t)(tokens * p->heads) * sizeof *ref_lse);
    assert_non_null(ref);
    assert_non_null(ref_lse);
    assert_int_equal(stile_oracle(p, &host, NULL, 0, ref, ref_lse), STILE_OK);
    stile_check c;
    assert_int_equal(stile_check_output(p, &host, NULL, 0, ref, ref_lse, &c), STILE_OK);
    printf("  recorded by the application: NMSE %.3e, lse max error %.3e\n", c.nmse, c.lse_max_abs_error);
    assert_true(c.passed);
    for (size_t i = bytes; i < out.bytes; i++) assert_int_equal(((unsigned char *)out.map)[i], 0xff);

    /* stile_plan_execute on the same wrapped objects (stile submits to the application's queue) */
    memset(out.map, 0xff, out.bytes);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    assert_int_equal(stile_check_output(p, &host, NULL, 0, ref, ref_lse, &c), STILE_OK);
    assert_true(c.passed);

    /* the same with the application's VkBuffers named directly, (VkBuffer, offset), nothing wrapped */
    memset(out.map, 0xff, out.bytes);
    memset(lse.map, 0xff, lse_bytes);
    stile_exec_info info;
    memset(&info, 0, sizeof info);
    stile_io hio = {.struct_size = sizeof hio, .q = stile_vulkan_tensor(in.buf, 0, bytes, STILE_DTYPE_F32),
                    .k = stile_vulkan_tensor(in.buf, bytes, bytes, STILE_DTYPE_F32),
                    .v = stile_vulkan_tensor(in.buf, 2 * bytes, bytes, STILE_DTYPE_F32),
                    .o = stile_vulkan_tensor(out.buf, 0, bytes, STILE_DTYPE_F32),
                    .lse = stile_vulkan_tensor(lse.buf, 0, lse_bytes, STILE_DTYPE_F32), .info = &info};
    assert_int_equal(stile_plan_execute(plan, &hio), STILE_OK);
    assert_string_equal(info.path, "portable");
    assert_int_equal(stile_check_output(p, &host, NULL, 0, ref, ref_lse, &c), STILE_OK);
    printf("  (VkBuffer, offset) tensors: NMSE %.3e, lse max error %.3e\n", c.nmse, c.lse_max_abs_error);
    assert_true(c.passed);
    for (size_t i = bytes; i < out.bytes; i++) assert_int_equal(((unsigned char *)out.map)[i], 0xff);
    stile_io hbad = hio;
    hbad.o = stile_vulkan_tensor(in.buf, bytes / 2, bytes, STILE_DTYPE_F32); /* o over q and k of the same buffer */
    assert_int_equal(stile_plan_execute(plan, &hbad), STILE_ERR_ALIASING);
    hbad = hio;
    hbad.k.offset = bytes + 2; /* not 4-byte aligned */
    assert_int_equal(stile_plan_execute(plan, &hbad), STILE_ERR_INVALID_ARGUMENT);
    hbad = hio;
    hbad.q.data = in.map; /* both places */
    assert_int_equal(stile_plan_execute(plan, &hbad), STILE_ERR_INVALID_ARGUMENT);
    /* the backward pass on (VkBuffer, offset) tensors: dO, dQ, dK, dV in one more application buffer */
    app_buffer gb = app_buffer_make(4 * bytes);
    stile_conf_fill_normal(gb.map, STILE_DTYPE_F32, n, seed + 3);
    memset((char *)gb.map + bytes, 0xff, 3 * bytes);
    assert_int_equal(stile_plan_execute(plan, &hio), STILE_OK); /* o and lse as the backward reads them */
    stile_grad_io gio = {.struct_size = sizeof gio, .q = hio.q, .k = hio.k, .v = hio.v, .o = hio.o, .lse = hio.lse,
                         .d_o = stile_vulkan_tensor(gb.buf, 0, bytes, STILE_DTYPE_F32),
                         .d_q = stile_vulkan_tensor(gb.buf, bytes, bytes, STILE_DTYPE_F32),
                         .d_k = stile_vulkan_tensor(gb.buf, 2 * bytes, bytes, STILE_DTYPE_F32),
                         .d_v = stile_vulkan_tensor(gb.buf, 3 * bytes, bytes, STILE_DTYPE_F32), .info = &info};
    assert_int_equal(stile_plan_backward(plan, &gio), STILE_OK);
    assert_string_equal(info.path, "portable backward");
    double *rg = malloc(3 * (size_t)n * sizeof *rg);
    assert_non_null(rg);
    const stile_tensor hdo = stile_tensor_at(gb.map, bytes, STILE_DTYPE_F32);
    assert_int_equal(stile_oracle_backward(p, &host, &hdo, rg, rg + n, rg + 2 * n), STILE_OK);
    const stile_grad_io hg = {.struct_size = sizeof hg, .d_q = stile_tensor_at((char *)gb.map + bytes, bytes, STILE_DTYPE_F32),
                              .d_k = stile_tensor_at((char *)gb.map + 2 * bytes, bytes, STILE_DTYPE_F32),
                              .d_v = stile_tensor_at((char *)gb.map + 3 * bytes, bytes, STILE_DTYPE_F32)};
    assert_int_equal(stile_check_gradients(p, &hg, rg, rg + n, rg + 2 * n, &c), STILE_OK);
    printf("  backward on (VkBuffer, offset) tensors: worst gradient NMSE %.3e\n", c.nmse);
    assert_true(c.passed);
    free(rg);
    stile_grad_io gbad = gio;
    gbad.d_q = stile_vulkan_tensor(in.buf, bytes / 2, bytes, STILE_DTYPE_F32); /* dQ over q and k */
    assert_int_equal(stile_plan_backward(plan, &gbad), STILE_ERR_ALIASING);
    gbad = gio;
    gbad.d_v = stile_vulkan_tensor(gb.buf, bytes / 2, bytes, STILE_DTYPE_F32); /* dV over dO and dQ */
    assert_int_equal(stile_plan_backward(plan, &gbad), STILE_ERR_ALIASING);
    app_buffer_free(&gb);
    stile_device *cpu = NULL; /* a backend without buffer handles */
    assert_int_equal(stile_device_open("cpu", NULL, &cpu), STILE_OK);
    stile_plan *cplan = NULL;
    assert_int_equal(stile_plan_create(cpu, p, &cplan), STILE_OK);
    assert_int_equal(stile_plan_execute(cplan, &hio), STILE_ERR_UNSUPPORTED);
    assert_non_null(strstr(stile_last_error(), "not buffer handles"));
    stile_plan_destroy(&cplan);
    stile_device_close(&cpu);

    /* staged copies through the application's queue */
    float probe[4] = {1, 2, 3, 4}, back[4] = {0};
    assert_int_equal(stile_buffer_upload(bout, 16, probe, sizeof probe), STILE_OK);
    assert_int_equal(stile_buffer_download(bout, 16, back, sizeof back), STILE_OK);
    assert_memory_equal(probe, back, sizeof probe);
    assert_memory_equal((char *)out.map + 16, probe, sizeof probe);

    /* the errors of recording */
    assert_int_equal(stile_vulkan_record(plan, &io, VK_NULL_HANDLE), STILE_ERR_NULL_ARGUMENT);
    stile_io bad = io;
    float stray[16];
    bad.q.data = stray;
    assert_int_equal(stile_vulkan_record(plan, &bad, cmd), STILE_ERR_INVALID_ARGUMENT);
    bad = io;
    bad.o.data = io.q.data;
    assert_int_equal(stile_vulkan_record(plan, &bad, cmd), STILE_ERR_ALIASING);
    bad = io;
    bad.k.data = (char *)io.k.data + 2; /* not 4-byte aligned in its buffer */
    bad.k.bytes = bytes;
    assert_int_equal(stile_vulkan_record(plan, &bad, cmd), STILE_ERR_INVALID_ARGUMENT);

    free(ref);
    free(ref_lse);
    vkFreeCommandBuffers(A.dev, A.pool, 1, &cmd);
    stile_plan_destroy(&plan);
    stile_buffer_destroy(&bin);
    stile_buffer_destroy(&bout);
    stile_buffer_destroy(&blse);
    stile_device_close(&dev);
    app_buffer_free(&in);
    app_buffer_free(&out);
    app_buffer_free(&lse);
}

/* The whole conformance runner (library buffers, uploads, downloads) on a wrapped device. */
static void test_conformance_runner_on_a_wrapped_device(void **state)
{
    (void)state;
    stile_vulkan_context ctx = app_context();
    stile_device *dev = NULL;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_OK);
    stile_problem p = small;
    p.dtype = STILE_DTYPE_BF16;
    stile_conf_result r = stile_conf_run(dev, &p, STILE_CONF_BSHD, 9100, 0);
    assert_true(conf_report(&r, "wrapped device, bf16"));
    stile_device_close(&dev);
}

/* libplacebo-style import: the application's queue lock (taken around each submission only, balanced),
 * its pipeline cache, and the features it enabled (which here lack the tensor-core path's). */
typedef struct queue_lock {
    int locks, unlocks, held, nested;
    uint32_t family, index;
} queue_lock;

static void lock_cb(void *user, uint32_t family, uint32_t index)
{
    queue_lock *q = user;
    if (q->held) q->nested++;
    q->held = 1;
    q->locks++;
    q->family = family;
    q->index = index;
}

static void unlock_cb(void *user, uint32_t family, uint32_t index)
{
    queue_lock *q = user;
    (void)family;
    (void)index;
    q->held = 0;
    q->unlocks++;
}

/* The application's loader entry point: stile must load every function through it. */
static int gipa_calls, asked_device_proc_addr;

static PFN_vkVoidFunction VKAPI_CALL counting_gipa(VkInstance instance, const char *name)
{
    gipa_calls++;
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) asked_device_proc_addr = 1;
    return vkGetInstanceProcAddr(instance, name);
}

static void test_wrap_with_the_applications_loader_queue_lock_cache_and_features(void **state)
{
    (void)state;
    VkPipelineCacheCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    VkPipelineCache cache = VK_NULL_HANDLE;
    assert_int_equal(vkCreatePipelineCache(A.dev, &pci, NULL, &cache), VK_SUCCESS);
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
    queue_lock q = {0};
    stile_vulkan_context ctx = app_context();
    ctx.lock_queue = lock_cb;
    ctx.unlock_queue = unlock_cb;
    ctx.queue_user = &q;
    ctx.pipeline_cache = cache;
    ctx.features = &f2;
    ctx.get_instance_proc_addr = counting_gipa;
    stile_device *dev = NULL;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_OK);
    assert_true(gipa_calls >= 10); /* the instance functions, and vkGetDeviceProcAddr for the rest */
    assert_true(asked_device_proc_addr);
    stile_device_info di;
    assert_int_equal(stile_device_get_info(dev, &di), STILE_OK);
    stile_problem p = small;
    stile_conf_result r = stile_conf_run(dev, &p, STILE_CONF_BSHD, 9200, 0);
    assert_true(conf_report(&r, "wrapped device with the application's queue lock and pipeline cache"));
    printf("  queue lock: %d locks, %d unlocks (family %u, index %u); %s\n", q.locks, q.unlocks, q.family, q.index, di.description);
    assert_true(q.locks >= 1); /* the execution was submitted at least */
    assert_int_equal(q.locks, q.unlocks);
    assert_int_equal(q.nested, 0);
    assert_int_equal(q.family, A.family);
    size_t size = 0;
    assert_int_equal(vkGetPipelineCacheData(A.dev, cache, &size, NULL), VK_SUCCESS); /* still the application's, valid */
    stile_device_close(&dev);
    vkDestroyPipelineCache(A.dev, cache, NULL); /* stile did not destroy it */
    /* one callback without the other is refused */
    ctx.unlock_queue = NULL;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_ERR_INVALID_ARGUMENT);
    ctx.unlock_queue = unlock_cb;
    ctx.num_extensions = 2; /* without the list */
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_ERR_NULL_ARGUMENT);
    assert_null(dev);
}

static void test_wrap_errors(void **state)
{
    (void)state;
    stile_device *dev = (stile_device *)&dev; /* must come back NULL */
    assert_int_equal(stile_vulkan_device_wrap(NULL, &dev), STILE_ERR_NULL_ARGUMENT);
    assert_null(dev);
    stile_vulkan_context ctx = app_context();
    assert_int_equal(stile_vulkan_device_wrap(&ctx, NULL), STILE_ERR_NULL_ARGUMENT);
    ctx.device = VK_NULL_HANDLE;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_ERR_NULL_ARGUMENT);
    ctx = app_context();
    ctx.queue_family = 99;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_ERR_UNSUPPORTED);
    ctx = app_context();
    ctx.flags = 0x80;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_ERR_INVALID_ARGUMENT);
    ctx = app_context();
    ctx.struct_size = 0; /* a context filled without the size (or by an older header) */
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "struct_size 0"));

    /* Vulkan entry points given CPU objects */
    stile_device *cpu = NULL;
    assert_int_equal(stile_device_open("cpu", NULL, &cpu), STILE_OK);
    app_buffer ab = app_buffer_make(256);
    stile_buffer *b = NULL;
    assert_int_equal(stile_vulkan_buffer_wrap(cpu, ab.buf, 256, &b), STILE_ERR_INVALID_ARGUMENT);
    assert_null(b);
    assert_int_equal(stile_buffer_create(cpu, 64, &b), STILE_OK);
    VkBuffer vb;
    assert_int_equal(stile_vulkan_buffer_get(b, &vb), STILE_ERR_INVALID_ARGUMENT);
    stile_buffer_destroy(&b);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(cpu, &small, &plan), STILE_OK);
    const size_t bytes = (size_t)(4 * 6 * 6 + small.text) * small.heads * small.head_dim * sizeof(float);
    float *q = calloc(1, bytes), *k = calloc(1, bytes), *v = calloc(1, bytes), *o = calloc(1, bytes);
    assert_true(q && k && v && o);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .k = stile_tensor_at(k, bytes, STILE_DTYPE_F32), .v = stile_tensor_at(v, bytes, STILE_DTYPE_F32),
                   .o = stile_tensor_at(o, bytes, STILE_DTYPE_F32)};
    assert_int_equal(stile_vulkan_record(plan, &io, (VkCommandBuffer)(uintptr_t)1), STILE_ERR_INVALID_ARGUMENT); /* a CPU plan */
    io.k.data = NULL;
    assert_int_equal(stile_vulkan_record(plan, &io, (VkCommandBuffer)(uintptr_t)1), STILE_ERR_NULL_ARGUMENT);
    free(q);
    free(k);
    free(v);
    free(o);
    stile_plan_destroy(&plan);
    stile_device_close(&cpu);

    /* a device wrapped without a queue records only */
    ctx = app_context();
    ctx.queue = VK_NULL_HANDLE;
    assert_int_equal(stile_vulkan_device_wrap(&ctx, &dev), STILE_OK);
    assert_int_equal(stile_vulkan_buffer_wrap(dev, ab.buf, 0, &b), STILE_ERR_INVALID_SIZE);
    assert_int_equal(stile_vulkan_buffer_wrap(dev, ab.buf, 256, &b), STILE_OK);
    float zeros[4] = {0};
    assert_int_equal(stile_buffer_upload(b, 0, zeros, sizeof zeros), STILE_ERR_UNSUPPORTED);
    stile_buffer_destroy(&b);
    stile_device_close(&dev);
    app_buffer_free(&ab);
}

/* Library buffers with copies staged (as on a discrete GPU): the address is a reservation, not memory. */
static void test_staged_buffers_round_trip(void **state)
{
    (void)state;
    setenv("STILE_VULKAN_STAGING", "1", 1);
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("vulkan:0", NULL, &dev), STILE_OK);
    unsetenv("STILE_VULKAN_STAGING");
    /* more than the 32 MiB staging buffer, so the copy goes in pieces */
    const size_t n = (40u << 20) / 4;
    uint32_t *h = malloc(n * 4), *g = malloc(n * 4);
    assert_non_null(h);
    assert_non_null(g);
    for (size_t i = 0; i < n; i++) h[i] = (uint32_t)(i * 2654435761u);
    stile_buffer *b = NULL, *c = NULL;
    assert_int_equal(stile_buffer_create(dev, n * 4, &b), STILE_OK);
    assert_int_equal(stile_buffer_create(dev, 64, &c), STILE_OK);
    assert_true(stile_buffer_data(c) < (void *)stile_buffer_data(b) || stile_buffer_data(c) >= (void *)((char *)stile_buffer_data(b) + n * 4));
    assert_int_equal(stile_buffer_upload(b, 0, h, n * 4), STILE_OK);
    assert_int_equal(stile_buffer_download(b, 0, g, n * 4), STILE_OK);
    assert_memory_equal(h, g, n * 4);
    memset(g, 0, 64);
    assert_int_equal(stile_buffer_download(b, 4 * 1000, g, 64), STILE_OK);
    assert_memory_equal(h + 1000, g, 64);
    assert_int_equal(stile_buffer_download(b, n * 4 - 8, g, 16), STILE_ERR_OUT_OF_RANGE);
    stile_buffer_destroy(&b);
    stile_buffer_destroy(&c);
    stile_problem p = small;
    p.dtype = STILE_DTYPE_F16;
    stile_conf_result r = stile_conf_run(dev, &p, STILE_CONF_BSHD, 9200, 0);
    assert_true(conf_report(&r, "staged, f16"));
    stile_device_close(&dev);
    free(h);
    free(g);
}

static void test_out_of_memory_and_device_loss_are_statuses(void **state)
{
    (void)state;
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("vulkan:0", NULL, &dev), STILE_OK);
    stile_buffer *b = NULL;
    assert_int_equal(stile_buffer_create(dev, (size_t)1 << 50, &b), STILE_ERR_OUT_OF_MEMORY);
    assert_null(b);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, &small, &plan), STILE_OK);
    /* what the backend does with VK_ERROR_DEVICE_LOST: the status, and every later call refused */
    const void *ext = NULL;
    char why[256];
    assert_non_null(stile_registry_backend("vulkan", &ext, why, sizeof why));
    const vk_ext *vk = ext;
    assert_int_equal(vk->device_fail(dev->impl, VK_ERROR_DEVICE_LOST, "a test"), STILE_ERR_DEVICE_LOST);
    assert_int_equal(vk->device_fail(dev->impl, VK_ERROR_OUT_OF_DEVICE_MEMORY, "a test"), STILE_ERR_OUT_OF_MEMORY);
    assert_int_equal(stile_buffer_create(dev, 64, &b), STILE_ERR_DEVICE_LOST);
    stile_plan *again = NULL;
    assert_int_equal(stile_plan_create(dev, &small, &again), STILE_ERR_DEVICE_LOST);
    assert_string_equal(stile_status_string(STILE_ERR_DEVICE_LOST), "device lost");
    stile_plan_destroy(&plan);
    stile_device_close(&dev); /* closing a lost device is allowed and frees everything */
}



/* The subgroup shader (shaders/sta_subgroup.comp), which CPU implementations take only when asked:
 * every dtype and head dim, both layouts and token orders, text with padding, partial tiles,
 * per-head windows, a batch; each plan says it runs the subgroup shader. */
static void test_subgroup_shader(void **state)
{
    (void)state;
    setenv("STILE_VULKAN_PATH", "subgroup", 1);
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("vulkan:0", NULL, &dev), STILE_OK);
    unsetenv("STILE_VULKAN_PATH");
    if (!strstr(dev->info.description, "subgroup")) {
        printf("  [subgroup shader] not available here: %s\n", dev->info.description);
        stile_device_close(&dev);
        skip();
    }
    static const int64_t heads3[3][3] = {{1, 1, 3}, {3, 2, 1}, {9, 9, 9}};
    const stile_dtype dts[3] = {STILE_DTYPE_F32, STILE_DTYPE_F16, STILE_DTYPE_BF16};
    for (int t = 0; t < 3; t++)
        for (int hd = 64; hd <= 128; hd += 64) {
            stile_problem p = small;
            p.dtype = dts[t];
            p.head_dim = hd;
            p.batch = 2;
            p.heads = 3;
            p.head_windows = heads3;
            p.order = hd == 64 ? STILE_ORDER_TILED : STILE_ORDER_NATURAL;
            char label[64];
            snprintf(label, sizeof label, "subgroup %s d%d %s", stile_dtype_name(p.dtype), hd, hd == 64 ? "tiled" : "natural");
            stile_conf_result r = stile_conf_run(dev, &p, t == 1 ? STILE_CONF_BHSD : STILE_CONF_BSHD, 9400 + (uint64_t)(t * 2 + hd / 64), 0);
            assert_true(conf_report(&r, label));
            stile_plan *plan = NULL;
            assert_int_equal(stile_plan_create(dev, &p, &plan), STILE_OK);
            stile_plan_info pi;
            assert_int_equal(stile_plan_get_info(plan, &pi), STILE_OK);
            assert_string_equal(pi.path, "subgroup");
            stile_plan_destroy(&plan);
        }
    /* q at an odd 16-bit offset: that execution runs the portable shader, with the same result */
    stile_problem p = small;
    p.dtype = STILE_DTYPE_F16;
    const size_t n = (size_t)(4 * 6 * 6 + 7) * 2 * 64, bytes = n * 2;
    uint16_t *h = malloc(bytes), *o1 = malloc(bytes), *o2 = malloc(bytes);
    assert_non_null(h);
    assert_non_null(o1);
    assert_non_null(o2);
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(0x3000u + ((uint32_t)(i * 2654435761u) >> 22)); /* f16 in [0.125, 0.25) */
    stile_buffer *b[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(stile_buffer_create(dev, bytes + 4, &b[i]), STILE_OK);
        if (i < 3) assert_int_equal(stile_buffer_upload(b[i], 0, h, bytes), STILE_OK);
    }
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, &p, &plan), STILE_OK);
    for (int odd = 0; odd < 2; odd++) {
        stile_exec_info info;
        memset(&info, 0, sizeof info);
        stile_io io = {.struct_size = sizeof io, .info = &info};
        stile_tensor *t[4] = {&io.q, &io.k, &io.v, &io.o};
        for (int i = 0; i < 4; i++)
            *t[i] = stile_tensor_at((char *)stile_buffer_data(b[i]) + (odd && i == 0 ? 2 : 0), bytes, STILE_DTYPE_F16);
        assert_int_equal(stile_buffer_upload(b[0], odd ? 2 : 0, h, bytes), STILE_OK); /* the same q, one element on */
        assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
        assert_string_equal(info.path, odd ? "portable" : "subgroup");
        assert_int_equal(stile_buffer_download(b[3], 0, odd ? o2 : o1, bytes), STILE_OK);
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double a = stile_half_to_float(o1[i]), c = stile_half_to_float(o2[i]);
        worst = fabs(a - c) > worst ? fabs(a - c) : worst;
        assert_true(a >= 0.124 && a <= 0.25); /* a weighted mean of v's values, all in [0.125, 0.25): written */
    }
    printf("  [subgroup shader, q at an odd 16-bit offset] portable shader ran; largest difference %.3g\n", worst);
    assert_true(worst <= 1e-3);
    stile_plan_destroy(&plan);
    for (int i = 0; i < 4; i++) stile_buffer_destroy(&b[i]);
    free(h);
    free(o1);
    free(o2);
    stile_device_close(&dev);
}

/* ---- the pipeline cache on disk (backends/vulkan/vk_cache.c) ---- */

static char logged[4096];

static void collect(void *user, stile_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", msg);
}

/* Open vulkan:0, run the small problem (one pipeline), close; the log lines at level and above in logged. */
static void run_at(const char *label, stile_log_level level)
{
    logged[0] = '\0';
    stile_log_set(collect, NULL, level);
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("vulkan:0", NULL, &dev), STILE_OK);
    stile_conf_result r = stile_conf_run(dev, &small, STILE_CONF_BSHD, 9300, 0);
    assert_true(conf_report(&r, label));
    stile_device_close(&dev);
    conf_log_init();
}

static void run_once(const char *label) { run_at(label, STILE_LOG_WARN); }

/* The one cache file in dir: its path and bytes (NULL if there is none). */
static unsigned char *cache_file(const char *dir, char *path, size_t size, size_t *len)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/vulkan-*.bin 2>/dev/null", dir);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    int found = fgets(path, (int)size, ls) != NULL;
    pclose(ls);
    if (!found) return NULL;
    path[strcspn(path, "\n")] = '\0';
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *b = malloc(1 << 20);
    assert_non_null(b);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void write_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void test_pipeline_cache_on_disk(void **state)
{
    (void)state;
    char dir[256], path[512], sub[600];
    size_t n = 0, m = 0;
    assert_int_equal(conf_tmpdir(dir, sizeof dir, "vkcache"), 0);
    setenv("STILE_CACHE_DIR", dir, 1);
    run_once("first use: the cache is written");
    unsigned char *good = cache_file(dir, path, sizeof path, &n);
    assert_non_null(good);
    assert_true(n >= 64);
    assert_memory_equal(good, "STILEVKC", 8);
    assert_null(strstr(logged, "pipeline cache"));

    run_once("second use: read without complaint");
    assert_null(strstr(logged, "pipeline cache"));

    /* a flipped payload byte: ignored with a line, then rewritten whole */
    unsigned char *bad = malloc(n);
    assert_non_null(bad);
    memcpy(bad, good, n);
    bad[n - 1] ^= 0x5a;
    write_file(path, bad, n);
    run_once("corrupt cache");
    assert_non_null(strstr(logged, "ignored: checksum mismatch"));
    unsigned char *again = cache_file(dir, path, sizeof path, &m);
    assert_non_null(again);
    assert_int_equal(m, n);
    assert_memory_equal(again, "STILEVKC", 8);
    free(again);

    /* cut short; someone else's file; another device's data under a right checksum */
    write_file(path, good, n - 5);
    run_once("truncated cache");
    assert_non_null(strstr(logged, "ignored: truncated"));
    write_file(path, (const unsigned char *)"not a cache at all, just text\n", 30);
    run_once("foreign file");
    assert_non_null(strstr(logged, "ignored: not a stile pipeline cache"));
    memcpy(bad, good, n);
    bad[32 + 8] ^= 1; /* Vulkan's header: vendorID */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 32; i < n; i++) h = (h ^ bad[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++) bad[24 + i] = (unsigned char)(h >> (8 * i));
    write_file(path, bad, n);
    run_once("another device's cache");
    assert_non_null(strstr(logged, "ignored: made by another device or driver"));

    /* a directory that cannot be made: the call works, one line says so */
    snprintf(sub, sizeof sub, "%s/sub", path);
    setenv("STILE_CACHE_DIR", sub, 1);
    run_once("unwritable cache directory");
    assert_non_null(strstr(logged, "pipeline cache not saved"));

    /* turned off: nothing written */
    char off[256];
    assert_int_equal(conf_tmpdir(off, sizeof off, "vkcache-off"), 0);
    setenv("STILE_CACHE_DIR", off, 1);
    setenv("STILE_VULKAN_CACHE", "0", 1);
    run_once("cache off");
    unsigned char *none = cache_file(off, path, sizeof path, &m);
    assert_null(none);
    unsetenv("STILE_VULKAN_CACHE");
    unsetenv("STILE_CACHE_DIR");
    free(good);
    free(bad);
    assert_int_equal(conf_tmpdir_remove(dir), 0);
    assert_int_equal(conf_tmpdir_remove(off), 0);
}

/* ---- STILE_VULKAN_STATS (backends/vulkan/vk_stats.c): the driver's statistics of each new
 * pipeline in the log, or one warning where the device has none to give (lavapipe in Debian 12) ---- */
static void test_pipeline_statistics(void **state)
{
    (void)state;
    setenv("STILE_VULKAN_CACHE", "0", 1);
    setenv("STILE_VULKAN_STATS", "1", 1);
    run_at("pipeline statistics on", STILE_LOG_INFO);
    unsetenv("STILE_VULKAN_STATS");
    const int none = strstr(logged, "STILE_VULKAN_STATS: the device offers no pipeline statistics") != NULL;
    const char *line = strstr(logged, ", subgroups of ");
    printf("# %s\n", none ? "the device offers no pipeline statistics" : "pipeline statistics logged");
    if (none) assert_null(line);
    else assert_non_null(line);
    run_at("pipeline statistics off", STILE_LOG_INFO);
    assert_null(strstr(logged, "STILE_VULKAN_STATS"));
    assert_null(strstr(logged, ", subgroups of "));
    unsetenv("STILE_VULKAN_CACHE");
}

int main(void)
{
    conf_log_init();
    char why[128] = "";
    if (app_open(why, sizeof why) != 0) {
        printf("# SKIP no Vulkan device: %s\n", why);
        app_close();
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_into_the_applications_command_buffer),
        cmocka_unit_test(test_conformance_runner_on_a_wrapped_device),
        cmocka_unit_test(test_wrap_errors),
        cmocka_unit_test(test_wrap_with_the_applications_loader_queue_lock_cache_and_features),
        cmocka_unit_test(test_staged_buffers_round_trip),
        cmocka_unit_test(test_out_of_memory_and_device_loss_are_statuses),
        cmocka_unit_test(test_pipeline_cache_on_disk),
        cmocka_unit_test(test_pipeline_statistics),
        cmocka_unit_test(test_subgroup_shader),
    };
    int rc = cmocka_run_group_tests_name("vulkan", tests, NULL, NULL);
    app_close();
    return rc;
}
