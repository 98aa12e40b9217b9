/* The portable STA backward (docs/contract.md, "Gradients"): any dtype, head_dim <= 256, any strides;
 * the CUDA backend's fallback and the HIP backend's only backward. Two kernels on the stream:
 *   dQ:    one thread per query row, the keys it attends staged in shared memory as f32:
 *          p = exp2(s scale log2e - lse log2e), dS = p (dO_i . v_j - D_i), dQ_i = scale sum dS k_j,
 *          with D_i = dO_i . o_i, which it leaves in the launch's scratch (delta) for the next kernel;
 *   dK/dV: one thread per key row, the queries that attend it (the transposed schedule, then every
 *          text query) staged likewise: dV_j = sum p dO_i, dK_j = scale sum dS q_i; a padding text
 *          key is attended by none, and its rows get zeros.
 * Every gradient row is summed by its own thread in schedule order: no atomics, deterministic. */
#include "sta_elem.cuh"

namespace {

__global__ void __launch_bounds__(BM) sta_bwd_dq_scalar(const sta_bwd_params P)
{
    __shared__ float ks[SC_KEYS][SC_MAXD];
    __shared__ float vs[SC_KEYS][SC_MAXD];
    const sta_params &p = P.f;
    const int *blk = query_block(p);
    const int h = blockIdx.y, b = blockIdx.z, D = p.head_dim, r = threadIdx.x;
    const bool active = r < blk[STILE_BLOCK_NROWS];
    const geom qg = query_geom(p, blk);
    const long long qtok = active ? query_token(p, blk, qg, r) : 0;
    float q[SC_MAXD], dov[SC_MAXD], g[SC_MAXD], di = 0.f;
    for (int d = 0; d < D; d++) {
        q[d] = active ? load_elem(p.q, p.dtype, row_at(p.sq, b, qtok, h) + d * p.sq[3]) : 0.f;
        dov[d] = active ? load_elem(P.d_o, p.dtype, row_at(p.so, b, qtok, h) + d * p.so[3]) : 0.f;
        di = fmaf(dov[d], active ? load_elem(p.o, p.dtype, row_at(p.so, b, qtok, h) + d * p.so[3]) : 0.f, di);
        g[d] = 0.f;
    }
    const float l2 = active ? lse2_of(p.lse[stat_at(p, b, h, qtok)]) : 0.f;
    if (active) P.delta[stat_at(p, b, h, qtok)] = di;
    for (chunk_iter it = chunk_begin(p, blk[STILE_BLOCK_TILE], h, b); chunk_valid(p, it); chunk_next(p, it)) {
        const int n = chunk_rows(it);
        for (int k0 = 0; k0 < n; k0 += SC_KEYS) {
            const int nk = n - k0 < SC_KEYS ? n - k0 : SC_KEYS;
            __syncthreads(); /* the previous keys are consumed */
            stage_f32(p, it, k0, nk, p.k, p.sk, p.v, p.sv, b, h, ks, vs);
            __syncthreads();
            for (int j = 0; j < nk; j++) {
                float s = 0.f, dp = 0.f;
                for (int d = 0; d < D; d++) {
                    s = fmaf(q[d], ks[j][d], s);
                    dp = fmaf(dov[d], vs[j][d], dp);
                }
                const float ds = exp2f(fmaf(s, p.scale_log2, -l2)) * (dp - di);
                for (int d = 0; d < D; d++) g[d] = fmaf(ds, ks[j][d], g[d]);
            }
        }
    }
    if (!active) return;
    for (int d = 0; d < D; d++) store_elem(P.d_q, p.dtype, row_at(p.sq, b, qtok, h) + d * p.sq[3], g[d] * P.scale);
}

__global__ void __launch_bounds__(BM) sta_bwd_dkdv_scalar(const sta_bwd_params P)
{
    __shared__ float qs[SC_KEYS][SC_MAXD];
    __shared__ float dos[SC_KEYS][SC_MAXD];
    __shared__ float l2s[SC_KEYS], dls[SC_KEYS];
    const sta_params &p = P.f;
    const int *blk = query_block(p); /* the key tiles are the query tiles: the same blocks */
    const int h = blockIdx.y, b = blockIdx.z, D = p.head_dim, r = threadIdx.x, ktile = blk[STILE_BLOCK_TILE];
    const bool active = r < blk[STILE_BLOCK_NROWS];
    const geom kg = query_geom(p, blk);
    const long long ktok = active ? query_token(p, blk, kg, r) : 0;
    const bool padding = padding_key(p, ktile, ktok);
    float kv[SC_MAXD], vv[SC_MAXD], gk[SC_MAXD], gv[SC_MAXD];
    for (int d = 0; d < D; d++) {
        kv[d] = active ? load_elem(p.k, p.dtype, row_at(p.sk, b, ktok, h) + d * p.sk[3]) : 0.f;
        vv[d] = active ? load_elem(p.v, p.dtype, row_at(p.sv, b, ktok, h) + d * p.sv[3]) : 0.f;
        gk[d] = gv[d] = 0.f;
    }
    for (chunk_iter it = chunk_key_begin(p, ktile, h, b); chunk_valid(p, it);
         chunk_next(p, it)) {
        const int n = chunk_rows(it);
        for (int q0 = 0; q0 < n; q0 += SC_KEYS) {
            const int nq = n - q0 < SC_KEYS ? n - q0 : SC_KEYS;
            __syncthreads(); /* the previous queries are consumed */
            stage_f32(p, it, q0, nq, p.q, p.sq, P.d_o, p.so, b, h, qs, dos);
            if (threadIdx.x < nq) {
                const long long at = stat_at(p, b, h, chunk_token(p, it, q0 + threadIdx.x));
                l2s[threadIdx.x] = p.lse[at] * LOG2E;
                dls[threadIdx.x] = P.delta[at];
            }
            __syncthreads();
            for (int i = 0; i < nq; i++) {
                float s = 0.f, dp = 0.f;
                for (int d = 0; d < D; d++) {
                    s = fmaf(qs[i][d], kv[d], s);
                    dp = fmaf(dos[i][d], vv[d], dp);
                }
                const float pr = exp2f(fmaf(s, p.scale_log2, -l2s[i])), ds = pr * (dp - dls[i]);
                for (int d = 0; d < D; d++) {
                    gv[d] = fmaf(pr, dos[i][d], gv[d]);
                    gk[d] = fmaf(ds, qs[i][d], gk[d]);
                }
            }
        }
    }
    if (!active) return;
    for (int d = 0; d < D; d++) { /* a padding key's sums (of scores outside every softmax) are dropped */
        store_elem(P.d_k, p.dtype, row_at(p.sk, b, ktok, h) + d * p.sk[3], padding ? 0.f : gk[d] * P.scale);
        store_elem(P.d_v, p.dtype, row_at(p.sv, b, ktok, h) + d * p.sv[3], padding ? 0.f : gv[d]);
    }
}

} /* namespace */

gpuError_t STA_KERNELS::bwd_scalar_launch(const sta_bwd_params *p, dim3 grid, gpuStream_t stream)
{
    sta_bwd_dq_scalar<<<grid, BM, 0, stream>>>(*p);
    gpuError_t e = gpuGetLastError();
    if (e != gpuSuccess) return e;
    sta_bwd_dkdv_scalar<<<grid, BM, 0, stream>>>(*p);
    return gpuGetLastError();
}
