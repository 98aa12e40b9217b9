/* stile_cuda.h: the CUDA backend with CUDA's own types, for applications that hold cudaStream_t
 * and device pointers (a torch tensor's data_ptr() is one). Only this header names CUDA types;
 * include/stile/stile.h stays backend-neutral. Installed when the library is built with CUDA; the
 * functions live in libstile and work whether or not the CUDA module could load (they then say why). */
#ifndef STILE_CUDA_H
#define STILE_CUDA_H

#include <cuda_runtime_api.h>

#include "stile/stile.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A tensor over CUDA device memory (cudaMalloc, a torch tensor's data_ptr()), as stile_tensor. */
static inline stile_tensor stile_cuda_tensor(void *device_ptr, size_t bytes, stile_dtype dtype)
{
    stile_tensor t = {.data = device_ptr, .bytes = bytes, .dtype = dtype};
    return t;
}

/** Enqueue the plan on `stream` (the application's; 0 is the legacy default stream, and the call then
 * waits for the work) and return: stile_plan_execute with io->stream set to stream, which io's own
 * stream field must leave NULL. The plan must be of a CUDA device. Errors: those of
 * stile_plan_execute, STILE_ERR_INVALID_ARGUMENT (a plan of another backend, or io->stream set too).
 * Thread-safety: as stile_plan_execute. */
STILE_API stile_status stile_cuda_execute(const stile_plan *plan, const stile_io *io, cudaStream_t stream);

/** The CUDA device ordinal (cudaSetDevice's number) a stile device runs on. Errors:
 * STILE_ERR_NULL_ARGUMENT, STILE_ERR_INVALID_ARGUMENT (not a CUDA device). Thread-safety: any thread. */
STILE_API stile_status stile_cuda_device_ordinal(const stile_device *device, int *ordinal);

#ifdef __cplusplus
}
#endif

#endif /* STILE_CUDA_H */
