/* The STA kernel objects as the launcher (sta_launch.cu) sees them: each kernel file is compiled on its
 * own (so that one can take its own -gencode, as a Hopper kernel needs sm_90a) and offers one host
 * entry point that enqueues its kernel. C++ for nvcc and hipcc (-DSTILE_HIP, through gpu_vendor.h). */
#ifndef STILE_STA_PATHS_CUH
#define STILE_STA_PATHS_CUH

#ifdef STILE_HIP
#include <hip/hip_runtime.h>
#else
#include <cuda_runtime.h>
#endif

#include "gpu_vendor.h"
#include "sta_kernel.h"

/* The CUDA and HIP objects sit in one library: their entry points live in namespaces of their own, and
 * everything else in the kernel files has internal linkage. */
#ifdef STILE_HIP
#define STA_KERNELS stile_hip_kernels
#else
#define STA_KERNELS stile_cuda_kernels
#endif

namespace {
enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 }; /* stile_dtype */
}

namespace STA_KERNELS {

/* sta_scalar.cu: the portable kernel (any dtype, head_dim <= 256, any strides; HIP's only kernel). */
gpuError_t scalar_launch(const sta_params *p, dim3 grid, gpuStream_t stream);
/* sta_bwd_scalar.cu: the portable backward (dQ, then dK/dV) over the same grid. */
gpuError_t bwd_scalar_launch(const sta_bwd_params *p, dim3 grid, gpuStream_t stream);

#ifndef STILE_HIP
/* sta_sm80.cu: the mma.sync kernel (sm_80+; what stile_gpu_mma_eligible accepts). */
gpuError_t sm80_launch(const sta_params *p, dim3 grid, gpuStream_t stream);
/* sta_bwd_sm80.cu: the mma.sync backward (what stile_gpu_backward_path accepts). */
gpuError_t bwd_sm80_launch(const sta_bwd_params *p, dim3 grid, gpuStream_t stream);
size_t bwd_sm80_smem(int head_dim); /* the most dynamic shared memory per block its kernels take */

/* sta_sm90.cu, built only when -Dnvcc_archs includes 90 (STILE_HAVE_SM90 then tells the launcher): the
 * Hopper kernel. Whether it covers p on a device of compute capability cc; and the launch, 0 on
 * success, a CUDA error code, or -1 when the Hopper path cannot run here (no driver entry point, a
 * tensor map the driver refuses) and the caller falls back. */
int sm90_eligible(const sta_params *p, int cc);
int sm90_launch(const sta_params *p, gpuStream_t stream, char *err, size_t err_size);
/* sta_bwd_sm90.cu (with sta_sm90.cu): the wgmma backward, on what the mma.sync backward takes, on
 * compute capability 9.0. */
gpuError_t bwd_sm90_launch(const sta_bwd_params *p, dim3 grid, gpuStream_t stream);
size_t bwd_sm90_smem(int head_dim);
#endif

} /* namespace STA_KERNELS */

#endif
