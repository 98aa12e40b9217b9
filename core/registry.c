/* Backend registry: which backends stile knows, which this build has, where their code is (linked
 * in, or a module loaded at the first query: core/module.h), and device names. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"
#include "stile_config.h"

#if STILE_HAVE_CPU
extern const stile_module_info stile_module_cpu;
#define CPU_LINKED (&stile_module_cpu)
#else
#define CPU_LINKED NULL
#endif
#if STILE_HAVE_VULKAN && !STILE_BACKEND_MODULES
extern const stile_module_info stile_module_vulkan;
#define VULKAN_LINKED (&stile_module_vulkan)
#else
#define VULKAN_LINKED NULL
#endif
#if STILE_HAVE_CUDA && !STILE_BACKEND_MODULES
extern const stile_module_info stile_module_cuda;
#define CUDA_LINKED (&stile_module_cuda)
#else
#define CUDA_LINKED NULL
#endif
#if STILE_HAVE_HIP && !STILE_BACKEND_MODULES
extern const stile_module_info stile_module_hip;
#define HIP_LINKED (&stile_module_hip)
#else
#define HIP_LINKED NULL
#endif

typedef struct known_backend {
    const char *name;
    int built;                      /* this build has it, linked in or as a module */
    const stile_module_info *linked; /* linked in: its descriptor */
} known_backend;

/* Fixed order; "auto" prefers the later (GPU) entries. */
static const known_backend known[] = {
    {"cpu", STILE_HAVE_CPU, CPU_LINKED},
    {"vulkan", STILE_HAVE_VULKAN, VULKAN_LINKED},
    {"cuda", STILE_HAVE_CUDA, CUDA_LINKED},
    {"hip", STILE_HAVE_HIP, HIP_LINKED},
};
#define NKNOWN ((int)(sizeof known / sizeof known[0]))

/* Filled once, at the first query, then only read. */
typedef struct backend_state {
    const stile_backend *ops; /* NULL: unavailable, see reason */
    const void *ext;
    char module[4096];        /* the module file, "" when linked in or not found */
    char reason[224];
} backend_state;

static backend_state state[NKNOWN];
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
    for (int b = 0; b < NKNOWN; b++) {
        backend_state *s = &state[b];
        stile_module_info mi = {0};
        if (stile_module_get(known[b].name, known[b].linked, known[b].built, &mi, s->module, sizeof s->module, s->reason,
                             sizeof s->reason) == 0 &&
            !mi.backend)
            snprintf(s->reason, sizeof s->reason, "unavailable: its module holds no backend (another build's?)");
        s->ops = mi.backend;
        s->ext = mi.ext;
        if (!s->ops && known[b].built) stile_log(STILE_LOG_INFO, "backend %s %s", known[b].name, s->reason);
    }
}

static const backend_state *backend(int b)
{
    pthread_once(&registry_once, registry_init);
    return &state[b];
}

const stile_backend *stile_registry_backend(const char *name, const void **ext, char *reason, size_t reason_size)
{
    for (int b = 0; b < NKNOWN; b++) {
        if (strcmp(known[b].name, name) != 0) continue;
        const backend_state *s = backend(b);
        if (ext) *ext = s->ext;
        if (!s->ops) snprintf(reason, reason_size, "%s", s->reason);
        return s->ops;
    }
    snprintf(reason, reason_size, "unknown backend");
    return NULL;
}

int stile_backend_count(void) { return NKNOWN; }

stile_status stile_backend_get_info(int index, stile_backend_info *out)
{
    if (!out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_backend_get_info: out is NULL");
    if (index < 0 || index >= NKNOWN)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "backend index %d: must be within 0..%d", index, NKNOWN - 1);
    const backend_state *s = backend(index);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", known[index].name);
    snprintf(out->module, sizeof out->module, "%s", s->module);
    out->built = known[index].built;
    if (!s->ops) {
        snprintf(out->status, sizeof out->status, "%s", s->reason);
        return STILE_OK;
    }
    out->available = 1;
    char reason[160] = "";
    out->devices = s->ops->device_count(reason, sizeof reason);
    if (out->devices > 0) snprintf(out->status, sizeof out->status, "ready%s%s", reason[0] ? "; " : "", reason);
    else snprintf(out->status, sizeof out->status, "%s", reason);
    return STILE_OK;
}

static stile_status open_backend(int b, int index, const stile_device_params *params, stile_device **out)
{
    const backend_state *s = backend(b);
    const stile_backend *ops = s->ops;
    if (!ops) return stile_fail(STILE_ERR_UNSUPPORTED, "device '%s:%d': the %s backend is %s", known[b].name, index, known[b].name, s->reason);
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
    d->log_fn = params->log;
    d->log_user = params->log_user;
    d->log_max = params->log_level ? params->log_level : STILE_LOG_ERROR;
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

static stile_status device_open(const char *name, const stile_device_params *params, stile_device **out);

stile_status stile_device_open(const char *name, const stile_device_params *params, stile_device **out)
{
    if (out) *out = NULL;
    if (!name) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_device_open: name is NULL");
    if (!out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_device_open: out is NULL");
    stile_device_params prm;
    stile_status st = stile_device_params_import(params, &prm);
    if (st != STILE_OK) return st;
    /* the device's own sink hears its opening too, a refusal of its params included */
    const int level_ok = prm.log_level >= 0 && prm.log_level <= STILE_LOG_DEBUG;
    stile_device scope = {.log_fn = prm.log, .log_user = prm.log_user,
                          .log_max = level_ok && prm.log_level ? prm.log_level : STILE_LOG_ERROR};
    const stile_device *previous = stile_log_enter(&scope);
    if (!level_ok)
        st = stile_fail(STILE_ERR_INVALID_ARGUMENT, "device params: log_level=%d: must be 0 (errors) or 1..4", (int)prm.log_level);
    else
        st = device_open(name, &prm, out);
    stile_log_leave(previous);
    return st;
}

static stile_status device_open(const char *name, const stile_device_params *params, stile_device **out)
{
    const stile_device_params prm = *params;
    if (prm.threads < 0)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "device params: threads=%d: must be >= 0 (0: all processors)", prm.threads);
    if (strcmp(name, "auto") == 0) {
        for (int b = NKNOWN - 1; b >= 0; b--) {
            const stile_backend *ops = backend(b)->ops;
            char reason[160];
            const int n = ops ? ops->device_count(reason, sizeof reason) : 0;
            for (int i = 0; i < n; i++)
                if (!ops->auto_ok || ops->auto_ok(i)) return open_backend(b, i, &prm, out);
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
        return open_backend(b, index, &prm, out);
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
    const stile_device *previous = stile_log_enter(*device);
    (*device)->backend->device_close((*device)->impl);
    stile_log_leave(previous);
    free(*device);
    *device = NULL;
}

stile_status stile_device_get_info(const stile_device *device, stile_device_info *out)
{
    if (!device || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_device_get_info: %s is NULL", device ? "out" : "device");
    *out = device->info;
    return STILE_OK;
}
