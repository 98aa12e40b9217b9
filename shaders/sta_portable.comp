// STA forward, the Vulkan backend's portable path: one invocation per query row, a query block per
// workgroup, each invocation reading its keys straight from the storage buffers (no shared memory
// and no barriers: llvmpipe miscompiled the staged variant), f32 FMA and exp2 throughout. Tensors are read as
// 32-bit words and unpacked, so no 16-bit storage feature is needed. The block schedule (the same
// tables as the CUDA backend's, core/schedule_table.h) and the problem's sizes come in one storage
// buffer of ints.
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require

// the layout of tab[] (binding 5): STILE_TAB_* header, schedule arrays, STILE_BLOCK_* query blocks
#include "schedule_table.h"

// query rows (invocations) per workgroup: the plan's query block (STILE_BLOCK_ROWS_VK_PORTABLE, or
// STILE_BLOCK_ROWS_VK_COOPMAT when a tensor-core plan falls back to this shader)
layout(local_size_x_id = 0) in;
// The head dim is compiled in (glslc -DHEAD_DIM=64 / 128) so that every loop over it unrolls: llvmpipe
// ends any loop after 65535 iterations in total, which the d loops of a long key walk would exceed.
#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
const uint D = HEAD_DIM;
layout(constant_id = 1) const uint DTYPE = 0;   // 0 f32, 1 f16, 2 bf16
const uint KEYS = 8;                            // keys staged per step

layout(std430, binding = 0) readonly buffer QB { uint q[]; };
layout(std430, binding = 1) readonly buffer KB { uint k[]; };
layout(std430, binding = 2) readonly buffer VB { uint v[]; };
layout(std430, binding = 3) buffer OB { uint o[]; };
layout(std430, binding = 4) buffer LB { float lse[]; };
layout(std430, binding = 5) readonly buffer TB { int tab[]; };

// element offsets of each tensor inside its bound buffer, and the first query block of this dispatch
layout(push_constant) uniform PC { uint q_off, k_off, v_off, o_off, lse_off, has_lse, block_base; } pc;

float load(uint which, uint i)
{
    uint w;
    uint idx = DTYPE == 0 ? i : i >> 1;
    if (which == 0) w = q[idx]; else if (which == 1) w = k[idx]; else w = v[idx];
    if (DTYPE == 0) return uintBitsToFloat(w);
    uint half16 = (i & 1u) == 1u ? w >> 16 : w & 0xffffu;
    if (DTYPE == 1) return unpackHalf2x16(half16).x;
    return uintBitsToFloat(half16 << 16);
}

uint bf16_bits(float x)
{
    uint u = floatBitsToUint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;   // quiet NaN
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

#include "tile_geometry.glsl"
#include "key_rows.glsl"

// token index (in the tensors' order) of local row r of a tile
void main()
{
    const int blk = tab[STILE_TAB_BLOCKS] + STILE_BLOCK_INTS * int(pc.block_base + gl_WorkGroupID.x);
    const int qtile = tab[blk + STILE_BLOCK_TILE], qfirst = tab[blk + STILE_BLOCK_ROW], qrows = tab[blk + STILE_BLOCK_NROWS],
              qtok0 = tab[blk + STILE_BLOCK_TOKEN];
    const int h = int(gl_WorkGroupID.y), b = int(gl_WorkGroupID.z), r = int(gl_LocalInvocationID.x);
    const bool live = r < qrows;
    const int qtok = live ? (qtile >= 0 ? tile_token(qtile, qfirst + r) : qtok0 + r) : 0;
    const float scale = intBitsToFloat(tab[STILE_TAB_SCALE]);
    float qv[D], acc[D];
    const uint qbase = pc.q_off + uint(b * tab[STILE_TAB_SQ] + qtok * tab[STILE_TAB_SQ + 1] + h * tab[STILE_TAB_SQ + 2]);
    [[unroll]] for (uint d = 0; d < D; d++) {
        qv[d] = live ? load(0, qbase + d * uint(tab[STILE_TAB_SQ + 3])) * scale : 0.0;
        acc[d] = 0.0;
    }
    float m = -3.0e38, l = 0.0; // finite: exp2 of -inf is not defined in every implementation

    // segments: the key tiles of this query tile's schedule row (all tiles for text queries), then text
    int row = 0, nseg;
    if (qtile < 0) {
        nseg = tab[STILE_TAB_TILES];
    } else {
        key_row(b, h, qtile, row, nseg);
    }
    const int text_valid = tab[STILE_TAB_TEXT_VALID];
    for (int seg = 0; seg <= nseg; seg++) {
        int tile = -1, size = text_valid;
        if (seg < nseg) {
            tile = qtile < 0 ? seg : tab[row + seg];
            size = tile_size(tile);
        }
        for (int k0 = 0; k0 < size; k0 += int(KEYS)) {
            const int nk = min(int(KEYS), size - k0);
            uint kb[KEYS], vb[KEYS];
            float s[KEYS];
            float mx = m;
            [[unroll]] for (int j = 0; j < int(KEYS); j++) {
                if (j >= nk) break;
                const int tok = tile >= 0 ? tile_token(tile, k0 + j) : tab[STILE_TAB_VIDEO] + k0 + j;
                kb[j] = pc.k_off + uint(b * tab[STILE_TAB_SK] + tok * tab[STILE_TAB_SK + 1] + h * tab[STILE_TAB_SK + 2]);
                vb[j] = pc.v_off + uint(b * tab[STILE_TAB_SV] + tok * tab[STILE_TAB_SV + 1] + h * tab[STILE_TAB_SV + 2]);
                float dot = 0.0;
                [[unroll]] for (uint d = 0; d < D; d++) dot = fma(qv[d], load(1, kb[j] + d * uint(tab[STILE_TAB_SK + 3])), dot);
                s[j] = dot;
                mx = max(mx, dot);
            }
            const float alpha = exp2(max(m - mx, -126.0)); // llvmpipe's exp2 is not defined far below -126
            l *= alpha;
            [[unroll]] for (uint d = 0; d < D; d++) acc[d] *= alpha;
            [[unroll]] for (int j = 0; j < int(KEYS); j++) {
                if (j >= nk) break;
                const float e = exp2(max(s[j] - mx, -126.0));
                l += e;
                [[unroll]] for (uint d = 0; d < D; d++) acc[d] = fma(e, load(2, vb[j] + d * uint(tab[STILE_TAB_SV + 3])), acc[d]);
            }
            m = mx;
        }
    }
    if (!live) return;
    const float inv = l > 0.0 ? 1.0 / l : 0.0; // l = 0: a row of no keys (an empty list, no valid text): o = 0
    const uint obase = pc.o_off + uint(b * tab[STILE_TAB_SO] + qtok * tab[STILE_TAB_SO + 1] + h * tab[STILE_TAB_SO + 2]);
    if (DTYPE == 0) {
        [[unroll]] for (uint d = 0; d < D; d++) o[obase + d * uint(tab[STILE_TAB_SO + 3])] = floatBitsToUint(acc[d] * inv);
    } else {
        // 16-bit outputs go two at a time (the plan requires an even head dim, dim stride 1, even offsets)
        [[unroll]] for (uint d = 0; d < D; d += 2) {
            const float a0 = acc[d] * inv, a1 = acc[d + 1] * inv;
            o[(obase + d) >> 1] = DTYPE == 1 ? packHalf2x16(vec2(a0, a1)) : (bf16_bits(a0) | (bf16_bits(a1) << 16));
        }
    }
    if (pc.has_lse != 0u)
        lse[pc.lse_off + uint((b * tab[STILE_TAB_HEADS] + h) * tab[STILE_TAB_TOKENS] + qtok)] = l > 0.0 ? (m + log2(l)) * 0.69314718055994531 : uintBitsToFloat(0xff800000u);
}
