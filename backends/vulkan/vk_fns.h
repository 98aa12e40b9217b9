/* The Vulkan functions the backend calls, loaded through a vkGetInstanceProcAddr: the loader's for
 * devices stile opens, the application's for devices it wraps (stile_vulkan_context), as libplacebo
 * does. The backend's sources are built with VK_NO_PROTOTYPES: every call goes through a table. */
#ifndef STILE_VK_FNS_H
#define STILE_VK_FNS_H

#ifndef VK_NO_PROTOTYPES
#error "vk_fns.h: define VK_NO_PROTOTYPES before including any Vulkan header"
#endif
#include <stddef.h>
#include <vulkan/vulkan.h>

/* The loader's entry point (libvulkan.so.1, which the backend links). */
VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vkGetInstanceProcAddr(VkInstance instance, const char *pName);

#define VK_INSTANCE_FNS(X)                                                                                                    \
    X(vkDestroyInstance)                                                                                                  \
    X(vkEnumeratePhysicalDevices)                                                                                         \
    X(vkGetPhysicalDeviceProperties)                                                                                      \
    X(vkGetPhysicalDeviceProperties2)                                                                                     \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                                           \
    X(vkGetPhysicalDeviceMemoryProperties)                                                                                \
    X(vkGetPhysicalDeviceFeatures2)                                                                                       \
    X(vkEnumerateDeviceExtensionProperties)                                                                               \
    X(vkCreateDevice)                                                                                                     \
    X(vkGetDeviceProcAddr)

#define VK_DEVICE_FNS(X)                                                                                                      \
    X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkDeviceWaitIdle) X(vkQueueSubmit)                                           \
    X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements) X(vkBindBufferMemory)                           \
    X(vkAllocateMemory) X(vkFreeMemory) X(vkMapMemory) X(vkUnmapMemory)                                                   \
    X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateComputePipelines) X(vkDestroyPipeline)                     \
    X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout)   \
    X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets)            \
    X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkFreeCommandBuffers)                    \
    X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkCreateFence) X(vkDestroyFence) X(vkWaitForFences)                   \
    X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdPushConstants) X(vkCmdDispatch) X(vkCmdPipelineBarrier)        \
    X(vkCmdCopyBuffer) X(vkCmdFillBuffer) X(vkCreatePipelineCache) X(vkDestroyPipelineCache) X(vkGetPipelineCacheData)

typedef struct vk_fns {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
#define VK_FN_MEMBER(name) PFN_##name name;
    VK_INSTANCE_FNS(VK_FN_MEMBER)
    VK_DEVICE_FNS(VK_FN_MEMBER)
#undef VK_FN_MEMBER
} vk_fns;

/* The instance-level functions of inst through gipa (NULL: the loader's); 0, or nonzero with the
 * name of the first the implementation lacks in missing. */
int vk_fns_instance(vk_fns *f, PFN_vkGetInstanceProcAddr gipa, VkInstance inst, char *missing, size_t size);
/* The device-level functions of dev through f->vkGetDeviceProcAddr; 0, or nonzero as above. */
int vk_fns_device(vk_fns *f, VkDevice dev, char *missing, size_t size);

#endif /* STILE_VK_FNS_H */
