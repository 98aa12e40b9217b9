/* Pipeline statistics (STILE_VULKAN_STATS=1): what the driver's compiler made of each shader --
 * registers, local (spilled) memory, shared memory, instruction counts, as the driver names them --
 * read through VK_KHR_pipeline_executable_properties and logged at STILE_LOG_INFO, one line per
 * executable. Register pressure decides how many workgroups share a multiprocessor, so this is the
 * first thing to look at when a shader is slow; it is how the tensor-core shader's 232 registers on
 * an H200 were found. */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <stdio.h>

#include "vk_internal.h"

static const char *path_name(uint32_t kind)
{
    return kind == VK_PATH_KEY_TILES ? "key-tiles"
           : kind == VK_PATH_BACKWARD ? "backward"
           : kind == VK_PATH_COOPMAT2 ? "nv-coopmat2"
           : kind == VK_PATH_COOPMAT ? "khr-coopmat"
           : kind == VK_PATH_SUBGROUP ? "subgroup"
                                      : "portable";
}

void vk_stats_log(vk_device *d, VkPipeline pipe, uint32_t kind, uint32_t head_dim, uint32_t dtype)
{
    PFN_vkGetPipelineExecutablePropertiesKHR props =
        (PFN_vkGetPipelineExecutablePropertiesKHR)d->vk.vkGetDeviceProcAddr(d->dev, "vkGetPipelineExecutablePropertiesKHR");
    PFN_vkGetPipelineExecutableStatisticsKHR stats =
        (PFN_vkGetPipelineExecutableStatisticsKHR)d->vk.vkGetDeviceProcAddr(d->dev, "vkGetPipelineExecutableStatisticsKHR");
    const char *dt = dtype == STILE_DTYPE_F32 ? "f32" : dtype == STILE_DTYPE_F16 ? "f16" : "bf16";
    VkPipelineInfoKHR pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, .pipeline = pipe};
    VkPipelineExecutablePropertiesKHR ep[4];
    uint32_t ne = 4;
    for (uint32_t i = 0; i < ne; i++) ep[i] = (VkPipelineExecutablePropertiesKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR};
    if (!props || !stats || props(d->dev, &pi, &ne, ep) < 0) {
        stile_log(STILE_LOG_WARN, "vulkan: pipeline %s d%u %s: the driver gave no statistics", path_name(kind), head_dim, dt);
        return;
    }
    for (uint32_t e = 0; e < ne; e++) {
        VkPipelineExecutableInfoKHR ei = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, .pipeline = pipe, .executableIndex = e};
        VkPipelineExecutableStatisticKHR st[32];
        uint32_t ns = 32;
        for (uint32_t i = 0; i < ns; i++) st[i] = (VkPipelineExecutableStatisticKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
        char line[1024];
        size_t n = (size_t)snprintf(line, sizeof line, "vulkan: pipeline %s d%u %s, %s, subgroups of %u:", path_name(kind), head_dim, dt,
                                    ep[e].name, ep[e].subgroupSize);
        if (stats(d->dev, &ei, &ns, st) < 0) ns = 0;
        for (uint32_t i = 0; i < ns && n < sizeof line; i++) {
            const VkPipelineExecutableStatisticValueKHR v = st[i].value;
            const char *sep = i ? "," : "";
            switch (st[i].format) {
            case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
                n += (size_t)snprintf(line + n, sizeof line - n, "%s %s %s", sep, st[i].name, v.b32 ? "yes" : "no");
                break;
            case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
                n += (size_t)snprintf(line + n, sizeof line - n, "%s %s %lld", sep, st[i].name, (long long)v.i64);
                break;
            case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
                n += (size_t)snprintf(line + n, sizeof line - n, "%s %s %llu", sep, st[i].name, (unsigned long long)v.u64);
                break;
            default:
                n += (size_t)snprintf(line + n, sizeof line - n, "%s %s %g", sep, st[i].name, v.f64);
                break;
            }
        }
        if (!ns) snprintf(line + n, sizeof line - n, " (none)");
        stile_log(STILE_LOG_INFO, "%s", line);
    }
}
