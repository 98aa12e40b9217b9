/* The Vulkan backend's shared state: devices (opened by stile or wrapped from an application),
 * buffers, and the helpers the device, memory and plan parts use. */
#ifndef STILE_VK_INTERNAL_H
#define STILE_VK_INTERNAL_H

#include <pthread.h>
#include "vk_fns.h"

#include "stile/stile_vulkan.h"
#include "stile_internal.h"

/* A VkBuffer and the address stile hands out for it. Host-visible memory is mapped and the mapping is
 * the address. Device-local memory (and a caller's VkBuffer) gets an address from a PROT_NONE
 * reservation of the same size: unique, never dereferenced, found again by range at execute. */
typedef struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem; /* VK_NULL_HANDLE: the application's VkBuffer (not ours to destroy) */
    char *addr;
    int mapped;         /* addr is a host mapping of mem; else a reservation and copies are staged */
    size_t bytes;
    struct vk_buffer *next;
} vk_buffer;

typedef struct vk_pipeline {
    uint32_t kind, head_dim, dtype, rows; /* kind: VK_PATH_* */
    VkPipeline pipe;
    struct vk_pipeline *next;
} vk_pipeline;

enum { VK_PATH_PORTABLE = 0, VK_PATH_COOPMAT = 1, VK_PATH_SUBGROUP = 2, VK_PATH_COOPMAT2 = 3, VK_PATH_BACKWARD = 4, VK_PATH_KEY_TILES = 5 };

typedef struct vk_device {
    vk_fns vk;              /* every Vulkan call on this device goes through it */
    int owned;              /* instance and device created by stile (else the application's) */
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;          /* VK_NULL_HANDLE: record only */
    uint32_t family, queue_index;
    /* the application's queue lock (stile_vulkan_context), or NULL: qlock */
    void (*lock_queue)(void *user, uint32_t family, uint32_t index);
    void (*unlock_queue)(void *user, uint32_t family, uint32_t index);
    void *queue_user;
    VkPipelineCache cache;  /* the application's pipeline cache, stile's on disk (own_cache), or VK_NULL_HANDLE */
    int own_cache;          /* cache is stile's, loaded from and saved to cache_path (vk_cache.c) */
    char cache_path[512];
    VkPhysicalDeviceMemoryProperties memprops;
    VkDeviceSize max_range, max_alloc;
    int force_staging;      /* STILE_VULKAN_STAGING=1: stage copies even where memory could be mapped */
    uint32_t coop_n;        /* 0: no tensor-core path; else N of the 16xNx16 KHR cooperative matrix shape */
    int coop_sg32;          /* its pipelines require 32-wide full subgroups (subgroup size control) */
    char coop_reason[128];  /* why there is no tensor-core path */
    int nv2;                /* the NV cooperative-matrix-2 path (vk_coopmat2.c) runs here and is enabled */
    char nv2_reason[128];   /* why it does not */
    int subgroup_ok;        /* the subgroup shader runs here (sta_subgroup.comp: shuffles, 4..64-wide subgroups) */
    VkShaderModule portable[2], coop[2], coop2[2]; /* head dim 64, 128 */
    VkShaderModule subgroup[4];  /* f32 d 64, f32 d 128, 16-bit d 64, 16-bit d 128 */
    VkShaderModule backward[2];  /* the backward pass (sta_backward.comp), d 64, 128 */
    VkShaderModule key_tiles;    /* caller-chosen key tiles made walkable (sta_key_tiles.comp) */
    VkDescriptorSetLayout dsl, bdsl;  /* the forward's 6 bindings, the backward's 10 */
    VkPipelineLayout layout, blayout;
    VkCommandPool pool;
    pthread_mutex_t lock;   /* buffers, pipelines */
    pthread_mutex_t plock;  /* the command pool */
    pthread_mutex_t qlock;  /* the queue, when the application gave no lock of its own */
    pthread_mutex_t slock;  /* the staging buffer's contents: one staged copy at a time */
    vk_buffer *stage;       /* host-visible staging buffer, made on first use */
    vk_buffer *buffers;
    vk_pipeline *pipelines;
    int validation_errors;
    int stats;              /* STILE_VULKAN_STATS=1 on a device that offers pipeline statistics: vk_stats_log */
    int lost;               /* VK_ERROR_DEVICE_LOST seen: every later call fails with STILE_ERR_DEVICE_LOST */
} vk_device;

/* A plan's descriptor sets, one per set of buffers it was executed on (n bindings: 6 forward, 10 backward). */
enum { VK_MAX_BINDINGS = 10 };
typedef struct vk_dset {
    VkBuffer key[VK_MAX_BINDINGS];
    int n;
    VkDescriptorPool pool;
    VkDescriptorSet set;
    struct vk_dset *next;
} vk_dset;

/* A Vulkan plan (vk_plan.c; its backward pass in vk_backward.c). */
typedef struct vk_plan {
    vk_device *dev;
    vk_buffer *table;    /* the header and schedule tables (ints) */
    int path;            /* VK_PATH_* chosen at plan time */
    int block_rows, nblocks;
    VkPipeline pipe;     /* the path's pipeline */
    uint32_t head_dim, dtype; /* for the portable shader on the same query blocks, made when an execution
                                 needs it (tensors the path's shader cannot take): never on the first call */
    pthread_mutex_t lock;
    pthread_mutex_t kt_lock; /* caller-chosen key tiles: executions take turns on the table's region */
    size_t kt_bad_at;        /* ... whose count of entries out of range is at this byte of the table */
    vk_dset *sets;
} vk_plan;

/* Caller-chosen key tiles (vk_key_tiles.c): the table's region (bytes; 0 for a window plan) and its
 * header entries (region at byte `at` of table t); an execution's lists bound for
 * shaders/sta_key_tiles.comp (nothing, active 0, for a window plan), recorded before the shaders that
 * walk them, and the verdict read back after the submission (STILE_ERR_OUT_OF_RANGE for skipped
 * entries). */
typedef struct vk_kt {
    int active, transpose, has_err, rows, bh;
    VkPipeline pipe;
    VkDescriptorSet set;
    uint32_t kt_off, err_off;
    vk_buffer *table;
    size_t bad_at;
} vk_kt;
size_t vk_key_tiles_region(const stile_plan *plan);
void vk_key_tiles_header(const stile_plan *plan, int32_t *t, size_t at);
stile_status vk_key_tiles_bind(vk_device *d, const stile_plan *plan, vk_plan *vp, const stile_tensor *kt, const stile_tensor *err,
                               int transpose, vk_kt *out);
void vk_key_tiles_record(vk_device *d, VkCommandBuffer cmd, const vk_kt *k);
stile_status vk_key_tiles_verdict(vk_device *d, const vk_kt *k);

/* Query blocks per dispatch (one dispatch dimension), and the most heads or batch entries. */
enum { VK_MAX_DISPATCH = 65535 };

/* Whether 16-bit values of tensor t (STILE_Q .. STILE_O) can be written two at a time: an even head
 * dim, dim stride 1, the other strides even. */
int vk_pairs_ok(const stile_resolved *r, int t);
/* The dispatches of the plan's nblocks query blocks (VK_MAX_DISPATCH at a time): pc (pc_size bytes)
 * pushed before each with *block_base, a field of pc, set to the dispatch's first block. */
void vk_dispatch_blocks(vk_device *d, VkCommandBuffer cmd, VkPipelineLayout layout, void *pc, uint32_t pc_size,
                        uint32_t *block_base, int nblocks, uint32_t heads, uint32_t batch);
/* A barrier after shaders that wrote outputs: for the host (mapped memory), transfers and later shaders. */
void vk_barrier_after_writes(vk_device *d, VkCommandBuffer cmd);
/* The pipeline of a path for (head dim, dtype, rows), made once per device (d->lock). */
stile_status vk_get_pipeline(vk_device *d, uint32_t kind, uint32_t head_dim, uint32_t dtype, uint32_t rows, VkPipeline *out);
/* The plan's descriptor set for these n buffers (6 or 10), made on first use. */
stile_status vk_get_set(vk_plan *vp, int n, const VkBuffer *key, VkDescriptorSet *out);
/* The VkBuffer and byte offset of a tensor of unit-byte elements: an address inside a buffer of d, or
 * the application's VkBuffer handle and offset (its span within the device's storage buffer range);
 * the offset a multiple of 2 bytes for 16-bit elements, else 4. */
stile_status vk_locate(vk_device *d, const stile_tensor *t, size_t span, size_t unit, const char *name, VkBuffer *buf,
                       size_t *byte_off);
/* The backward pass (vk_backward.c): the vtable's backward and backward_flops. */
stile_status vk_backward(void *device, const stile_plan *plan, void *impl, const stile_grad_io *io, stile_exec_info *info);
double vk_backward_flops(const stile_plan *plan);

/* The driver's statistics of a new pipeline (registers, spills, ...) as log lines (vk_stats.c; d->stats). */
void vk_stats_log(vk_device *d, VkPipeline pipe, uint32_t kind, uint32_t head_dim, uint32_t dtype);

/* Whether the physical device offers the extension. */
int vk_has_extension(const vk_fns *f, VkPhysicalDevice phys, const char *name);
/* Whether the device runs the NV cooperative-matrix-2 shader (its extension and features, Vulkan 1.3
 * on the device and in instance_api, workgroup matrices for 256 invocations, the shared memory); 0 with
 * the reason if not (vk_coopmat2.c). */
int vk_nv2_probe(const vk_fns *f, VkInstance inst, VkPhysicalDevice phys, uint32_t instance_api, char *reason, size_t size);

/* A VkResult as a status: out of memory, device lost (remembered), or a backend error. */
stile_status vk_fail(vk_device *d, VkResult r, const char *what);
/* STILE_ERR_DEVICE_LOST once the device was lost, else STILE_OK. */
stile_status vk_check_lost(const vk_device *d);

/* The pipeline layout, shaders and command pool on d->dev (d->phys, d->family, d->coop_* set). */
stile_status vk_device_setup(vk_device *d);
void vk_device_teardown(vk_device *d);

/* The pipeline cache on disk (vk_cache.c): opened on a device without the application's cache,
 * saved after each pipeline it gains, destroyed with the device. None of them fails. */
void vk_cache_open(vk_device *d);
void vk_cache_save(vk_device *d);
void vk_cache_close(vk_device *d);

/* Buffers: a device buffer in the device's list (found by address), or a staging buffer outside it. */
stile_status vk_make_buffer(vk_device *d, size_t bytes, vk_buffer **out);
stile_status vk_wrap_buffer(vk_device *d, VkBuffer buf, size_t bytes, vk_buffer **out);
void vk_free_buffer(vk_device *d, vk_buffer *b);
vk_buffer *vk_find_buffer(vk_device *d, const void *addr, size_t bytes);
/* Copy between host memory and a device buffer at byte offset (staged or through the mapping). */
stile_status vk_copy(vk_device *d, vk_buffer *b, size_t offset, void *host, size_t bytes, int to_device);

/* Record with rec(cmd, ctx), submit to the device's queue and wait. */
typedef void (*vk_recorder)(VkCommandBuffer cmd, void *ctx);
stile_status vk_submit(vk_device *d, vk_recorder rec, void *ctx, const char *what);

/* The backend's device entry points (vtable). */
int vk_device_count(char *reason, size_t size);
stile_status vk_device_open(int index, const stile_device_params *params, void **impl, stile_device_info *info);
void vk_device_close(void *impl);
int vk_auto_ok(int index);

/* The backend's buffer entry points (vtable). */
stile_status vk_buffer_alloc(void *device, size_t bytes, void **ptr);
void vk_buffer_free(void *device, void *ptr);
stile_status vk_buffer_copy(void *device, void *dst, const void *src, size_t bytes, int to_device);

extern const stile_backend stile_backend_vulkan;

/* The public functions as the backend implements them (vk_ext.h's table). */
stile_status vk_api_device_wrap(const stile_vulkan_context *ctx, stile_device **out);
stile_status vk_api_buffer_wrap(stile_device *device, VkBuffer buffer, VkDeviceSize size, stile_buffer **out);
stile_status vk_api_buffer_get(const stile_buffer *buffer, VkBuffer *out);
stile_status vk_api_record(const stile_plan *plan, const stile_io *io, VkCommandBuffer cmd);

#endif /* STILE_VK_INTERNAL_H */
