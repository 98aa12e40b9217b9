/* Vulkan devices: opened by stile ("vulkan:N", its own instance and device) or wrapped around an
 * application's (stile_vulkan_device_wrap). Both get the same pipeline layout, shaders and command
 * pool, and the tensor-core path when the device has what it needs (docs/backends.md).
 * With STILE_VULKAN_VALIDATION=1 a device stile opens enables the Khronos validation layer; any message
 * it sends is logged as an error and fails the call that caused it. STILE_VULKAN_PATH=portable turns
 * the tensor-core path off; STILE_VULKAN_STAGING=1 stages copies even into host-visible memory. */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stile/stile_vulkan.h"
#include "vk_internal.h"
#include "vk_nv_coopmat2.h"

static const uint32_t spv_backward_d64[] =
#include "sta_backward_d64.spv.h"
    ;
static const uint32_t spv_backward_d128[] =
#include "sta_backward_d128.spv.h"
    ;
static const uint32_t spv_key_tiles[] =
#include "sta_key_tiles.spv.h"
    ;
static const uint32_t spv_portable_d64[] =
#include "sta_portable_d64.spv.h"
    ;
static const uint32_t spv_portable_d128[] =
#include "sta_portable_d128.spv.h"
    ;
static const uint32_t spv_subgroup_d64_p0[] =
#include "sta_subgroup_d64_p0.spv.h"
    ;
static const uint32_t spv_subgroup_d128_p0[] =
#include "sta_subgroup_d128_p0.spv.h"
    ;
static const uint32_t spv_subgroup_d64_p1[] =
#include "sta_subgroup_d64_p1.spv.h"
    ;
static const uint32_t spv_subgroup_d128_p1[] =
#include "sta_subgroup_d128_p1.spv.h"
    ;
#if STILE_VK_KHR_COOPMAT /* shaders/khr_spv.py's headers declare spv_khr_d<D>_n<N>[] */
#include "sta_coopmat_khr_d64_n8.spv.h"
#include "sta_coopmat_khr_d128_n8.spv.h"
#include "sta_coopmat_khr_d64_n16.spv.h"
#include "sta_coopmat_khr_d128_n16.spv.h"
#endif
#if STILE_VK_NV_COOPMAT2
#include "sta_coopmat2_d64.spv.h"
#include "sta_coopmat2_d128.spv.h"
#endif

/* Key chunk of the tensor-core shader (its BN) and the shared memory it declares, for the check. */
enum { VK_COOP_BN = 32 };
static uint32_t coop_shared_bytes(uint32_t d, uint32_t n)
{
    const uint32_t bn = VK_COOP_BN;
    return 2 * bn * (d / 8 + 1) * 16 + 4 * 16 * ((bn + 8) / 2) * 4 + 4 * 16 * (bn + 4) * 4 + 64 * 4 + 16 * n * 4 + bn * 4 + 64 * 4;
}

static int env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT type,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)type;
    vk_device *d = user;
    if (sev < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    __atomic_add_fetch(&d->validation_errors, 1, __ATOMIC_SEQ_CST);
    stile_log(STILE_LOG_ERROR, "vulkan validation: %s", data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static uint32_t instance_api(PFN_vkGetInstanceProcAddr gipa)
{
    uint32_t v = VK_API_VERSION_1_1;
    PFN_vkEnumerateInstanceVersion ev = (PFN_vkEnumerateInstanceVersion)gipa(NULL, "vkEnumerateInstanceVersion");
    if (ev && ev(&v) != VK_SUCCESS) v = VK_API_VERSION_1_1;
    return v >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : v >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1;
}

/* An instance of stile's own through the loader, and its functions in f (d: the device it is for, NULL
 * for a look at the devices; its validation messenger). */
static VkResult make_instance(vk_device *d, vk_fns *f, VkInstance *out)
{
    *out = VK_NULL_HANDLE;
    PFN_vkCreateInstance create = (PFN_vkCreateInstance)vkGetInstanceProcAddr(NULL, "vkCreateInstance");
    if (!create) return VK_ERROR_INITIALIZATION_FAILED;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "stile",
                             .pEngineName = "stile", .apiVersion = instance_api(vkGetInstanceProcAddr)};
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation,
        .pUserData = d};
    const int val = d && env_on("STILE_VULKAN_VALIDATION");
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app,
                               .enabledLayerCount = val ? 1u : 0u, .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = val ? 1u : 0u, .ppEnabledExtensionNames = exts,
                               .pNext = val ? &dbg : NULL};
    VkResult r = create(&ci, NULL, out);
    char missing[64];
    if (r == VK_SUCCESS && vk_fns_instance(f, NULL, *out, missing, sizeof missing) != 0) {
        PFN_vkDestroyInstance destroy = (PFN_vkDestroyInstance)vkGetInstanceProcAddr(*out, "vkDestroyInstance");
        if (destroy) destroy(*out, NULL);
        *out = VK_NULL_HANDLE;
        return VK_ERROR_INITIALIZATION_FAILED;
    }
    if (r == VK_SUCCESS && val) {
        PFN_vkCreateDebugUtilsMessengerEXT mk =
            (PFN_vkCreateDebugUtilsMessengerEXT)f->vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
        if (mk) r = mk(*out, &dbg, NULL, &d->messenger);
    }
    return r;
}

int vk_device_count(char *reason, size_t size)
{
    VkInstance inst;
    vk_fns f;
    VkResult r = make_instance(NULL, &f, &inst);
    if (r != VK_SUCCESS) {
        snprintf(reason, size, "no Vulkan loader or driver (vkCreateInstance: %d)", (int)r);
        return 0;
    }
    uint32_t n = 0;
    f.vkEnumeratePhysicalDevices(inst, &n, NULL);
    f.vkDestroyInstance(inst, NULL);
    if (n == 0) snprintf(reason, size, "the Vulkan loader finds no device");
    else
        snprintf(reason, size, "shaders: portable, subgroup%s%s", STILE_VK_KHR_COOPMAT ? ", khr-coopmat" : " (khr-coopmat not built)",
                 STILE_VK_NV_COOPMAT2 ? ", nv-coopmat2" : " (nv-coopmat2 not built)");
    return (int)n;
}

int vk_has_extension(const vk_fns *f, VkPhysicalDevice phys, const char *name)
{
    uint32_t n = 0;
    if (f->vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    int found = 0;
    if (e && f->vkEnumerateDeviceExtensionProperties(phys, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return found;
}

/* What the tensor-core shader needs besides its extension: Vulkan 1.2, shaderFloat16 and
 * vulkanMemoryModel, and the shared memory; 0, or nonzero with the reason. */
static int coop_common(const vk_fns *f, VkPhysicalDevice phys, char *reason, size_t size)
{
    VkPhysicalDeviceProperties props;
    f->vkGetPhysicalDeviceProperties(phys, &props);
    if (props.apiVersion < VK_API_VERSION_1_2 || instance_api(f->vkGetInstanceProcAddr) < VK_API_VERSION_1_2) {
        snprintf(reason, size, "needs Vulkan 1.2");
        return -1;
    }
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
    f->vkGetPhysicalDeviceFeatures2(phys, &f2);
    if (!f12.shaderFloat16 || !f12.vulkanMemoryModel) {
        snprintf(reason, size, "missing shaderFloat16 or vulkanMemoryModel");
        return -1;
    }
    if (props.limits.maxComputeSharedMemorySize < coop_shared_bytes(128, 16)) {
        snprintf(reason, size, "%u bytes of shared memory, the shader needs %u", props.limits.maxComputeSharedMemorySize,
                 coop_shared_bytes(128, 16));
        return -1;
    }
    return 0;
}

/* Subgroups with shuffles in compute, which both the tensor-core and the subgroup shader use. */
static int shuffles_in_compute(const VkPhysicalDeviceSubgroupProperties *sg)
{
    const VkSubgroupFeatureFlags ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    return (sg->supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg->supportedOperations & ops) == ops;
}

/* 32-wide subgroups with shuffles in compute: natively (0), through VK_EXT_subgroup_size_control
 * (1: pipelines require 32 and full subgroups), or not at all (-1, with the reason). */
static int subgroups_32(const vk_fns *f, VkPhysicalDevice phys, int allow_control, char *reason, size_t size)
{
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sc = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    const int ext = allow_control && vk_has_extension(f, phys, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    if (ext) sg.pNext = &sc;
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    f->vkGetPhysicalDeviceProperties2(phys, &p2);
    if (!shuffles_in_compute(&sg)) {
        snprintf(reason, size, "no subgroup shuffles in compute");
        return -1;
    }
    if (sg.subgroupSize == 32) return 0;
    if (ext && sc.minSubgroupSize <= 32 && sc.maxSubgroupSize >= 32 && (sc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
        VkPhysicalDeviceSubgroupSizeControlFeaturesEXT scf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &scf};
        f->vkGetPhysicalDeviceFeatures2(phys, &f2);
        if (scf.subgroupSizeControl && scf.computeFullSubgroups) return 1;
    }
    snprintf(reason, size, "subgroups of %u (the shader needs 32%s)", sg.subgroupSize,
             allow_control ? ", or subgroup size control that offers it" : "");
    return -1;
}

/* VK_KHR_cooperative_matrix (vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR): a 16xNx16 f16 x f16
 * + f32 subgroup shape, N 16 preferred over 8; 32-wide subgroups, natively or required through
 * subgroup size control (*sg32 set) where allow_control. Returns N, or 0 with the reason. */
static uint32_t khr_probe(const vk_fns *f, VkInstance inst, VkPhysicalDevice phys, int allow_control, int *sg32, char *reason,
                          size_t size)
{
    *sg32 = 0;
#if !STILE_VK_KHR_COOPMAT
    (void)f, (void)inst, (void)phys, (void)allow_control;
    snprintf(reason, size, "KHR shader not built (glslang >= 13 at build time)");
    return 0;
#else
    if (!vk_has_extension(f, phys, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME)) {
        snprintf(reason, size, "no VK_KHR_cooperative_matrix");
        return 0;
    }
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cmf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &cmf};
    f->vkGetPhysicalDeviceFeatures2(phys, &f2);
    if (!cmf.cooperativeMatrix) {
        snprintf(reason, size, "VK_KHR_cooperative_matrix without cooperativeMatrix");
        return 0;
    }
    if (coop_common(f, phys, reason, size) != 0) return 0;
    const int sg = subgroups_32(f, phys, allow_control, reason, size);
    if (sg < 0) return 0;
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)f->vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0, found = 0;
    if (get && get(phys, &n, NULL) == VK_SUCCESS && n) {
        VkCooperativeMatrixPropertiesKHR *cp = calloc(n, sizeof *cp);
        for (uint32_t i = 0; cp && i < n; i++) cp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
        if (cp && get(phys, &n, cp) == VK_SUCCESS)
            for (uint32_t i = 0; i < n; i++)
                if (cp[i].MSize == 16 && cp[i].KSize == 16 && (cp[i].NSize == 8 || cp[i].NSize == 16) && cp[i].NSize > found &&
                    cp[i].AType == VK_COMPONENT_TYPE_FLOAT16_KHR && cp[i].BType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                    cp[i].CType == VK_COMPONENT_TYPE_FLOAT32_KHR && cp[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                    !cp[i].saturatingAccumulation && cp[i].scope == VK_SCOPE_SUBGROUP_KHR)
                    found = cp[i].NSize;
        free(cp);
    }
    if (!found) snprintf(reason, size, "KHR: no 16xNx16 f16 -> f32 subgroup shape with N 8 or 16");
    else *sg32 = sg;
    return found;
#endif
}

/* The tensor-core paths for the device: the NVIDIA cooperative-matrix-2 one (on stile's own devices:
 * own) and the KHR one (the GL_NV_cooperative_matrix shader was removed when the KHR one measured
 * faster on an H200, 310 against 334 ms, 2026-12-02). STILE_VULKAN_PATH=portable or subgroup turns both
 * off, khr-coopmat the NV one. Sets d->nv2, d->coop_n and coop_sg32, or the reasons there are none.
 * khr_ok: the application enabled what the KHR path needs (wrapped devices); own: stile opened the
 * device, so it may also enable subgroup size control and the NV path's extension. */
static void coop_select(vk_device *d, int khr_ok, int own)
{
    const char *want = getenv("STILE_VULKAN_PATH");
    want = want && *want ? want : "";
    d->coop_n = 0;
    d->coop_sg32 = 0;
    d->nv2 = 0;
    if (strcmp(want, "portable") == 0 || strcmp(want, "subgroup") == 0) {
        snprintf(d->coop_reason, sizeof d->coop_reason, "STILE_VULKAN_PATH=%s", want);
        snprintf(d->nv2_reason, sizeof d->nv2_reason, "STILE_VULKAN_PATH=%s", want);
        return;
    }
    snprintf(d->coop_reason, sizeof d->coop_reason, "VK_KHR_cooperative_matrix not enabled by the application");
    if (khr_ok) d->coop_n = khr_probe(&d->vk, d->inst, d->phys, own, &d->coop_sg32, d->coop_reason, sizeof d->coop_reason);
    if (strcmp(want, "khr-coopmat") == 0) snprintf(d->nv2_reason, sizeof d->nv2_reason, "STILE_VULKAN_PATH=%s", want);
    else if (!own) snprintf(d->nv2_reason, sizeof d->nv2_reason, "NV coopmat2: only on devices stile opens");
    else d->nv2 = vk_nv2_probe(&d->vk, d->inst, d->phys, instance_api(d->vk.vkGetInstanceProcAddr), d->nv2_reason, sizeof d->nv2_reason);
}

stile_status vk_device_setup(vk_device *d)
{
    VkResult r;
    VkPhysicalDeviceProperties props;
    d->vk.vkGetPhysicalDeviceProperties(d->phys, &props);
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    d->vk.vkGetPhysicalDeviceProperties2(d->phys, &p2);
    d->vk.vkGetPhysicalDeviceMemoryProperties(d->phys, &d->memprops);
    d->max_range = props.limits.maxStorageBufferRange;
    d->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (VkDeviceSize)1 << 31;
    d->force_staging = env_on("STILE_VULKAN_STAGING");
    const uint32_t *code[2] = {spv_portable_d64, spv_portable_d128};
    const size_t size[2] = {sizeof spv_portable_d64, sizeof spv_portable_d128};
    const uint32_t *ccode[2] = {NULL, NULL};
    size_t csize[2] = {0, 0};
#if STILE_VK_KHR_COOPMAT
    if (d->coop_n) {
        ccode[0] = d->coop_n == 16 ? spv_khr_d64_n16 : spv_khr_d64_n8;
        ccode[1] = d->coop_n == 16 ? spv_khr_d128_n16 : spv_khr_d128_n8;
        csize[0] = d->coop_n == 16 ? sizeof spv_khr_d64_n16 : sizeof spv_khr_d64_n8;
        csize[1] = d->coop_n == 16 ? sizeof spv_khr_d128_n16 : sizeof spv_khr_d128_n8;
    }
#endif
    /* the subgroup shader: shuffles in compute, subgroups of 4..64 that tile its 64 invocations */
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 sp2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    d->vk.vkGetPhysicalDeviceProperties2(d->phys, &sp2);
    const char *want = getenv("STILE_VULKAN_PATH");
    /* On CPU implementations (lavapipe) the one-row-per-invocation shader is faster (2.6x on llvmpipe,
     * 2026-12-02): they take the subgroup shader only when STILE_VULKAN_PATH=subgroup asks for it. */
    const int forced = want && strcmp(want, "subgroup") == 0;
    d->subgroup_ok = props.apiVersion >= VK_API_VERSION_1_1 && shuffles_in_compute(&sg) && sg.subgroupSize >= 4 && sg.subgroupSize <= 64 &&
                     64 % sg.subgroupSize == 0 && !(want && strcmp(want, "portable") == 0) &&
                     (props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU || forced);
    /* [f32, 16-bit] x [d 64, d 128] */
    const uint32_t *scode[4] = {spv_subgroup_d64_p0, spv_subgroup_d128_p0, spv_subgroup_d64_p1, spv_subgroup_d128_p1};
    const size_t ssize[4] = {sizeof spv_subgroup_d64_p0, sizeof spv_subgroup_d128_p0, sizeof spv_subgroup_d64_p1,
                             sizeof spv_subgroup_d128_p1};
    for (int i = 0; i < 2; i++) {
        VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = size[i], .pCode = code[i]};
        if ((r = d->vk.vkCreateShaderModule(d->dev, &smi, NULL, &d->portable[i])) != VK_SUCCESS) return vk_fail(d, r, "loading the shader");
        for (int p = 0; p < 2 && d->subgroup_ok; p++) {
            VkShaderModuleCreateInfo ssi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = ssize[2 * p + i],
                                            .pCode = scode[2 * p + i]};
            if ((r = d->vk.vkCreateShaderModule(d->dev, &ssi, NULL, &d->subgroup[2 * p + i])) != VK_SUCCESS)
                return vk_fail(d, r, "loading the subgroup shader");
        }
        if (!d->coop_n) continue;
        smi.codeSize = csize[i];
        smi.pCode = ccode[i];
        if ((r = d->vk.vkCreateShaderModule(d->dev, &smi, NULL, &d->coop[i])) != VK_SUCCESS)
            return vk_fail(d, r, "loading the tensor-core shader");
    }
#if STILE_VK_NV_COOPMAT2
    const uint32_t *ncode[2] = {spv_nv2_d64, spv_nv2_d128};
    const size_t nsize[2] = {sizeof spv_nv2_d64, sizeof spv_nv2_d128};
    for (int i = 0; i < 2 && d->nv2; i++) {
        VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = nsize[i], .pCode = ncode[i]};
        if ((r = d->vk.vkCreateShaderModule(d->dev, &smi, NULL, &d->coop2[i])) != VK_SUCCESS)
            return vk_fail(d, r, "loading the NV cooperative-matrix-2 shader");
    }
#endif
    /* the backward shader, portable like sta_portable.comp: every device that runs the forward */
    const uint32_t *bcode[2] = {spv_backward_d64, spv_backward_d128};
    const size_t bsize[2] = {sizeof spv_backward_d64, sizeof spv_backward_d128};
    for (int i = 0; i < 2; i++) {
        VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = bsize[i], .pCode = bcode[i]};
        if ((r = d->vk.vkCreateShaderModule(d->dev, &smi, NULL, &d->backward[i])) != VK_SUCCESS)
            return vk_fail(d, r, "loading the backward shader");
    }
    VkShaderModuleCreateInfo kti = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = sizeof spv_key_tiles,
                                    .pCode = spv_key_tiles};
    if ((r = d->vk.vkCreateShaderModule(d->dev, &kti, NULL, &d->key_tiles)) != VK_SUCCESS) return vk_fail(d, r, "loading the key-tiles shader");
    /* the forward's 6 bindings (q, k, v, o, lse, table) and 7 push constants; the backward's 10 (d_o,
     * d_q, d_k, d_v after them) and 11 */
    VkDescriptorSetLayoutBinding bind[VK_MAX_BINDINGS];
    for (int i = 0; i < VK_MAX_BINDINGS; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                 .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dli = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, .bindingCount = 6,
                                           .pBindings = bind};
    if ((r = d->vk.vkCreateDescriptorSetLayout(d->dev, &dli, NULL, &d->dsl)) != VK_SUCCESS) return vk_fail(d, r, "descriptor layout");
    dli.bindingCount = VK_MAX_BINDINGS;
    if ((r = d->vk.vkCreateDescriptorSetLayout(d->dev, &dli, NULL, &d->bdsl)) != VK_SUCCESS) return vk_fail(d, r, "descriptor layout");
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = 7 * sizeof(uint32_t)};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &d->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pcr};
    if ((r = d->vk.vkCreatePipelineLayout(d->dev, &pli, NULL, &d->layout)) != VK_SUCCESS) return vk_fail(d, r, "pipeline layout");
    pcr.size = 11 * sizeof(uint32_t);
    pli.pSetLayouts = &d->bdsl;
    if ((r = d->vk.vkCreatePipelineLayout(d->dev, &pli, NULL, &d->blayout)) != VK_SUCCESS) return vk_fail(d, r, "pipeline layout");
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = d->family};
    if ((r = d->vk.vkCreateCommandPool(d->dev, &cpi, NULL, &d->pool)) != VK_SUCCESS) return vk_fail(d, r, "command pool");
    vk_cache_open(d);
    return STILE_OK;
}

void vk_device_teardown(vk_device *d)
{
    if (!d->dev || !d->vk.vkDestroyPipeline) return; /* no device, or its functions never loaded (nothing made) */
    /* stile's own device: wait for everything. A wrapped one: stile's submissions each waited on
     * their fence already, and vkDeviceWaitIdle would need every queue of the application locked. */
    if (d->owned) d->vk.vkDeviceWaitIdle(d->dev);
    while (d->buffers) vk_free_buffer(d, d->buffers); /* leaked by the caller: freed with the device */
    if (d->stage) vk_free_buffer(d, d->stage);
    for (vk_pipeline *p = d->pipelines, *n; p; p = n) {
        n = p->next;
        d->vk.vkDestroyPipeline(d->dev, p->pipe, NULL);
        free(p);
    }
    vk_cache_close(d);
    if (d->pool) d->vk.vkDestroyCommandPool(d->dev, d->pool, NULL);
    if (d->layout) d->vk.vkDestroyPipelineLayout(d->dev, d->layout, NULL);
    if (d->blayout) d->vk.vkDestroyPipelineLayout(d->dev, d->blayout, NULL);
    if (d->dsl) d->vk.vkDestroyDescriptorSetLayout(d->dev, d->dsl, NULL);
    if (d->bdsl) d->vk.vkDestroyDescriptorSetLayout(d->dev, d->bdsl, NULL);
    for (int i = 0; i < 2; i++) {
        if (d->backward[i]) d->vk.vkDestroyShaderModule(d->dev, d->backward[i], NULL);
        if (i == 0 && d->key_tiles) d->vk.vkDestroyShaderModule(d->dev, d->key_tiles, NULL);
        if (d->portable[i]) d->vk.vkDestroyShaderModule(d->dev, d->portable[i], NULL);
        if (d->coop[i]) d->vk.vkDestroyShaderModule(d->dev, d->coop[i], NULL);
        if (d->coop2[i]) d->vk.vkDestroyShaderModule(d->dev, d->coop2[i], NULL);
    }
    for (int i = 0; i < 4; i++) {
        if (d->subgroup[i]) d->vk.vkDestroyShaderModule(d->dev, d->subgroup[i], NULL);
    }
}

void vk_device_close(void *impl)
{
    vk_device *d = impl;
    if (!d) return;
    vk_device_teardown(d);
    if (d->owned) {
        if (d->dev && d->vk.vkDestroyDevice) d->vk.vkDestroyDevice(d->dev, NULL);
        if (d->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT rm =
                (PFN_vkDestroyDebugUtilsMessengerEXT)d->vk.vkGetInstanceProcAddr(d->inst, "vkDestroyDebugUtilsMessengerEXT");
            if (rm) rm(d->inst, d->messenger, NULL);
        }
        if (d->inst) d->vk.vkDestroyInstance(d->inst, NULL);
    }
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->plock);
    pthread_mutex_destroy(&d->qlock);
    pthread_mutex_destroy(&d->slock);
    free(d);
}

static vk_device *new_device(void)
{
    vk_device *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->plock, NULL);
    pthread_mutex_init(&d->qlock, NULL);
    pthread_mutex_init(&d->slock, NULL);
    return d;
}

static void describe(const vk_device *d, stile_device_info *info)
{
    static const char *types[] = {"other", "integrated GPU", "discrete GPU", "virtual GPU", "CPU"};
    VkPhysicalDeviceProperties props;
    d->vk.vkGetPhysicalDeviceProperties(d->phys, &props);
    char path[96];
    const char *port = d->subgroup_ok ? "subgroup" : "portable";
    if (d->coop_n)
        snprintf(path, sizeof path, "%skhr-coopmat 16x%ux16%s + %s", d->nv2 ? "nv-coopmat2 + " : "", d->coop_n, d->coop_sg32 ? " (wave32)" : "", port);
    else if (d->nv2) snprintf(path, sizeof path, "nv-coopmat2 + %s", port);
    else snprintf(path, sizeof path, "%s (%.56s)", port, d->coop_reason);
    snprintf(info->card, sizeof info->card, "%.95s", props.deviceName);
    snprintf(info->driver, sizeof info->driver, "Vulkan %u.%u, driver %u", VK_API_VERSION_MAJOR(props.apiVersion),
             VK_API_VERSION_MINOR(props.apiVersion), props.driverVersion);
    snprintf(info->description, sizeof info->description, "%.50s (%.14s), %.30s, %.66s%.16s%.8s", props.deviceName,
             props.deviceType <= 4 ? types[props.deviceType] : "?", info->driver, path,
             d->owned && env_on("STILE_VULKAN_VALIDATION") ? ", validation on" : "", d->force_staging ? ", staged" : "");
}

stile_status vk_device_open(int index, const stile_device_params *params, void **impl, stile_device_info *info)
{
    (void)params;
    vk_device *d = new_device();
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory opening a Vulkan device");
    d->owned = 1;
    stile_status st = STILE_OK;
    VkResult r = make_instance(d, &d->vk, &d->inst);
    if (r != VK_SUCCESS) { st = vk_fail(d, r, "creating the instance"); goto fail; }
    uint32_t n = 0;
    d->vk.vkEnumeratePhysicalDevices(d->inst, &n, NULL);
    VkPhysicalDevice *all = calloc(n ? n : 1, sizeof *all);
    if (!all) { st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory"); goto fail; }
    d->vk.vkEnumeratePhysicalDevices(d->inst, &n, all);
    if ((uint32_t)index >= n) {
        free(all);
        st = stile_fail(STILE_ERR_NO_DEVICE, "vulkan:%d: only %u device(s)", index, n);
        goto fail;
    }
    d->phys = all[index];
    free(all);
    uint32_t nf = 0;
    d->vk.vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nf, NULL);
    VkQueueFamilyProperties qf[16];
    nf = nf > 16 ? 16 : nf;
    d->vk.vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nf, qf);
    d->family = UINT32_MAX;
    for (uint32_t i = 0; i < nf && d->family == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) d->family = i;
    if (d->family == UINT32_MAX) { st = stile_fail(STILE_ERR_UNSUPPORTED, "vulkan:%d: no compute queue", index); goto fail; }
    coop_select(d, 1, 1);
    if (!d->nv2) stile_log(STILE_LOG_INFO, "vulkan:%d: no nv-coopmat2 path: %s", index, d->nv2_reason);
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = d->family,
                                   .queueCount = 1, .pQueuePriorities = &prio};
    /* the tensor-core path's extension and features: VK_KHR_cooperative_matrix, f16, the memory
     * model, and subgroup size control where the device needs it for 32-wide subgroups */
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT scf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
                                                          .subgroupSizeControl = VK_TRUE, .computeFullSubgroups = VK_TRUE};
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR khrf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
                                                         .cooperativeMatrix = VK_TRUE, .pNext = d->coop_sg32 ? &scf : NULL};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &khrf,
                                            .shaderFloat16 = VK_TRUE, .vulkanMemoryModel = VK_TRUE};
    /* the NV cooperative-matrix-2 path's (vk_coopmat2.c): its extension and matrix features, 16-bit
     * storage and shaderInt16 (the shader writes 16-bit outputs one at a time) */
    VkPhysicalDeviceCooperativeMatrix2FeaturesNV nv2f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_FEATURES_NV,
                                                         .cooperativeMatrixWorkgroupScope = VK_TRUE,
                                                         .cooperativeMatrixFlexibleDimensions = VK_TRUE,
                                                         .cooperativeMatrixReductions = VK_TRUE,
                                                         .cooperativeMatrixConversions = VK_TRUE,
                                                         .cooperativeMatrixPerElementOperations = VK_TRUE};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &nv2f,
                                            .storageBuffer16BitAccess = VK_TRUE};
    VkPhysicalDeviceFeatures core = {.shaderInt16 = VK_TRUE};
    if (d->nv2) {
        nv2f.pNext = khrf.pNext;
        khrf.pNext = &f11;
    }
    const char *ext[4] = {VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME};
    uint32_t next = 0;
    if (d->coop_n || d->nv2) next = 1;
    if (d->coop_sg32) ext[next++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    if (d->nv2) ext[next++] = VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME;
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
                              .pNext = d->coop_n || d->nv2 ? &f12 : NULL, .enabledExtensionCount = next,
                              .ppEnabledExtensionNames = ext, .pEnabledFeatures = d->nv2 ? &core : NULL};
    /* STILE_VULKAN_STATS=1: pipeline statistics in the log (vk_stats.c) */
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pef = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    if (env_on("STILE_VULKAN_STATS")) {
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &pef};
        const int has = vk_has_extension(&d->vk, d->phys, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
        if (has) d->vk.vkGetPhysicalDeviceFeatures2(d->phys, &f2); /* alone: the chain below asks for what it sets */
        pef.pNext = (void *)dci.pNext;
        if (has && pef.pipelineExecutableInfo) {
            ext[dci.enabledExtensionCount++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
            dci.pNext = &pef;
            d->stats = 1;
        } else {
            stile_log(STILE_LOG_WARN, "vulkan:%d: STILE_VULKAN_STATS: the device offers no pipeline statistics "
                                      "(VK_KHR_pipeline_executable_properties)", index);
        }
    }
    if ((r = d->vk.vkCreateDevice(d->phys, &dci, NULL, &d->dev)) != VK_SUCCESS) { st = vk_fail(d, r, "creating the device"); goto fail; }
    char missing[64];
    if (vk_fns_device(&d->vk, d->dev, missing, sizeof missing) != 0) {
        PFN_vkDestroyDevice destroy = (PFN_vkDestroyDevice)d->vk.vkGetDeviceProcAddr(d->dev, "vkDestroyDevice");
        if (destroy) destroy(d->dev, NULL);
        d->dev = VK_NULL_HANDLE;
        st = stile_fail(STILE_ERR_BACKEND, "vulkan:%d: the driver lacks %s", index, missing);
        goto fail;
    }
    d->vk.vkGetDeviceQueue(d->dev, d->family, 0, &d->queue);
    if ((st = vk_device_setup(d)) != STILE_OK) goto fail;
    describe(d, info);
    if (d->validation_errors) { st = stile_fail(STILE_ERR_BACKEND, "vulkan: validation messages while opening the device"); goto fail; }
    *impl = d;
    return STILE_OK;
fail:
    vk_device_close(d);
    return st;
}

/* "auto" prefers real GPUs: a CPU implementation (lavapipe) is there for testing. */
int vk_auto_ok(int index)
{
    VkInstance inst;
    vk_fns f;
    if (make_instance(NULL, &f, &inst) != VK_SUCCESS) return 0;
    uint32_t n = 0;
    f.vkEnumeratePhysicalDevices(inst, &n, NULL);
    int ok = 0;
    if ((uint32_t)index < n) {
        VkPhysicalDevice *all = calloc(n, sizeof *all);
        if (all) {
            f.vkEnumeratePhysicalDevices(inst, &n, all);
            VkPhysicalDeviceProperties props;
            f.vkGetPhysicalDeviceProperties(all[index], &props);
            ok = props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
            free(all);
        }
    }
    f.vkDestroyInstance(inst, NULL);
    return ok;
}

/* ---- the public bring-your-own-Vulkan entry point for devices ---- */

/* Whether the features and extensions the application enabled hold what the tensor-core path needs;
 * else missing names the first that is not there. */
static int app_enabled_coopmat(const stile_vulkan_context *ctx, char *missing, size_t size)
{
    if (!ctx->features) return 0;
    int ext = 0, f16 = 0, model = 0, coop = 0;
    for (uint32_t i = 0; i < ctx->num_extensions; i++)
        if (ctx->extensions[i] && strcmp(ctx->extensions[i], VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME) == 0) ext = 1;
    for (const VkBaseInStructure *s = (const VkBaseInStructure *)ctx->features; s; s = s->pNext) {
        if (s->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES) {
            const VkPhysicalDeviceVulkan12Features *f = (const VkPhysicalDeviceVulkan12Features *)s;
            f16 = f->shaderFloat16 == VK_TRUE;
            model = f->vulkanMemoryModel == VK_TRUE;
        } else if (s->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR) {
            coop = ((const VkPhysicalDeviceCooperativeMatrixFeaturesKHR *)s)->cooperativeMatrix == VK_TRUE;
        }
    }
    const char *first = !ext ? VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME : !coop ? "cooperativeMatrix" : !f16 ? "shaderFloat16"
                      : !model ? "vulkanMemoryModel" : NULL;
    if (first) snprintf(missing, size, "%s", first);
    return first == NULL;
}

stile_status vk_api_device_wrap(const stile_vulkan_context *ctx, stile_device **out)
{
    if (out) *out = NULL;
    if (!ctx || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_vulkan_device_wrap: %s is NULL", ctx ? "out" : "ctx");
    if (ctx->struct_size != sizeof *ctx)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT,
                          "stile_vulkan_device_wrap: ctx->struct_size %u matches no layout of stile_vulkan_context this library "
                          "knows (current: %zu bytes); set it to sizeof(stile_vulkan_context)",
                          (unsigned)ctx->struct_size, sizeof *ctx);
    if (!ctx->instance || !ctx->physical_device || !ctx->device)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_vulkan_device_wrap: ctx->%s is VK_NULL_HANDLE",
                          !ctx->instance ? "instance" : !ctx->physical_device ? "physical_device" : "device");
    if (ctx->flags & ~STILE_VULKAN_COOPMAT)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_vulkan_device_wrap: unknown flags 0x%x", ctx->flags & ~STILE_VULKAN_COOPMAT);
    if (!ctx->lock_queue != !ctx->unlock_queue)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_vulkan_device_wrap: lock_queue and unlock_queue come together (one is NULL)");
    if (ctx->num_extensions && !ctx->extensions)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_vulkan_device_wrap: ctx->extensions is NULL with num_extensions=%u",
                          ctx->num_extensions);
    /* every call through the application's loader entry point (or the one stile links) */
    vk_fns f;
    char missing[96] = "";
    if (vk_fns_instance(&f, ctx->get_instance_proc_addr, ctx->instance, missing, sizeof missing) != 0 ||
        vk_fns_device(&f, ctx->device, missing, sizeof missing) != 0)
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_vulkan_device_wrap: the application's Vulkan lacks %s", missing);
    uint32_t nf = 0;
    f.vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_device, &nf, NULL);
    VkQueueFamilyProperties qf[16];
    nf = nf > 16 ? 16 : nf;
    f.vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_device, &nf, qf);
    if (ctx->queue_family >= nf || !(qf[ctx->queue_family].queueFlags & VK_QUEUE_COMPUTE_BIT))
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_vulkan_device_wrap: queue family %u has no compute (the device has %u families)",
                          ctx->queue_family, nf);
    vk_device *d = new_device();
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory wrapping a Vulkan device");
    d->vk = f;
    d->inst = ctx->instance;
    d->phys = ctx->physical_device;
    d->dev = ctx->device;
    d->queue = ctx->queue;
    d->family = ctx->queue_family;
    d->queue_index = ctx->queue_index;
    d->lock_queue = ctx->lock_queue;
    d->unlock_queue = ctx->unlock_queue;
    d->queue_user = ctx->queue_user;
    d->cache = ctx->pipeline_cache;
    /* the tensor-core path where the application enabled what it needs (32-wide subgroups natively:
     * stile cannot know whether it enabled subgroup size control) */
    const int khr = (ctx->flags & STILE_VULKAN_COOPMAT) || app_enabled_coopmat(ctx, missing, sizeof missing);
    coop_select(d, khr, 0);
    if (!khr && !ctx->features)
        snprintf(d->coop_reason, sizeof d->coop_reason, "the application did not say it enabled it (features or STILE_VULKAN_COOPMAT)");
    else if (!khr)
        snprintf(d->coop_reason, sizeof d->coop_reason, "%s not enabled", missing);
    stile_status st = vk_device_setup(d);
    if (st != STILE_OK) {
        vk_device_close(d);
        return st;
    }
    stile_device_info info = {0};
    describe(d, &info);
    snprintf(info.name, sizeof info.name, "vulkan:app");
    return stile_device_adopt(&stile_backend_vulkan, d, &info, out);
}
