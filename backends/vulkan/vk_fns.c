/* Loading the Vulkan function table (vk_fns.h). */
#define VK_NO_PROTOTYPES
#include <stdio.h>
#include <string.h>

#include "vk_fns.h"

int vk_fns_instance(vk_fns *f, PFN_vkGetInstanceProcAddr gipa, VkInstance inst, char *missing, size_t size)
{
    memset(f, 0, sizeof *f);
    f->vkGetInstanceProcAddr = gipa ? gipa : vkGetInstanceProcAddr;
#define LOAD(name)                                                                                                            \
    if (!(f->name = (PFN_##name)f->vkGetInstanceProcAddr(inst, #name))) {                                                 \
        snprintf(missing, size, "%s", #name);                                                                             \
        return 1;                                                                                                         \
    }
    VK_INSTANCE_FNS(LOAD)
#undef LOAD
    return 0;
}

int vk_fns_device(vk_fns *f, VkDevice dev, char *missing, size_t size)
{
#define LOAD(name)                                                                                                            \
    if (!(f->name = (PFN_##name)f->vkGetDeviceProcAddr(dev, #name))) {                                                    \
        snprintf(missing, size, "%s", #name);                                                                             \
        return 1;                                                                                                         \
    }
    VK_DEVICE_FNS(LOAD)
#undef LOAD
    return 0;
}
