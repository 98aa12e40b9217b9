/* Loading the Vulkan function table (vk_fns.h). */
#define VK_NO_PROTOTYPES
#include <stdio.h>
#include <string.h>

#include "vk_fns.h"

/* Load one function of the table through LOOKUP(name); on a miss, name it and fail. */
#define LOAD(name)                                                                                                            \
    if (!(f->name = (PFN_##name)LOOKUP(#name))) {                                                                         \
        snprintf(missing, size, "%s", #name);                                                                             \
        return 1;                                                                                                         \
    }

int vk_fns_instance(vk_fns *f, PFN_vkGetInstanceProcAddr gipa, VkInstance inst, char *missing, size_t size)
{
    memset(f, 0, sizeof *f);
    f->vkGetInstanceProcAddr = gipa ? gipa : vkGetInstanceProcAddr;
#define LOOKUP(n) f->vkGetInstanceProcAddr(inst, n)
    VK_INSTANCE_FNS(LOAD)
#undef LOOKUP
    return 0;
}

int vk_fns_device(vk_fns *f, VkDevice dev, char *missing, size_t size)
{
#define LOOKUP(n) f->vkGetDeviceProcAddr(dev, n)
    VK_DEVICE_FNS(LOAD)
#undef LOOKUP
    return 0;
}
