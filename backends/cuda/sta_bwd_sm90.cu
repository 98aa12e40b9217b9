/* The Hopper STA backward (sm_90a): the two kernels of sta_bwd_sm80.cu (dQ per query block, then dK/dV
 * per key block over the transposed schedule; every gradient row owned by one warpgroup, no atomics,
 * deterministic) with wgmma in place of mma.sync. A block of 128 rows is two warpgroups of 64; operands
 * are staged by cp.async (all 256 threads, three stages of 64-row chunks fetched two chunks ahead,
 * one barrier per chunk) into 128-byte swizzled tiles,
 * one [rows][64] tile per 64-wide piece of the head dim - the layout wgmma reads as K-major (Q, K, V,
 * dO rows against the head dim) and, with the transpose bit, as MN-major (dO and Q as the B of
 * P^T dO and dS^T Q, K as the B of dS K).
 *   dQ:    S = Q K^T and dP = dO V^T (ss, 64 x 64 per warpgroup), dQ += dS K (rs, P and dS from
 *          registers rounded to the input type, as the forward's P V);
 *   dK/dV: S^T = K Q^T and dP^T = V dO^T (ss), dV += P^T dO and dK += dS^T Q (rs).
 * Built only as sm_90a machine code (-Dnvcc_archs including 90), taken on compute capability 9.0. */
#include <stdint.h>

#include "sta_bwd_tc.cuh"
#include "sta_softmax.cuh"
#include "sta_wgmma.cuh"

namespace {

enum { CH = 64, NS = 3 }; /* chunk rows (= BN), chunk stages */
static_assert(BM == 128 && (int)BN == (int)CH && NT == 256, "two warpgroups of 64 rows, chunks of 64 rows");

/* Byte offset of 16-byte piece c (columns 8c .. 8c + 7) of row r in a tile of `rows` rows: the 64-wide
 * pieces of the head dim one after another, each [rows][128 bytes], 128-byte swizzled (from a
 * 1024-byte aligned base, as TMA's SWIZZLE_128B writes and wgmma's descriptors read). */
__device__ __forceinline__ uint32_t swz(int rows, int r, int c) { return (uint32_t)((c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4)); }

__device__ __forceinline__ void fence_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

template <int ROWS> struct swz_at {
    __device__ __forceinline__ uint32_t operator()(int r, int cc) const { return swz(ROWS, r, cc); }
};

/* cp.async chunk c of two tensors into CH-row tiles, or the block's own BM rows (stage_rows). */
template <int D>
__device__ __forceinline__ void stage_chunk(const sta_params &p, const chunk_iter &c, unsigned char *xd, unsigned char *yd, const raw16 *x,
                                            long long xs, const raw16 *y, long long ys, int tid)
{
    stage_rows<D>(CH, chunk_rows(c), [&](int r) { return chunk_token(p, c, r); }, swz_at<CH>(), xd, yd, x, xs, y, ys, tid);
}

template <int D>
__device__ __forceinline__ void stage_block(const sta_params &p, const int *blk, const geom &g, unsigned char *xd, unsigned char *yd,
                                            const raw16 *x, long long xs, const raw16 *y, long long ys, int tid)
{
    stage_rows<D>(BM, blk[STILE_BLOCK_NROWS], [&](int r) { return query_token(p, blk, g, r); }, swz_at<BM>(), xd, yd, x, xs, y, ys, tid);
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

/* S = A1 B1^T and dP = A2 B2^T (ss_abt), issued as one group and awaited. */
template <int D, bool BF>
__device__ __forceinline__ void ss_pair(float (&s)[32], uint32_t a1, uint32_t b1, float (&dp)[32], uint32_t a2, uint32_t b2, int wg)
{
    wgmma_fence();
    ss_abt<D, BF>(s, a1, wg, b1);
    ss_abt<D, BF>(dp, a2, wg, b2);
    wgmma_commit();
    wgmma_wait<0>();
    reg_fence(s);
    reg_fence(dp);
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

__device__ __forceinline__ int next_stage(int s) { return s + 1 == NS ? 0 : s + 1; }

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
    unsigned char *Qs = smem, *Ds = Qs + TB, *Ks = Ds + TB, *Vs = Ks + NS * TC;
    const sta_params &p = P.f;
    const int *blk = query_block(p);
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const geom qg = query_geom(p, blk);
    const raw16 *qb = at_bh(p.q, p.sq, b, h), *db = at_bh(P.d_o, p.so, b, h), *kb = at_bh(p.k, p.sk, b, h), *vb = at_bh(p.v, p.sv, b, h);
    stage_block<D>(p, blk, qg, Qs, Ds, qb, p.sq[1], db, p.so[1], tid);
    /* chunk i + 2 is fetched while chunk i is computed: cur is chunk i, ahead chunk i + 2 */
    chunk_iter cur = chunk_begin(p, blk[STILE_BLOCK_TILE], h, b), ahead = cur;
    stage_chunk<D>(p, cur, Ks, Vs, kb, p.sk[1], vb, p.sv[1], tid);
    cp_commit();
    chunk_next(p, ahead);
    if (chunk_valid(p, ahead)) stage_chunk<D>(p, ahead, Ks + TC, Vs + TC, kb, p.sk[1], vb, p.sv[1], tid);
    cp_commit();
    chunk_next(p, ahead);

    const int wrow = wg * 64 + warp * 16;
    float l2r[2], dlr[2];
    row_stats<D, BF>(P, blk, qg, wrow, lane, l2r, dlr);

    float dq[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) dq[i] = 0.f;
    const float sl2 = p.scale_log2;
    const uint32_t qs = smem_u32(Qs), ds = smem_u32(Ds);
    int stage = 0;
    for (;;) {
        cp_wait<1>(); /* the block's rows and chunk i have landed (chunk i + 1 may not have) */
        fence_async();
        __syncthreads();
        /* chunk i + 2 goes where chunk i - 1 was, which every thread has finished with (barrier above) */
        if (chunk_valid(p, ahead))
            stage_chunk<D>(p, ahead, Ks + next_stage(next_stage(stage)) * TC, Vs + next_stage(next_stage(stage)) * TC, kb, p.sk[1], vb, p.sv[1], tid);
        cp_commit();
        const uint32_t ks = smem_u32(Ks + stage * TC), vs = smem_u32(Vs + stage * TC);
        const int n = chunk_rows(cur);
        float s[32], dp[32];
        ss_pair<D, BF>(s, qs, ks, dp, ds, vs, wg);
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
        chunk_next(p, cur);
        if (!chunk_valid(p, cur)) break;
        chunk_next(p, ahead);
        stage = next_stage(stage);
    }

    acc_to_smem<D, BF>(Qs, dq, P.scale, wg, warp, lane);
    __syncwarp();
    store_rows<D>(p, blk, qg, wrow, lane, swz_at<BM>(), Qs, at_bh(P.d_q, p.sq, b, h), p.sq[1], [](long long) { return false; });
}

template <int D, bool BF>
__global__ void __launch_bounds__(NT, 1) sta_bwd_dkdv_sm90(const sta_bwd_params P)
{
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char *smem = align1024<D>(smem_raw);
    constexpr int TB = BM * D * 2, TC = CH * D * 2;
    unsigned char *Ks = smem, *Vs = Ks + TB, *Qs = Vs + TB, *Ds = Qs + NS * TC;
    float *LS = reinterpret_cast<float *>(Ds + NS * TC), *DL = LS + NS * CH; /* per stage: the chunk's LSE and D_i */
    const sta_params &p = P.f;
    const int *blk = query_block(p);
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const int ktile = blk[STILE_BLOCK_TILE];
    const geom kg = query_geom(p, blk);
    const raw16 *qb = at_bh(p.q, p.sq, b, h), *db = at_bh(P.d_o, p.so, b, h), *kb = at_bh(p.k, p.sk, b, h), *vb = at_bh(p.v, p.sv, b, h);
    stage_block<D>(p, blk, kg, Ks, Vs, kb, p.sk[1], vb, p.sv[1], tid);
    chunk_iter cur = chunk_key_begin(p, ktile, h, b), ahead = cur; /* chunks i, i + 2 */
    auto issue = [&](const chunk_iter &c, int st) {
        stage_chunk<D>(p, c, Qs + st * TC, Ds + st * TC, qb, p.sq[1], db, p.so[1], tid);
        if (tid < CH) { /* rows past the chunk: LSE and D 0, and with Q and dO 0 they add nothing */
            const bool ok = tid < chunk_rows(c);
            const long long at = ok ? stat_at(p, b, h, chunk_token(p, c, tid)) : 0;
            cp_async4(LS + st * CH + tid, p.lse + at, ok);
            cp_async4(DL + st * CH + tid, P.delta + at, ok);
        }
    };
    issue(cur, 0);
    cp_commit();
    chunk_next(p, ahead);
    if (chunk_valid(p, ahead)) issue(ahead, 1);
    cp_commit();
    chunk_next(p, ahead);

    float dk[D / 2], dv[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) dk[i] = dv[i] = 0.f;
    const float sl2 = p.scale_log2;
    const uint32_t ksm = smem_u32(Ks), vsm = smem_u32(Vs);
    int stage = 0;
    for (;;) {
        cp_wait<1>();
        fence_async();
        __syncthreads();
        if (chunk_valid(p, ahead)) issue(ahead, next_stage(next_stage(stage))); /* as in the dQ kernel */
        cp_commit();
        const uint32_t qs = smem_u32(Qs + stage * TC), ds = smem_u32(Ds + stage * TC);
        const float *ls = LS + stage * CH, *dl = DL + stage * CH;
        float s[32], dp[32];
        ss_pair<D, BF>(s, ksm, qs, dp, vsm, ds, wg);
        unsigned pr[16], dsr[16];
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e += 2) {
                const int col = 8 * j + 2 * (lane & 3);
                float x[2], y[2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    x[u] = fast_exp2(fmaf(s[4 * j + e + u], sl2, -ls[col + u] * LOG2E));
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
        chunk_next(p, cur);
        if (!chunk_valid(p, cur)) break;
        chunk_next(p, ahead);
        stage = next_stage(stage);
    }

    acc_to_smem<D, BF>(Ks, dk, P.scale, wg, warp, lane);
    acc_to_smem<D, BF>(Vs, dv, 1.f, wg, warp, lane);
    __syncwarp();
    const int wrow = wg * 64 + warp * 16;
    auto padding = [&](long long tok) { return padding_key(p, ktile, tok); };
    store_rows<D>(p, blk, kg, wrow, lane, swz_at<BM>(), Ks, at_bh(P.d_k, p.sk, b, h), p.sk[1], padding);
    store_rows<D>(p, blk, kg, wrow, lane, swz_at<BM>(), Vs, at_bh(P.d_v, p.sv, b, h), p.sv[1], padding);
}

/* Dynamic shared memory of the dQ kernel (tiles and the 1024-byte alignment slack) and of the dK/dV kernel. */
size_t smem_dq(int D) { return (size_t)(2 * BM + 2 * NS * CH) * D * 2 + 1024; }
size_t smem_kv(int D) { return smem_dq(D) + 2 * NS * CH * sizeof(float); }

template <int D, bool BF> cudaError_t launch(const sta_bwd_params *p, dim3 grid, cudaStream_t stream)
{
    return launch_pair(sta_bwd_dq_sm90<D, BF>, smem_dq(D), sta_bwd_dkdv_sm90<D, BF>, smem_kv(D), p, grid, stream);
}

} /* namespace */

size_t STA_KERNELS::bwd_sm90_smem(int head_dim) { return smem_kv(head_dim); }

cudaError_t STA_KERNELS::bwd_sm90_launch(const sta_bwd_params *p, dim3 grid, cudaStream_t stream)
{
    const bool bf = p->f.dtype == DT_BF16;
    if (p->f.head_dim == 128) return bf ? launch<128, true>(p, grid, stream) : launch<128, false>(p, grid, stream);
    return bf ? launch<64, true>(p, grid, stream) : launch<64, false>(p, grid, stream);
}
