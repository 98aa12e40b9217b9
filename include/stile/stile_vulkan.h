/* stile_vulkan.h: bring your own Vulkan. An application that already has a VkInstance, VkDevice,
 * queue and VkBuffers hands them to stile, and stile records its work into the application's command
 * buffers. Only this header names Vulkan types; include/stile/stile.h stays backend-neutral.
 *
 * Lifetimes: stile never destroys what it is given (instance, device, buffers). Destroy stile's
 * objects (plans, buffers, then the device) before the Vulkan objects they wrap.
 *
 * The tensor-core path (GL_KHR_cooperative_matrix) needs, on the VkDevice: Vulkan 1.2, the extension
 * VK_KHR_cooperative_matrix with the feature cooperativeMatrix, and the Vulkan 1.2 features
 * shaderFloat16 and vulkanMemoryModel. An application says it enabled them either by handing stile
 * the features and extensions it passed to vkCreateDevice (features, extensions: stile reads what
 * it needs from them) or with the flag STILE_VULKAN_COOPMAT; stile then also checks the physical
 * device (16xNx16 f16 -> f32 shapes, natively 32-invocation subgroups). Otherwise plans take a
 * portable path. */
#ifndef STILE_VULKAN_H
#define STILE_VULKAN_H

#include <string.h>
#include <vulkan/vulkan.h>

#include "stile/stile.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A tensor in the application's VkBuffer: `bytes` from byte `offset` (a multiple of the element
 * size; of 4 for lse and 16-bit o), for stile_io on a Vulkan device, without wrapping the buffer.
 * The buffer must have VK_BUFFER_USAGE_STORAGE_BUFFER_BIT and be bound to memory; the application
 * vouches that [offset, offset + bytes) lies inside it (stile cannot ask the driver a buffer's size). */
static inline stile_tensor stile_vulkan_tensor(VkBuffer buffer, VkDeviceSize offset, size_t bytes, stile_dtype dtype)
{
    stile_tensor t;
    memset(&t, 0, sizeof t);
    memcpy(&t.handle, &buffer, sizeof buffer < sizeof t.handle ? sizeof buffer : sizeof t.handle);
    t.offset = offset;
    t.bytes = bytes;
    t.dtype = dtype;
    return t;
}

/** The application enabled what the tensor-core path needs (see the top of this header). */
#define STILE_VULKAN_COOPMAT 1u
/** The same bit under its name from when the tensor-core path was VK_NV_cooperative_matrix's; it now
 * says the application enabled VK_KHR_cooperative_matrix. */
#define STILE_VULKAN_COOPMAT_NV STILE_VULKAN_COOPMAT

/** The application's Vulkan objects. Thread-safety: plain data, read during the call. */
typedef struct stile_vulkan_context {
    uint32_t struct_size;             /**< sizeof(stile_vulkan_context) (required: the ABI rules of stile.h) */
    PFN_vkGetInstanceProcAddr get_instance_proc_addr; /**< optional: the application's entry point into Vulkan;
                                           every Vulkan function stile calls on this device is loaded
                                           through it (NULL: the loader's vkGetInstanceProcAddr) */
    VkInstance instance;              /**< the instance the device was created from */
    VkPhysicalDevice physical_device; /**< the physical device of `device` */
    VkDevice device;                  /**< the logical device stile creates its pipelines on */
    VkQueue queue;                    /**< a queue of queue_family that stile_plan_execute and buffer copies submit
                                           to, guarded by stile's own lock: the application must not use it from
                                           another thread meanwhile. VK_NULL_HANDLE: stile only records
                                           (stile_vulkan_record); execute and copies then return
                                           STILE_ERR_UNSUPPORTED. */
    uint32_t queue_family;            /**< a family with VK_QUEUE_COMPUTE_BIT; command buffers passed to
                                           stile_vulkan_record must come from a pool of this family */
    uint32_t queue_index;             /**< the queue's index within its family (passed to lock_queue) */
    uint32_t flags;                   /**< STILE_VULKAN_COOPMAT, or 0 */
    /** Optional, as libplacebo's: the application's lock of `queue`. stile calls lock_queue before and
     * unlock_queue after each vkQueueSubmit of its own, and never holds it while waiting for the
     * work (a fence). Both NULL: stile takes a lock of its own around its submissions, and the
     * application must not use the queue from another thread meanwhile. Called on the thread of
     * the stile call. */
    void (*lock_queue)(void *user, uint32_t queue_family, uint32_t queue_index);
    void (*unlock_queue)(void *user, uint32_t queue_family, uint32_t queue_index);
    void *queue_user;                 /**< passed to lock_queue and unlock_queue */
    VkPipelineCache pipeline_cache;   /**< optional: stile creates its pipelines through the application's
                                           cache (kept across runs by the application); never destroyed */
    const VkPhysicalDeviceFeatures2 *features; /**< optional: the feature chain the application passed to
                                           vkCreateDevice (VkPhysicalDeviceVulkan12Features and
                                           VkPhysicalDeviceCooperativeMatrixFeaturesNV are read from it) */
    const char *const *extensions;    /**< optional: the device extensions the application enabled ... */
    uint32_t num_extensions;          /**< ... and how many */
} stile_vulkan_context;

/** A stile device on the application's VkDevice. Its name is "vulkan:app". The device creates its own
 * pipelines, descriptor sets and command pool on `device`, and frees them on stile_device_close.
 * Errors: STILE_ERR_NULL_ARGUMENT (ctx, out or a handle NULL), STILE_ERR_UNSUPPORTED (queue family
 * without compute, or the Vulkan backend is not built), STILE_ERR_BACKEND / STILE_ERR_OUT_OF_MEMORY
 * from Vulkan. *out is NULL on failure. Thread-safety: the returned device is like any other. */
STILE_API stile_status stile_vulkan_device_wrap(const stile_vulkan_context *ctx, stile_device **out);

/** A stile buffer over the application's VkBuffer (created on the wrapped device, with
 * VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, and TRANSFER_SRC/DST if stile_buffer_upload/download are to be
 * used on it; `size` bytes from offset 0, memory bound). stile_buffer_data() of it is an address that
 * stands for the VkBuffer's offset 0: use it, plus byte offsets, in stile_tensor.data. It is not host
 * memory and must not be dereferenced. stile_buffer_destroy forgets the VkBuffer without destroying it.
 * Errors: STILE_ERR_NULL_ARGUMENT, STILE_ERR_INVALID_SIZE (size 0), STILE_ERR_INVALID_ARGUMENT (not a
 * Vulkan device), STILE_ERR_OUT_OF_MEMORY. Thread-safety: as stile_buffer_create. */
STILE_API stile_status stile_vulkan_buffer_wrap(stile_device *device, VkBuffer buffer, VkDeviceSize size, stile_buffer **out);

/** The VkBuffer behind a buffer of a Vulkan device (made by stile_buffer_create or wrapped), e.g. for
 * the application's barriers. Errors: STILE_ERR_NULL_ARGUMENT, STILE_ERR_INVALID_ARGUMENT (not a
 * Vulkan buffer). Thread-safety: any thread. */
STILE_API stile_status stile_vulkan_buffer_get(const stile_buffer *buffer, VkBuffer *out);

/** Record the plan's work on io into the application's command buffer `cmd` (in the recording state,
 * from a pool of the device's queue family). io's tensors must lie in buffers of the plan's device
 * (stile_buffer_create or stile_vulkan_buffer_wrap). The same checks as stile_plan_execute come first;
 * on failure nothing is recorded.
 *
 * What is recorded: compute pipeline and descriptor set binds, push constants and dispatches: the
 * application's compute bindings are disturbed. No barriers: before the recorded work, q, k and v must
 * be visible to VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT / VK_ACCESS_SHADER_READ_BIT; after it, o and lse are
 * written by COMPUTE_SHADER / SHADER_WRITE, and the application adds the barrier its readers need.
 * The descriptor sets belong to the plan (one per distinct set of buffers): the plan must outlive
 * every command buffer it recorded into, and the buffers must stay alive until those finish.
 * Thread-safety: several threads may record the same plan at once into distinct command buffers. */
STILE_API stile_status stile_vulkan_record(const stile_plan *plan, const stile_io *io, VkCommandBuffer cmd);

#ifdef __cplusplus
}
#endif

#endif /* STILE_VULKAN_H */
