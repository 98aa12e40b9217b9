// STA forward, the Vulkan backend's tensor-core path (GL_KHR_cooperative_matrix: any vendor's matrix
// units; needs glslang >= 13 to compile): f16 operands, f32 accumulation. bf16 tensors are converted to
// f16 while staging (exact for values within f16's range; see docs/backends.md). One workgroup = 4
// subgroups of 32 = 64 query rows, 16 per subgroup. Per chunk of BN keys: the workgroup stages K and V
// in shared memory; each subgroup computes S = Q K^T with cooperative matrices, runs the online softmax
// on S through shared memory (two lanes per row), and accumulates O += P V in cooperative-matrix
// accumulators, rescaled per row.
//
// The per-row rescale needs to know which row each accumulator element belongs to, which the
// extension leaves to the implementation: a matrix of the same type loaded from a table of row numbers
// gives it (elements of one matrix type map to invocations the same way).
//
// Compiled per head dim (-DHEAD_DIM=64/128) and matrix width (-DCN=8/16, the N of the device's 16xNx16
// f16 -> f32 shape). The host requires 32-invocation subgroups, 16-byte aligned q/k/v rows (token, head
// and batch strides multiples of 8 elements, dim stride 1) and even o strides.
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require

// the layout of tab[] (binding 5): STILE_TAB_* header, schedule arrays, STILE_BLOCK_* query blocks
#include "schedule_table.h"

#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
#ifndef CN
#define CN 8
#endif
#ifndef BN
#define BN 32
#endif
const uint D = HEAD_DIM;
const uint WARPS = 4, BM = STILE_BLOCK_ROWS_VK_COOPMAT, THREADS = 128;
layout(local_size_x = THREADS) in;
layout(constant_id = 1) const uint DTYPE = 1; // 1 f16, 2 bf16 (f32 takes the portable path)

const uint DW = D / 8;      // uvec4 per row of D halves
const uint KS = DW + 1;     // shared row stride in uvec4: one 16-byte pad against bank conflicts
const uint PS = (BN + 8) / 2; // P row stride in uint (pairs of halves)
const uint SS = BN + 4;     // S row stride in floats

#define ACC coopmat<float, gl_ScopeSubgroup, 16, CN, gl_MatrixUseAccumulator>
#define MATA coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MATB coopmat<float16_t, gl_ScopeSubgroup, 16, CN, gl_MatrixUseB>
#define ROW_MAJOR gl_CooperativeMatrixLayoutRowMajor
#define COL_MAJOR gl_CooperativeMatrixLayoutColumnMajor

layout(std430, binding = 0) readonly buffer QB { uvec4 q[]; };
layout(std430, binding = 1) readonly buffer KB { uvec4 k[]; };
layout(std430, binding = 2) readonly buffer VB { uvec4 v[]; };
layout(std430, binding = 3) buffer OB { uint o[]; };
layout(std430, binding = 4) buffer LB { float lse[]; };
layout(std430, binding = 5) readonly buffer TB { int tab[]; };

// element offsets of each tensor inside its bound buffer (q/k/v in elements, multiples of 8)
layout(push_constant) uniform PC { uint q_off, k_off, v_off, o_off, lse_off, has_lse, block_base; } pc;

shared uvec4 shKV[2 * BN * KS]; // K rows then V rows; the Q block at the start (2 BN >= BM)
shared uint shP[WARPS * 16 * PS];
shared float shS[WARPS * 16 * SS];
shared float shRow[WARPS * 16];
shared float shRidx[16 * CN];
shared int shTok[BN];
shared int shQTok[BM];

#include "tile_geometry.glsl"
#include "key_rows.glsl"
#include "f16_staging.glsl"

uint out_pair(float a, float b) { return DTYPE == 1 ? packHalf2x16(vec2(a, b)) : (bf16_bits(a) | (bf16_bits(b) << 16)); }

// O[r][:] *= shRow[r] for this subgroup's 16 rows. Every accumulator has ridx's type, so element i of
// each lives in row ridx[i]: the factors are looked up once and applied to all D / CN matrices. Element
// indices are constants (a dynamic index would move the matrices to local memory); an implementation
// that spreads a matrix unevenly over the subgroup gets NaN outputs, which every check catches.
const int NE = int(16 * CN / 32); // elements per invocation of a 16 x CN matrix spread over 32 invocations
void rescale_rows(inout ACC oacc[D / CN], ACC ridx, uint warp)
{
    if (ridx.length() != NE) {
        [[unroll]] for (uint j = 0; j < D / CN; j++) oacc[j] = ACC(uintBitsToFloat(0x7fc00000u));
        return;
    }
    float f[NE];
    [[unroll]] for (int i = 0; i < NE; i++) f[i] = shRow[warp * 16 + uint(ridx[i])];
    [[unroll]] for (uint j = 0; j < D / CN; j++)
        [[unroll]] for (int i = 0; i < NE; i++) oacc[j][i] *= f[i];
}

void main()
{
    const uint tid = gl_LocalInvocationID.x, warp = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const int blk = tab[STILE_TAB_BLOCKS] + STILE_BLOCK_INTS * int(pc.block_base + gl_WorkGroupID.x);
    const int qtile = tab[blk + STILE_BLOCK_TILE], qfirst = tab[blk + STILE_BLOCK_ROW], qrows = tab[blk + STILE_BLOCK_NROWS],
              qtok0 = tab[blk + STILE_BLOCK_TOKEN];
    const int h = int(gl_WorkGroupID.y), b = int(gl_WorkGroupID.z);
    const float scale = intBitsToFloat(tab[STILE_TAB_SCALE]);
    const int sq = tab[STILE_TAB_SQ + 1], sk = tab[STILE_TAB_SK + 1], sv = tab[STILE_TAB_SV + 1];
    const uint qb = pc.q_off + uint(b * tab[STILE_TAB_SQ] + h * tab[STILE_TAB_SQ + 2]);
    const uint kb = pc.k_off + uint(b * tab[STILE_TAB_SK] + h * tab[STILE_TAB_SK + 2]);
    const uint vb = pc.v_off + uint(b * tab[STILE_TAB_SV] + h * tab[STILE_TAB_SV + 2]);

    // ---- the Q block (scaled by scale * log2 e) and the row-number table ----
    if (tid < BM) {
        const int r = int(tid);
        shQTok[r] = r < qrows ? (qtile >= 0 ? tile_token(qtile, qfirst + r) : qtok0 + r) : -1;
    }
    for (uint e = tid; e < 16 * CN; e += THREADS) shRidx[e] = float(e / CN);
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
    MATA qa[D / 16];
    [[unroll]] for (uint kk = 0; kk < D / 16; kk++) coopMatLoad(qa[kk], shKV, warp * 16 * KS + kk * 2, KS, ROW_MAJOR);
    ACC ridx;
    coopMatLoad(ridx, shRidx, 0, CN, ROW_MAJOR);
    ACC oacc[D / CN];
    [[unroll]] for (uint j = 0; j < D / CN; j++) oacc[j] = ACC(0.0);

    const uint row = lane >> 1, half_ = lane & 1u; // softmax: two lanes per row, BN/2 columns each
    float m = -3.0e38, l = 0.0;

    int krow = 0, nseg;
    if (qtile < 0) {
        nseg = tab[STILE_TAB_TILES];
    } else {
        key_row(b, h, qtile, krow, nseg);
    }
    const int text_valid = tab[STILE_TAB_TEXT_VALID];
    for (int seg = 0; seg <= nseg; seg++) {
        int tile = -1, size = text_valid;
        if (seg < nseg) {
            tile = qtile < 0 ? seg : tab[krow + seg];
            size = tile_size(tile);
        }
        for (int k0 = 0; k0 < size; k0 += int(BN)) {
            const int nk = min(int(BN), size - k0);
            barrier(); // the previous chunk is done with shKV and shTok
            if (tid < BN) {
                const int j = int(tid);
                shTok[j] = j < nk ? (tile >= 0 ? tile_token(tile, k0 + j) : tab[STILE_TAB_VIDEO] + k0 + j) : -1;
            }
            barrier();
            for (uint e = tid; e < BN * DW; e += THREADS) {
                const uint r = e / DW, c = e % DW;
                const int tok = shTok[r];
                uvec4 wk = uvec4(0), wv = uvec4(0);
                if (tok >= 0) {
                    wk = to_h8(k[(kb + uint(tok * sk)) / 8 + c]);
                    wv = to_h8(v[(vb + uint(tok * sv)) / 8 + c]);
                }
                shKV[r * KS + c] = wk;
                shKV[(BN + r) * KS + c] = wv;
            }
            barrier();

            // S = Q K^T for this subgroup's 16 rows, into shared memory
            [[unroll]] for (uint j = 0; j < BN / CN; j++) {
                ACC s = ACC(0.0);
                [[unroll]] for (uint kk = 0; kk < D / 16; kk++) {
                    MATB kt;
                    coopMatLoad(kt, shKV, j * CN * KS + kk * 2, KS, COL_MAJOR);
                    s = coopMatMulAdd(qa[kk], kt, s);
                }
                coopMatStore(s, shS, warp * 16 * SS + j * CN, SS, ROW_MAJOR);
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();

            // online softmax: row max and sum over both lanes of the row
            const uint sbase = (warp * 16 + row) * SS + half_ * (BN / 2);
            float mx = m;
            [[unroll]] for (uint c = 0; c < BN / 2; c++)
                if (int(half_ * (BN / 2) + c) < nk) mx = max(mx, shS[sbase + c]);
            mx = max(mx, subgroupShuffleXor(mx, 1u));
            const float alpha = exp2(m - mx);
            float sum = 0.0;
            const uint pbase = (warp * 16 + row) * PS + half_ * (BN / 4);
            [[unroll]] for (uint c = 0; c < BN / 2; c += 2) {
                const int col = int(half_ * (BN / 2) + c);
                const float p0 = col < nk ? exp2(shS[sbase + c] - mx) : 0.0;
                const float p1 = col + 1 < nk ? exp2(shS[sbase + c + 1] - mx) : 0.0;
                sum += p0 + p1;
                shP[pbase + c / 2] = packHalf2x16(vec2(p0, p1));
            }
            sum += subgroupShuffleXor(sum, 1u);
            l = l * alpha + sum;
            m = mx;
            if (half_ == 0u) shRow[warp * 16 + row] = alpha;
            subgroupMemoryBarrierShared();
            subgroupBarrier();

            // O = diag(alpha) O + P V
            rescale_rows(oacc, ridx, warp);
            [[unroll]] for (uint kk = 0; kk < BN / 16; kk++) {
                MATA pa;
                coopMatLoad(pa, shP, warp * 16 * PS + kk * 8, PS, ROW_MAJOR);
                [[unroll]] for (uint j = 0; j < D / CN; j++) {
                    MATB vm;
                    coopMatLoad(vm, shKV, (BN + kk * 16) * KS + j * (CN / 8), KS, ROW_MAJOR);
                    oacc[j] = coopMatMulAdd(pa, vm, oacc[j]);
                }
            }
        }
    }

    // ---- O / l, written through shared memory BN columns at a time; the LSE ----
    const int orow = int(warp * 16 + row);
    const int otok = shQTok[orow];
    subgroupBarrier();
    if (half_ == 0u) shRow[orow] = l > 0.0 ? 1.0 / l : 0.0; // l = 0: a row of no keys, o = 0 and lse -inf
    if (half_ == 0u && otok >= 0 && pc.has_lse != 0u)
        lse[pc.lse_off + uint((b * tab[STILE_TAB_HEADS] + h) * tab[STILE_TAB_TOKENS] + otok)] =
            l > 0.0 ? (m + log2(l)) * 0.69314718055994531 : uintBitsToFloat(0xff800000u);
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    rescale_rows(oacc, ridx, warp);
    const uint obase = pc.o_off + uint(b * tab[STILE_TAB_SO] + otok * tab[STILE_TAB_SO + 1] + h * tab[STILE_TAB_SO + 2]);
    [[unroll]] for (uint p = 0; p < D / BN; p++) {
        [[unroll]] for (uint j = 0; j < BN / CN; j++)
            coopMatStore(oacc[p * (BN / CN) + j], shS, warp * 16 * SS + j * CN, SS, ROW_MAJOR);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        const uint sbase = (warp * 16 + row) * SS + half_ * (BN / 2);
        if (otok >= 0) {
            [[unroll]] for (uint c = 0; c < BN / 2; c += 2) {
                const uint d = p * BN + half_ * (BN / 2) + c;
                o[(obase + d) >> 1] = out_pair(shS[sbase + c], shS[sbase + c + 1]);
            }
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }
}
