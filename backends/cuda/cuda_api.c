/* The functions of include/stile/stile_cuda.h, compiled into libstile itself (CUDA's headers for
 * the types, never its runtime): typed doors to stile_plan_execute and the device's ordinal. */
#include <string.h>

#include "stile/stile_cuda.h"
#include "stile_internal.h"

static int is_cuda(const stile_device *d) { return d && strcmp(d->info.backend, "cuda") == 0; }

STILE_API stile_status stile_cuda_execute(const stile_plan *plan, const stile_io *io, cudaStream_t stream)
{
    if (!plan || !io) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_cuda_execute: %s is NULL", plan ? "io" : "plan");
    if (!is_cuda(plan->device))
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_cuda_execute: the plan is for %s, not a CUDA device", plan->info.device);
    stile_io cur;
    stile_status st = stile_io_import(io, &cur, "stile_cuda_execute");
    if (st != STILE_OK) return st;
    if (cur.stream)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_cuda_execute: io->stream is set as well as the stream argument: leave it NULL");
    cur.stream = (void *)stream;
    return stile_plan_execute(plan, &cur);
}

STILE_API stile_status stile_cuda_device_ordinal(const stile_device *device, int *ordinal)
{
    if (!device || !ordinal)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_cuda_device_ordinal: %s is NULL", device ? "ordinal" : "device");
    if (!is_cuda(device) || device->index < 0)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_cuda_device_ordinal: %s is not a CUDA device", device->info.name);
    *ordinal = device->index;
    return STILE_OK;
}
