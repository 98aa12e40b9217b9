/* STA forward for Hopper (sm_90a): TMA bulk tensor loads + mbarrier pipelines, wgmma, warp
 * specialisation, reading q, k and v straight from the natural [B, S, H, D] layout.
 *
 * Wide shape: a CTA is 4 warpgroups: warpgroup 0 produces (one thread issues every TMA load),
 * warpgroups 1..3 consume (64 query rows each, 192 per CTA). Narrow shape (tiles of under 128 query
 * rows): one consumer warpgroup, 64 query rows, 64-row key blocks, two CTAs per SM; otherwise the
 * same code (`shape` below). The grid is persistent: CTA i takes work items
 * i, i + gridDim.x, ... - text query blocks first (each attends every key, the heaviest items), then
 * the video query blocks, head by head, tile by tile (neighbouring CTAs share K/V in L2).
 *
 * Tensor maps (built on the host at each launch, passed as a __grid_constant__ parameter):
 *   video q/k/v: 5-dim (heads*D, W, H, T, B); a box (64 of D, tw, th, k frames, 1) is k whole frames
 *     of one tile of one head, landing in shared memory as rows of 128 bytes in the tile's raster
 *     order (w fastest), 128-byte swizzled - exactly a K-major wgmma operand. Head and 64-wide D
 *     chunk are one coordinate on dimension 0. Boxes past the canvas come back zero-filled.
 *   video q/k/v in tiled order: 3-dim (heads*D, video, B); a tile's tokens are consecutive rows, so a
 *     box of rows (a block's frames of one tile) starts at the tile's first token. Rows of a partial
 *     tile's block past its own tokens (the next tile's) are masked like padding; rows past the video
 *     come back zero-filled.
 *   text q: 3-dim (heads*D, text, B) at the first text token; text k/v: the same over the valid text
 *     tokens only, so padding keys are never even read (out-of-bounds rows are zeros).
 * Query blocks: kq = min(tile_t, MQ / (th*tw)) frames of one tile (MQ = 192 wide, 64 narrow; 6x8x8:
 * 3 frames, 192 rows); key blocks: kk = min(tile_t, KVR / (th*tw)) frames (KVR = 128 wide, 64
 * narrow; 6x8x8: 2 frames, 128 rows; 4x4x4 narrow: the whole tile). S = Q K^T is always 64 x KVR per
 * warpgroup (rows past the box are masked by coordinate), P V uses P from registers and V as an
 * MN-major operand.
 *
 * Pipeline: Q (one buffer) with full/empty mbarriers; K and V in S stages, each with its own full
 * barrier (V is awaited only before P V) and one empty barrier (one arrival per consumer warp). The
 * producer writes a small record per item and per stage (mask limits, last-block flag) into shared
 * memory before arriving on the full barrier, so consumers never walk the schedule. Lane 0 of each
 * consumer warp alone reads a record and hands it to its warp by shuffles: an mbarrier arrive releases
 * only the arriving thread's own accesses, so the thread that arrives to free a record must be the
 * only one of its warp that read it. */
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sta_paths.cuh"
#include "sta_region.cuh"
#include "sta_softmax.cuh"
#include "sta_wgmma.cuh"

namespace {

/* The kernel's two shapes. Wide: 3 consumer warpgroups share a 192-row query block and 128-row key
 * blocks, one CTA per SM - for tiles whose query box holds >= 128 rows. Narrow: 1 consumer warpgroup,
 * a 64-row query block, 64-row key blocks, two CTAs per SM - for small tiles (4x4x4 is 64 rows),
 * where each query tile has keys of its own and the wide shape would leave two warpgroups idle and
 * half of every key block masked. Registers: the producer warpgroup gives back what the consumers
 * take (setmaxnreg), within 64K per SM. */
template <int NW, int KR> struct shape {
    static constexpr int NWG = NW, MQ = 64 * NW, KVR = KR, NTHREADS = 128 * (NW + 1), CTAS = NW == 1 ? 2 : 1;
};
typedef shape<3, 128> wide;
typedef shape<1, 64> narrow;

struct sm90_params {
    CUtensorMap tq, tk, tv; /* video: (heads*D, W, H, T, B), or (heads*D, video, B) in tiled order */
    CUtensorMap xq, xk, xv; /* text: (heads*D, text | text_valid, B) */
    sta_params p;
    int kq, kk;             /* frames per query box / key box */
    int nsq;                /* query boxes per tile: ceil(tile_t / kq) */
    int text_per_head;      /* text query blocks per (batch, head) */
    int n_text_items, n_items;
};

/* ---- shared memory layout (from a 1024-byte aligned base) ---- */
template <class C, int D, int S> struct smem_layout {
    static constexpr int NCH = D / 64;                   /* 64-wide chunks of the head dim */
    static constexpr int QCH = C::MQ * 128, Q = NCH * QCH;  /* query rows x 128 B per chunk */
    static constexpr int KCH = C::KVR * 128, KV = NCH * KCH; /* one K (or V) stage */
    static constexpr int OFF_Q = 0, OFF_K = Q, OFF_V = OFF_K + S * KV, OFF_BAR = OFF_V + S * KV;
    /* barriers: q_full, q_empty, k_full[S], v_full[S], kv_empty[S] */
    static constexpr int OFF_INFO = OFF_BAR + 8 * (2 + 3 * S);
    static constexpr int INFO_INTS = 4, SINFO_INTS = 8;
    static constexpr int OFF_SINFO = OFF_INFO + 4 * 2 * INFO_INTS;
    static constexpr int END = OFF_SINFO + 4 * SINFO_INTS * S;
    static constexpr int BYTES = END + 1024; /* slack for aligning the base */
};

__device__ __forceinline__ uint32_t smem_u32(const void *ptr) { return (uint32_t)__cvta_generic_to_shared(ptr); }

/* ---- mbarrier ---- */
__device__ __forceinline__ void mbar_init(uint32_t bar, int count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_arrive_tx(uint32_t bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
    asm volatile("{\n.reg .pred p;\nWAIT_%=:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WAIT_%=;\n}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}

/* ---- TMA ---- */
__device__ __forceinline__ void tma_load5(uint32_t dst, const CUtensorMap *map, uint32_t bar, int c0, int c1, int c2, int c3, int c4)
{
    asm volatile("cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5, %6}], [%7];\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void tma_load3(uint32_t dst, const CUtensorMap *map, uint32_t bar, int c0, int c1, int c2)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void tma_prefetch(const CUtensorMap *map)
{
    asm volatile("prefetch.tensormap [%0];\n" ::"l"((uint64_t)map) : "memory");
}

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

/* A record field read by lane 0 alone and handed to the warp (see the top of the file). */
__device__ __forceinline__ int lane0_read(const int *field, int lane)
{
    int v = 0;
    if (lane == 0) v = *field;
    return __shfl_sync(0xffffffffu, v, 0);
}

struct geom {
    int org[3], ext[3];
    int first; /* in tiled order: the tile's first token (the tokens of every tile before it) */
};

__device__ __forceinline__ geom tile_geom(const sta_params &p, int tile)
{
    geom g;
    const int c[3] = {tile / (p.grid[1] * p.grid[2]), (tile / p.grid[2]) % p.grid[1], tile % p.grid[2]};
#pragma unroll
    for (int a = 0; a < 3; a++) {
        g.org[a] = c[a] * p.tile[a];
        const int e = p.canvas[a] - g.org[a];
        g.ext[a] = e < p.tile[a] ? e : p.tile[a];
    }
    /* whole frames of the canvas before the tile's slab, then within the slab whole rows of tiles,
     * then the tiles before it in its row */
    g.first = g.org[0] * p.canvas[1] * p.canvas[2] + g.ext[0] * g.org[1] * p.canvas[2] + g.ext[0] * g.ext[1] * g.org[2];
    return g;
}

/* ---- producer: one thread walks this CTA's items and issues every load ---- */
template <class C, int D, int S> __device__ __forceinline__ void producer(const sm90_params &P, unsigned char *smem)
{
    typedef smem_layout<C, D, S> L;
    constexpr int MQ = C::MQ, KVR = C::KVR;
    const sta_params &p = P.p;
    const int th = p.tile[1], tw = p.tile[2], hw = th * tw, kq = P.kq, kk = P.kk;
    const uint32_t sb = smem_u32(smem);
    const uint32_t q_full = sb + L::OFF_BAR, q_empty = q_full + 8, k_full = q_full + 16, v_full = k_full + 8 * S,
                   kv_empty = v_full + 8 * S;
    int *infos = reinterpret_cast<int *>(smem + L::OFF_INFO); /* two item records, used in turn */
    int *sinfo = reinterpret_cast<int *>(smem + L::OFF_SINFO);
    const uint32_t q_video_bytes = L::NCH * 128u * kq * hw, q_text_bytes = L::NCH * 128u * MQ;
    const uint32_t kv_video_bytes = L::NCH * 128u * kk * hw, kv_text_bytes = L::NCH * 128u * KVR;
    const bool kv_rows_full = kk * hw == KVR, tiled = p.tiled_order;
    const int ntb = (p.text_valid + KVR - 1) / KVR; /* text key blocks */
    tma_prefetch(&P.tq);
    tma_prefetch(&P.tk);
    tma_prefetch(&P.tv);
    if (p.tokens > p.video) tma_prefetch(&P.xq);
    if (ntb) {
        tma_prefetch(&P.xk);
        tma_prefetch(&P.xv);
    }
    int stage = 0;
    uint32_t phase = 0, qn = 0;
    /* One key block into the next stage: mode 0 dense, 1 video with limits (frames, rows, columns)
     * a, b, c, 2 the first a rows valid. A block of rows (text, or video in tiled order) starts at
     * row c1 of the 3-dim map, a video box in natural order at (c1, c2, c3) = (w, h, t). */
    auto put = [&](bool text, int c1, int c2, int c3, int b, int hd, int mode, int a, int bb, int c, int last) {
        const bool rows = text || tiled;
        const CUtensorMap *mk = text ? &P.xk : &P.tk, *mv = text ? &P.xv : &P.tv;
        mbar_wait(kv_empty + 8 * stage, phase ^ 1);
        int *si = sinfo + L::SINFO_INTS * stage;
        si[0] = mode;
        si[1] = a;
        si[2] = bb;
        si[3] = c;
        si[4] = last;
        const uint32_t kdst = sb + L::OFF_K + stage * L::KV, vdst = sb + L::OFF_V + stage * L::KV;
        const uint32_t bytes = text ? kv_text_bytes : kv_video_bytes;
        mbar_arrive_tx(k_full + 8 * stage, bytes);
#pragma unroll
        for (int ch = 0; ch < L::NCH; ch++) {
            if (rows) tma_load3(kdst + ch * L::KCH, mk, k_full + 8 * stage, hd * D + 64 * ch, c1, b);
            else tma_load5(kdst + ch * L::KCH, mk, k_full + 8 * stage, hd * D + 64 * ch, c1, c2, c3, b);
        }
        mbar_arrive_tx(v_full + 8 * stage, bytes);
#pragma unroll
        for (int ch = 0; ch < L::NCH; ch++) {
            if (rows) tma_load3(vdst + ch * L::KCH, mv, v_full + 8 * stage, hd * D + 64 * ch, c1, b);
            else tma_load5(vdst + ch * L::KCH, mv, v_full + 8 * stage, hd * D + 64 * ch, c1, c2, c3, b);
        }
        if (++stage == S) {
            stage = 0;
            phase ^= 1;
        }
    };
    /* Which items this CTA takes. Plain striding (item = CTA + k * grid) when there are more text
     * query blocks than CTAs; otherwise CTA c < nt takes text item c and then sits out the first K
     * waves of video items (K ~ one text item's key blocks over one video item's), which the other
     * CTAs share: the text items are ~tiles/27 times heavier and would otherwise end last. Every
     * wave is a run of consecutive items, so CTAs working at the same time still share K/V in L2. */
    const int G = gridDim.x, c = blockIdx.x, nt = P.n_text_items, nv = P.n_items - nt, narrow = G - nt;
    const bool balanced = nt > 0 && nt <= G;
    int K = 0;
    if (balanced && narrow > 0) {
        const int nsk = (p.tile[0] + kk - 1) / kk, r0 = p.head_row[0];
        const int row0 = p.kt_rows ? p.kt_k : p.row_start[r0 + 1] - p.row_start[r0]; /* key tiles per video item (caller's: at most) */
        const int vc = row0 * nsk + ntb, tc = hold_count(p) * nsk + ntb;
        K = (tc + vc / 2) / vc;
        if ((long long)K * narrow > nv) K = nv / narrow;
    }
    bool text_pending = balanced && c < nt;
    for (int k = 0;;) {
        int item;
        if (!balanced) {
            item = c + k++ * G;
            if (item >= P.n_items) break;
        } else if (text_pending) {
            item = c;
            text_pending = false;
        } else {
            const long long v = c >= nt && k < K ? (long long)k * narrow + (c - nt)
                                                 : (long long)K * narrow + (long long)(c >= nt ? k - K : k) * G + c;
            k++;
            if (v >= nv) break;
            item = nt + (int)v;
        }
        int b, hd, qtile = -1, toff = 0, slab = 0;
        geom qg;
        if (item < P.n_text_items) {
            const int per = P.text_per_head;
            b = item / (p.heads * per);
            hd = (item / per) % p.heads;
            toff = (item % per) * MQ;
        } else {
            const int v = item - P.n_text_items, per = run_count(p) * P.nsq; /* the run box's tiles (the grid without a region) */
            b = v / (p.heads * per);
            hd = (v / per) % p.heads;
            const int r = v % per;
            qtile = run_tile(p, r / P.nsq);
            slab = r % P.nsq;
            qg = tile_geom(p, qtile);
            if (slab * kq >= qg.ext[0]) continue; /* past a partial tile's last frame */
        }
        const int ntb_item = qtile < 0 && !p.text_keys ? 0 : ntb; /* a region's text queries may leave the text keys out */
        mbar_wait(q_empty, (qn & 1) ^ 1);
        int *info = infos + L::INFO_INTS * (qn & 1);
        /* the item's record: kind (1 video block in natural order, 2 a block of rows: text, or video
         * in tiled order), b * heads + head, the token of row 0, and which rows are real: kind 2 the
         * first n; kind 1 frames | rows << 10 | columns << 20 of the tile's extent */
        info[1] = b * p.heads + hd;
        if (qtile < 0) {
            const int text = p.tokens - p.video;
            info[0] = 2;
            info[2] = p.q_video + toff;
            info[3] = text - toff < MQ ? text - toff : MQ;
            mbar_arrive_tx(q_full, q_text_bytes);
#pragma unroll
            for (int ch = 0; ch < L::NCH; ch++) tma_load3(sb + L::OFF_Q + ch * L::QCH, &P.xq, q_full, hd * D + 64 * ch, toff, b);
        } else if (tiled) {
            const int e12 = qg.ext[1] * qg.ext[2], lt = qg.ext[0] - slab * kq, r0 = qg.first + slab * kq * e12;
            info[0] = 2;
            info[2] = r0;
            info[3] = (lt < kq ? lt : kq) * e12;
            mbar_arrive_tx(q_full, q_video_bytes);
#pragma unroll
            for (int ch = 0; ch < L::NCH; ch++) tma_load3(sb + L::OFF_Q + ch * L::QCH, &P.tq, q_full, hd * D + 64 * ch, r0, b);
        } else {
            const int t0 = qg.org[0] + slab * kq, lt = qg.ext[0] - slab * kq;
            /* q, o and lse over the region's box of tokens (the canvas without one) */
            const int qt = t0 - p.q_org[0], qh = qg.org[1] - p.q_org[1], qw = qg.org[2] - p.q_org[2];
            info[0] = 1;
            info[2] = (qt * p.q_ext[1] + qh) * p.q_ext[2] + qw;
            info[3] = (lt < kq ? lt : kq) | qg.ext[1] << 10 | qg.ext[2] << 20;
            mbar_arrive_tx(q_full, q_video_bytes);
#pragma unroll
            for (int ch = 0; ch < L::NCH; ch++) tma_load5(sb + L::OFF_Q + ch * L::QCH, &P.tq, q_full, hd * D + 64 * ch, qw, qh, qt, b);
        }
        qn++;
        int row = 0, nseg = hold_count(p); /* a text block: the hold box's tiles (the grid without a region) */
        const int *list = p.key_tiles;
        if (qtile >= 0 && p.kt_rows) { /* the caller's tiles (sta_key_tiles.cu) */
            const int r = (b * p.heads + hd) * p.tiles + qtile;
            list = p.kt_rows;
            row = r * p.kt_k;
            nseg = p.kt_count[r];
        } else if (qtile >= 0) {
            const int r = p.head_row[hd] + qtile;
            row = p.row_start[r];
            nseg = p.row_start[r + 1] - row;
        }
        /* a block of no keys at all (an empty set, no valid text) still gets one block, fully masked
         * (mode 2, 0 rows valid: the first rows of the video map), so its consumers finish it: o = 0, lse -inf */
        if (nseg == 0 && ntb_item == 0) put(false, 0, 0, 0, b, hd, 2, 0, 0, 0, 1);
        for (int sg = 0; sg < nseg; sg++) {
            const int kt = qtile < 0 ? hold_tile(p, sg) : list[row + sg];
            const geom g = tile_geom(p, kt);
            const int ns = (g.ext[0] + kk - 1) / kk;
            for (int s = 0; s < ns; s++) {
                const int lt = g.ext[0] - s * kk < kk ? g.ext[0] - s * kk : kk, e12 = g.ext[1] * g.ext[2];
                const bool dense = kv_rows_full && lt == kk && g.ext[1] == th && g.ext[2] == tw;
                const int last = sg == nseg - 1 && s == ns - 1 && ntb_item == 0;
                if (tiled) put(false, g.first + s * kk * e12, 0, 0, b, hd, dense ? 0 : 2, lt * e12, 0, 0, last);
                else put(false, g.org[2], g.org[1], g.org[0] + s * kk, b, hd, dense ? 0 : 1, lt, g.ext[1], g.ext[2], last);
            }
        }
        for (int t = 0; t < ntb_item; t++) {
            const int lim = p.text_valid - t * KVR;
            put(true, t * KVR, 0, 0, b, hd, lim >= KVR ? 0 : 2, lim, 0, 0, t == ntb_item - 1);
        }
    }
    mbar_wait(q_empty, (qn & 1) ^ 1);
    infos[L::INFO_INTS * (qn & 1)] = 0; /* no more items */
    mbar_arrive(q_full);
}

/* ---- consumers: a warpgroup owns 64 query rows of the block ---- */
template <class C, int D, bool BF, int S> __device__ __forceinline__ void consumer(const sm90_params &P, unsigned char *smem, int wg)
{
    typedef smem_layout<C, D, S> L;
    constexpr int KVR = C::KVR, NS = KVR / 2; /* S = Q K^T registers: 64 x KVR over 128 threads */
    constexpr int NO = D / 2; /* O accumulator registers: 64 x D over 128 threads */
    const sta_params &p = P.p;
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, quad = lane & 3;
    const int th = p.tile[1], tw = p.tile[2], hw = th * tw;
    const float sc = p.scale_log2;
    const uint32_t sb = smem_u32(smem);
    const uint32_t q_full = sb + L::OFF_BAR, q_empty = q_full + 8, k_full = q_full + 16, v_full = k_full + 8 * S,
                   kv_empty = v_full + 8 * S;
    const int *infos = reinterpret_cast<const int *>(smem + L::OFF_INFO);
    const int *sinfo = reinterpret_cast<const int *>(smem + L::OFF_SINFO);
    /* Q rows of this warpgroup (K-major), K (K-major) and V (MN-major: LBO = distance between the
     * 64-wide D chunks) of stage 0; a stage adds L::KV bytes, i.e. L::KV >> 4 in the descriptor. */
    const uint64_t qdesc = make_desc(sb + L::OFF_Q + wg * 64 * 128, 16, 1024);
    const uint64_t kdesc0 = make_desc(sb + L::OFF_K, 16, 1024);
    const uint64_t vdesc0 = make_desc(sb + L::OFF_V, L::KCH, 1024);
    int stage = 0;
    uint32_t phase = 0, qn = 0;
    for (;;) {
        mbar_wait(q_full, qn & 1);
        const int *info = infos + L::INFO_INTS * (qn & 1);
        qn++;
        const int kind = lane0_read(info, lane);
        if (kind == 0) break;
        float o[NO];
#pragma unroll
        for (int i = 0; i < NO; i++) o[i] = 0.f;
        float m[2] = {neg_inf(), neg_inf()}, l[2] = {0.f, 0.f};
        for (;;) {
            mbar_wait(k_full + 8 * stage, phase);
            const int *si = sinfo + L::SINFO_INTS * stage;
            const int mode = lane0_read(si, lane), ma = lane0_read(si + 1, lane), mb = lane0_read(si + 2, lane),
                      mc = lane0_read(si + 3, lane), last = lane0_read(si + 4, lane);
            float s[NS];
            const uint64_t kdesc = kdesc0 + (uint64_t)((stage * L::KV) >> 4);
            wgmma_fence();
#pragma unroll
            for (int k = 0; k < D / 16; k++) {
                const uint32_t qoff = (k >> 2) * L::QCH + (k & 3) * 32, koff = (k >> 2) * L::KCH + (k & 3) * 32;
                if constexpr (KVR == 128) wgmma_ss_n128<BF>(s, qdesc + (qoff >> 4), kdesc + (koff >> 4), k > 0);
                else wgmma_ss_n64<BF>(s, qdesc + (qoff >> 4), kdesc + (koff >> 4), k > 0);
            }
            wgmma_commit();
            wgmma_wait<0>();
            reg_fence(s);
            /* The block's last Q K^T: Q (and the item record, which only lane 0 read) may be replaced. */
            if (last && lane == 0) mbar_arrive(q_empty);
            if (mode == 2) {
#pragma unroll
                for (int j = 0; j < NS / 4; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (8 * j + 2 * quad + e >= ma) s[4 * j + e] = s[4 * j + 2 + e] = neg_inf();
            } else if (mode == 1) { /* lane l decides columns l, l + 32, ...; ballots give every lane the block's mask */
                unsigned valid[KVR / 32];
#pragma unroll
                for (int w = 0; w < KVR / 32; w++) {
                    const int c = 32 * w + lane, lt = c / hw, r = c - lt * hw, lh = r / tw, lw = r - lh * tw;
                    valid[w] = __ballot_sync(0xffffffffu, lt < ma && lh < mb && lw < mc);
                }
#pragma unroll
                for (int j = 0; j < NS / 4; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (!(valid[j >> 2] >> ((8 * j & 31) + 2 * quad + e) & 1u)) s[4 * j + e] = s[4 * j + 2 + e] = neg_inf();
            }
            /* online softmax: rows lane/4 (h 0) and lane/4 + 8 (h 1) of the warp's 16 */
            float alpha[2];
            bool moved = false;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                float mx = m[h];
#pragma unroll
                for (int j = 0; j < NS / 4; j++) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * h], s[4 * j + 2 * h + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                moved |= mx != m[h];
                const float ms = mx == neg_inf() ? 0.f : mx;
                alpha[h] = fast_exp2((m[h] - ms) * sc);
                m[h] = mx;
                const float msc = ms * sc;
                float sum = 0.f;
#pragma unroll
                for (int j = 0; j < NS / 4; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const float x = fast_exp2(fmaf(s[4 * j + 2 * h + e], sc, -msc));
                        s[4 * j + 2 * h + e] = x;
                        sum += x;
                    }
                l[h] = l[h] * alpha[h] + sum;
            }
            if (__any_sync(0xffffffffu, moved))
#pragma unroll
                for (int j = 0; j < NO / 4; j++) {
                    o[4 * j] *= alpha[0];
                    o[4 * j + 1] *= alpha[0];
                    o[4 * j + 2] *= alpha[1];
                    o[4 * j + 3] *= alpha[1];
                }
            unsigned pr[NS / 2];
#pragma unroll
            for (int i = 0; i < NS / 2; i++) pr[i] = pack2<BF>(s[2 * i], s[2 * i + 1]);
            mbar_wait(v_full + 8 * stage, phase);
            const uint64_t vdesc = vdesc0 + (uint64_t)((stage * L::KV) >> 4);
            wgmma_fence();
#pragma unroll
            for (int k = 0; k < KVR / 16; k++) {
                if constexpr (D == 128)
                    wgmma_rs_n128<BF>(*reinterpret_cast<float(*)[64]>(o), pr[4 * k], pr[4 * k + 1], pr[4 * k + 2], pr[4 * k + 3],
                                      vdesc + (uint64_t)((k * 2048) >> 4));
                else
                    wgmma_rs_n64<BF>(*reinterpret_cast<float(*)[32]>(o), pr[4 * k], pr[4 * k + 1], pr[4 * k + 2], pr[4 * k + 3],
                                     vdesc + (uint64_t)((k * 2048) >> 4));
            }
            wgmma_commit();
            wgmma_wait<0>();
            reg_fence(o);
            if (lane == 0) mbar_arrive(kv_empty + 8 * stage); /* the warp's wgmma reads are done (waited) */
            if (++stage == S) {
                stage = 0;
                phase ^= 1;
            }
            if (last) break;
        }
        /* epilogue: normalise and store straight from registers (4 bytes per column pair). The record
         * is still there: the producer has moved on to the other one. */
        const int bh = lane0_read(info + 1, lane), tok0 = lane0_read(info + 2, lane), lim = lane0_read(info + 3, lane);
        typedef unsigned short raw16;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float lsum = l[h];
            lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
            lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
            const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
            const int R = wg * 64 + warp * 16 + (lane >> 2) + 8 * h;
            long long tok;
            bool ok;
            if (kind == 2) { /* text, or video in tiled order */
                ok = R < lim;
                tok = (long long)tok0 + R;
            } else {
                const int lt = R / hw, r = R - lt * hw, lh = r / tw, lw = r - lh * tw;
                ok = lt < (lim & 1023) && lh < (lim >> 10 & 1023) && lw < lim >> 20;
                tok = tok0 + ((long long)lt * p.q_ext[1] + lh) * p.q_ext[2] + lw;
            }
            if (!ok) continue;
            const int b = bh / p.heads, hd = bh - b * p.heads;
            raw16 *orow = (raw16 *)p.o + b * p.so[0] + tok * p.so[1] + hd * p.so[2] + 2 * quad;
#pragma unroll
            for (int j = 0; j < D / 8; j++)
                *reinterpret_cast<unsigned *>(orow + 8 * j) = pack2<BF>(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
            if (p.lse && quad == 0)
                p.lse[(long long)bh * p.q_tokens + tok] = (m[h] * sc + log2f(lsum)) * 0.69314718055994531f;
        }
    }
}

template <class C, int D, bool BF, int S>
__global__ void __launch_bounds__(C::NTHREADS, C::CTAS) sta_fwd_sm90(const __grid_constant__ sm90_params P)
{
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    typedef smem_layout<C, D, S> L;
    constexpr int NTHREADS = C::NTHREADS, NWG = C::NWG;
    /* producer / consumer registers per thread: wide 32 or 56 / 160 or 144 of 128 each at launch;
     * narrow (two CTAs, 128 each at launch) 56 / 200 */
    constexpr int PREG = NWG == 3 ? (D == 128 ? 32 : 56) : 56, CREG = NWG == 3 ? (D == 128 ? 160 : 144) : 200;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    /* Rows no box ever writes (blocks smaller than 128 keys or 192 queries) must hold zeros, not
     * stale NaNs: clear the operand buffers once; the copy engine writes after a proxy fence. */
    for (int i = threadIdx.x; i < L::OFF_BAR / 16; i += NTHREADS) reinterpret_cast<uint4 *>(smem)[i] = make_uint4(0, 0, 0, 0);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    if (threadIdx.x == 0) {
        const uint32_t bar = smem_u32(smem + L::OFF_BAR);
        mbar_init(bar, 1);             /* q_full: the producer's arrive + bytes */
        mbar_init(bar + 8, 4 * NWG);   /* q_empty: one per consumer warp */
        for (int s = 0; s < S; s++) {
            mbar_init(bar + 16 + 8 * s, 1);              /* k_full */
            mbar_init(bar + 16 + 8 * (S + s), 1);        /* v_full */
            mbar_init(bar + 16 + 8 * (2 * S + s), 4 * NWG); /* kv_empty */
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    const int wg = threadIdx.x >> 7;
    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PREG) : "memory");
        if (threadIdx.x == 0) producer<C, D, S>(P, smem);
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CREG) : "memory");
        consumer<C, D, BF, S>(P, smem, wg - 1);
    }
#else
    (void)P;
    __trap(); /* built for sm_90a only */
#endif
}

/* ---- host ---- */
PFN_cuTensorMapEncodeTiled_v12000 encode_fn(void)
{
    static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
    if (!fn) {
        void *f = nullptr;
        cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (PFN_cuTensorMapEncodeTiled_v12000)f;
        else
            cudaGetLastError();
    }
    return fn;
}

bool strides_ok(const long long *st, const void *ptr, int D)
{
    return st[3] == 1 && st[2] == D && st[1] % 8 == 0 && st[0] % 8 == 0 && st[1] >= 0 && st[0] >= 0 && (uintptr_t)ptr % 16 == 0;
}

/* Frames per box for a block of at most rows rows. */
int frames_per_box(const sta_params *p, int rows)
{
    const int hw = p->tile[1] * p->tile[2], k = rows / hw;
    return k < p->tile[0] ? k : p->tile[0];
}

/* A map over base with strides st: with rows > 0 the 3-dim (heads*D, rows tokens from token first, B)
 * with boxes of box rows; else the natural-order video map (heads*D, W, H, T, B) of the video tokens
 * canvas (T, H, W) with boxes of box frames of one tile. */
CUresult encode(PFN_cuTensorMapEncodeTiled_v12000 fn, CUtensorMap *m, const sta_params *p, const void *base, const long long *st,
                long long first, long long rows, int box_rows_or_frames, const int *canvas)
{
    const CUtensorMapDataType dt = p->dtype == DT_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    const cuuint32_t es[5] = {1, 1, 1, 1, 1};
    if (rows > 0) {
        void *addr = (char *)base + (size_t)first * (size_t)st[1] * 2;
        const cuuint64_t dims[3] = {(cuuint64_t)p->heads * p->head_dim, (cuuint64_t)rows, (cuuint64_t)p->batch};
        const cuuint64_t strides[2] = {(cuuint64_t)st[1] * 2, (cuuint64_t)st[0] * 2};
        const cuuint32_t box[3] = {64, (cuuint32_t)box_rows_or_frames, 1};
        return fn(m, dt, 3, addr, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    }
    const cuuint64_t W = canvas[2], H = canvas[1], T = canvas[0], row = (cuuint64_t)st[1] * 2;
    const cuuint64_t dims[5] = {(cuuint64_t)p->heads * p->head_dim, W, H, T, (cuuint64_t)p->batch};
    const cuuint64_t strides[4] = {row, row * W, row * W * H, (cuuint64_t)st[0] * 2};
    const cuuint32_t box[5] = {64, (cuuint32_t)p->tile[2], (cuuint32_t)p->tile[1], (cuuint32_t)box_rows_or_frames, 1};
    return fn(m, dt, 5, (void *)base, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

template <class C, int D, bool BF, int S> cudaError_t launch(const sm90_params &P, int sms, cudaStream_t stream)
{
    const int smem = smem_layout<C, D, S>::BYTES;
    cudaError_t e = cudaFuncSetAttribute(sta_fwd_sm90<C, D, BF, S>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int per_sm = 0; /* a persistent grid: as many CTAs as fit at once */
    if (e == cudaSuccess) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, sta_fwd_sm90<C, D, BF, S>, C::NTHREADS, smem);
    if (e != cudaSuccess) return e;
    const long long fit = (long long)sms * (per_sm > 0 ? per_sm : 1);
    const int grid = P.n_items < fit ? P.n_items : (int)fit;
    if (grid <= 0) return cudaSuccess;
    sta_fwd_sm90<C, D, BF, S><<<grid, C::NTHREADS, smem, stream>>>(P);
    return cudaGetLastError();
}

/* The narrow shape for tiles whose query box in the wide shape holds under 128 rows. */
bool narrow_tiles(const sta_params *p) { return frames_per_box(p, wide::MQ) * p->tile[1] * p->tile[2] < 128; }

template <class C> int launch_shape(const sta_params *p, gpuStream_t stream, char *err, size_t err_size)
{
    constexpr int MQ = C::MQ, KVR = C::KVR;
    PFN_cuTensorMapEncodeTiled_v12000 fn = encode_fn();
    if (!fn) {
        snprintf(err, err_size, "cuTensorMapEncodeTiled is not available from the driver");
        return -1;
    }
    sm90_params local; /* 6 tensor maps and the plan's parameters, passed by value */
    memset(&local, 0, sizeof local);
    local.p = *p;
    local.kq = frames_per_box(p, MQ);
    local.kk = frames_per_box(p, KVR);
    local.nsq = (p->tile[0] + local.kq - 1) / local.kq;
    const int text = p->tokens - p->video;
    local.text_per_head = (text + MQ - 1) / MQ;
    local.n_text_items = p->text_queries ? p->batch * p->heads * local.text_per_head : 0;
    local.n_items = local.n_text_items + p->batch * p->heads * run_count(*p) * local.nsq; /* a region's query tiles alone */
    /* video: natural order in boxes of frames; tiled order in boxes of rows (as many as those frames
     * hold in a whole tile) over the video tokens alone */
    const int hw = p->tile[1] * p->tile[2], vrows = p->tiled_order ? p->video : 0;
    const int qbox = p->tiled_order ? local.kq * hw : local.kq, kbox = p->tiled_order ? local.kk * hw : local.kk;
    /* q over the region's tokens (the canvas without one), k and v over the plan's */
    CUresult r = encode(fn, &local.tq, p, p->q, p->sq, 0, vrows, qbox, p->q_ext);
    if (r == CUDA_SUCCESS) r = encode(fn, &local.tk, p, p->k, p->sk, 0, vrows, kbox, p->canvas);
    if (r == CUDA_SUCCESS) r = encode(fn, &local.tv, p, p->v, p->sv, 0, vrows, kbox, p->canvas);
    if (r == CUDA_SUCCESS && text > 0) r = encode(fn, &local.xq, p, p->q, p->sq, p->q_video, text, MQ, NULL);
    if (r == CUDA_SUCCESS && p->text_valid > 0) r = encode(fn, &local.xk, p, p->k, p->sk, p->video, p->text_valid, KVR, NULL);
    if (r == CUDA_SUCCESS && p->text_valid > 0) r = encode(fn, &local.xv, p, p->v, p->sv, p->video, p->text_valid, KVR, NULL);
    if (r != CUDA_SUCCESS) {
        snprintf(err, err_size, "cuTensorMapEncodeTiled refused a tensor map (CUresult %d)", (int)r);
        return -1;
    }
    int dev = 0, sms = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e == cudaSuccess && local.n_items > 0) {
        cudaStream_t s = stream;
        const bool bf = p->dtype == DT_BF16;
        if (p->head_dim == 128) e = bf ? launch<C, 128, true, 2>(local, sms, s) : launch<C, 128, false, 2>(local, sms, s);
        else e = bf ? launch<C, 64, true, 4>(local, sms, s) : launch<C, 64, false, 4>(local, sms, s);
    }
    if (e != cudaSuccess) {
        snprintf(err, err_size, "%s", cudaGetErrorString(e));
        return (int)e;
    }
    return 0;
}

} /* namespace */

int STA_KERNELS::sm90_eligible(const sta_params *p, int cc)
{
    if (cc != 90) return 0; /* sm_90a machine code runs on compute capability 9.0 only */
    if ((p->dtype != DT_F16 && p->dtype != DT_BF16) || (p->head_dim != 64 && p->head_dim != 128)) return 0;
    const long long *st[3] = {p->sq, p->sk, p->sv};
    const void *ptr[3] = {p->q, p->k, p->v};
    for (int i = 0; i < 3; i++)
        if (!strides_ok(st[i], ptr[i], p->head_dim)) return 0;
    if (p->so[3] != 1 || p->so[2] % 2 || p->so[1] % 2 || p->so[0] % 2 || (uintptr_t)p->o % 4) return 0;
    const int hw = p->tile[1] * p->tile[2];
    const bool nar = narrow_tiles(p);
    const int MQ = nar ? narrow::MQ : wide::MQ, KVR = nar ? narrow::KVR : wide::KVR;
    if (hw > KVR || p->tile[0] > 256) return 0; /* one frame of a tile must fit a key block */
    const long long nsq = (p->tile[0] + frames_per_box(p, MQ) - 1) / frames_per_box(p, MQ);
    const long long items = (long long)p->batch * p->heads * (p->tiles * nsq + (p->tokens - p->video + MQ - 1) / MQ);
    return items < (1ll << 31) && (long long)p->heads * p->head_dim < (1ll << 32);
}

int STA_KERNELS::sm90_launch(const sta_params *p, gpuStream_t stream, char *err, size_t err_size)
{
    return narrow_tiles(p) ? launch_shape<narrow>(p, stream, err, err_size) : launch_shape<wide>(p, stream, err, err_size);
}
