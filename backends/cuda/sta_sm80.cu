/* The tensor-core STA kernel (CUDA, sm_80 and newer): f16/bf16, head_dim 64 or 128, contiguous head dim
 * and 16-byte aligned rows (stile_gpu_mma_eligible). Q K^T and P V on tensor cores (mma.sync m16n8k16,
 * f32 accumulation), operands staged by cp.async in two stages and read by ldmatrix, online softmax
 * in registers. Query and key rows are gathered straight from natural (or tiled) order. Inline PTX
 * with no AMD twin: the HIP build leaves this file out. */
#ifdef STILE_HIP
#error "sta_sm80.cu is CUDA only (inline PTX): HIP builds the portable kernel"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "sta_schedule.cuh"
#include "sta_mma.cuh"
#include "sta_softmax.cuh"

namespace {

static_assert(BM == 128, "sta_fwd_mma: 4 warps x 32 query rows per block");

/* 4 warps, each owning 32 query rows (two m16 tiles): every K and V fragment read from shared memory
 * feeds two MMAs, which halves shared-memory traffic per FLOP against 16-row warps. */
template <int D, bool BF>
__global__ void __launch_bounds__(128, 2) sta_fwd_mma(const sta_params p)
{
    extern __shared__ __align__(16) unsigned char smem[];
    raw16 *Qs = reinterpret_cast<raw16 *>(smem);
    raw16 *Ks = Qs + BM * D; /* two stages */
    raw16 *Vs = Ks + 2 * BN * D;
    const int *blk = query_block(p);
    if (!query_block_runs(p, blk)) return;
    const int h = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int qrows = blk[STILE_BLOCK_NROWS];
    const geom qg = query_geom(p, blk);
    const raw16 *qb = (const raw16 *)p.q + b * p.sq[0] + h * p.sq[2];
    const raw16 *kb = (const raw16 *)p.k + b * p.sk[0] + h * p.sk[2];
    const raw16 *vb = (const raw16 *)p.v + b * p.sv[0] + h * p.sv[2];
    constexpr int CPR = D / 8;      /* 16-byte chunks per row */
    constexpr int RPP = 128 / CPR;  /* rows per pass of the 128 threads */
    const int cc = tid % CPR, r0 = tid / CPR;

    for (int r = r0; r < BM; r += RPP) {
        const bool ok = r < qrows;
        const long long tok = ok ? query_row_token(p, blk, qg, r) : 0;
        cp_async16(&Qs[sw<D>(r, cc * 8)], qb + tok * p.sq[1] + cc * 8, ok);
    }
    cp_commit();

    chunk_iter cur = chunk_begin(p, blk[STILE_BLOCK_TILE], h, b), nxt = cur;
    chunk_next(p, nxt);
    /* A thread loads rows r0, r0 + RPP, ... of each chunk: the first row's tile coordinates take two
     * divisions, the next ones are stepped (row-major inside the tile), keeping index math off the
     * issue slots the MMAs need. */
    auto issue = [&](const chunk_iter &c, int stage) {
        const int n = chunk_rows(c);
        raw16 *ks = Ks + stage * BN * D, *vs = Vs + stage * BN * D;
        if (c.tile >= 0 && !p.tiled_order) {
            const int e1 = c.g.ext[1], e2 = c.g.ext[2], L = c.off + r0;
            int lt = L / (e1 * e2), rem = L - lt * e1 * e2, lh = rem / e2, lw = rem - lh * e2;
            for (int r = r0; r < BN; r += RPP) {
                const bool ok = r < n;
                const long long tok =
                    ok ? ((long long)(c.g.org[0] + lt) * p.canvas[1] + c.g.org[1] + lh) * p.canvas[2] + c.g.org[2] + lw : 0;
                cp_async16(&ks[sw<D>(r, cc * 8)], kb + tok * p.sk[1] + cc * 8, ok);
                cp_async16(&vs[sw<D>(r, cc * 8)], vb + tok * p.sv[1] + cc * 8, ok);
                lw += RPP;
                while (lw >= e2) {
                    lw -= e2;
                    if (++lh == e1) {
                        lh = 0;
                        ++lt;
                    }
                }
            }
            return;
        }
        const long long first = c.tile >= 0 ? p.tile_start[c.tile] + c.off : (long long)p.video + c.off;
        for (int r = r0; r < BN; r += RPP) {
            const bool ok = r < n;
            const long long tok = ok ? first + r : 0;
            cp_async16(&ks[sw<D>(r, cc * 8)], kb + tok * p.sk[1] + cc * 8, ok);
            cp_async16(&vs[sw<D>(r, cc * 8)], vb + tok * p.sv[1] + cc * 8, ok);
        }
    };
    issue(cur, 0);
    cp_commit();

    float o_acc[2][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int i = 0; i < D / 8; i++) o_acc[mt][i][0] = o_acc[mt][i][1] = o_acc[mt][i][2] = o_acc[mt][i][3] = 0.f;
    float m_r[2][2] = {{neg_inf(), neg_inf()}, {neg_inf(), neg_inf()}}, l_r[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
    int stage = 0;
    const bool busy = warp * 32 < qrows;
    for (;;) {
        const bool has_next = chunk_valid(p, nxt);
        if (has_next) issue(nxt, stage ^ 1);
        cp_commit();
        cp_wait<1>(); /* Q and the current chunk have landed */
        __syncthreads();
        /* a warp whose 32 rows are all past the block's (tiles under 128 tokens: 4x4x4 has 64) skips the
         * math and only helps load: its rows are never stored */
        if (busy) {
            const raw16 *ks = Ks + stage * BN * D, *vs = Vs + stage * BN * D;
            float s[2][BN / 8][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int i = 0; i < BN / 8; i++) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                unsigned qa[2][4];
#pragma unroll
                for (int mt = 0; mt < 2; mt++)
                    ldsm_x4(qa[mt], smem_u32(&Qs[sw<D>(warp * 32 + mt * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8)]));
#pragma unroll
                for (int np = 0; np < BN / 16; np++) {
                    unsigned bf[4];
                    ldsm_x4(bf, smem_u32(&ks[sw<D>(np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 16 + ((lane >> 3) & 1) * 8)]));
#pragma unroll
                    for (int mt = 0; mt < 2; mt++) {
                        mma16816<BF>(s[mt][2 * np], qa[mt], bf[0], bf[1]);
                        mma16816<BF>(s[mt][2 * np + 1], qa[mt], bf[2], bf[3]);
                    }
                }
            }
            const int n = chunk_rows(cur);
            if (n < BN) /* only a partial chunk (edge tile, text) has keys to mask */
#pragma unroll
                for (int mt = 0; mt < 2; mt++)
#pragma unroll
                    for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++)
                            if (nt * 8 + 2 * (lane & 3) + (e & 1) >= n) s[mt][nt][e] = neg_inf();
            /* Row maxima stay in raw score units (m_r); exponents are scale*s - scale*max, one FFMA each. */
            const float sc = p.scale_log2;
            float alpha[2][2];
            bool moved = false;
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int i = 0; i < 2; i++) { /* rows lane/4 and lane/4 + 8 of the m tile */
                    float mx = m_r[mt][i];
#pragma unroll
                    for (int nt = 0; nt < BN / 8; nt++) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * i], s[mt][nt][2 * i + 1]));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                    moved |= mx != m_r[mt][i];
                    const float ms = mx == neg_inf() ? 0.f : mx; /* a row with every key so far masked (no keys at all) */
                    alpha[mt][i] = fast_exp2((m_r[mt][i] - ms) * sc);
                    m_r[mt][i] = mx;
                    const float msc = ms * sc;
                    float sum = 0.f;
#pragma unroll
                    for (int nt = 0; nt < BN / 8; nt++) {
                        s[mt][nt][2 * i] = fast_exp2(fmaf(s[mt][nt][2 * i], sc, -msc));
                        s[mt][nt][2 * i + 1] = fast_exp2(fmaf(s[mt][nt][2 * i + 1], sc, -msc));
                        sum += s[mt][nt][2 * i] + s[mt][nt][2 * i + 1];
                    }
                    l_r[mt][i] = l_r[mt][i] * alpha[mt][i] + sum;
                }
            /* Once the running maxima settle, most chunks move none of the warp's rows: skip the rescale. */
            if (__any_sync(0xffffffffu, moved))
#pragma unroll
                for (int mt = 0; mt < 2; mt++)
#pragma unroll
                    for (int i = 0; i < 2; i++)
#pragma unroll
                        for (int dt = 0; dt < D / 8; dt++) {
                            o_acc[mt][dt][2 * i] *= alpha[mt][i];
                            o_acc[mt][dt][2 * i + 1] *= alpha[mt][i];
                        }
#pragma unroll
            for (int kq = 0; kq < BN / 16; kq++) {
                unsigned a[2][4];
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    a[mt][0] = pack2<BF>(s[mt][2 * kq][0], s[mt][2 * kq][1]);
                    a[mt][1] = pack2<BF>(s[mt][2 * kq][2], s[mt][2 * kq][3]);
                    a[mt][2] = pack2<BF>(s[mt][2 * kq + 1][0], s[mt][2 * kq + 1][1]);
                    a[mt][3] = pack2<BF>(s[mt][2 * kq + 1][2], s[mt][2 * kq + 1][3]);
                }
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    unsigned bf[4];
                    ldsm_x4_t(bf, smem_u32(&vs[sw<D>(kq * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 16 + (lane >> 4) * 8)]));
#pragma unroll
                    for (int mt = 0; mt < 2; mt++) {
                        mma16816<BF>(o_acc[mt][2 * dp], a[mt], bf[0], bf[1]);
                        mma16816<BF>(o_acc[mt][2 * dp + 1], a[mt], bf[2], bf[3]);
                    }
                }
            }
        }
        __syncthreads(); /* this stage is consumed before the next issue overwrites it */
        if (!has_next) break;
        cur = nxt;
        chunk_next(p, nxt);
        stage ^= 1;
    }

    /* normalise, stage the rows in shared memory, and store them 16 bytes at a time */
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float l = l_r[mt][i];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const float inv = l > 0.f ? 1.f / l : 0.f; /* l = 0: a row of no keys, o = 0 and lse = -inf */
            const int row = warp * 32 + mt * 16 + (lane >> 2) + 8 * i;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt++)
                *reinterpret_cast<unsigned *>(&Qs[sw<D>(row, dt * 8 + 2 * (lane & 3))]) =
                    pack2<BF>(o_acc[mt][dt][2 * i] * inv, o_acc[mt][dt][2 * i + 1] * inv);
            if (p.lse && (lane & 3) == 0 && row < qrows)
                p.lse[((long long)b * p.heads + h) * p.q_tokens + query_row_token(p, blk, qg, row)] =
                    (m_r[mt][i] * p.scale_log2 + log2f(l)) * 0.69314718055994531f;
        }
    __syncthreads();
    raw16 *ob = (raw16 *)p.o + b * p.so[0] + h * p.so[2];
    for (int r = r0; r < qrows; r += RPP)
        *reinterpret_cast<uint4 *>(ob + query_row_token(p, blk, qg, r) * p.so[1] + cc * 8) =
            *reinterpret_cast<const uint4 *>(&Qs[sw<D>(r, cc * 8)]);
}

template <int D, bool BF> gpuError_t launch_mma(const sta_params *p, dim3 grid, gpuStream_t stream)
{
    const size_t smem = (size_t)(BM + 4 * BN) * D * sizeof(raw16);
    gpuError_t e = gpuFuncSetAttribute(sta_fwd_mma<D, BF>, gpuFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != gpuSuccess) return e;
    sta_fwd_mma<D, BF><<<grid, 128, smem, stream>>>(*p);
    return gpuGetLastError();
}

} /* namespace */

gpuError_t STA_KERNELS::sm80_launch(const sta_params *p, dim3 grid, gpuStream_t stream)
{
    const bool bf = p->dtype == DT_BF16;
    if (p->head_dim == 128) return bf ? launch_mma<128, true>(p, grid, stream) : launch_mma<128, false>(p, grid, stream);
    return bf ? launch_mma<64, true>(p, grid, stream) : launch_mma<64, false>(p, grid, stream);
}
