/* STA forward kernels, C-style CUDA behind an extern "C" launcher; HIP builds the same file through
 * gpu_vendor.h. Two paths:
 *  - mma (CUDA, sm_80+): f16/bf16, d 64/128; Q K^T and P V on tensor cores (mma.sync m16n8k16,
 *    f32 accumulation), operands staged by cp.async in two stages and read by ldmatrix, online softmax
 *    in registers. Query and key rows are gathered straight from natural (or tiled) order.
 *  - scalar (portable, also HIP's only path): any dtype, d <= 256, f32 FMA throughout.
 * Both walk the same block schedule: a query block of a video tile attends the key tiles of its head's
 * schedule row, then the valid text keys; a text query block attends every tile and the text keys. */
#ifdef STILE_HIP
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_vendor.h"
#include "sta_kernel.h"

/* Everything but the extern "C" entry points has internal linkage: the CUDA and HIP builds of this
 * file can sit in one library. */
namespace {

enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 }; /* stile_dtype */
enum { BM = STA_BLOCK_ROWS, BN = 64 }; /* query rows per block (= threads of the scalar kernel), keys per chunk */

/* ---- schedule walking, shared by both paths ---- */

struct geom {
    int org[3], ext[3];
};

__device__ __forceinline__ geom tile_geom(const sta_params &p, int tile)
{
    geom g;
    int c[3] = {tile / (p.grid[1] * p.grid[2]), (tile / p.grid[2]) % p.grid[1], tile % p.grid[2]};
    for (int a = 0; a < 3; a++) {
        g.org[a] = c[a] * p.tile[a];
        int e = p.canvas[a] - g.org[a];
        g.ext[a] = e < p.tile[a] ? e : p.tile[a];
    }
    return g;
}

/* Token index (in the tensors' order) of local row r of a tile. */
__device__ __forceinline__ long long tile_token(const sta_params &p, int tile, const geom &g, int r)
{
    if (p.tiled_order) return p.tile_start[tile] + r;
    int e12 = g.ext[1] * g.ext[2];
    int lt = r / e12, rem = r - lt * e12, lh = rem / g.ext[2], lw = rem - lh * g.ext[2];
    return ((long long)(g.org[0] + lt) * p.canvas[1] + g.org[1] + lh) * p.canvas[2] + g.org[2] + lw;
}

/* The key chunks a query block walks: segments (key tiles, then the text keys), BN rows at a time. */
struct chunk_iter {
    int seg, nseg, off, row, text_q;
    int tile, size; /* of the current segment; tile -1 for text */
    geom g;
};

__device__ __forceinline__ void seg_enter(const sta_params &p, chunk_iter &it)
{
    it.off = 0;
    if (it.seg < it.nseg) {
        it.tile = it.text_q ? it.seg : p.key_tiles[it.row + it.seg];
        it.g = tile_geom(p, it.tile);
        it.size = it.g.ext[0] * it.g.ext[1] * it.g.ext[2];
    } else {
        it.tile = -1;
        it.size = p.text_valid;
    }
}

__device__ __forceinline__ chunk_iter chunk_begin(const sta_params &p, int qtile, int head)
{
    chunk_iter it;
    it.text_q = qtile < 0;
    if (it.text_q) {
        it.nseg = p.tiles;
        it.row = 0;
    } else {
        int r = p.head_row[head] + qtile;
        it.row = p.row_start[r];
        it.nseg = p.row_start[r + 1] - it.row;
    }
    it.seg = 0;
    seg_enter(p, it);
    return it;
}

__device__ __forceinline__ bool chunk_valid(const sta_params &p, const chunk_iter &it)
{
    return it.seg < it.nseg || (it.seg == it.nseg && p.text_valid > 0);
}

__device__ __forceinline__ void chunk_next(const sta_params &p, chunk_iter &it)
{
    it.off += BN;
    if (it.off >= it.size) {
        it.seg++;
        if (it.seg <= it.nseg) seg_enter(p, it);
    }
}

/* Keys in the current chunk, and the token of key row r of it (r < that count). */
__device__ __forceinline__ int chunk_rows(const chunk_iter &it) { return it.size - it.off < BN ? it.size - it.off : BN; }

__device__ __forceinline__ long long chunk_token(const sta_params &p, const chunk_iter &it, int r)
{
    return it.tile >= 0 ? tile_token(p, it.tile, it.g, it.off + r) : (long long)p.video + it.off + r;
}

/* Token of query row r of a block {tile, first local row, rows, first token}. */
__device__ __forceinline__ long long query_token(const sta_params &p, const int *blk, const geom &g, int r)
{
    return blk[0] >= 0 ? tile_token(p, blk[0], g, blk[1] + r) : (long long)blk[3] + r;
}

__device__ __forceinline__ float load_elem(const void *base, int dtype, long long i)
{
#ifdef STILE_HIP
    if (dtype == DT_F32) return ((const float *)base)[i];
    if (dtype == DT_F16) return __half2float(((const __half *)base)[i]);
    unsigned int u = (unsigned int)((const unsigned short *)base)[i] << 16;
    return __uint_as_float(u);
#else
    if (dtype == DT_F32) return ((const float *)base)[i];
    if (dtype == DT_F16) return __half2float(((const __half *)base)[i]);
    return __bfloat162float(((const __nv_bfloat16 *)base)[i]);
#endif
}

__device__ __forceinline__ void store_elem(void *base, int dtype, long long i, float v)
{
#ifdef STILE_HIP
    if (dtype == DT_F32) ((float *)base)[i] = v;
    else if (dtype == DT_F16) ((__half *)base)[i] = __float2half(v);
    else { /* round to nearest even, as stile_float_to_bf16 */
        unsigned int u = __float_as_uint(v);
        if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;
        else u += 0x7fffu + ((u >> 16) & 1u);
        ((unsigned short *)base)[i] = (unsigned short)(u >> 16);
    }
#else
    if (dtype == DT_F32) ((float *)base)[i] = v;
    else if (dtype == DT_F16) ((__half *)base)[i] = __float2half_rn(v);
    else ((__nv_bfloat16 *)base)[i] = __float2bfloat16_rn(v);
#endif
}

/* ---- the portable path: one thread per query row, keys staged in shared memory as f32 ---- */

enum { SC_KEYS = 16, SC_MAXD = 256 };

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

__global__ void __launch_bounds__(BM) sta_fwd_scalar(const sta_params p)
{
    __shared__ float ks[SC_KEYS][SC_MAXD];
    __shared__ float vs[SC_KEYS][SC_MAXD];
    const int *blk = p.blocks + 4 * blockIdx.x;
    const int h = blockIdx.y, b = blockIdx.z, D = p.head_dim, r = threadIdx.x;
    const bool active = r < blk[2];
    geom qg = blk[0] >= 0 ? tile_geom(p, blk[0]) : geom();
    long long qtok = active ? query_token(p, blk, qg, r) : 0;
    float q[SC_MAXD], acc[SC_MAXD];
    for (int d = 0; d < D; d++) {
        q[d] = active ? load_elem(p.q, p.dtype, b * p.sq[0] + qtok * p.sq[1] + h * p.sq[2] + d * p.sq[3]) * p.scale_log2 : 0.f;
        acc[d] = 0.f;
    }
    float m = neg_inf(), l = 0.f;
    for (chunk_iter it = chunk_begin(p, blk[0], h); chunk_valid(p, it); chunk_next(p, it)) {
        const int n = chunk_rows(it);
        for (int k0 = 0; k0 < n; k0 += SC_KEYS) {
            const int nk = n - k0 < SC_KEYS ? n - k0 : SC_KEYS;
            __syncthreads(); /* the previous keys are consumed */
            for (int e = threadIdx.x; e < nk * D; e += blockDim.x) {
                int kr = e / D, d = e - kr * D;
                long long tok = chunk_token(p, it, k0 + kr);
                ks[kr][d] = load_elem(p.k, p.dtype, b * p.sk[0] + tok * p.sk[1] + h * p.sk[2] + d * p.sk[3]);
                vs[kr][d] = load_elem(p.v, p.dtype, b * p.sv[0] + tok * p.sv[1] + h * p.sv[2] + d * p.sv[3]);
            }
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
    const float inv = 1.f / l;
    for (int d = 0; d < D; d++) store_elem(p.o, p.dtype, b * p.so[0] + qtok * p.so[1] + h * p.so[2] + d * p.so[3], acc[d] * inv);
    if (p.lse) p.lse[((long long)b * p.heads + h) * p.tokens + qtok] = (m + log2f(l)) * 0.69314718055994531f;
}

/* ---- the tensor-core path (CUDA, sm_80+) ---- */
#ifndef STILE_HIP

typedef unsigned short raw16; /* f16 or bf16 bits */

__device__ __forceinline__ unsigned smem_u32(const void *ptr) { return (unsigned)__cvta_generic_to_shared(ptr); }

/* 16 bytes global -> shared, asynchronously; invalid rows are zero-filled. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

template <bool BF>
__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    if (BF)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <bool BF> __device__ __forceinline__ unsigned pack2(float lo, float hi)
{
    if (BF) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<unsigned *>(&v);
    }
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&v);
}

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* Row-major [rows][D] tiles in shared memory, 16-byte chunks XOR-swizzled by row so that ldmatrix
 * reads of 8 rows at one column hit 8 different bank groups. */
template <int D> __device__ __forceinline__ int sw(int r, int c) { return r * D + ((((c >> 3) ^ (r & 7))) << 3) + (c & 7); }

/* 4 warps, each owning 32 query rows (two m16 tiles): every K and V fragment read from shared memory
 * feeds two MMAs, which halves shared-memory traffic per FLOP against 16-row warps. */
template <int D, bool BF>
__global__ void __launch_bounds__(128, 2) sta_fwd_mma(const sta_params p)
{
    extern __shared__ __align__(16) unsigned char smem[];
    raw16 *Qs = reinterpret_cast<raw16 *>(smem);
    raw16 *Ks = Qs + BM * D; /* two stages */
    raw16 *Vs = Ks + 2 * BN * D;
    const int *blk = p.blocks + 4 * blockIdx.x;
    const int h = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int qrows = blk[2];
    geom qg = blk[0] >= 0 ? tile_geom(p, blk[0]) : geom();
    const raw16 *qb = (const raw16 *)p.q + b * p.sq[0] + h * p.sq[2];
    const raw16 *kb = (const raw16 *)p.k + b * p.sk[0] + h * p.sk[2];
    const raw16 *vb = (const raw16 *)p.v + b * p.sv[0] + h * p.sv[2];
    constexpr int CPR = D / 8;      /* 16-byte chunks per row */
    constexpr int RPP = 128 / CPR;  /* rows per pass of the 128 threads */
    const int cc = tid % CPR, r0 = tid / CPR;

    for (int r = r0; r < BM; r += RPP) {
        const bool ok = r < qrows;
        const long long tok = ok ? query_token(p, blk, qg, r) : 0;
        cp_async16(&Qs[sw<D>(r, cc * 8)], qb + tok * p.sq[1] + cc * 8, ok);
    }
    cp_commit();

    chunk_iter cur = chunk_begin(p, blk[0], h), nxt = cur;
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
    for (;;) {
        const bool has_next = chunk_valid(p, nxt);
        if (has_next) issue(nxt, stage ^ 1);
        cp_commit();
        cp_wait<1>(); /* Q and the current chunk have landed */
        __syncthreads();
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
                alpha[mt][i] = fast_exp2((m_r[mt][i] - mx) * sc);
                m_r[mt][i] = mx;
                const float msc = mx * sc;
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
            const float inv = 1.f / l;
            const int row = warp * 32 + mt * 16 + (lane >> 2) + 8 * i;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt++)
                *reinterpret_cast<unsigned *>(&Qs[sw<D>(row, dt * 8 + 2 * (lane & 3))]) =
                    pack2<BF>(o_acc[mt][dt][2 * i] * inv, o_acc[mt][dt][2 * i + 1] * inv);
            if (p.lse && (lane & 3) == 0 && row < qrows)
                p.lse[((long long)b * p.heads + h) * p.tokens + query_token(p, blk, qg, row)] =
                    (m_r[mt][i] * p.scale_log2 + log2f(l)) * 0.69314718055994531f;
        }
    __syncthreads();
    raw16 *ob = (raw16 *)p.o + b * p.so[0] + h * p.so[2];
    for (int r = r0; r < qrows; r += RPP)
        *reinterpret_cast<uint4 *>(ob + query_token(p, blk, qg, r) * p.so[1] + cc * 8) =
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
#endif /* !STILE_HIP */

} /* namespace */

extern "C" int stile_gpu_mma_eligible(const sta_params *p, int cc)
{
#ifdef STILE_HIP
    (void)p;
    (void)cc;
    return 0; /* no mma.sync/ldmatrix/cp.async on AMD: the portable path (docs/backends.md) */
#else
    if (cc < 80 || (p->dtype != DT_F16 && p->dtype != DT_BF16) || (p->head_dim != 64 && p->head_dim != 128)) return 0;
    const long long *st[4] = {p->sq, p->sk, p->sv, p->so};
    const void *ptr[4] = {p->q, p->k, p->v, p->o};
    for (int i = 0; i < 4; i++) {
        if (st[i][3] != 1 || st[i][0] % 8 || st[i][1] % 8 || st[i][2] % 8) return 0; /* 16-byte rows */
        if ((uintptr_t)ptr[i] % 16) return 0;
    }
    return 1;
#endif
}

#if !defined(STILE_HIP) && defined(STILE_HAVE_SM90)
extern "C" int stile_sm90_eligible(const sta_params *p, int cc);
extern "C" int stile_sm90_launch(const sta_params *p, void *stream, char *err, size_t err_size);
#endif

extern "C" int stile_gpu_path_select(const sta_params *p, int cc)
{
    const char *force = getenv("STILE_CUDA_PATH");
    if ((force && strcmp(force, "portable") == 0) || !stile_gpu_mma_eligible(p, cc)) return STA_PATH_SCALAR;
#if !defined(STILE_HIP) && defined(STILE_HAVE_SM90)
    if (!(force && strcmp(force, "mma") == 0) && stile_sm90_eligible(p, cc)) return STA_PATH_HOPPER;
#endif
    return STA_PATH_MMA;
}

extern "C" const char *stile_gpu_path_name(int path)
{
    return path == STA_PATH_HOPPER ? "wgmma+tma (sm_90a)" : path == STA_PATH_MMA ? "mma.sync" : "portable";
}

extern "C" int stile_gpu_sta_launch(const sta_params *p, int path, void *stream, char *err, size_t err_size)
{
#if !defined(STILE_HIP) && defined(STILE_HAVE_SM90)
    if (path == STA_PATH_HOPPER) {
        const int rc = stile_sm90_launch(p, stream, err, err_size);
        if (rc >= 0) return rc;
        path = STA_PATH_MMA; /* no tensor-map support from this driver: the sm_80 kernel */
    }
#endif
    if (path == STA_PATH_HOPPER) path = STA_PATH_MMA;
    dim3 grid((unsigned)p->nblocks, (unsigned)p->heads, (unsigned)p->batch);
    gpuStream_t s = (gpuStream_t)stream;
    gpuError_t e = gpuSuccess;
#ifndef STILE_HIP
    if (path == STA_PATH_MMA) {
        const bool bf = p->dtype == DT_BF16;
        if (p->head_dim == 128) e = bf ? launch_mma<128, true>(p, grid, s) : launch_mma<128, false>(p, grid, s);
        else e = bf ? launch_mma<64, true>(p, grid, s) : launch_mma<64, false>(p, grid, s);
    } else
#endif
    {
        (void)path;
        sta_fwd_scalar<<<grid, BM, 0, s>>>(*p);
        e = gpuGetLastError();
    }
    if (e != gpuSuccess) {
        snprintf(err, err_size, "%s", gpuGetErrorString(e));
        return (int)e;
    }
    return 0;
}
