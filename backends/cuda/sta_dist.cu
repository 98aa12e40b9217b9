/* Distributed plans' steps on the GPU (sta_kernel.h's stile_gpu_copy_rows and stile_gpu_merge): strided
 * copies of token rows between slabs, halos and exchange buffers, and the log-sum-exp merge of the text
 * queries' partial outputs. Plain loads and stores, so the same source builds for CUDA and HIP. */
#include <stdint.h>

#include "sta_elem.cuh"
#include "sta_paths.cuh"

namespace {

enum { COPY_THREADS = 256, WARP = 32 };

/* One warp per row: rows (n, t, h, w) of ext, `words` elements of V each. */
template <class V> __global__ void copy_rows_kernel(sta_copy_args a, long long words)
{
    const long long rows = a.ext[0] * a.ext[1] * a.ext[2] * a.ext[3];
    const int lane = threadIdx.x % WARP;
    for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / WARP; r < rows; r += (long long)gridDim.x * blockDim.x / WARP) {
        long long i = r;
        const long long w = i % a.ext[3];
        i /= a.ext[3];
        const long long h = i % a.ext[2];
        i /= a.ext[2];
        const long long t = i % a.ext[1], n = i / a.ext[1];
        V *d = (V *)(a.dst + n * a.ds[0] + t * a.ds[1] + h * a.ds[2] + w * a.ds[3]);
        const V *s = (const V *)(a.src + n * a.ss[0] + t * a.ss[1] + h * a.ss[2] + w * a.ss[3]);
        for (long long j = lane; j < words; j += WARP) d[j] = s[j];
    }
}

/* Whether every address and stride of a is a multiple of m bytes. */
bool aligned(const sta_copy_args &a, long long m)
{
    if (a.bytes % m || (uintptr_t)a.dst % m || (uintptr_t)a.src % m) return false;
    for (int i = 0; i < 4; i++)
        if (a.ds[i] % m || a.ss[i] % m) return false;
    return true;
}

/* grid (rows, B*heads), block: threads over D */
__global__ void merge_kernel(sta_merge_args m)
{
    const long long r = blockIdx.x, bh = blockIdx.y, b = bh / m.heads, h = bh % m.heads;
    const long long li = bh * m.rows + r, lpart = m.batch * m.heads * m.rows, part = m.batch * m.rows * m.heads * m.dim;
    float mx = __int_as_float(0xff800000);
    for (int i = 0; i < m.n; i++) mx = fmaxf(mx, m.lse_parts[i * lpart + li]);
    float sum = 0.f;
    if (mx != __int_as_float(0xff800000))
        for (int i = 0; i < m.n; i++) sum += expf(m.lse_parts[i * lpart + li] - mx);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (long long d = threadIdx.x; d < m.dim; d += blockDim.x) {
        float acc = 0.f;
        if (sum > 0.f)
            for (int i = 0; i < m.n; i++) {
                const float w = expf(m.lse_parts[i * lpart + li] - mx);
                acc += w * load_elem(m.o_parts, m.dtype, i * part + ((b * m.rows + r) * m.heads + h) * m.dim + d);
            }
        store_elem(m.o, m.dtype, b * m.o_batch + r * m.o_row + h * m.dim + d, acc * inv);
    }
    if (m.lse && threadIdx.x == 0) m.lse[bh * m.lse_row + r] = sum > 0.f ? mx + logf(sum) : __int_as_float(0xff800000);
}

} /* namespace */

extern "C" int stile_gpu_copy_rows(const sta_copy_args *a, void *stream)
{
    const long long rows = a->ext[0] * a->ext[1] * a->ext[2] * a->ext[3];
    if (rows <= 0 || a->bytes <= 0) return 0;
    const long long want = (rows * WARP + COPY_THREADS - 1) / COPY_THREADS;
    const int blocks = (int)(want < 65536 ? want : 65536);
    gpuStream_t s = (gpuStream_t)stream;
    if (aligned(*a, 16)) copy_rows_kernel<uint4><<<blocks, COPY_THREADS, 0, s>>>(*a, a->bytes / 16);
    else if (aligned(*a, 4)) copy_rows_kernel<unsigned><<<blocks, COPY_THREADS, 0, s>>>(*a, a->bytes / 4);
    else copy_rows_kernel<unsigned char><<<blocks, COPY_THREADS, 0, s>>>(*a, a->bytes);
    return (int)gpuGetLastError();
}

extern "C" int stile_gpu_merge(const sta_merge_args *m, void *stream)
{
    if (m->rows <= 0 || m->batch * m->heads <= 0) return 0;
    merge_kernel<<<dim3((unsigned)m->rows, (unsigned)(m->batch * m->heads)), 128, 0, (gpuStream_t)stream>>>(*m);
    return (int)gpuGetLastError();
}
