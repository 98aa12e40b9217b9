/* What the tensor-core backward kernels share (sta_bwd_sm80.cu with mma.sync, sta_bwd_sm90.cu with
 * wgmma): 8 warps of 16 rows per 128-row block, 16-byte cp.async staging of a block's rows or of a
 * chunk's into a kernel's own tile layout, D_i and the LSE of each lane's rows, and the store of a
 * warp's finished rows. CUDA only, internal linkage. */
#ifndef STILE_STA_BWD_TC_CUH
#define STILE_STA_BWD_TC_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "sta_mma.cuh"
#include "sta_schedule.cuh"

namespace {

enum { NW = 8, NT = 32 * NW }; /* warps and threads of a block */
static_assert(BM == 16 * NW, "the backward blocks: 8 warps x 16 rows");

/* Tensor t at batch entry b and head h under strides s, as 16-bit elements. */
__device__ __forceinline__ const raw16 *at_bh(const void *t, const long long (&s)[4], int b, int h) { return (const raw16 *)t + b * s[0] + h * s[2]; }
__device__ __forceinline__ raw16 *at_bh(void *t, const long long (&s)[4], int b, int h) { return (raw16 *)t + b * s[0] + h * s[2]; }

template <bool BF> __device__ __forceinline__ float2 unpack2(unsigned u)
{
    if (BF) return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u));
    return __half22float2(*reinterpret_cast<const __half2 *>(&u));
}

template <bool BF> __device__ __forceinline__ float dot8(uint4 x, uint4 y)
{
    const unsigned xa[4] = {x.x, x.y, x.z, x.w}, ya[4] = {y.x, y.y, y.z, y.w};
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 a = unpack2<BF>(xa[i]), c = unpack2<BF>(ya[i]);
        s = fmaf(a.x, c.x, fmaf(a.y, c.y, s));
    }
    return s;
}

/* cp.async 16-byte piece cc of rows [0, rows) of two tensors x, y (bases at this batch entry and head,
 * token strides xs, ys) to at(r, cc) of the x tile and of the y tile (the kernel's layout), rows from
 * n on zero-filled; token(r) gives row r's token. */
template <int D, class Tok, class At>
__device__ __forceinline__ void stage_rows(int rows, int n, Tok token, At at, unsigned char *xd, unsigned char *yd, const raw16 *x, long long xs,
                                           const raw16 *y, long long ys, int tid)
{
    constexpr int CPR = D / 8, RPP = NT / CPR;
    const int cc = tid % CPR;
    for (int r = tid / CPR; r < rows; r += RPP) {
        const bool ok = r < n;
        const long long tok = ok ? token(r) : 0;
        cp_async16(xd + at(r, cc), x + tok * xs + cc * 8, ok);
        cp_async16(yd + at(r, cc), y + tok * ys + cc * 8, ok);
    }
}

/* The dQ kernel's row statistics for the warp's 16 rows from wrow: D_i = dO_i . o_i from global
 * memory (lanes over 16-byte pieces), written to the delta scratch, and for the two rows this lane's
 * accumulators hold (lane/4 and lane/4 + 8) D_i and the LSE in the log2 domain. */
template <int D, bool BF>
__device__ __forceinline__ void row_stats(const sta_bwd_params &P, const int *blk, const geom &g, int wrow, int lane, float (&l2r)[2], float (&dlr)[2])
{
    const sta_params &p = P.f;
    const int h = blockIdx.y, b = blockIdx.z, rows = blk[STILE_BLOCK_NROWS];
    const raw16 *db = at_bh(P.d_o, p.so, b, h), *ob = at_bh(p.o, p.so, b, h);
    l2r[0] = l2r[1] = dlr[0] = dlr[1] = 0.f;
    for (int rr = 0; rr < 16; rr++) {
        const int row = wrow + rr;
        if (row >= rows) break; /* warp-uniform */
        const long long tok = query_token(p, blk, g, row);
        float part = 0.f;
        for (int c = lane; c < D / 8; c += 32)
            part += dot8<BF>(*reinterpret_cast<const uint4 *>(db + tok * p.so[1] + c * 8), *reinterpret_cast<const uint4 *>(ob + tok * p.so[1] + c * 8));
#pragma unroll
        for (int m = 16; m > 0; m >>= 1) part += __shfl_xor_sync(0xffffffffu, part, m);
        if (lane == 0) P.delta[stat_at(p, b, h, tok)] = part;
        if (rr == (lane >> 2)) {
            dlr[0] = part;
            l2r[0] = lse2_of(p.lse[stat_at(p, b, h, tok)]);
        }
        if (rr == (lane >> 2) + 8) {
            dlr[1] = part;
            l2r[1] = lse2_of(p.lse[stat_at(p, b, h, tok)]);
        }
    }
}

/* Store the warp's 16 finished rows from wrow of the block (up to its row count) from at(row, piece)
 * of tile t to the gradient g (base at this batch entry and head, token stride gs), 16 bytes at a
 * time; zero(tok) rows get zeros. Each warp reads only the rows it wrote itself. */
template <int D, class At, class Zero>
__device__ __forceinline__ void store_rows(const sta_params &p, const int *blk, const geom &g, int wrow, int lane, At at, const unsigned char *t,
                                           raw16 *out, long long gs, Zero zero)
{
    for (int e = lane; e < 16 * (D / 8); e += 32) {
        const int row = wrow + e / (D / 8), c = e % (D / 8);
        if (row >= blk[STILE_BLOCK_NROWS]) continue;
        const long long tok = query_token(p, blk, g, row);
        *reinterpret_cast<uint4 *>(out + tok * gs + c * 8) = zero(tok) ? make_uint4(0, 0, 0, 0) : *reinterpret_cast<const uint4 *>(t + at(row, c));
    }
}

/* Enqueue the dQ kernel, then the dK/dV kernel (which reads the D_i the first one writes), each with
 * the dynamic shared memory it takes. */
template <class KQ, class KV>
gpuError_t launch_pair(KQ *dq, size_t smem_dq, KV *dkdv, size_t smem_kv, const sta_bwd_params *p, dim3 grid, gpuStream_t stream)
{
    gpuError_t e = gpuFuncSetAttribute(dq, gpuFuncAttributeMaxDynamicSharedMemorySize, (int)smem_dq);
    if (e == gpuSuccess) e = gpuFuncSetAttribute(dkdv, gpuFuncAttributeMaxDynamicSharedMemorySize, (int)smem_kv);
    if (e != gpuSuccess) return e;
    dq<<<grid, NT, smem_dq, stream>>>(*p);
    if ((e = gpuGetLastError()) != gpuSuccess) return e;
    dkdv<<<grid, NT, smem_kv, stream>>>(*p);
    return gpuGetLastError();
}

} /* namespace */

#endif
