/* The contract between libstile and a backend module loaded at run time (libstile-<name>.so, built
 * from the same tree as the library: docs/packaging.md). A module exports two symbols and links
 * nothing of libstile: what it needs of the core (logging, the schedule table, adopting devices and
 * buffers, the io checks) comes through the services table the core hands it, so a module loads the
 * same under a shared libstile and under a program that linked libstile statically.
 *
 * The core reads `stile_module_abi` first and calls `stile_module_load` only when it equals
 * STILE_MODULE_ABI; the load call then compares the sizes of the structures both sides share, and
 * the library version, so a module of another build is refused with a reason, never run. */
#ifndef STILE_MODULE_H
#define STILE_MODULE_H

#include <stdarg.h>

#include "stile_internal.h"

/* Bump on any change to stile_internal.h's shared structures, the backend vtable or the tables below. */
#define STILE_MODULE_ABI 5u

/* The sizes of what core and module share; any difference refuses the module. */
typedef struct stile_module_sizes {
    uint32_t backend, device, plan, resolved, schedule, io, problem, services;
} stile_module_sizes;

#define STILE_MODULE_SIZES                                                                                                    \
    ((stile_module_sizes){sizeof(stile_backend), sizeof(stile_device), sizeof(stile_plan), sizeof(stile_resolved),         \
                          sizeof(stile_schedule), sizeof(stile_io), sizeof(stile_problem), sizeof(struct stile_core_services)})

/* What the core hands a module: the core functions a backend calls (stile_internal.h's). */
typedef struct stile_core_services {
    void (*vlog)(stile_log_level level, const char *fmt, va_list ap);
    stile_status (*vfail)(stile_status status, const char *fmt, va_list ap);
    stile_status (*sched_table_pack)(const stile_plan *plan, int64_t block_rows, size_t header_bytes, size_t tile_start_size,
                                     void **host, stile_sched_table *t);
    stile_status (*device_adopt)(const stile_backend *backend, void *impl, const stile_device_info *info, stile_device **out);
    stile_status (*io_check)(const stile_plan *plan, const stile_io *in, stile_io *out, const char *what);
    stile_status (*buffer_adopt)(stile_device *device, void *ptr, size_t bytes, stile_buffer **out);
    size_t (*dtype_size)(stile_dtype dtype);
    const char *(*dtype_name)(stile_dtype dtype);
    stile_status (*plan_get_head)(const stile_plan *plan, int64_t head, stile_head_info *out);
} stile_core_services;

/* A backend's descriptor, stile_module_<name> in its sources: what the registry takes from a
 * linked-in backend, and what a module gives back when loaded. */
typedef struct stile_module_info {
    const char *name;             /* "cuda", "vulkan", "json": libstile-<name>.so */
    const stile_backend *backend; /* a backend's vtable (backend->name == name), or NULL for a library part */
    const void *ext;              /* the part's own functions (Vulkan: vk_ext.h; JSON: json_ext.h), or NULL */
} stile_module_info;

/* The exported symbols' names and the load function's type. */
#define STILE_MODULE_ABI_SYMBOL "stile_module_abi"
#define STILE_MODULE_LOAD_SYMBOL "stile_module_load"
/* build: the library's STILE_MODULE_BUILD (version and commit: a module of another build is refused
 * even where the structure sizes agree); on failure, reason says why and the call returns nonzero. */
#define STILE_MODULE_BUILD STILE_VERSION_STRING "+" STILE_COMMIT
typedef int (*stile_module_load_fn)(const stile_core_services *core, const stile_module_sizes *sizes, const char *build,
                                    stile_module_info *out, char *reason, size_t reason_size);

/* The core's side (core/module_loader.c): load libstile-<name>.so, searching $STILE_BACKEND_PATH
 * (directories separated by ':'), then <directory of libstile>/stile, <directory of libstile>, and
 * the install directory. 0 and *out filled, or nonzero with the reason; *path receives the file
 * found (empty when none). */
int stile_module_open(const char *name, stile_module_info *out, char *path, size_t path_size, char *reason, size_t reason_size);

/* A part of the library by name (a backend, "json"): linked in (linked, its descriptor), not in this
 * build (built 0), or its module loaded with stile_module_open. 0 and *out filled; else nonzero
 * with the reason ("not built into this library", "unavailable: <why>"). path receives the module
 * file when one was found ("" otherwise). */
int stile_module_get(const char *name, const stile_module_info *linked, int built, stile_module_info *out, char *path,
                     size_t path_size, char *reason, size_t reason_size);

/* Linked-in or loaded: the backend named `name`'s vtable and extension table, NULL with a reason
 * when it is unavailable (core/registry.c). */
const stile_backend *stile_registry_backend(const char *name, const void **ext, char *reason, size_t reason_size);

#endif /* STILE_MODULE_H */
