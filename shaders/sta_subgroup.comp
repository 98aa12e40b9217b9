// STA forward, the Vulkan backend's portable path for devices with subgroup shuffles but without
// cooperative matrices: a query block of ROWS rows per workgroup, L = 4 invocations per row, each
// holding D / L of the row's q and output (elements p, p + L, p + 2L, ... of its row's words, so that
// neighbouring invocations read neighbouring words). Per chunk of KEYS keys the workgroup stages K and
// V in shared memory (the tensors' own 32-bit words, one barrier before and one after); each row's
// invocations form partial dot products, add them across the row with subgroupShuffleXor, and run the
// online softmax in f32 (exp2, scale folded into q).
//
// The host requires subgroups of 4 to 64 invocations that tile the 64-invocation workgroup, shuffles
// in compute, a contiguous head dim for q, k and v, and for 16-bit tensors even strides and offsets
// (two elements per word); else it takes sta_portable.comp. Compiled per head dim (-DHEAD_DIM=64/128)
// and word width (-DPAIRS).
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

// the layout of tab[] (binding 5): STILE_TAB_* header, schedule arrays, STILE_BLOCK_* query blocks
#include "schedule_table.h"

#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
const uint D = HEAD_DIM;
const uint L = 4;                                  // invocations per query row
const uint ROWS = STILE_BLOCK_ROWS_VK_PORTABLE;    // query rows per workgroup (the plan's blocks)
const uint THREADS = ROWS * L;
const uint KEYS = 16;                              // keys staged per chunk
layout(local_size_x = 64) in;                      // THREADS (a literal: GLSL wants one here)
layout(constant_id = 1) const uint DTYPE = 0;      // 0 f32, 1 f16, 2 bf16

// Built twice per head dim: -DPAIRS=0 for f32, -DPAIRS=1 for f16/bf16 (two elements per 32-bit word),
// so that every array size and loop bound is a compile-time constant (llvmpipe keeps arrays sized by
// specialization constants in memory).
#ifndef PAIRS
#define PAIRS 0
#endif
const uint EW = PAIRS != 0 ? 2 : 1;                // elements per word
const uint W = D / EW;                             // 32-bit words per row
const uint WL = W / L;                             // words per invocation

layout(std430, binding = 0) readonly buffer QB { uint q[]; };
layout(std430, binding = 1) readonly buffer KB { uint k[]; };
layout(std430, binding = 2) readonly buffer VB { uint v[]; };
layout(std430, binding = 3) buffer OB { uint o[]; };
layout(std430, binding = 4) buffer LB { float lse[]; };
layout(std430, binding = 5) readonly buffer TB { int tab[]; };

// element offsets of each tensor inside its bound buffer, and the first query block of this dispatch
layout(push_constant) uniform PC { uint q_off, k_off, v_off, o_off, lse_off, has_lse, block_base; } pc;

shared uint shK[KEYS * W]; // KEYS rows of W words
shared uint shV[KEYS * W];

#include "tile_geometry.glsl"
#include "key_rows.glsl"

// token index (in the tensors' order) of local row r of a tile
// the elements of one word: f32 (x only), a pair of f16, a pair of bf16
vec2 unpack_word(uint w)
{
    if (PAIRS == 0) return vec2(uintBitsToFloat(w), 0.0);
    if (DTYPE == 1) return unpackHalf2x16(w);
    return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
}

uint bf16_bits(float x)
{
    uint u = floatBitsToUint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u; // quiet NaN
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

void main()
{
    // this invocation's row and part: from its subgroup position, so that a row's L invocations share
    // a subgroup whatever the subgroup size (the host requires subgroups that tile the workgroup)
    const uint lin = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID, tid = gl_LocalInvocationID.x;
    const uint rrow = lin / L, part = lin % L;
    const int blk = tab[STILE_TAB_BLOCKS] + STILE_BLOCK_INTS * int(pc.block_base + gl_WorkGroupID.x);
    const int qtile = tab[blk + STILE_BLOCK_TILE], qfirst = tab[blk + STILE_BLOCK_ROW], qrows = tab[blk + STILE_BLOCK_NROWS],
              qtok0 = tab[blk + STILE_BLOCK_TOKEN];
    const int h = int(gl_WorkGroupID.y), b = int(gl_WorkGroupID.z);
    const bool live = int(rrow) < qrows;
    const int qtok = live ? (qtile >= 0 ? tile_token(qtile, qfirst + int(rrow)) : qtok0 + int(rrow)) : 0;
    const float scale = intBitsToFloat(tab[STILE_TAB_SCALE]);
    const int sk = tab[STILE_TAB_SK + 1], sv = tab[STILE_TAB_SV + 1];
    // word offsets (16-bit tensors: element offsets and strides are even, checked by the host)
    const uint kb = (pc.k_off + uint(b * tab[STILE_TAB_SK] + h * tab[STILE_TAB_SK + 2])) / EW;
    const uint vb = (pc.v_off + uint(b * tab[STILE_TAB_SV] + h * tab[STILE_TAB_SV + 2])) / EW;

    vec2 qv[WL], acc[WL];
    const uint qw = (pc.q_off + uint(b * tab[STILE_TAB_SQ] + qtok * tab[STILE_TAB_SQ + 1] + h * tab[STILE_TAB_SQ + 2])) / EW;
    [[unroll]] for (uint i = 0; i < WL; i++) {
        qv[i] = live ? unpack_word(q[qw + part + L * i]) * scale : vec2(0.0);
        acc[i] = vec2(0.0);
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
            barrier(); // the previous chunk is done with shK and shV
            for (uint e = tid; e < KEYS * W; e += THREADS) {
                const int j = int(e / W);
                const uint w = e % W;
                uint wk = 0u, wv = 0u;
                if (j < nk) {
                    const int tok = tile >= 0 ? tile_token(tile, k0 + j) : tab[STILE_TAB_VIDEO] + k0 + j;
                    wk = k[kb + uint(tok * sk) / EW + w];
                    wv = v[vb + uint(tok * sv) / EW + w];
                }
                shK[e] = wk;
                shV[e] = wv;
            }
            barrier();

            float s[KEYS];
            [[unroll]] for (uint j = 0; j < KEYS; j++) {
                float dot = 0.0;
                [[unroll]] for (uint i = 0; i < WL; i++) {
                    const vec2 kk = unpack_word(shK[j * W + part + L * i]);
                    dot = fma(qv[i].x, kk.x, dot);
                    if (PAIRS != 0) dot = fma(qv[i].y, kk.y, dot);
                }
                s[j] = dot;
            }
            [[unroll]] for (uint j = 0; j < KEYS; j++) {
                s[j] += subgroupShuffleXor(s[j], 1u);
                s[j] += subgroupShuffleXor(s[j], 2u);
            }
            float mx = m;
            [[unroll]] for (uint j = 0; j < KEYS; j++)
                if (int(j) < nk) mx = max(mx, s[j]);
            const float alpha = exp2(max(m - mx, -126.0)); // llvmpipe's exp2 is not defined far below -126
            l *= alpha;
            [[unroll]] for (uint i = 0; i < WL; i++) acc[i] *= alpha;
            [[unroll]] for (uint j = 0; j < KEYS; j++) {
                if (int(j) >= nk) break;
                const float p = exp2(max(s[j] - mx, -126.0));
                l += p;
                [[unroll]] for (uint i = 0; i < WL; i++) acc[i] = fma(vec2(p), unpack_word(shV[j * W + part + L * i]), acc[i]);
            }
            m = mx;
        }
    }
    if (!live) return;
    const float inv = l > 0.0 ? 1.0 / l : 0.0; // l = 0: a row of no keys (an empty list, no valid text): o = 0
    const uint obase = pc.o_off + uint(b * tab[STILE_TAB_SO] + qtok * tab[STILE_TAB_SO + 1] + h * tab[STILE_TAB_SO + 2]);
    if (PAIRS == 0) {
        const uint so = uint(tab[STILE_TAB_SO + 3]);
        [[unroll]] for (uint i = 0; i < WL; i++) o[obase + (part + L * i) * so] = floatBitsToUint(acc[i].x * inv);
    } else {
        // 16-bit outputs go two at a time (the plan requires an even head dim, dim stride 1, even offsets)
        [[unroll]] for (uint i = 0; i < WL; i++) {
            const vec2 a = acc[i] * inv;
            o[(obase >> 1) + part + L * i] = DTYPE == 1 ? packHalf2x16(a) : (bf16_bits(a.x) | (bf16_bits(a.y) << 16));
        }
    }
    if (pc.has_lse != 0u && part == 0u)
        lse[pc.lse_off + uint((b * tab[STILE_TAB_HEADS] + h) * tab[STILE_TAB_TOKENS] + qtok)] = l > 0.0 ? (m + log2(l)) * 0.69314718055994531 : uintBitsToFloat(0xff800000u);
}
