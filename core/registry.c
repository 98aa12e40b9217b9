/* Backend registry: which backends stile knows, which this build has, and device names. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stile_config.h"
#include "stile_internal.h"

#if STILE_HAVE_CPU
extern const stile_backend stile_backend_cpu;
#endif
#if STILE_HAVE_VULKAN
extern const stile_backend stile_backend_vulkan;
#endif
#if STILE_HAVE_CUDA
extern const stile_backend stile_backend_cuda;
#endif
#if STILE_HAVE_HIP
extern const stile_backend stile_backend_hip;
#endif

typedef struct known_backend {
    const char *name;
    const stile_backend *ops; /* NULL: not built */
} known_backend;

/* Fixed order; "auto" prefers the later (GPU) entries once they exist. */
static const known_backend known[] = {
#if STILE_HAVE_CPU
    {"cpu", &stile_backend_cpu},
#else
    {"cpu", NULL},
#endif
#if STILE_HAVE_VULKAN
    {"vulkan", &stile_backend_vulkan},
#else
    {"vulkan", NULL},
#endif
#if STILE_HAVE_CUDA
    {"cuda", &stile_backend_cuda},
#else
    {"cuda", NULL},
#endif
#if STILE_HAVE_HIP
    {"hip", &stile_backend_hip},
#else
    {"hip", NULL},
#endif
};
#define NKNOWN ((int)(sizeof known / sizeof known[0]))

int stile_backend_count(void) { return NKNOWN; }

stile_status stile_backend_get_info(int index, stile_backend_info *out)
{
    if (!out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_backend_get_info: out is NULL");
    if (index < 0 || index >= NKNOWN)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "backend index %d: must be within 0..%d", index, NKNOWN - 1);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", known[index].name);
    if (!known[index].ops) {
        snprintf(out->status, sizeof out->status, "not built into this library");
        return STILE_OK;
    }
    out->built = 1;
    char reason[160] = "";
    out->devices = known[index].ops->device_count(reason, sizeof reason);
    snprintf(out->status, sizeof out->status, "%s", out->devices > 0 ? "ready" : reason);
    return STILE_OK;
}

static stile_status open_backend(int b, int index, const stile_device_params *params, stile_device **out)
{
    const stile_backend *ops = known[b].ops;
    if (!ops)
        return stile_fail(STILE_ERR_UNSUPPORTED, "device '%s:%d': the %s backend is not built into this library",
                          known[b].name, index, known[b].name);
    char reason[160] = "";
    int n = ops->device_count(reason, sizeof reason);
    if (index >= n) {
        if (n == 0) return stile_fail(STILE_ERR_NO_DEVICE, "%s:%d: no %s device (%s)", known[b].name, index, known[b].name, reason);
        return stile_fail(STILE_ERR_NO_DEVICE, "%s:%d: only %d %s device(s), numbered from 0", known[b].name, index, n,
                          known[b].name);
    }
    stile_device *d = calloc(1, sizeof *d);
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory opening %s:%d", known[b].name, index);
    d->backend = ops;
    d->index = index;
    stile_status rc = ops->device_open(index, params, &d->impl, &d->info);
    if (rc != STILE_OK) {
        free(d);
        return rc;
    }
    snprintf(d->info.name, sizeof d->info.name, "%s:%d", known[b].name, index);
    snprintf(d->info.backend, sizeof d->info.backend, "%s", known[b].name);
    *out = d;
    return STILE_OK;
}

stile_status stile_device_open(const char *name, const stile_device_params *params, stile_device **out)
{
    if (out) *out = NULL;
    if (!name) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_device_open: name is NULL");
    if (!out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_device_open: out is NULL");
    if (params && params->threads < 0)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "device params: threads=%d: must be >= 0 (0: all processors)",
                          params->threads);
    if (strcmp(name, "auto") == 0) {
        for (int b = NKNOWN - 1; b >= 0; b--) {
            char reason[160];
            const int n = known[b].ops ? known[b].ops->device_count(reason, sizeof reason) : 0;
            for (int i = 0; i < n; i++)
                if (!known[b].ops->auto_ok || known[b].ops->auto_ok(i)) return open_backend(b, i, params, out);
        }
        return stile_fail(STILE_ERR_NO_DEVICE, "auto: no backend of this build has a device here");
    }
    size_t len = strcspn(name, ":");
    for (int b = 0; b < NKNOWN; b++) {
        if (strlen(known[b].name) != len || strncmp(name, known[b].name, len) != 0) continue;
        int index = 0;
        if (name[len] == ':') {
            const char *num = name + len + 1;
            if (!*num || strlen(num) > 6) goto bad_index;
            for (const char *c = num; *c; c++)
                if (!isdigit((unsigned char)*c)) goto bad_index;
            index = atoi(num);
        }
        return open_backend(b, index, params, out);
    bad_index:
        return stile_fail(STILE_ERR_UNKNOWN_DEVICE, "device '%s': the index after ':' must be a number", name);
    }
    return stile_fail(STILE_ERR_UNKNOWN_DEVICE, "device '%s': unknown (known: auto, cpu, vulkan, cuda, hip, optionally :N)", name);
}

stile_status stile_device_adopt(const stile_backend *backend, void *impl, const stile_device_info *info, stile_device **out)
{
    stile_device *d = calloc(1, sizeof *d);
    if (!d) {
        backend->device_close(impl);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory adopting a %s device", backend->name);
    }
    d->backend = backend;
    d->index = -1;
    d->impl = impl;
    d->info = *info;
    snprintf(d->info.backend, sizeof d->info.backend, "%s", backend->name);
    *out = d;
    return STILE_OK;
}

void stile_device_close(stile_device **device)
{
    if (!device || !*device) return;
    (*device)->backend->device_close((*device)->impl);
    free(*device);
    *device = NULL;
}

stile_status stile_device_get_info(const stile_device *device, stile_device_info *out)
{
    if (!device || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_device_get_info: %s is NULL", device ? "out" : "device");
    *out = device->info;
    return STILE_OK;
}
