/* Caller-chosen key tiles made walkable on the device (stile_gpu_key_tiles_prepare, sta_kernel.h):
 * the caller's [B, heads, tiles, k] entries read as the set each row stands for (docs/contract.md,
 * "Caller-chosen key tiles"), ascending, so the kernels walk the same tiles in the same order
 * whatever order and repeats the caller wrote; for the backward also transposed (the query tiles
 * listing each key tile, ascending). No floating point here: the results do not depend on thread
 * timing. CUDA and HIP (plain C++ and integer atomics only). */
#include <stdio.h>

#include "sta_paths.cuh"

namespace {

enum { KT_THREADS = 128, KT_MAX_WORDS = STA_KT_MAX_TILES / 32 }; /* a row's bitmap: at most 48 KiB of shared memory */

/* One block per row: the set as a bitmap, then thread 0 writes its tiles in ascending order. */
__global__ void kt_rows(const int *in, int *rows, int *count, int *bad, int *caller_bad, int k, int tiles, int words)
{
    extern __shared__ unsigned bits[];
    __shared__ int nbad;
    const long long r = blockIdx.x;
    for (int w = threadIdx.x; w < words; w += blockDim.x) bits[w] = 0u;
    if (threadIdx.x == 0) nbad = 0;
    __syncthreads();
    const int *src = in + r * k;
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        const int t = src[i];
        if (t == -1) continue;
        if (t < -1 || t >= tiles) atomicAdd(&nbad, 1);
        else atomicOr(&bits[t >> 5], 1u << (t & 31));
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    int *dst = rows + r * k, n = 0;
    for (int w = 0; w < words; w++)
        for (unsigned x = bits[w]; x; x &= x - 1u) dst[n++] = w * 32 + __ffs((int)x) - 1;
    count[r] = n;
    if (nbad) {
        atomicAdd(bad, nbad);
        if (caller_bad) atomicAdd(caller_bad, nbad);
    }
}

/* One block per (batch, head): count the query tiles listing each key tile, lay the rows out (starts
 * absolute in qtiles: (batch, head) bh owns tiles x k slots from bh x tiles x k), fill, then sort each
 * row so that the order does not depend on which thread filled first. */
__global__ void kt_transpose(const int *rows, const int *count, int *qstart, int *qtiles, int *cursor, int k, int tiles)
{
    const long long bh = blockIdx.x;
    const int *cnt = count + bh * tiles, *rw = rows + bh * tiles * k;
    int *start = qstart + bh * (tiles + 1), *cur = cursor + bh * tiles;
    for (int t = threadIdx.x; t < tiles; t += blockDim.x) cur[t] = 0;
    __syncthreads();
    for (int q = threadIdx.x; q < tiles; q += blockDim.x)
        for (int i = 0; i < cnt[q]; i++) atomicAdd(&cur[rw[(long long)q * k + i]], 1);
    __syncthreads();
    if (threadIdx.x == 0) {
        int s = (int)(bh * tiles * k);
        for (int t = 0; t < tiles; t++) {
            start[t] = s;
            s += cur[t];
            cur[t] = start[t];
        }
        start[tiles] = s;
    }
    __syncthreads();
    for (int q = threadIdx.x; q < tiles; q += blockDim.x)
        for (int i = 0; i < cnt[q]; i++) qtiles[atomicAdd(&cur[rw[(long long)q * k + i]], 1)] = q;
    __syncthreads();
    for (int t = threadIdx.x; t < tiles; t += blockDim.x) { /* insertion sort: rows are short (about k) */
        int *row = qtiles + start[t];
        const int n = start[t + 1] - start[t];
        for (int i = 1; i < n; i++) {
            const int v = row[i];
            int j = i - 1;
            for (; j >= 0 && row[j] > v; j--) row[j + 1] = row[j];
            row[j + 1] = v;
        }
    }
}

} /* namespace */

extern "C" long long stile_gpu_key_tiles_scratch(const sta_params *p, int transpose)
{
    if ((p->tiles + 31) / 32 > KT_MAX_WORDS) return -1;
    const long long rows = (long long)p->batch * p->heads * p->tiles, bh = (long long)p->batch * p->heads;
    /* rows x k tiles, rows counts, the error count; transposed: starts, rows x k query tiles, cursors */
    return rows * p->kt_k + rows + 1 + (transpose ? bh * (p->tiles + 1) + rows * p->kt_k + rows : 0);
}

extern "C" int stile_gpu_key_tiles_prepare(sta_params *p, const int *in, int *scratch, int transpose, int *caller_bad, int **bad,
                                           void *stream, char *err, size_t err_size)
{
    const long long rows = (long long)p->batch * p->heads * p->tiles, bh = (long long)p->batch * p->heads;
    int *kt = scratch, *cnt = kt + rows * p->kt_k, *nbad = cnt + rows;
    const gpuStream_t s = (gpuStream_t)stream;
    const int words = (p->tiles + 31) / 32;
    *bad = nbad;
    gpuError_t e = gpuMemsetAsync(nbad, 0, sizeof(int), s);
    if (e == gpuSuccess) {
        kt_rows<<<(unsigned)rows, KT_THREADS, (size_t)words * sizeof(unsigned), s>>>(in, kt, cnt, nbad, caller_bad, p->kt_k, p->tiles, words);
        e = gpuGetLastError();
    }
    p->kt_rows = kt;
    p->kt_count = cnt;
    if (e == gpuSuccess && transpose) {
        int *qstart = nbad + 1, *qtiles = qstart + bh * (p->tiles + 1), *cursor = qtiles + rows * p->kt_k;
        kt_transpose<<<(unsigned)bh, KT_THREADS, 0, s>>>(kt, cnt, qstart, qtiles, cursor, p->kt_k, p->tiles);
        e = gpuGetLastError();
        p->kt_qstart = qstart;
        p->kt_qtiles = qtiles;
    }
    if (e != gpuSuccess) snprintf(err, err_size, "%s", gpuGetErrorString(e));
    return (int)e;
}
