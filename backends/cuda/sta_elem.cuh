/* Element access for the portable kernels (sta_scalar.cu, sta_bwd_scalar.cu): any stile dtype read as
 * f32 and written back rounded to nearest even, and a chunk's rows staged as f32 in shared memory, on
 * CUDA and HIP. Internal linkage, as sta_schedule.cuh. */
#ifndef STILE_STA_ELEM_CUH
#define STILE_STA_ELEM_CUH

#ifdef STILE_HIP
#include <hip/hip_fp16.h>
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "sta_schedule.cuh"

namespace {

__device__ __forceinline__ float load_elem(const void *base, int dtype, long long i)
{
#ifdef STILE_HIP
    if (dtype == DT_F32) return ((const float *)base)[i];
    if (dtype == DT_F16) return __half2float(((const __half *)base)[i]);
    unsigned int u = (unsigned int)((const unsigned short *)base)[i] << 16;
    return __uint_as_float(u);
#else
    if (dtype == DT_F32) return ((const float *)base)[i];
    if (dtype == DT_F16) return __half2float(((const __half *)base)[i]);
    return __bfloat162float(((const __nv_bfloat16 *)base)[i]);
#endif
}

__device__ __forceinline__ void store_elem(void *base, int dtype, long long i, float v)
{
#ifdef STILE_HIP
    if (dtype == DT_F32) ((float *)base)[i] = v;
    else if (dtype == DT_F16) ((__half *)base)[i] = __float2half(v);
    else { /* round to nearest even, as stile_float_to_bf16 */
        unsigned int u = __float_as_uint(v);
        if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;
        else u += 0x7fffu + ((u >> 16) & 1u);
        ((unsigned short *)base)[i] = (unsigned short)(u >> 16);
    }
#else
    if (dtype == DT_F32) ((float *)base)[i] = v;
    else if (dtype == DT_F16) ((__half *)base)[i] = __float2half_rn(v);
    else ((__nv_bfloat16 *)base)[i] = __float2bfloat16_rn(v);
#endif
}

enum { SC_KEYS = 16, SC_MAXD = 256 }; /* rows staged in shared memory per step; the largest head dim */

/* Element offset of (batch b, token t, head h, dim 0) under strides s. */
__device__ __forceinline__ long long row_at(const long long (&s)[4], int b, long long t, int h) { return b * s[0] + t * s[1] + h * s[2]; }

/* Rows r0 .. r0 + n - 1 of chunk it of tensors x and y (strides sx, sy; batch entry b, head h) as f32
 * into xs and ys, the block's threads over (row, dim). */
__device__ __forceinline__ void stage_f32(const sta_params &p, const chunk_iter &it, int r0, int n, const void *x, const long long (&sx)[4],
                                          const void *y, const long long (&sy)[4], int b, int h, float (*xs)[SC_MAXD], float (*ys)[SC_MAXD])
{
    const int D = p.head_dim;
    for (int e = threadIdx.x; e < n * D; e += blockDim.x) {
        const int r = e / D, d = e - r * D;
        const long long tok = chunk_token(p, it, r0 + r);
        xs[r][d] = load_elem(x, p.dtype, row_at(sx, b, tok, h) + d * sx[3]);
        ys[r][d] = load_elem(y, p.dtype, row_at(sy, b, tok, h) + d * sy[3]);
    }
}

} /* namespace */

#endif
