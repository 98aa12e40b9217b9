/* VSA's steps on the GPU (stile_gpu_vsa_launch, sta_kernel.h; docs/contract.md, "VSA steps"): tile
 * means, the coarse attention over them, the top-k of each row of scores, and the gated sum, one launch
 * each on the caller's stream, f32 intermediates. Reductions through shared memory only (no warp
 * shuffles), so the same source builds for CUDA and HIP. */
#include <stdio.h>

#include "sta_elem.cuh"
#include "sta_paths.cuh"

namespace {

enum { VSA_THREADS = 256 };

/* Tokens of a tile (geom: sta_schedule.cuh's, through sta_elem.cuh). */
__device__ int tile_tokens(const geom &g) { return g.ext[0] * g.ext[1] * g.ext[2]; }

/* grid (tiles, B*heads, 3: q k v), block: threads over the head dim */
__global__ void vsa_pool(sta_params p, float *q_c, float *k_c, float *v_c)
{
    const int t = blockIdx.x, bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads, x = blockIdx.z;
    const void *src = x == 0 ? p.q : x == 1 ? p.k : p.v;
    const long long *s = x == 0 ? p.sq : x == 1 ? p.sk : p.sv;
    float *dst = (x == 0 ? q_c : x == 1 ? k_c : v_c) + ((long long)bh * p.tiles + t) * p.head_dim;
    const geom g = tile_geom(p, t);
    const int n = tile_tokens(g);
    for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
        float sum = 0.f;
        for (int i = 0; i < n; i++) sum += load_elem(src, p.dtype, b * s[0] + tile_token(p, t, g, i) * s[1] + h * s[2] + d * s[3]);
        dst[d] = sum / (float)n;
    }
}

/* Block-wide max (op 0) or sum (op 1) of v over VSA_THREADS threads; red: VSA_THREADS floats. */
__device__ float block_reduce(float v, float *red, int op)
{
    red[threadIdx.x] = v;
    __syncthreads();
    for (int w = VSA_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) red[threadIdx.x] = op ? red[threadIdx.x] + red[threadIdx.x + w] : fmaxf(red[threadIdx.x], red[threadIdx.x + w]);
        __syncthreads();
    }
    const float r = red[0];
    __syncthreads();
    return r;
}

/* grid (tiles, B*heads), VSA_THREADS threads; shared: head_dim + tiles + VSA_THREADS floats */
__global__ void vsa_coarse(sta_params p, float scale, const float *q_c, const float *k_c, const float *v_c, float *o_c, float *scores)
{
    extern __shared__ float sh[];
    const int t = blockIdx.x, bh = blockIdx.y, D = p.head_dim, T = p.tiles;
    float *q = sh, *s = sh + D, *red = s + T;
    const long long base = (long long)bh * T;
    for (int d = threadIdx.x; d < D; d += blockDim.x) q[d] = q_c[(base + t) * D + d];
    __syncthreads();
    float mx = __int_as_float(0xff800000); /* -inf */
    for (int u = threadIdx.x; u < T; u += blockDim.x) {
        const float *k = k_c + (base + u) * D;
        float dot = 0.f;
        for (int d = 0; d < D; d++) dot += q[d] * k[d];
        s[u] = dot * scale;
        if (scores) scores[(base + t) * T + u] = s[u];
        mx = fmaxf(mx, s[u]);
    }
    mx = block_reduce(mx, red, 0);
    float sum = 0.f;
    for (int u = threadIdx.x; u < T; u += blockDim.x) sum += s[u] = __expf(s[u] - mx);
    sum = block_reduce(sum, red, 1);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.f;
        for (int u = 0; u < T; u++) acc += s[u] * v_c[(base + u) * D + d];
        o_c[(base + t) * D + d] = acc / sum;
    }
}

/* a before b: the larger score, equal scores the lower tile; NaN after every number (and taken tiles,
 * marked by index -1, after everything) */
__device__ bool before(float sa, int a, float sb, int b)
{
    if (a < 0) return false;
    if (b < 0) return true;
    const bool na = sa != sa, nb = sb != sb;
    if (na != nb) return nb;
    if (!na && sa != sb) return sa > sb;
    return a < b;
}

/* grid rows, VSA_THREADS threads; shared: tiles floats + tiles ints + VSA_THREADS (float, int) */
__global__ void vsa_select(sta_params p, int k, const float *scores, int *key_tiles)
{
    extern __shared__ float sh[];
    const int T = p.tiles;
    const long long r = blockIdx.x;
    float *s = sh, *rs = sh + T;
    int *idx = (int *)(rs + VSA_THREADS), *ri = idx + T;
    for (int u = threadIdx.x; u < T; u += blockDim.x) {
        s[u] = scores[r * T + u];
        idx[u] = u;
    }
    __syncthreads();
    for (int j = 0; j < k; j++) {
        float bs = 0.f;
        int bi = -1;
        for (int u = threadIdx.x; u < T; u += blockDim.x)
            if (before(s[u], idx[u], bs, bi)) bs = s[u], bi = idx[u];
        rs[threadIdx.x] = bs;
        ri[threadIdx.x] = bi;
        __syncthreads();
        for (int w = VSA_THREADS / 2; w > 0; w >>= 1) {
            if ((int)threadIdx.x < w && before(rs[threadIdx.x + w], ri[threadIdx.x + w], rs[threadIdx.x], ri[threadIdx.x])) {
                rs[threadIdx.x] = rs[threadIdx.x + w];
                ri[threadIdx.x] = ri[threadIdx.x + w];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            key_tiles[r * k + j] = ri[0];
            idx[ri[0]] = -1; /* taken */
        }
        __syncthreads();
    }
}

/* grid (tiles, B*heads), block: threads over the head dim; o += gate * o_c[tile], both with o's strides */
__global__ void vsa_combine(sta_params p, const void *gate, const float *o_c)
{
    const int t = blockIdx.x, bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
    const float *c = o_c + ((long long)bh * p.tiles + t) * p.head_dim;
    const geom g = tile_geom(p, t);
    for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x)
        for (int i = 0, n = tile_tokens(g); i < n; i++) {
            const long long e = b * p.so[0] + tile_token(p, t, g, i) * p.so[1] + h * p.so[2] + d * p.so[3];
            store_elem(p.o, p.dtype, e, load_elem(p.o, p.dtype, e) + load_elem(gate, p.dtype, e) * c[d]);
        }
}

} /* namespace */

extern "C" int stile_gpu_vsa_launch(const sta_params *p, int step, const sta_vsa_args *a, void *stream, char *err, size_t err_size)
{
    const gpuStream_t s = (gpuStream_t)stream;
    const dim3 per_tile((unsigned)p->tiles, (unsigned)(p->batch * p->heads));
    const unsigned dim_threads = p->head_dim < VSA_THREADS ? (unsigned)p->head_dim : VSA_THREADS;
    size_t shared = 0;
    switch (step) {
    case STA_VSA_POOL:
        vsa_pool<<<dim3(per_tile.x, per_tile.y, 3), dim_threads, 0, s>>>(*p, a->q_c, a->k_c, a->v_c);
        break;
    case STA_VSA_COARSE:
        shared = (size_t)(p->head_dim + p->tiles + VSA_THREADS) * sizeof(float);
        if (shared > 48 * 1024) {
            snprintf(err, err_size, "the coarse attention keeps a row of %d tiles in shared memory: at most %d", p->tiles,
                     48 * 1024 / 4 - p->head_dim - VSA_THREADS);
            return -1;
        }
        vsa_coarse<<<per_tile, VSA_THREADS, shared, s>>>(*p, a->scale, a->q_c, a->k_c, a->v_c, a->o_c, a->scores);
        break;
    case STA_VSA_SELECT:
        shared = (size_t)(2 * p->tiles + 2 * VSA_THREADS) * sizeof(float);
        if (shared > 48 * 1024) {
            snprintf(err, err_size, "top-k keeps a row of %d tiles in shared memory: at most %d", p->tiles, (48 * 1024 / 4 - 2 * VSA_THREADS) / 2);
            return -1;
        }
        vsa_select<<<(unsigned)((long long)p->batch * p->heads * p->tiles), VSA_THREADS, shared, s>>>(*p, a->k, a->scores, a->key_tiles);
        break;
    case STA_VSA_COMBINE:
        vsa_combine<<<per_tile, dim_threads, 0, s>>>(*p, a->gate, a->o_c);
        break;
    default:
        snprintf(err, err_size, "VSA step %d is unknown", step);
        return -1;
    }
    const gpuError_t e = gpuGetLastError();
    if (e != gpuSuccess) {
        snprintf(err, err_size, "%s", gpuGetErrorString(e));
        return (int)e;
    }
    return 0;
}
