/* The portable STA kernel: one thread per query row, keys staged in shared memory as f32, exact f32
 * FMA and exp2f; any dtype, head_dim <= 256, any strides. The CUDA backend's fallback and the HIP
 * backend's only kernel (the same file built by hipcc, -DSTILE_HIP). */
#include "sta_elem.cuh"

namespace {

__global__ void __launch_bounds__(BM) sta_fwd_scalar(const sta_params p)
{
    __shared__ float ks[SC_KEYS][SC_MAXD];
    __shared__ float vs[SC_KEYS][SC_MAXD];
    const int *blk = query_block(p);
    if (!query_block_runs(p, blk)) return;
    const int h = blockIdx.y, b = blockIdx.z, D = p.head_dim, r = threadIdx.x;
    const bool active = r < blk[STILE_BLOCK_NROWS];
    const geom qg = query_geom(p, blk);
    long long qtok = active ? query_row_token(p, blk, qg, r) : 0;
    float q[SC_MAXD], acc[SC_MAXD];
    for (int d = 0; d < D; d++) {
        q[d] = active ? load_elem(p.q, p.dtype, b * p.sq[0] + qtok * p.sq[1] + h * p.sq[2] + d * p.sq[3]) * p.scale_log2 : 0.f;
        acc[d] = 0.f;
    }
    float m = neg_inf(), l = 0.f;
    for (chunk_iter it = chunk_begin(p, blk[STILE_BLOCK_TILE], h, b); chunk_valid(p, it); chunk_next(p, it)) {
        const int n = chunk_rows(it);
        for (int k0 = 0; k0 < n; k0 += SC_KEYS) {
            const int nk = n - k0 < SC_KEYS ? n - k0 : SC_KEYS;
            __syncthreads(); /* the previous keys are consumed */
            stage_f32(p, it, k0, nk, p.k, p.sk, p.v, p.sv, b, h, ks, vs);
            __syncthreads();
            float s[SC_KEYS], mx = m;
            for (int j = 0; j < nk; j++) {
                float dot = 0.f;
                for (int d = 0; d < D; d++) dot = fmaf(q[d], ks[j][d], dot);
                s[j] = dot;
                mx = fmaxf(mx, dot);
            }
            const float alpha = exp2f(m - mx); /* m = -inf at first: alpha 0 */
            l *= alpha;
            for (int d = 0; d < D; d++) acc[d] *= alpha;
            for (int j = 0; j < nk; j++) {
                const float e = exp2f(s[j] - mx);
                l += e;
                for (int d = 0; d < D; d++) acc[d] = fmaf(e, vs[j][d], acc[d]);
            }
            m = mx;
        }
    }
    if (!active) return;
    /* a row of no keys (caller-chosen tiles: an empty set, no valid text): o = 0, lse = -inf */
    const float inv = l > 0.f ? 1.f / l : 0.f;
    for (int d = 0; d < D; d++) store_elem(p.o, p.dtype, b * p.so[0] + qtok * p.so[1] + h * p.so[2] + d * p.so[3], acc[d] * inv);
    if (p.lse) p.lse[((long long)b * p.heads + h) * p.q_tokens + qtok] = l > 0.f ? (m + log2f(l)) * 0.69314718055994531f : neg_inf();
}

} /* namespace */

gpuError_t STA_KERNELS::scalar_launch(const sta_params *p, dim3 grid, gpuStream_t stream)
{
    sta_fwd_scalar<<<grid, BM, 0, stream>>>(*p);
    return gpuGetLastError();
}
