// STA backward, the Vulkan backend's portable path (docs/contract.md, "Gradients"): one invocation per
// row, a block of rows per workgroup, every pair recomputed from the forward's LSE, f32 throughout.
// Two passes over the plan's query blocks, both deterministic (each invocation owns the row it writes,
// its sums in a fixed order; no atomics):
//   pass 0, dQ: for query row i, over the keys it attends (its tile's schedule row, then the valid
//     text): p = exp(s - lse_i), dS = p (dO_i . v_j - D_i), dQ_i = scale sum dS k_j, D_i = dO_i . o_i;
//   pass 1, dK and dV: for key row j, over the queries that attend it (the transposed schedule's query
//     tiles of its key tile and every text query; every query for a valid text key; none for a padding
//     text key): dV_j = sum p dO_i, dK_j = scale sum dS q_i.
// Tensors are read as 32-bit words and unpacked, as in sta_portable.comp; 16-bit gradients are written
// two at a time (the host requires an even head dim, dim stride 1 and even strides for them).
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require

// the layout of tab[] (binding 5): STILE_TAB_* header, schedule arrays, STILE_BLOCK_* query blocks
#include "schedule_table.h"

layout(local_size_x_id = 0) in; // rows per workgroup: the plan's block rows
// compiled per head dim so that every loop over it unrolls (llvmpipe: see sta_portable.comp)
#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
const uint D = HEAD_DIM;
layout(constant_id = 1) const uint DTYPE = 0; // 0 f32, 1 f16, 2 bf16
const float LOG2E = 1.4426950408889634;

layout(std430, binding = 0) readonly buffer QB { uint q[]; };
layout(std430, binding = 1) readonly buffer KB { uint k[]; };
layout(std430, binding = 2) readonly buffer VB { uint v[]; };
layout(std430, binding = 3) readonly buffer OB { uint o[]; };
layout(std430, binding = 4) readonly buffer LB { float lse[]; };
layout(std430, binding = 5) readonly buffer TB { int tab[]; };
layout(std430, binding = 6) readonly buffer DOB { uint d_o[]; };
layout(std430, binding = 7) writeonly buffer DQB { uint d_q[]; };
layout(std430, binding = 8) writeonly buffer DKB { uint d_k[]; };
layout(std430, binding = 9) writeonly buffer DVB { uint d_v[]; };

// element offsets of each tensor inside its bound buffer, the first block of this dispatch, the pass
layout(push_constant) uniform PC {
    uint q_off, k_off, v_off, o_off, lse_off, do_off, dq_off, dk_off, dv_off, block_base, pass_;
} pc;

const uint TQ = 0, TK = 1, TV = 2, TO = 3, TDO = 4;

float unpack_at(uint w, uint i)
{
    if (DTYPE == 0) return uintBitsToFloat(w);
    const uint half16 = (i & 1u) == 1u ? w >> 16 : w & 0xffffu;
    if (DTYPE == 1) return unpackHalf2x16(half16).x;
    return uintBitsToFloat(half16 << 16);
}

float load(uint which, uint i)
{
    const uint idx = DTYPE == 0 ? i : i >> 1;
    uint w;
    if (which == TQ) w = q[idx];
    else if (which == TK) w = k[idx];
    else if (which == TV) w = v[idx];
    else if (which == TO) w = o[idx];
    else w = d_o[idx];
    return unpack_at(w, i);
}

#include "f16_staging.glsl" // bf16_bits
#include "tile_geometry.glsl"
#include "key_rows.glsl"

// element offset of (batch b, token t, head h, dim 0) of a tensor whose strides start at tab[at]
uint base_of(uint off, int at, int b, int t, int h) { return off + uint(b * tab[at] + t * tab[at + 1] + h * tab[at + 2]); }

// the lse of query token t (natural log) in the log2 domain the scores use
float lse2(int b, int h, int t) { return lse[pc.lse_off + uint((b * tab[STILE_TAB_HEADS] + h) * tab[STILE_TAB_TOKENS] + t)] * LOG2E; }

void store_row(uint which, uint base, int at, float g[D])
{
    const uint ds = uint(tab[at + 3]);
    if (DTYPE == 0) {
        [[unroll]] for (uint d = 0; d < D; d++) {
            const uint w = floatBitsToUint(g[d]);
            if (which == 0) d_q[base + d * ds] = w; else if (which == 1) d_k[base + d * ds] = w; else d_v[base + d * ds] = w;
        }
        return;
    }
    [[unroll]] for (uint d = 0; d < D; d += 2) {
        const uint w = DTYPE == 1 ? packHalf2x16(vec2(g[d], g[d + 1])) : (bf16_bits(g[d]) | (bf16_bits(g[d + 1]) << 16));
        if (which == 0) d_q[(base + d) >> 1] = w; else if (which == 1) d_k[(base + d) >> 1] = w; else d_v[(base + d) >> 1] = w;
    }
}

void main()
{
    const int blk = tab[STILE_TAB_BLOCKS] + STILE_BLOCK_INTS * int(pc.block_base + gl_WorkGroupID.x);
    const int btile = tab[blk + STILE_BLOCK_TILE], bfirst = tab[blk + STILE_BLOCK_ROW], brows = tab[blk + STILE_BLOCK_NROWS],
              btok0 = tab[blk + STILE_BLOCK_TOKEN];
    const int h = int(gl_WorkGroupID.y), b = int(gl_WorkGroupID.z), r = int(gl_LocalInvocationID.x);
    if (r >= brows) return;
    const int tok = btile >= 0 ? tile_token(btile, bfirst + r) : btok0 + r; // this invocation's row
    const float scale2 = intBitsToFloat(tab[STILE_TAB_SCALE]), scale = scale2 / LOG2E;
    const int video = tab[STILE_TAB_VIDEO], text_valid = tab[STILE_TAB_TEXT_VALID], tiles = tab[STILE_TAB_TILES];
    const uint qs = uint(tab[STILE_TAB_SQ + 3]), ks = uint(tab[STILE_TAB_SK + 3]), vs = uint(tab[STILE_TAB_SV + 3]),
               os = uint(tab[STILE_TAB_SO + 3]);

    if (pc.pass_ == 0u) {
        // ---- dQ of query row tok ----
        float qv[D], dov[D], g[D];
        const uint qb = base_of(pc.q_off, STILE_TAB_SQ, b, tok, h), ob = base_of(pc.o_off, STILE_TAB_SO, b, tok, h),
                   dob = base_of(pc.do_off, STILE_TAB_SO, b, tok, h);
        float di = 0.0;
        [[unroll]] for (uint d = 0; d < D; d++) {
            qv[d] = load(TQ, qb + d * qs);
            dov[d] = load(TDO, dob + d * os);
            di = fma(dov[d], load(TO, ob + d * os), di);
            g[d] = 0.0;
        }
        const float l2 = lse2(b, h, tok);
        int row = 0, nseg = tiles; // text queries: every tile
        if (btile >= 0) {
            key_row(b, h, btile, row, nseg);
        }
        for (int seg = 0; seg <= nseg; seg++) {
            int tile = -1, size = text_valid;
            if (seg < nseg) {
                tile = btile < 0 ? seg : tab[row + seg];
                size = tile_size(tile);
            }
            for (int j = 0; j < size; j++) {
                const int kt = tile >= 0 ? tile_token(tile, j) : video + j;
                const uint kb = base_of(pc.k_off, STILE_TAB_SK, b, kt, h), vb = base_of(pc.v_off, STILE_TAB_SV, b, kt, h);
                float s = 0.0, dp = 0.0;
                [[unroll]] for (uint d = 0; d < D; d++) {
                    s = fma(qv[d], load(TK, kb + d * ks), s);
                    dp = fma(dov[d], load(TV, vb + d * vs), dp);
                }
                const float p = exp2(max(s * scale2 - l2, -126.0)), ds = p * (dp - di);
                [[unroll]] for (uint d = 0; d < D; d++) g[d] = fma(ds, load(TK, kb + d * ks), g[d]);
            }
        }
        [[unroll]] for (uint d = 0; d < D; d++) g[d] *= scale;
        store_row(0, base_of(pc.dq_off, STILE_TAB_SQ, b, tok, h), STILE_TAB_SQ, g);
        return;
    }

    // ---- dK and dV of key row tok ----
    float kv[D], vv[D], gk[D], gv[D];
    const uint kb = base_of(pc.k_off, STILE_TAB_SK, b, tok, h), vb = base_of(pc.v_off, STILE_TAB_SV, b, tok, h);
    [[unroll]] for (uint d = 0; d < D; d++) {
        kv[d] = load(TK, kb + d * ks);
        vv[d] = load(TV, vb + d * vs);
        gk[d] = 0.0;
        gv[d] = 0.0;
    }
    // the queries that attend this key: segments of query tiles, then the text queries
    const bool text_key = btile < 0, padding = text_key && tok - video >= text_valid;
    int qrow = 0, nseg = tiles; // a valid text key: every query tile
    if (!text_key) {
        query_row(b, h, btile, qrow, nseg);
    }
    if (padding) nseg = -1; // attended by no query
    const int text = tab[STILE_TAB_TOKENS] - video;
    for (int seg = 0; seg <= nseg; seg++) {
        int tile = -1, size = text;
        if (seg < nseg) {
            tile = text_key ? seg : tab[qrow + seg];
            size = tile_size(tile);
        }
        for (int i = 0; i < size; i++) {
            const int qt = tile >= 0 ? tile_token(tile, i) : video + i;
            const uint qb = base_of(pc.q_off, STILE_TAB_SQ, b, qt, h), ob = base_of(pc.o_off, STILE_TAB_SO, b, qt, h),
                       dob = base_of(pc.do_off, STILE_TAB_SO, b, qt, h);
            float s = 0.0, dp = 0.0, di = 0.0;
            [[unroll]] for (uint d = 0; d < D; d++) {
                const float dod = load(TDO, dob + d * os);
                s = fma(load(TQ, qb + d * qs), kv[d], s);
                dp = fma(dod, vv[d], dp);
                di = fma(dod, load(TO, ob + d * os), di);
            }
            const float p = exp2(max(s * scale2 - lse2(b, h, qt), -126.0)), ds = p * (dp - di);
            [[unroll]] for (uint d = 0; d < D; d++) {
                gv[d] = fma(p, load(TDO, dob + d * os), gv[d]);
                gk[d] = fma(ds, load(TQ, qb + d * qs), gk[d]);
            }
        }
    }
    [[unroll]] for (uint d = 0; d < D; d++) gk[d] *= scale;
    store_row(1, base_of(pc.dk_off, STILE_TAB_SK, b, tok, h), STILE_TAB_SK, gk);
    store_row(2, base_of(pc.dv_off, STILE_TAB_SV, b, tok, h), STILE_TAB_SV, gv);
}
