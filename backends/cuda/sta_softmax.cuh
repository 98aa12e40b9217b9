/* Register-level helpers of the tensor-core kernels, forward (sta_sm80.cu, sta_sm90.cu: the online
 * softmax) and backward (P and dS): exp2 on the special-function unit, and two f32 values packed as
 * an f16/bf16 pair. CUDA only. */
#ifndef STILE_STA_SOFTMAX_CUH
#define STILE_STA_SOFTMAX_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace {

template <bool BF> __device__ __forceinline__ unsigned pack2(float lo, float hi)
{
    if (BF) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<unsigned *>(&v);
    }
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&v);
}

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

} /* namespace */

#endif
