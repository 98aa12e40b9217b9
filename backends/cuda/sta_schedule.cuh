/* Device code every STA kernel shares: where a query block's rows and a key chunk's rows live in the
 * tensors, found by walking the schedule table (core/schedule_table.h). A query block of a video tile
 * attends the key tiles of its head's schedule row, then the valid text keys; a text query block
 * attends every tile and the text keys; the backward's key blocks walk the transposed schedule.
 * Included by the kernel files that walk the table (the portable, mma.sync and backward kernels), with
 * internal linkage, so every kernel object keeps its own inlined copy. */
#ifndef STILE_STA_SCHEDULE_CUH
#define STILE_STA_SCHEDULE_CUH

#include "sta_paths.cuh"
#include "sta_region.cuh"

namespace {

enum { BM = STILE_BLOCK_ROWS_GPU, BN = 64 }; /* query rows per block (= threads of the scalar kernel), keys per chunk */

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

/* The chunks a block walks, BN rows at a time, in segments: tiles from a CSR row, then text tokens.
 * A query block walks the keys it attends (its head's schedule row, then the valid text keys; a text
 * block every tile); the backward's key block walks the queries that attend it (the transposed row,
 * then every text query; a text key block every tile, then every text query: its padding keys are
 * attended by none, so the kernels store zeros for them whatever the walk summed). */
struct chunk_iter {
    int seg, nseg, off, row, all_tiles, text;
    const int *list; /* the tiles of the CSR rows (key_tiles or query_tiles) */
    int tile, size;  /* of the current segment; tile -1 for text */
    geom g;
};

__device__ __forceinline__ void seg_enter(const sta_params &p, chunk_iter &it)
{
    it.off = 0;
    if (it.seg < it.nseg) {
        it.tile = it.all_tiles ? hold_tile(p, it.seg) : it.list[it.row + it.seg];
        it.g = tile_geom(p, it.tile);
        it.size = it.g.ext[0] * it.g.ext[1] * it.g.ext[2];
    } else {
        it.tile = -1;
        it.size = it.text;
    }
}

/* The tiles list[row .. row + n) (all_tiles: every tile), then `text` text rows. */
__device__ __forceinline__ chunk_iter chunk_list(const sta_params &p, const int *list, int row, int n, bool all_tiles, int text)
{
    chunk_iter it;
    it.all_tiles = all_tiles;
    it.list = list;
    it.text = text;
    it.nseg = all_tiles ? hold_count(p) : n;
    it.row = all_tiles ? 0 : row;
    it.seg = 0;
    seg_enter(p, it);
    return it;
}

/* Tile `tile` of head `head` (or -1: every tile) through CSR rows start/list, then `text` text rows. */
__device__ __forceinline__ chunk_iter chunk_walk(const sta_params &p, const int *start, const int *list, int tile, int head, int text)
{
    const int r = tile < 0 ? 0 : p.head_row[head] + tile;
    return chunk_list(p, list, tile < 0 ? 0 : start[r], tile < 0 ? 0 : start[r + 1] - start[r], tile < 0, text);
}

/* The keys query tile qtile (-1: a text block) of batch entry b, head `head` attends: its schedule
 * row, or the caller's tiles (kt_rows), then the valid text keys. */
__device__ __forceinline__ chunk_iter chunk_begin(const sta_params &p, int qtile, int head, int b)
{
    if (p.kt_rows && qtile >= 0) {
        const int r = (b * p.heads + head) * p.tiles + qtile; /* < 2^31: stile_resolve */
        return chunk_list(p, p.kt_rows, r * p.kt_k, p.kt_count[r], false, p.text_valid);
    }
    return chunk_walk(p, p.row_start, p.key_tiles, qtile, head, qtile >= 0 || p.text_keys ? p.text_valid : 0);
}

/* The queries key tile ktile (-1: a text key block) of batch entry b, head `head` gets gradients
 * from: the transposed row (the plan's, or the caller's tiles transposed), then every text query. */
__device__ __forceinline__ chunk_iter chunk_key_begin(const sta_params &p, int ktile, int head, int b)
{
    if (p.kt_rows && ktile >= 0) {
        const int s = (b * p.heads + head) * (p.tiles + 1) + ktile;
        return chunk_list(p, p.kt_qtiles, p.kt_qstart[s], p.kt_qstart[s + 1] - p.kt_qstart[s], false, p.tokens - p.video);
    }
    return chunk_walk(p, p.query_start, p.query_tiles, ktile, head, p.tokens - p.video);
}

__device__ __forceinline__ bool chunk_valid(const sta_params &p, const chunk_iter &it)
{
    (void)p;
    return it.seg < it.nseg || (it.seg == it.nseg && it.text > 0);
}

__device__ __forceinline__ void chunk_next(const sta_params &p, chunk_iter &it)
{
    it.off += BN;
    if (it.off >= it.size) {
        it.seg++;
        if (it.seg <= it.nseg) seg_enter(p, it);
    }
}

/* Rows in the current chunk, and the token of row r of it (r < that count). */
__device__ __forceinline__ int chunk_rows(const chunk_iter &it) { return it.size - it.off < BN ? it.size - it.off : BN; }

__device__ __forceinline__ long long chunk_token(const sta_params &p, const chunk_iter &it, int r)
{
    return it.tile >= 0 ? tile_token(p, it.tile, it.g, it.off + r) : (long long)p.video + it.off + r;
}

/* Whether token tok of a block of tile `tile` is a padding text key (attended by none: zero gradients). */
__device__ __forceinline__ bool padding_key(const sta_params &p, int tile, long long tok) { return tile < 0 && tok - p.video >= p.text_valid; }

/* This thread block's query block: a record of STILE_BLOCK_INTS ints (grid x: blocks, y: heads, z: batch). */
__device__ __forceinline__ const int *query_block(const sta_params &p) { return p.blocks + STILE_BLOCK_INTS * blockIdx.x; }

/* Geometry of a query block's tile (unused for text blocks). */
__device__ __forceinline__ geom query_geom(const sta_params &p, const int *blk)
{
    return blk[STILE_BLOCK_TILE] >= 0 ? tile_geom(p, blk[STILE_BLOCK_TILE]) : geom();
}

/* Token of query row r of a block. */
__device__ __forceinline__ long long query_token(const sta_params &p, const int *blk, const geom &g, int r)
{
    return blk[STILE_BLOCK_TILE] >= 0 ? tile_token(p, blk[STILE_BLOCK_TILE], g, blk[STILE_BLOCK_ROW] + r)
                                      : (long long)blk[STILE_BLOCK_TOKEN] + r;
}

/* The forward's: whether this query block runs in the region, and where its row r sits in q, o and
 * lse (the region's tokens; the plan's without one). */
__device__ __forceinline__ bool query_block_runs(const sta_params &p, const int *blk)
{
    return blk[STILE_BLOCK_TILE] >= 0 ? tile_in(p, blk[STILE_BLOCK_TILE], p.run_lo, p.run_hi) : p.text_queries != 0;
}
__device__ __forceinline__ long long query_row_token(const sta_params &p, const int *blk, const geom &g, int r)
{
    if (blk[STILE_BLOCK_TILE] < 0) return (long long)p.q_video + blk[STILE_BLOCK_TOKEN] - p.video + r;
    if (p.tiled_order) return p.tile_start[blk[STILE_BLOCK_TILE]] + blk[STILE_BLOCK_ROW] + r;
    const int e12 = g.ext[1] * g.ext[2], lr = blk[STILE_BLOCK_ROW] + r;
    const int lt = lr / e12, rem = lr - lt * e12, lh = rem / g.ext[2], lw = rem - lh * g.ext[2];
    return ((long long)(g.org[0] + lt - p.q_org[0]) * p.q_ext[1] + g.org[1] + lh - p.q_org[1]) * p.q_ext[2] + g.org[2] + lw - p.q_org[2];
}

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

const float LOG2E = 1.4426950408889634f;

/* A query's LSE in log2 units for the backward's P = exp2(S scale log2e - lse2): a row that attends no
 * key (caller-chosen tiles: an empty set, no valid text) has LSE -inf and walks only masked scores,
 * so any finite value keeps its P at 0 (instead of exp2(-inf + inf) = NaN). */
__device__ __forceinline__ float lse2_of(float lse) { return lse == neg_inf() ? 0.f : lse * LOG2E; }

/* Index of (batch b, head h, token t) in the LSE (and the backward's delta): [batch][heads][tokens]. */
__device__ __forceinline__ long long stat_at(const sta_params &p, int b, int h, long long t) { return ((long long)b * p.heads + h) * p.tokens + t; }

} /* namespace */

#endif
