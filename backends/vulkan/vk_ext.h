/* The Vulkan backend's public functions (include/stile/stile_vulkan.h) as the backend implements
 * them: libstile's vk_api.c forwards each public call to this table, which the backend hands the
 * registry with its vtable (linked in or loaded as libstile-vulkan.so: core/module.h). */
#ifndef STILE_VK_EXT_H
#define STILE_VK_EXT_H

#include "stile/stile_vulkan.h"

typedef struct vk_ext {
    stile_status (*device_wrap)(const stile_vulkan_context *ctx, stile_device **out);
    stile_status (*buffer_wrap)(stile_device *device, VkBuffer buffer, VkDeviceSize size, stile_buffer **out);
    stile_status (*buffer_get)(const stile_buffer *buffer, VkBuffer *out);
    stile_status (*record)(const stile_plan *plan, const stile_io *io, VkCommandBuffer cmd);
    /* How the backend turns a VkResult into a status on a device (vk_fail: a lost device refuses
     * every later call); tests/test_vulkan.c drives device loss through it. */
    stile_status (*device_fail)(void *device_impl, VkResult r, const char *what);
} vk_ext;

#endif /* STILE_VK_EXT_H */
