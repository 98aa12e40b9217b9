/* The tensor-core STA backward (CUDA, sm_80 and newer; what stile_gpu_backward_path accepts: f16/bf16,
 * head_dim 64 or 128, contiguous head dim, 16-byte aligned rows of every tensor). Two kernels, each
 * owning the gradient rows it writes (no atomics; deterministic), 8 warps of 16 rows per block, mma.sync
 * m16n8k16 with f32 accumulation on operands staged by cp.async in two stages and read by ldmatrix:
 *   dQ, per query block: D_i = dO_i . o_i (left in the launch's scratch for the next kernel), then
 *     over the keys the block attends: S = Q K^T, P = exp2(S scale log2e - lse log2e), dP = dO V^T,
 *     dS = P (dP - D_i), dQ += dS K;
 *   dK/dV, per key block: over the queries that attend it (the transposed schedule, then every text
 *     query): S^T = K Q^T, P^T, dP^T = V dO^T, dS^T = P^T (dP^T - D), dV += P^T dO, dK += dS^T Q.
 * P and dS enter their MMAs rounded to the input type, as in the forward's P V. Inline PTX, CUDA only. */
#ifdef STILE_HIP
#error "sta_bwd_sm80.cu is CUDA only (inline PTX): HIP builds the portable backward"
#endif
#include "sta_bwd_tc.cuh"
#include "sta_softmax.cuh"

namespace {

enum { QH = 32 }; /* columns of S per step */
static_assert(BN % QH == 0, "whole steps per chunk");

/* Byte offset of 16-byte piece cc of row r in a [rows][D] tile of sw<D>'s layout. */
template <int D> struct sw_at {
    __device__ __forceinline__ unsigned operator()(int r, int cc) const { return 2u * (unsigned)sw<D>(r, cc * 8); }
};

/* cp.async chunk c of two tensors into [BN][D] tiles, or the block's own BM rows (stage_rows). */
template <int D>
__device__ __forceinline__ void stage_chunk(const sta_params &p, const chunk_iter &c, raw16 *xd, raw16 *yd, const raw16 *x, long long xs,
                                            const raw16 *y, long long ys, int tid)
{
    stage_rows<D>(BN, chunk_rows(c), [&](int r) { return chunk_token(p, c, r); }, sw_at<D>(), (unsigned char *)xd, (unsigned char *)yd, x, xs,
                  y, ys, tid);
}

template <int D>
__device__ __forceinline__ void stage_block(const sta_params &p, const int *blk, const geom &g, raw16 *xd, raw16 *yd, const raw16 *x,
                                            long long xs, const raw16 *y, long long ys, int tid)
{
    stage_rows<D>(BM, blk[STILE_BLOCK_NROWS], [&](int r) { return query_token(p, blk, g, r); }, sw_at<D>(), (unsigned char *)xd,
                  (unsigned char *)yd, x, xs, y, ys, tid);
}

/* s (16 x QH) = A B^T: A the warp's 16 rows from arow of a, B the QH rows from c0 of bm ([rows][D] tiles). */
template <int D, bool BF>
__device__ __forceinline__ void mma_abt(float (&s)[QH / 8][4], const raw16 *a, int arow, const raw16 *bm, int c0, int lane)
{
#pragma unroll
    for (int i = 0; i < QH / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        unsigned af[4];
        ldsm_x4(af, smem_u32(&a[sw<D>(arow + (lane & 15), kk * 16 + (lane >> 4) * 8)]));
#pragma unroll
        for (int np = 0; np < QH / 16; np++) {
            unsigned bf[4];
            ldsm_x4(bf, smem_u32(&bm[sw<D>(c0 + np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 16 + ((lane >> 3) & 1) * 8)]));
            mma16816<BF>(s[2 * np], af, bf[0], bf[1]);
            mma16816<BF>(s[2 * np + 1], af, bf[2], bf[3]);
        }
    }
}

/* acc (16 x D) += P B: P (16 x QH) in the accumulator layout of mma_abt, rounded to the input type;
 * B the QH rows from c0 of bm, read transposed. */
template <int D, bool BF>
__device__ __forceinline__ void mma_pb(float (&acc)[D / 8][4], const float (&pm)[QH / 8][4], const raw16 *bm, int c0, int lane)
{
#pragma unroll
    for (int kq = 0; kq < QH / 16; kq++) {
        const unsigned a[4] = {pack2<BF>(pm[2 * kq][0], pm[2 * kq][1]), pack2<BF>(pm[2 * kq][2], pm[2 * kq][3]),
                               pack2<BF>(pm[2 * kq + 1][0], pm[2 * kq + 1][1]), pack2<BF>(pm[2 * kq + 1][2], pm[2 * kq + 1][3])};
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
            unsigned bf[4];
            ldsm_x4_t(bf, smem_u32(&bm[sw<D>(c0 + kq * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 16 + (lane >> 4) * 8)]));
            mma16816<BF>(acc[2 * dp], a, bf[0], bf[1]);
            mma16816<BF>(acc[2 * dp + 1], a, bf[2], bf[3]);
        }
    }
}

template <int D> __device__ __forceinline__ void zero_acc(float (&acc)[D / 8][4])
{
#pragma unroll
    for (int i = 0; i < D / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
}

/* Round the warp's 16 rows of acc * sc into its own rows of the [BM][D] tile t (only this warp reads them). */
template <int D, bool BF> __device__ __forceinline__ void acc_to_smem(raw16 *t, const float (&acc)[D / 8][4], float sc, int warp, int lane)
{
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++)
#pragma unroll
        for (int i = 0; i < 2; i++)
            *reinterpret_cast<unsigned *>(&t[sw<D>(warp * 16 + (lane >> 2) + 8 * i, dt * 8 + 2 * (lane & 3))]) =
                pack2<BF>(acc[dt][2 * i] * sc, acc[dt][2 * i + 1] * sc);
}

template <int D, bool BF>
__global__ void __launch_bounds__(NT, 1) sta_bwd_dq_mma(const sta_bwd_params P)
{
    extern __shared__ __align__(16) unsigned char smem[];
    raw16 *Qs = reinterpret_cast<raw16 *>(smem);
    raw16 *Ds = Qs + BM * D; /* dO */
    raw16 *Ks = Ds + BM * D; /* two stages */
    raw16 *Vs = Ks + 2 * BN * D;
    const sta_params &p = P.f;
    const int *blk = query_block(p);
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const geom qg = query_geom(p, blk);
    const raw16 *qb = at_bh(p.q, p.sq, b, h), *db = at_bh(P.d_o, p.so, b, h), *kb = at_bh(p.k, p.sk, b, h), *vb = at_bh(p.v, p.sv, b, h);
    stage_block<D>(p, blk, qg, Qs, Ds, qb, p.sq[1], db, p.so[1], tid);
    chunk_iter cur = chunk_begin(p, blk[STILE_BLOCK_TILE], h, b), nxt = cur;
    chunk_next(p, nxt);
    stage_chunk<D>(p, cur, Ks, Vs, kb, p.sk[1], vb, p.sv[1], tid);
    cp_commit();

    float l2r[2], dlr[2];
    row_stats<D, BF>(P, blk, qg, warp * 16, lane, l2r, dlr);

    float dq[D / 8][4];
    zero_acc<D>(dq);
    const float sl2 = p.scale_log2;
    int stage = 0;
    for (;;) {
        const bool has_next = chunk_valid(p, nxt);
        if (has_next) stage_chunk<D>(p, nxt, Ks + (stage ^ 1) * BN * D, Vs + (stage ^ 1) * BN * D, kb, p.sk[1], vb, p.sv[1], tid);
        cp_commit();
        cp_wait<1>(); /* the block's rows and the current chunk have landed */
        __syncthreads();
        const raw16 *ks = Ks + stage * BN * D, *vs = Vs + stage * BN * D;
        const int n = chunk_rows(cur);
        for (int c0 = 0; c0 < n; c0 += QH) {
            float s[QH / 8][4], dp[QH / 8][4];
            mma_abt<D, BF>(s, Qs, warp * 16, ks, c0, lane);
            mma_abt<D, BF>(dp, Ds, warp * 16, vs, c0, lane);
#pragma unroll
            for (int nt = 0; nt < QH / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const bool in = c0 + nt * 8 + 2 * (lane & 3) + (e & 1) < n;
                    const float pr = in ? fast_exp2(fmaf(s[nt][e], sl2, -l2r[e >> 1])) : 0.f;
                    dp[nt][e] = pr * (dp[nt][e] - dlr[e >> 1]);
                }
            mma_pb<D, BF>(dq, dp, ks, c0, lane);
        }
        __syncthreads(); /* this stage is consumed before the next issue overwrites it */
        if (!has_next) break;
        cur = nxt;
        chunk_next(p, nxt);
        stage ^= 1;
    }

    acc_to_smem<D, BF>(Qs, dq, P.scale, warp, lane);
    __syncwarp();
    store_rows<D>(p, blk, qg, warp * 16, lane, sw_at<D>(), (const unsigned char *)Qs, at_bh(P.d_q, p.sq, b, h), p.sq[1],
                  [](long long) { return false; });
}

template <int D, bool BF>
__global__ void __launch_bounds__(NT, 1) sta_bwd_dkdv_mma(const sta_bwd_params P)
{
    extern __shared__ __align__(16) unsigned char smem[];
    raw16 *Ks = reinterpret_cast<raw16 *>(smem);
    raw16 *Vs = Ks + BM * D;
    raw16 *Qs = Vs + BM * D;     /* two stages */
    raw16 *Ds = Qs + 2 * BN * D; /* dO, two stages */
    float *LS = reinterpret_cast<float *>(Ds + 2 * BN * D); /* per stage: the chunk's LSE */
    float *DL = LS + 2 * BN;                                 /* and its D_i */
    const sta_params &p = P.f;
    const int *blk = query_block(p); /* the key tiles are the query tiles: the same blocks */
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int ktile = blk[STILE_BLOCK_TILE];
    const geom kg = query_geom(p, blk);
    const raw16 *qb = at_bh(p.q, p.sq, b, h), *db = at_bh(P.d_o, p.so, b, h), *kb = at_bh(p.k, p.sk, b, h), *vb = at_bh(p.v, p.sv, b, h);
    stage_block<D>(p, blk, kg, Ks, Vs, kb, p.sk[1], vb, p.sv[1], tid);
    chunk_iter cur = chunk_key_begin(p, ktile, h, b), nxt = cur;
    chunk_next(p, nxt);
    auto issue = [&](const chunk_iter &c, int st) {
        stage_chunk<D>(p, c, Qs + st * BN * D, Ds + st * BN * D, qb, p.sq[1], db, p.so[1], tid);
        if (tid < BN) { /* rows past the chunk: LSE and D 0, and with Q and dO 0 they add nothing */
            const bool ok = tid < chunk_rows(c);
            const long long at = ok ? stat_at(p, b, h, chunk_token(p, c, tid)) : 0;
            cp_async4(LS + st * BN + tid, p.lse + at, ok);
            cp_async4(DL + st * BN + tid, P.delta + at, ok);
        }
    };
    issue(cur, 0);
    cp_commit();

    float dk[D / 8][4], dv[D / 8][4];
    zero_acc<D>(dk);
    zero_acc<D>(dv);
    const float sl2 = p.scale_log2;
    int stage = 0;
    for (;;) {
        const bool has_next = chunk_valid(p, nxt);
        if (has_next) issue(nxt, stage ^ 1);
        cp_commit();
        cp_wait<1>();
        __syncthreads();
        const raw16 *qs = Qs + stage * BN * D, *ds = Ds + stage * BN * D;
        const float *ls = LS + stage * BN, *dl = DL + stage * BN;
        const int n = chunk_rows(cur);
        for (int c0 = 0; c0 < n; c0 += QH) {
            float s[QH / 8][4], dp[QH / 8][4];
            mma_abt<D, BF>(s, Ks, warp * 16, qs, c0, lane);
            mma_abt<D, BF>(dp, Vs, warp * 16, ds, c0, lane);
#pragma unroll
            for (int nt = 0; nt < QH / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = c0 + nt * 8 + 2 * (lane & 3) + (e & 1);
                    const float pr = fast_exp2(fmaf(s[nt][e], sl2, -ls[col] * LOG2E));
                    s[nt][e] = pr;
                    dp[nt][e] = pr * (dp[nt][e] - dl[col]);
                }
            mma_pb<D, BF>(dv, s, ds, c0, lane);
            mma_pb<D, BF>(dk, dp, qs, c0, lane);
        }
        __syncthreads();
        if (!has_next) break;
        cur = nxt;
        chunk_next(p, nxt);
        stage ^= 1;
    }

    acc_to_smem<D, BF>(Ks, dk, P.scale, warp, lane);
    acc_to_smem<D, BF>(Vs, dv, 1.f, warp, lane);
    __syncwarp();
    auto padding = [&](long long tok) { return padding_key(p, ktile, tok); };
    store_rows<D>(p, blk, kg, warp * 16, lane, sw_at<D>(), (const unsigned char *)Ks, at_bh(P.d_k, p.sk, b, h), p.sk[1], padding);
    store_rows<D>(p, blk, kg, warp * 16, lane, sw_at<D>(), (const unsigned char *)Vs, at_bh(P.d_v, p.sv, b, h), p.sv[1], padding);
}

/* Dynamic shared memory of the dQ kernel and (the larger) of the dK/dV kernel at head dim D. */
size_t smem_dq(int D) { return (size_t)(2 * BM + 4 * BN) * D * sizeof(raw16); }
size_t smem_kv(int D) { return smem_dq(D) + 4 * BN * sizeof(float); }

template <int D, bool BF> gpuError_t launch(const sta_bwd_params *p, dim3 grid, gpuStream_t stream)
{
    return launch_pair(sta_bwd_dq_mma<D, BF>, smem_dq(D), sta_bwd_dkdv_mma<D, BF>, smem_kv(D), p, grid, stream);
}

} /* namespace */

size_t STA_KERNELS::bwd_sm80_smem(int head_dim) { return smem_kv(head_dim); }

gpuError_t STA_KERNELS::bwd_sm80_launch(const sta_bwd_params *p, dim3 grid, gpuStream_t stream)
{
    const bool bf = p->f.dtype == DT_BF16;
    if (p->f.head_dim == 128) return bf ? launch<128, true>(p, grid, stream) : launch<128, false>(p, grid, stream);
    return bf ? launch<64, true>(p, grid, stream) : launch<64, false>(p, grid, stream);
}
