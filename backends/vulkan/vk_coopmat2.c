/* The NVIDIA cooperative-matrix-2 path (VK_NV_cooperative_matrix2, shaders/sta_coopmat2.comp): whether
 * a device runs it (vk_device.c enables what it needs when stile opens the device). */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <stdio.h>
#include <stdlib.h>

#include "vk_internal.h"

#include "schedule_table.h"
#include "vk_nv_coopmat2.h"

int vk_nv2_probe(const vk_fns *f, VkInstance inst, VkPhysicalDevice phys, uint32_t instance_api, char *reason, size_t size)
{
#if !STILE_VK_NV_COOPMAT2
    (void)f, (void)inst, (void)phys, (void)instance_api;
    snprintf(reason, size, "NV coopmat2 shader not built (glslang >= 15.1 at build time)");
    return 0;
#else
    /* the shader's shared memory at d 128: K and V rows of a 64-key chunk (the Q block before them),
     * padded by 16 bytes a row, and the block's row tokens */
    const uint32_t shader_shared = 2 * 64 * (128 / 8 + 1) * 16 + STILE_BLOCK_ROWS_VK_COOPMAT2 * 4;
    if (!vk_has_extension(f, phys, VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME) ||
        !vk_has_extension(f, phys, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME)) {
        snprintf(reason, size, "no VK_NV_cooperative_matrix2");
        return 0;
    }
    VkPhysicalDeviceProperties props;
    f->vkGetPhysicalDeviceProperties(phys, &props);
    if (props.apiVersion < VK_API_VERSION_1_3 || instance_api < VK_API_VERSION_1_3) {
        snprintf(reason, size, "NV coopmat2: needs Vulkan 1.3");
        return 0;
    }
    VkPhysicalDeviceCooperativeMatrix2FeaturesNV nv2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_FEATURES_NV};
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR khr = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
                                                        .pNext = &nv2};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &khr};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    f->vkGetPhysicalDeviceFeatures2(phys, &f2);
    if (!nv2.cooperativeMatrixWorkgroupScope || !nv2.cooperativeMatrixFlexibleDimensions || !nv2.cooperativeMatrixReductions ||
        !nv2.cooperativeMatrixConversions || !nv2.cooperativeMatrixPerElementOperations || !khr.cooperativeMatrix) {
        snprintf(reason, size, "NV coopmat2 without workgroup scope, flexible dimensions, reductions, conversions or per-element operations");
        return 0;
    }
    if (!f11.storageBuffer16BitAccess || !f12.shaderFloat16 || !f12.vulkanMemoryModel || !f2.features.shaderInt16) {
        snprintf(reason, size, "NV coopmat2: missing 16-bit storage, shaderFloat16, shaderInt16 or vulkanMemoryModel");
        return 0;
    }
    VkPhysicalDeviceCooperativeMatrix2PropertiesNV np = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_PROPERTIES_NV};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &np};
    f->vkGetPhysicalDeviceProperties2(phys, &p2);
    const uint32_t shared = shader_shared + np.cooperativeMatrixWorkgroupScopeReservedSharedMemory;
    if (np.cooperativeMatrixWorkgroupScopeMaxWorkgroupSize < 256 || props.limits.maxComputeWorkGroupInvocations < 256 ||
        props.limits.maxComputeSharedMemorySize < shared || np.cooperativeMatrixFlexibleDimensionsMaxDimension < 128) {
        snprintf(reason, size, "NV coopmat2: workgroup matrices for %u invocations, %u bytes of shared memory, dimensions up to %u; "
                 "the shader needs 256, %u and 128", np.cooperativeMatrixWorkgroupScopeMaxWorkgroupSize,
                 props.limits.maxComputeSharedMemorySize, np.cooperativeMatrixFlexibleDimensionsMaxDimension, shared);
        return 0;
    }
    /* a workgroup-scope f16 x f16 + f32 shape for 256 invocations whose M and N granularities divide 32
     * and K granularity 16 (the shader's matrices are 128 x 64, 128 x D, 64 x D, 128 x 32 and 64 x 32;
     * an H200 lists 32 x 32 x 16) */
    PFN_vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV)f->vkGetInstanceProcAddr(
            inst, "vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV");
    uint32_t n = 0;
    int found = 0;
    if (get && get(phys, &n, NULL) == VK_SUCCESS && n) {
        VkCooperativeMatrixFlexibleDimensionsPropertiesNV *cp = calloc(n, sizeof *cp);
        for (uint32_t i = 0; cp && i < n; i++) cp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_FLEXIBLE_DIMENSIONS_PROPERTIES_NV;
        if (cp && get(phys, &n, cp) == VK_SUCCESS)
            for (uint32_t i = 0; i < n && !found; i++)
                found = cp[i].MGranularity && 32 % cp[i].MGranularity == 0 && cp[i].NGranularity && 32 % cp[i].NGranularity == 0 &&
                        cp[i].KGranularity && 16 % cp[i].KGranularity == 0 && cp[i].AType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                        cp[i].BType == VK_COMPONENT_TYPE_FLOAT16_KHR && cp[i].CType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                        cp[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR && !cp[i].saturatingAccumulation &&
                        cp[i].scope == VK_SCOPE_WORKGROUP_KHR && cp[i].workgroupInvocations == 256;
        free(cp);
    }
    if (!found) snprintf(reason, size, "NV coopmat2: no f16 -> f32 workgroup shape for 256 invocations with granularities 32 x 32 x 16");
    return found;
#endif
}
