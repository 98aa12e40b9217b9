/* The public functions of include/stile/stile_vulkan.h, compiled into libstile itself: each finds
 * the Vulkan backend through the registry (linked in, or its module loaded) and calls it, so the
 * library needs Vulkan's headers but never the loader, and a missing loader is a status. */
#include <stdio.h>

#include "module.h"
#include "vk_ext.h"

static const vk_ext *backend(const char *what, stile_status *st)
{
    const void *ext = NULL;
    char reason[256] = "without its public functions (another build's module?)";
    if (!stile_registry_backend("vulkan", &ext, reason, sizeof reason) || !ext) {
        *st = stile_fail(STILE_ERR_UNSUPPORTED, "%s: the Vulkan backend is %s", what, reason);
        return NULL;
    }
    return ext;
}

STILE_API stile_status stile_vulkan_device_wrap(const stile_vulkan_context *ctx, stile_device **out)
{
    if (out) *out = NULL;
    stile_status st;
    const vk_ext *x = backend("stile_vulkan_device_wrap", &st);
    return x ? x->device_wrap(ctx, out) : st;
}

STILE_API stile_status stile_vulkan_buffer_wrap(stile_device *device, VkBuffer buffer, VkDeviceSize size, stile_buffer **out)
{
    if (out) *out = NULL;
    stile_status st;
    const vk_ext *x = backend("stile_vulkan_buffer_wrap", &st);
    return x ? x->buffer_wrap(device, buffer, size, out) : st;
}

STILE_API stile_status stile_vulkan_buffer_get(const stile_buffer *buffer, VkBuffer *out)
{
    stile_status st;
    const vk_ext *x = backend("stile_vulkan_buffer_get", &st);
    return x ? x->buffer_get(buffer, out) : st;
}

STILE_API stile_status stile_vulkan_record(const stile_plan *plan, const stile_io *io, VkCommandBuffer cmd)
{
    stile_status st;
    const vk_ext *x = backend("stile_vulkan_record", &st);
    return x ? x->record(plan, io, cmd) : st;
}
