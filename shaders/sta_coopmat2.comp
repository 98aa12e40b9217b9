// STA forward, the Vulkan backend's NVIDIA path (GL_NV_cooperative_matrix2: workgroup-scope matrices,
// row reductions and per-element operations; needs glslang >= 15.1 to compile). f16 operands, f32
// accumulation; bf16 tensors are converted to f16 while staging, as on the KHR path. One workgroup of
// 256 invocations runs one query block of 128 rows. The driver spreads the 128 x 64 score matrix, the
// 128 x D output and the softmax over the workgroup's subgroups: the shader keeps no softmax in shared
// memory, and the running row max and row sum are 32-column matrices (one value per row, smeared).
//
// Keys come in chunks of 64 rows of a key tile (in the tile's own row order, whatever the token order)
// or of the valid text tokens. Each invocation loads its share of the next chunk's K and V rows into
// registers before the current chunk's matrix work and stores them to shared memory after it, so the
// loads run under the MMAs; two workgroup barriers per chunk guard the staging buffer.
//
// Compiled per head dim (-DHEAD_DIM=64/128). The host requires 16-byte aligned q/k/v rows (token, head
// and batch strides multiples of 8 elements, dim stride 1), as for the KHR path.
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require

// the layout of tab[] (binding 5): STILE_TAB_* header, schedule arrays, STILE_BLOCK_* query blocks
#include "schedule_table.h"

#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
const uint D = HEAD_DIM;
const uint BM = STILE_BLOCK_ROWS_VK_COOPMAT2, BN = 64, THREADS = 256;
layout(local_size_x = THREADS) in;
layout(constant_id = 1) const uint DTYPE = 1; // 1 f16, 2 bf16 (f32 takes another path)

const uint DW = D / 8;                // uvec4 per row of D halves
const uint KS = DW + 1;               // shared row stride in uvec4: one 16-byte pad against bank conflicts
const uint PF = BN * DW / THREADS;    // uvec4 of K (and of V) each invocation stages per chunk

#define WG gl_ScopeWorkgroup
#define ACC_S coopmat<float, WG, BM, BN, gl_MatrixUseAccumulator>
#define ACC_O coopmat<float, WG, BM, D, gl_MatrixUseAccumulator>
#define ACC_R coopmat<float, WG, BM, 32, gl_MatrixUseAccumulator> // one value per row, smeared over 32 columns
#define MAT_Q coopmat<float16_t, WG, BM, D, gl_MatrixUseA>
#define MAT_P coopmat<float16_t, WG, BM, BN, gl_MatrixUseA>
#define MAT_KT coopmat<float16_t, WG, D, BN, gl_MatrixUseB>
#define MAT_V coopmat<float16_t, WG, BN, D, gl_MatrixUseB>
#define MAT_ONES coopmat<float16_t, WG, BN, 32, gl_MatrixUseB>

layout(std430, binding = 0) readonly buffer QB { uvec4 q[]; };
layout(std430, binding = 1) readonly buffer KB { uvec4 k[]; };
layout(std430, binding = 2) readonly buffer VB { uvec4 v[]; };
layout(std430, binding = 3) buffer OB { uint16_t o[]; };
layout(std430, binding = 4) buffer LB { float lse[]; };
layout(std430, binding = 5) readonly buffer TB { int tab[]; };

// element offsets of each tensor inside its bound buffer (q/k/v in elements, multiples of 8)
layout(push_constant) uniform PC { uint q_off, k_off, v_off, o_off, lse_off, has_lse, block_base; } pc;

shared uvec4 shKV[2 * BN * KS]; // the Q block at first (BM <= 2 BN), then a chunk's K rows and V rows
#if STILE_BLOCK_ROWS_VK_COOPMAT2 > 2 * 64
#error "the Q block (STILE_BLOCK_ROWS_VK_COOPMAT2 rows) must fit in shKV's 2 BN rows"
#endif
shared int shQTok[BM];

#include "tile_geometry.glsl"
#include "key_rows.glsl"
#include "f16_staging.glsl"

// ---- the functions the matrix reductions and per-element operations apply ----
float max_op(const in float a, const in float b) { return max(a, b); }
float smear_op(const in float a, const in float b) { return a; }
float max_el(const in uint r, const in uint c, const in float a, const in float b) { return max(a, b); }
float exp2_el(const in uint r, const in uint c, const in float x) { return exp2(x); }
float log2_el(const in uint r, const in uint c, const in float x) { return log2(x); }
float nonzero_el(const in uint r, const in uint c, const in float x) { return x > 0.0 ? x : 1.0; } // l = 0: no keys, o = 0

// scores of the chunk's columns past its nk keys to -inf
float mask_el(const in uint r, const in uint c, const in float s, const in uint nk)
{
    return c < nk ? s : uintBitsToFloat(0xff800000u);
}

// O (already divided by the row sum) to the block's output rows
float store_el(const in uint r, const in uint c, const in float x, const in uint obase, const in uint so)
{
    const int tok = shQTok[r];
    if (tok >= 0) o[obase + uint(tok) * so + c] = DTYPE == 1 ? float16BitsToUint16(float16_t(x)) : uint16_t(bf16_bits(x));
    return x;
}

// m + log2(l) as the natural-log LSE, from column 0
float lse_el(const in uint r, const in uint c, const in float x, const in uint base)
{
    const int tok = shQTok[r];
    if (c == 0u && tok >= 0) lse[base + uint(tok)] = x * 0.69314718055994531;
    return x;
}

// ---- chunks of keys: segments 0 .. nseg - 1 are the query block's key tiles, nseg the text ----
struct chunk {
    int seg, nseg, k0, size, tile; // segment, first row of the chunk in it, its rows, its tile (-1 text)
    int qtile, krow;               // the query block's tile (-1: text block) and its schedule row
};

chunk chunk_enter(chunk c) // c.seg's tile and size, from its first row
{
    c.k0 = 0;
    c.tile = -1;
    c.size = tab[STILE_TAB_TEXT_VALID];
    if (c.seg < c.nseg) {
        c.tile = c.qtile < 0 ? c.seg : tab[c.krow + c.seg];
        c.size = tile_size(c.tile);
    }
    return c;
}

chunk chunk_next(chunk c) // the next chunk with keys, or seg > nseg
{
    c.k0 += int(BN);
    while (c.k0 >= c.size && c.seg <= c.nseg) {
        c.seg++;
        if (c.seg <= c.nseg) c = chunk_enter(c);
    }
    return c;
}

// this invocation's share of the chunk's K and V rows (zeros past its keys)
void stage_load(chunk c, uint kb, uint vb, int sk, int sv, out uvec4 pk[PF], out uvec4 pv[PF])
{
    [[unroll]] for (uint i = 0; i < PF; i++) {
        const uint e = gl_LocalInvocationID.x + i * THREADS, r = e / DW, col = e % DW;
        const int j = c.k0 + int(r);
        pk[i] = uvec4(0);
        pv[i] = uvec4(0);
        if (j < c.size) {
            const int tok = c.tile >= 0 ? tile_token(c.tile, j) : tab[STILE_TAB_VIDEO] + j;
            pk[i] = to_h8(k[(kb + uint(tok * sk)) / 8 + col]);
            pv[i] = to_h8(v[(vb + uint(tok * sv)) / 8 + col]);
        }
    }
}

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const int blk = tab[STILE_TAB_BLOCKS] + STILE_BLOCK_INTS * int(pc.block_base + gl_WorkGroupID.x);
    const int qtile = tab[blk + STILE_BLOCK_TILE], qfirst = tab[blk + STILE_BLOCK_ROW], qrows = tab[blk + STILE_BLOCK_NROWS],
              qtok0 = tab[blk + STILE_BLOCK_TOKEN];
    const int h = int(gl_WorkGroupID.y), b = int(gl_WorkGroupID.z);
    const float scale = intBitsToFloat(tab[STILE_TAB_SCALE]);
    const int sq = tab[STILE_TAB_SQ + 1], sk = tab[STILE_TAB_SK + 1], sv = tab[STILE_TAB_SV + 1];
    const uint qb = pc.q_off + uint(b * tab[STILE_TAB_SQ] + h * tab[STILE_TAB_SQ + 2]);
    const uint kb = pc.k_off + uint(b * tab[STILE_TAB_SK] + h * tab[STILE_TAB_SK + 2]);
    const uint vb = pc.v_off + uint(b * tab[STILE_TAB_SV] + h * tab[STILE_TAB_SV + 2]);

    // ---- the Q block, gathered and scaled by scale * log2 e ----
    if (tid < BM) {
        const int r = int(tid);
        shQTok[r] = r < qrows ? (qtile >= 0 ? tile_token(qtile, qfirst + r) : qtok0 + r) : -1;
    }
    barrier();
    for (uint e = tid; e < BM * DW; e += THREADS) {
        const uint r = e / DW, c = e % DW;
        const int tok = shQTok[r];
        uvec4 w = uvec4(0);
        if (tok >= 0) {
            const uvec4 x = q[(qb + uint(tok * sq)) / 8 + c];
            w = uvec4(scaled_h2(x.x, scale), scaled_h2(x.y, scale), scaled_h2(x.z, scale), scaled_h2(x.w, scale));
        }
        shKV[r * KS + c] = w;
    }
    barrier();
    MAT_Q qa;
    coopMatLoad(qa, shKV, 0, KS, gl_CooperativeMatrixLayoutRowMajor);

    // ---- the keys, chunk after chunk, the next one's rows in flight during this one's work ----
    ACC_O oacc = ACC_O(0.0);
    ACC_R m = ACC_R(-3.0e38);
    ACC_R l = ACC_R(0.0);
    const MAT_ONES ones = MAT_ONES(1.0);
    chunk cur;
    cur.qtile = qtile;
    cur.krow = 0;
    cur.nseg = tab[STILE_TAB_TILES];
    if (qtile >= 0) {
        key_row(b, h, qtile, cur.krow, cur.nseg);
    }
    cur.seg = 0;
    cur = chunk_enter(cur);
    if (cur.size == 0) cur = chunk_next(cur);
    uvec4 pk[PF], pv[PF];
    if (cur.seg <= cur.nseg) stage_load(cur, kb, vb, sk, sv, pk, pv);
    [[dont_unroll]] while (cur.seg <= cur.nseg) {
        barrier(); // every invocation is done with the previous chunk (or the Q block)
        [[unroll]] for (uint i = 0; i < PF; i++) {
            const uint e = tid + i * THREADS, r = e / DW, c = e % DW;
            shKV[r * KS + c] = pk[i];
            shKV[(BN + r) * KS + c] = pv[i];
        }
        barrier();
        const chunk nxt = chunk_next(cur);
        if (nxt.seg <= nxt.nseg) stage_load(nxt, kb, vb, sk, sv, pk, pv);

        MAT_KT kt;
        coopMatLoad(kt, shKV, 0, KS, gl_CooperativeMatrixLayoutColumnMajor);
        ACC_S s = coopMatMulAdd(qa, kt, ACC_S(0.0));
        const uint nk = uint(min(cur.size - cur.k0, int(BN)));
        if (nk < BN) coopMatPerElementNV(s, s, mask_el, nk);
        // online softmax: m' = max(m, rowmax s), p = 2^(s - m'), l = 2^(m - m') l + rowsum p
        ACC_R mnew;
        coopMatReduceNV(mnew, s, gl_CooperativeMatrixReduceRowNV, max_op);
        coopMatPerElementNV(mnew, mnew, max_el, m);
        ACC_S mwide;
        coopMatReduceNV(mwide, mnew, gl_CooperativeMatrixReduceRowNV, smear_op);
        ACC_S p;
        coopMatPerElementNV(p, s - mwide, exp2_el);
        ACC_R alpha;
        coopMatPerElementNV(alpha, m - mnew, exp2_el);
        m = mnew;
        const MAT_P pa = MAT_P(p);
        l = alpha * l + coopMatMulAdd(pa, ones, ACC_R(0.0));
        // O = diag(alpha) O + P V
        ACC_O alpha_o;
        coopMatReduceNV(alpha_o, alpha, gl_CooperativeMatrixReduceRowNV, smear_op);
        MAT_V vm;
        coopMatLoad(vm, shKV, BN * KS, KS, gl_CooperativeMatrixLayoutRowMajor);
        oacc = coopMatMulAdd(pa, vm, alpha_o * oacc);
        cur = nxt;
    }

    // ---- O / l to the output rows; the LSE ----
    ACC_O l_o;
    ACC_R l1;
    coopMatPerElementNV(l1, l, nonzero_el);
    coopMatReduceNV(l_o, l1, gl_CooperativeMatrixReduceRowNV, smear_op);
    oacc = oacc / l_o;
    const uint obase = pc.o_off + uint(b * tab[STILE_TAB_SO] + h * tab[STILE_TAB_SO + 2]);
    coopMatPerElementNV(oacc, oacc, store_el, obase, uint(tab[STILE_TAB_SO + 1]));
    if (pc.has_lse != 0u) {
        ACC_R lg;
        coopMatPerElementNV(lg, l, log2_el);
        lg = m + lg;
        coopMatPerElementNV(lg, lg, lse_el, pc.lse_off + uint((b * tab[STILE_TAB_HEADS] + h) * tab[STILE_TAB_TOKENS]));
    }
}
