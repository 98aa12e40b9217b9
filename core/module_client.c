/* The module's side of core/module.h, compiled into every backend module: the two exported
 * symbols, and the core functions the backend calls (stile_internal.h's), each forwarded to the
 * services of the library that loaded the module. The build names the backend's descriptor
 * (-DSTILE_MODULE_INFO=stile_module_<name>, the same object a linked-in build registers). */
#include <stdio.h>
#include <string.h>

#include "module.h"
#include "stile_commit.h"

#define STILE_EXPORT __attribute__((visibility("default")))

extern const stile_module_info STILE_MODULE_INFO;

static const stile_core_services *core;

STILE_EXPORT extern const uint32_t stile_module_abi;
const uint32_t stile_module_abi = STILE_MODULE_ABI;

STILE_EXPORT int stile_module_load(const stile_core_services *services, const stile_module_sizes *sizes, const char *version,
                                   stile_module_info *out, char *reason, size_t reason_size);
int stile_module_load(const stile_core_services *services, const stile_module_sizes *sizes, const char *version,
                      stile_module_info *out, char *reason, size_t reason_size)
{
    const stile_module_sizes mine = STILE_MODULE_SIZES;
    if (!services || !sizes || !version || !out) {
        snprintf(reason, reason_size, "called without its arguments");
        return 1;
    }
    if (memcmp(sizes, &mine, sizeof mine) != 0) {
        snprintf(reason, reason_size, "built against other internal structures (plan %u bytes here, %u in the library): "
                 "the module comes from another build", (unsigned)mine.plan, (unsigned)sizes->plan);
        return 1;
    }
    if (strcmp(version, STILE_MODULE_BUILD) != 0) {
        snprintf(reason, reason_size, "module of stile %s, library %s (the module comes from another build)", STILE_MODULE_BUILD,
                 version);
        return 1;
    }
    core = services;
    *out = STILE_MODULE_INFO;
    return 0;
}

void stile_log(stile_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    core->vlog(level, fmt, ap);
    va_end(ap);
}

stile_status stile_fail(stile_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stile_status st = core->vfail(status, fmt, ap);
    va_end(ap);
    return st;
}

stile_status stile_sched_table_pack(const stile_plan *plan, int64_t block_rows, size_t header_bytes, size_t tile_start_size,
                                    void **host, stile_sched_table *t)
{
    return core->sched_table_pack(plan, block_rows, header_bytes, tile_start_size, host, t);
}

stile_status stile_device_adopt(const stile_backend *backend, void *impl, const stile_device_info *info, stile_device **out)
{
    return core->device_adopt(backend, impl, info, out);
}

stile_status stile_io_check(const stile_plan *plan, const stile_io *in, stile_io *out, const char *what)
{
    return core->io_check(plan, in, out, what);
}

stile_status stile_buffer_adopt(stile_device *device, void *ptr, size_t bytes, stile_buffer **out)
{
    return core->buffer_adopt(device, ptr, bytes, out);
}

size_t stile_dtype_size(stile_dtype dtype) { return core->dtype_size(dtype); }

const char *stile_dtype_name(stile_dtype dtype) { return core->dtype_name(dtype); }

stile_status stile_plan_get_head(const stile_plan *plan, int64_t head, stile_head_info *out)
{
    return core->plan_get_head(plan, head, out);
}
