/* Loading a backend module (core/module.h): find libstile-<name>.so, dlopen it with its own
 * dependencies (a missing GPU runtime shows up here as the loader's message), check that it comes
 * from this build, and hand it the core's services. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "module.h"
#include "stile_commit.h"
#include "stile_config.h"

#define STILE_MODULE_DIR STILE_CONFIG_MODULE_DIR /* where the build installs the modules */

static const stile_core_services services = {
    .vlog = stile_vlog,
    .vfail = stile_vfail,
    .sched_table_pack = stile_sched_table_pack,
    .device_adopt = stile_device_adopt,
    .io_check = stile_io_check,
    .buffer_adopt = stile_buffer_adopt,
    .dtype_size = stile_dtype_size,
    .dtype_name = stile_dtype_name,
    .plan_get_head = stile_plan_get_head,
};

/* Append directory `dir` (length len) + "/" + file to the candidates if it names an existing file. */
static int try_dir(const char *dir, size_t len, const char *file, char *path, size_t size)
{
    if (len == 0) return 0;
    int n = snprintf(path, size, "%.*s/%s", (int)len, dir, file);
    if (n < 0 || (size_t)n >= size) return 0;
    return access(path, F_OK) == 0;
}

/* The directory holding the code of this function: libstile.so's, or the program's when linked statically. */
static size_t own_dir(char *dir, size_t size)
{
    Dl_info info;
    if (!dladdr((void *)own_dir, &info) || !info.dli_fname) return 0;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) return 0;
    size_t len = (size_t)(slash - info.dli_fname);
    if (len + 1 > size) return 0;
    memcpy(dir, info.dli_fname, len);
    dir[len] = '\0';
    return len;
}

/* Search the directories in order; 1 and path set when found. searched lists them for the message. */
static int find_module(const char *file, char *path, size_t size, char *searched, size_t searched_size)
{
    searched[0] = '\0';
    size_t used = 0;
#define NOTE(fmt, ...)                                                                                                        \
    do {                                                                                                                  \
        int n_ = snprintf(searched + used, searched_size - used, fmt, __VA_ARGS__);                                       \
        if (n_ > 0) used = (size_t)n_ < searched_size - used ? used + (size_t)n_ : searched_size - 1;                     \
    } while (0)
    const char *env = secure_getenv("STILE_BACKEND_PATH"); /* not for setuid programs */
    if (env && *env) {
        for (const char *p = env; *p;) {
            size_t len = strcspn(p, ":");
            if (try_dir(p, len, file, path, size)) return 1;
            p += len;
            if (*p == ':') p++;
        }
        NOTE("%s", "$STILE_BACKEND_PATH, ");
    }
    char dir[4096];
    size_t len = own_dir(dir, sizeof dir - 8);
    if (len) {
        memcpy(dir + len, "/stile", 7);
        if (try_dir(dir, len + 6, file, path, size)) return 1;
        if (try_dir(dir, len, file, path, size)) return 1;
        dir[len] = '\0';
        NOTE("%s/stile, %s, ", dir, dir);
    }
    if (STILE_MODULE_DIR[0] && try_dir(STILE_MODULE_DIR, strlen(STILE_MODULE_DIR), file, path, size)) return 1;
    NOTE("%s", STILE_MODULE_DIR);
    if (used >= 2 && searched[used - 2] == ',') searched[used - 2] = '\0';
#undef NOTE
    return 0;
}

int stile_module_get(const char *name, const stile_module_info *linked, int built, stile_module_info *out, char *path,
                     size_t path_size, char *reason, size_t reason_size)
{
    path[0] = '\0';
    if (linked) {
        *out = *linked;
        return 0;
    }
    if (!built) {
        snprintf(reason, reason_size, "not built into this library");
        return 1;
    }
    char why[512];
    if (stile_module_open(name, out, path, path_size, why, sizeof why) == 0) return 0;
    snprintf(reason, reason_size, "unavailable: %s", why);
    return 1;
}

int stile_module_open(const char *name, stile_module_info *out, char *path, size_t path_size, char *reason, size_t reason_size)
{
    char file[64], searched[1024];
    snprintf(file, sizeof file, "libstile-%s.so", name);
    path[0] = '\0';
    if (!find_module(file, path, path_size, searched, sizeof searched)) {
        path[0] = '\0';
        snprintf(reason, reason_size, "%s not found (searched %s)", file, searched);
        return 1;
    }
    char *real = realpath(path, NULL); /* the file as users will look for it, without ../ */
    if (real && strlen(real) < path_size) strcpy(path, real);
    free(real);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(reason, reason_size, "%s", e ? e : "dlopen failed");
        return 1;
    }
    const uint32_t *abi = (const uint32_t *)dlsym(h, STILE_MODULE_ABI_SYMBOL);
    stile_module_load_fn load;
    *(void **)&load = dlsym(h, STILE_MODULE_LOAD_SYMBOL);
    if (!abi || !load) {
        snprintf(reason, reason_size, "%s: not a stile backend module (no %s)", path, abi ? STILE_MODULE_LOAD_SYMBOL : STILE_MODULE_ABI_SYMBOL);
        dlclose(h);
        return 1;
    }
    if (*abi != STILE_MODULE_ABI) {
        snprintf(reason, reason_size, "%s: module ABI %u, this library needs %u (the module comes from another build)", path,
                 (unsigned)*abi, (unsigned)STILE_MODULE_ABI);
        dlclose(h);
        return 1;
    }
    const stile_module_sizes sizes = STILE_MODULE_SIZES;
    char why[256] = "";
    if (load(&services, &sizes, STILE_MODULE_BUILD, out, why, sizeof why) != 0 || !out->name || (!out->backend && !out->ext)) {
        snprintf(reason, reason_size, "%s: %s", path, why[0] ? why : "the module refused to load");
        dlclose(h);
        return 1;
    }
    if (strcmp(out->name, name) != 0 || (out->backend && strcmp(out->backend->name, name) != 0)) {
        snprintf(reason, reason_size, "%s: holds '%s', not '%s'", path, out->name, name);
        dlclose(h);
        return 1;
    }
    /* Kept loaded for the life of the process: devices, plans and buffers point into it. */
    return 0;
}
