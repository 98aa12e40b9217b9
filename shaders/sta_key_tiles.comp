// Caller-chosen key tiles made walkable for the other shaders (core/schedule_table.h, STILE_TAB_KT_*):
// pc.mode 0, a workgroup per (batch, head, query tile) row: the row's entries as a set (a bitmap in
// shared memory), written ascending into the table's KT_ROWS with their number in KT_COUNT; -1 entries
// skipped, any other entry outside 0..tiles-1 skipped and counted (KT_BAD, and the caller's count when
// bound). pc.mode 1, a workgroup per (batch, head): the rows transposed (the query tiles listing each key
// tile, ascending) into KT_QSTART / KT_QTILES for the backward. Integers only: the result does not depend
// on which invocation ran first. The CUDA backend does the same (backends/cuda/sta_key_tiles.cu).
#version 450
#extension GL_GOOGLE_include_directive : require

#include "schedule_table.h"

layout(local_size_x = 64) in;
const int MAX_WORDS = STILE_TAB_KT_MAX_TILES / 32; // a row's bitmap in shared memory (vk_supports checks the grid)

layout(std430, binding = 0) readonly buffer KT { int kt[]; };  // the caller's [B, heads, tiles, k]
layout(std430, binding = 1) buffer ER { int err[]; };          // the caller's error count (pc.has_err)
layout(std430, binding = 5) buffer TB { int tab[]; };

layout(push_constant) uniform PC { uint kt_off, err_off, has_err, mode, unused0, unused1, block_base; } pc;

shared uint bits[MAX_WORDS];
shared int nbad;

void rows()
{
    const int k = tab[STILE_TAB_KT_K], tiles = tab[STILE_TAB_TILES], words = (tiles + 31) / 32;
    const int r = int(pc.block_base + gl_WorkGroupID.x), tid = int(gl_LocalInvocationID.x);
    for (int w = tid; w < words; w += 64) bits[w] = 0u;
    if (tid == 0) nbad = 0;
    barrier();
    for (int i = tid; i < k; i += 64) {
        const int t = kt[pc.kt_off + uint(r * k + i)];
        if (t == -1) continue;
        if (t < -1 || t >= tiles) atomicAdd(nbad, 1);
        else atomicOr(bits[t >> 5], 1u << uint(t & 31));
    }
    barrier();
    if (tid != 0) return;
    const int dst = tab[STILE_TAB_KT_ROWS] + r * k;
    int n = 0;
    for (int w = 0; w < words; w++)
        for (uint x = bits[w]; x != 0u; x &= x - 1u) tab[dst + n++] = w * 32 + findLSB(x);
    tab[tab[STILE_TAB_KT_COUNT] + r] = n;
    if (nbad != 0) {
        atomicAdd(tab[tab[STILE_TAB_KT_BAD]], nbad);
        if (pc.has_err != 0u) atomicAdd(err[pc.err_off], nbad);
    }
}

void transpose()
{
    const int k = tab[STILE_TAB_KT_K], tiles = tab[STILE_TAB_TILES];
    const int bh = int(pc.block_base + gl_WorkGroupID.x), tid = int(gl_LocalInvocationID.x);
    const int nrows = tab[STILE_TAB_BATCH] * tab[STILE_TAB_HEADS] * tiles;
    const int cnt = tab[STILE_TAB_KT_COUNT] + bh * tiles, rw = tab[STILE_TAB_KT_ROWS] + bh * tiles * k;
    const int start = tab[STILE_TAB_KT_QSTART] + bh * (tiles + 1), qt = tab[STILE_TAB_KT_QTILES];
    const int cur = qt + nrows * k + bh * tiles; // cursors: after the transposed rows
    for (int t = tid; t < tiles; t += 64) tab[cur + t] = 0;
    barrier();
    for (int q = tid; q < tiles; q += 64)
        for (int i = 0; i < tab[cnt + q]; i++) atomicAdd(tab[cur + tab[rw + q * k + i]], 1);
    barrier();
    if (tid == 0) {
        int s = qt + bh * tiles * k;
        for (int t = 0; t < tiles; t++) {
            tab[start + t] = s;
            s += tab[cur + t];
            tab[cur + t] = tab[start + t];
        }
        tab[start + tiles] = s;
    }
    barrier();
    for (int q = tid; q < tiles; q += 64)
        for (int i = 0; i < tab[cnt + q]; i++) tab[atomicAdd(tab[cur + tab[rw + q * k + i]], 1)] = q;
    barrier();
    for (int t = tid; t < tiles; t += 64) { // insertion sort: rows are short (about k)
        const int a = tab[start + t], n = tab[start + t + 1] - a;
        for (int i = 1; i < n; i++) {
            const int v = tab[a + i];
            int j = i - 1;
            for (; j >= 0 && tab[a + j] > v; j--) tab[a + j + 1] = tab[a + j];
            tab[a + j + 1] = v;
        }
    }
}

void main()
{
    if (pc.mode == 0u) rows();
    else transpose();
}
