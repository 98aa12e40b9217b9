/* The Hopper STA backward (sm_90a): the two kernels of sta_bwd_sm80.cu (dQ per query block, then dK/dV
 * per key block over the transposed schedule; every gradient row owned by one warpgroup, no atomics,
 * deterministic) with wgmma in place of mma.sync. A block of 128 rows is two warpgroups of 64; operands
 * are staged by cp.async (all 256 threads, two stages of 64-row chunks) into 128-byte swizzled tiles,
 * one [rows][64] tile per 64-wide piece of the head dim - the layout wgmma reads as K-major (Q, K, V,
 * dO rows against the head dim) and, with the transpose bit, as MN-major (dO and Q as the B of
 * P^T dO and dS^T Q, K as the B of dS K).
 *   dQ:    S = Q K^T and dP = dO V^T (ss, 64 x 64 per warpgroup), dQ += dS K (rs, P and dS from
 *          registers rounded to the input type, as the forward's P V);
 *   dK/dV: S^T = K Q^T and dP^T = V dO^T (ss), dV += P^T dO and dK += dS^T Q (rs).
 * Built only as sm_90a machine code (-Dnvcc_archs including 90), taken on compute capability 9.0. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "sta_mma.cuh" /* cp.async */
#include "sta_schedule.cuh"
#include "sta_softmax.cuh"
#include "sta_wgmma.cuh"

namespace {

enum { NT = 256, CH = 64 };  /* threads (two warpgroups), chunk rows (= BN) */
static_assert(BM == 128 && (int)BN == (int)CH, "two warpgroups of 64 rows, chunks of 64 rows");

const float LOG2E = 1.4426950408889634f;

__device__ __forceinline__ long long stat_at(const sta_params &p, int b, int h, long long t) { return ((long long)b * p.heads + h) * p.tokens + t; }

/* Byte offset of 16-byte piece c (columns 8c .. 8c + 7) of row r in a tile of `rows` rows: the 64-wide
 * pieces of the head dim one after another, each [rows][128 bytes], 128-byte swizzled (from a
 * 1024-byte aligned base, as TMA's SWIZZLE_128B writes and wgmma's descriptors read). */
__device__ __forceinline__ uint32_t swz(int rows, int r, int c) { return (uint32_t)((c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4)); }

__device__ __forceinline__ void fence_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

/* cp.async rows [0, n) of chunk c of two tensors (bases at this batch entry and head, token strides
 * xs, ys) into CH-row tiles xd, yd; zero-filled past n. */
template <int D>
__device__ __forceinline__ void stage_chunk(const sta_params &p, const chunk_iter &c, unsigned char *xd, unsigned char *yd, const raw16 *x,
                                            long long xs, const raw16 *y, long long ys, int tid)
{
    constexpr int CPR = D / 8, RPP = NT / CPR;
    const int cc = tid % CPR, n = chunk_rows(c);
    for (int r = tid / CPR; r < CH; r += RPP) {
        const bool ok = r < n;
        const long long tok = ok ? chunk_token(p, c, r) : 0;
        cp_async16(xd + swz(CH, r, cc), x + tok * xs + cc * 8, ok);
        cp_async16(yd + swz(CH, r, cc), y + tok * ys + cc * 8, ok);
    }
}

/* The same for the block's own BM rows. */
template <int D>
__device__ __forceinline__ void stage_block(const sta_params &p, const int *blk, const geom &g, unsigned char *xd, unsigned char *yd,
                                            const raw16 *x, long long xs, const raw16 *y, long long ys, int tid)
{
    constexpr int CPR = D / 8, RPP = NT / CPR;
    const int cc = tid % CPR, n = blk[STILE_BLOCK_NROWS];
    for (int r = tid / CPR; r < BM; r += RPP) {
        const bool ok = r < n;
        const long long tok = ok ? query_token(p, blk, g, r) : 0;
        cp_async16(xd + swz(BM, r, cc), x + tok * xs + cc * 8, ok);
        cp_async16(yd + swz(BM, r, cc), y + tok * ys + cc * 8, ok);
    }
}

/* s (64 x 64 per warpgroup) = A B^T over the head dim: A the warpgroup's 64 rows of a BM-row tile,
 * B a CH-row tile, both K-major. */
template <int D, bool BF> __device__ __forceinline__ void ss_abt(float (&s)[32], uint32_t a, int wg, uint32_t b)
{
    const uint64_t da = make_desc(a + wg * 64 * 128, 16, 1024), db = make_desc(b, 16, 1024);
#pragma unroll
    for (int k = 0; k < D / 16; k++) {
        const uint32_t ao = (k >> 2) * BM * 128 + (k & 3) * 32, bo = (k >> 2) * CH * 128 + (k & 3) * 32;
        wgmma_ss_n64<BF>(s, da + (ao >> 4), db + (bo >> 4), k > 0);
    }
}

/* acc (64 x D per warpgroup) += P B: P (64 x CH) from registers (pr: the packed accumulator of ss_abt),
 * B the CH-row tile at b read MN-major (the head dim along N). */
template <int D, bool BF> __device__ __forceinline__ void rs_pb(float (&acc)[D / 2], const unsigned (&pr)[16], uint32_t b)
{
    const uint64_t db = make_desc(b, CH * 128, 1024); /* LBO: the distance between 64-wide pieces */
#pragma unroll
    for (int k = 0; k < CH / 16; k++) {
        if constexpr (D == 128)
            wgmma_rs_n128<BF>(*reinterpret_cast<float(*)[64]>(acc), pr[4 * k], pr[4 * k + 1], pr[4 * k + 2], pr[4 * k + 3],
                              db + (uint64_t)((k * 16 * 128) >> 4));
        else
            wgmma_rs_n64<BF>(*reinterpret_cast<float(*)[32]>(acc), pr[4 * k], pr[4 * k + 1], pr[4 * k + 2], pr[4 * k + 3],
                             db + (uint64_t)((k * 16 * 128) >> 4));
    }
}

/* Round acc * sc (the warpgroup's 64 rows) into the same rows of the BM-row tile t: each warp writes,
 * and later reads, only its own 16 rows. */
template <int D, bool BF> __device__ __forceinline__ void acc_to_smem(unsigned char *t, const float (&acc)[D / 2], float sc, int wg, int warp, int lane)
{
#pragma unroll
    for (int j = 0; j < D / 8; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = wg * 64 + warp * 16 + (lane >> 2) + 8 * h, c = 8 * j + 2 * (lane & 3);
            *reinterpret_cast<unsigned *>(t + swz(BM, r, c >> 3) + (c & 7) * 2) = pack2<BF>(acc[4 * j + 2 * h] * sc, acc[4 * j + 2 * h + 1] * sc);
        }
}

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

template <int D> __device__ __forceinline__ unsigned char *align1024(unsigned char *s)
{
    return s + ((1024 - (smem_u32(s) & 1023)) & 1023);
}

template <int D, bool BF>
__global__ void __launch_bounds__(NT, 1) sta_bwd_dq_sm90(const sta_bwd_params P)
{
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char *smem = align1024<D>(smem_raw);
    constexpr int TB = BM * D * 2, TC = CH * D * 2; /* bytes of a block tile and of a chunk tile */
    unsigned char *Qs = smem, *Ds = Qs + TB, *Ks = Ds + TB, *Vs = Ks + 2 * TC;
    const sta_params &p = P.f;
    const int *blk = query_block(p);
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const int qrows = blk[STILE_BLOCK_NROWS];
    const geom qg = query_geom(p, blk);
    const raw16 *qb = (const raw16 *)p.q + b * p.sq[0] + h * p.sq[2], *db = (const raw16 *)P.d_o + b * p.so[0] + h * p.so[2];
    const raw16 *ob = (const raw16 *)p.o + b * p.so[0] + h * p.so[2];
    const raw16 *kb = (const raw16 *)p.k + b * p.sk[0] + h * p.sk[2], *vb = (const raw16 *)p.v + b * p.sv[0] + h * p.sv[2];
    stage_block<D>(p, blk, qg, Qs, Ds, qb, p.sq[1], db, p.so[1], tid);
    chunk_iter cur = chunk_begin(p, blk[STILE_BLOCK_TILE], h), nxt = cur;
    chunk_next(p, nxt);
    stage_chunk<D>(p, cur, Ks, Vs, kb, p.sk[1], vb, p.sv[1], tid);
    cp_commit();

    /* D_i of the warp's 16 rows from global memory; LSE and D of this lane's two rows */
    float l2r[2] = {0.f, 0.f}, dlr[2] = {0.f, 0.f};
    const int wrow = wg * 64 + warp * 16;
    for (int rr = 0; rr < 16; rr++) {
        const int row = wrow + rr;
        if (row >= qrows) break; /* warp-uniform */
        const long long tok = query_token(p, blk, qg, row);
        float part = 0.f;
        for (int c = lane; c < D / 8; c += 32)
            part += dot8<BF>(*reinterpret_cast<const uint4 *>(db + tok * p.so[1] + c * 8), *reinterpret_cast<const uint4 *>(ob + tok * p.so[1] + c * 8));
#pragma unroll
        for (int m = 16; m > 0; m >>= 1) part += __shfl_xor_sync(0xffffffffu, part, m);
        if (lane == 0) P.delta[stat_at(p, b, h, tok)] = part;
        if (rr == (lane >> 2)) {
            dlr[0] = part;
            l2r[0] = p.lse[stat_at(p, b, h, tok)] * LOG2E;
        }
        if (rr == (lane >> 2) + 8) {
            dlr[1] = part;
            l2r[1] = p.lse[stat_at(p, b, h, tok)] * LOG2E;
        }
    }

    float dq[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) dq[i] = 0.f;
    const float sl2 = p.scale_log2;
    const uint32_t qs = smem_u32(Qs), ds = smem_u32(Ds);
    int stage = 0;
    for (;;) {
        const bool has_next = chunk_valid(p, nxt);
        if (has_next) stage_chunk<D>(p, nxt, Ks + (stage ^ 1) * TC, Vs + (stage ^ 1) * TC, kb, p.sk[1], vb, p.sv[1], tid);
        cp_commit();
        cp_wait<1>(); /* the block's rows and the current chunk have landed */
        fence_async();
        __syncthreads();
        const uint32_t ks = smem_u32(Ks + stage * TC), vs = smem_u32(Vs + stage * TC);
        const int n = chunk_rows(cur);
        float s[32], dp[32];
        wgmma_fence();
        ss_abt<D, BF>(s, qs, wg, ks);
        ss_abt<D, BF>(dp, ds, wg, vs);
        wgmma_commit();
        wgmma_wait<0>();
        reg_fence(s);
        reg_fence(dp);
        unsigned dsr[16];
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e += 2) {
                const int col = 8 * j + 2 * (lane & 3);
                float x[2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    const float pr = col + u < n ? fast_exp2(fmaf(s[4 * j + e + u], sl2, -l2r[e >> 1])) : 0.f;
                    x[u] = pr * (dp[4 * j + e + u] - dlr[e >> 1]);
                }
                dsr[2 * j + (e >> 1)] = pack2<BF>(x[0], x[1]);
            }
        wgmma_fence();
        rs_pb<D, BF>(dq, dsr, ks);
        wgmma_commit();
        wgmma_wait<0>();
        reg_fence(dq);
        __syncthreads(); /* this stage is consumed before the next issue overwrites it */
        if (!has_next) break;
        cur = nxt;
        chunk_next(p, nxt);
        stage ^= 1;
    }

    acc_to_smem<D, BF>(Qs, dq, P.scale, wg, warp, lane);
    __syncwarp();
    raw16 *gq = (raw16 *)P.d_q + b * p.sq[0] + h * p.sq[2];
    for (int e = lane; e < 16 * (D / 8); e += 32) {
        const int row = wrow + e / (D / 8), c = e % (D / 8);
        if (row < qrows)
            *reinterpret_cast<uint4 *>(gq + query_token(p, blk, qg, row) * p.sq[1] + c * 8) = *reinterpret_cast<const uint4 *>(Qs + swz(BM, row, c));
    }
}

template <int D, bool BF>
__global__ void __launch_bounds__(NT, 1) sta_bwd_dkdv_sm90(const sta_bwd_params P)
{
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char *smem = align1024<D>(smem_raw);
    constexpr int TB = BM * D * 2, TC = CH * D * 2;
    unsigned char *Ks = smem, *Vs = Ks + TB, *Qs = Vs + TB, *Ds = Qs + 2 * TC;
    float *L2 = reinterpret_cast<float *>(Ds + 2 * TC), *DL = L2 + 2 * CH;
    const sta_params &p = P.f;
    const int *blk = query_block(p);
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const int ktile = blk[STILE_BLOCK_TILE], krows = blk[STILE_BLOCK_NROWS];
    const geom kg = query_geom(p, blk);
    const raw16 *qb = (const raw16 *)p.q + b * p.sq[0] + h * p.sq[2], *db = (const raw16 *)P.d_o + b * p.so[0] + h * p.so[2];
    const raw16 *kb = (const raw16 *)p.k + b * p.sk[0] + h * p.sk[2], *vb = (const raw16 *)p.v + b * p.sv[0] + h * p.sv[2];
    stage_block<D>(p, blk, kg, Ks, Vs, kb, p.sk[1], vb, p.sv[1], tid);
    chunk_iter cur = chunk_walk(p, p.query_start, p.query_tiles, ktile, h, p.tokens - p.video), nxt = cur;
    chunk_next(p, nxt);
    auto issue = [&](const chunk_iter &c, int st) {
        stage_chunk<D>(p, c, Qs + st * TC, Ds + st * TC, qb, p.sq[1], db, p.so[1], tid);
        if (tid < CH) { /* rows past the chunk: P = 0 (lse +inf), D 0 */
            const bool ok = tid < chunk_rows(c);
            const long long at = ok ? stat_at(p, b, h, chunk_token(p, c, tid)) : 0;
            L2[st * CH + tid] = ok ? p.lse[at] * LOG2E : __int_as_float(0x7f800000);
            DL[st * CH + tid] = ok ? P.delta[at] : 0.f;
        }
    };
    issue(cur, 0);
    cp_commit();

    float dk[D / 2], dv[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) dk[i] = dv[i] = 0.f;
    const float sl2 = p.scale_log2;
    const uint32_t ksm = smem_u32(Ks), vsm = smem_u32(Vs);
    int stage = 0;
    for (;;) {
        const bool has_next = chunk_valid(p, nxt);
        if (has_next) issue(nxt, stage ^ 1);
        cp_commit();
        cp_wait<1>();
        fence_async();
        __syncthreads();
        const uint32_t qs = smem_u32(Qs + stage * TC), ds = smem_u32(Ds + stage * TC);
        const float *l2 = L2 + stage * CH, *dl = DL + stage * CH;
        float s[32], dp[32];
        wgmma_fence();
        ss_abt<D, BF>(s, ksm, wg, qs);
        ss_abt<D, BF>(dp, vsm, wg, ds);
        wgmma_commit();
        wgmma_wait<0>();
        reg_fence(s);
        reg_fence(dp);
        unsigned pr[16], dsr[16];
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e += 2) {
                const int col = 8 * j + 2 * (lane & 3);
                float x[2], y[2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    x[u] = fast_exp2(fmaf(s[4 * j + e + u], sl2, -l2[col + u]));
                    y[u] = x[u] * (dp[4 * j + e + u] - dl[col + u]);
                }
                pr[2 * j + (e >> 1)] = pack2<BF>(x[0], x[1]);
                dsr[2 * j + (e >> 1)] = pack2<BF>(y[0], y[1]);
            }
        wgmma_fence();
        rs_pb<D, BF>(dv, pr, ds);
        rs_pb<D, BF>(dk, dsr, qs);
        wgmma_commit();
        wgmma_wait<0>();
        reg_fence(dv);
        reg_fence(dk);
        __syncthreads();
        if (!has_next) break;
        cur = nxt;
        chunk_next(p, nxt);
        stage ^= 1;
    }

    acc_to_smem<D, BF>(Ks, dk, P.scale, wg, warp, lane);
    acc_to_smem<D, BF>(Vs, dv, 1.f, wg, warp, lane);
    __syncwarp();
    raw16 *gk = (raw16 *)P.d_k + b * p.sk[0] + h * p.sk[2], *gv = (raw16 *)P.d_v + b * p.sv[0] + h * p.sv[2];
    const int wrow = wg * 64 + warp * 16;
    for (int e = lane; e < 16 * (D / 8); e += 32) {
        const int row = wrow + e / (D / 8), c = e % (D / 8);
        if (row >= krows) continue;
        const long long tok = query_token(p, blk, kg, row);
        const bool padding = ktile < 0 && tok - p.video >= p.text_valid; /* attended by none; its sums are dropped */
        const uint4 zero = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4 *>(gk + tok * p.sk[1] + c * 8) = padding ? zero : *reinterpret_cast<const uint4 *>(Ks + swz(BM, row, c));
        *reinterpret_cast<uint4 *>(gv + tok * p.sv[1] + c * 8) = padding ? zero : *reinterpret_cast<const uint4 *>(Vs + swz(BM, row, c));
    }
}

template <int D, bool BF> cudaError_t launch(const sta_bwd_params *p, dim3 grid, cudaStream_t stream)
{
    const size_t tiles = (size_t)(2 * BM + 4 * CH) * D * 2, smem_dq = tiles + 1024, smem_kv = smem_dq + 4 * CH * sizeof(float);
    cudaError_t e = cudaFuncSetAttribute(sta_bwd_dq_sm90<D, BF>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_dq);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(sta_bwd_dkdv_sm90<D, BF>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_kv);
    if (e != cudaSuccess) return e;
    sta_bwd_dq_sm90<D, BF><<<grid, NT, smem_dq, stream>>>(*p);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    sta_bwd_dkdv_sm90<D, BF><<<grid, NT, smem_kv, stream>>>(*p);
    return cudaGetLastError();
}

} /* namespace */

cudaError_t STA_KERNELS::bwd_sm90_launch(const sta_bwd_params *p, dim3 grid, cudaStream_t stream)
{
    const bool bf = p->f.dtype == DT_BF16;
    if (p->f.head_dim == 128) return bf ? launch<128, true>(p, grid, stream) : launch<128, false>(p, grid, stream);
    return bf ? launch<64, true>(p, grid, stream) : launch<64, false>(p, grid, stream);
}
