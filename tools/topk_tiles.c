/* --sparsity topk:K (stile run, stile bench): caller-chosen key tiles for a problem with key_tiles_k,
 * K distinct tiles per (batch, head, query tile), seeded: a partial Fisher-Yates shuffle of the tiles
 * per row driven by xorshift64 (bench/peers/flex_topk.py draws the same lists for FlexAttention).
 * --sparsity window:TxHxW: each row holds the tiles of that window around its query tile (clamped as
 * in docs/contract.md), in an order shuffled the same way - the STA's own mask, caller-chosen. */
#include <stdlib.h>

#include "cli.h"

int32_t *cli_topk_tiles(const stile_problem *p, const int64_t window[3], uint64_t seed, size_t *bytes, double *flops)
{
    int64_t n[3], tiles = 1;
    for (int a = 0; a < 3; a++) tiles *= n[a] = (p->canvas[a] + p->tile[a] - 1) / p->tile[a];
    const int64_t B = p->batch ? p->batch : 1, k = p->key_tiles_k, rows = B * p->heads * tiles;
    *bytes = (size_t)(rows * k) * sizeof(int32_t);
    int32_t *list = malloc(*bytes), *perm = malloc((size_t)tiles * sizeof *perm);
    int64_t *size = malloc((size_t)tiles * sizeof *size);
    if (!list || !perm || !size) {
        free(list);
        free(perm);
        free(size);
        return NULL;
    }
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t c[3] = {t / (n[1] * n[2]), t / n[2] % n[1], t % n[2]};
        size[t] = 1;
        for (int a = 0; a < 3; a++) size[t] *= (c[a] + 1) * p->tile[a] < p->canvas[a] ? p->tile[a] : p->canvas[a] - c[a] * p->tile[a];
        perm[t] = (int32_t)t;
    }
    uint64_t s = seed * 0x9e3779b97f4a7c15u + 1;
    double pairs = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t keys = 0, pool = tiles;
        if (window && window[0]) { /* the first k entries of perm become the window's tiles */
            const int64_t q = r % tiles, c[3] = {q / (n[1] * n[2]), q / n[2] % n[1], q % n[2]};
            int64_t s0[3];
            for (int a = 0; a < 3; a++) {
                const int64_t st = c[a] - window[a] / 2, hi = n[a] - window[a];
                s0[a] = st < 0 ? 0 : st > hi ? hi : st;
            }
            for (int64_t i = 0; i < k; i++)
                perm[i] = (int32_t)(((s0[0] + i / (window[1] * window[2])) * n[1] + s0[1] + i / window[2] % window[1]) * n[2] + s0[2] +
                                    i % window[2]);
            pool = k;
        }
        for (int64_t i = 0; i < k; i++) { /* perm stays a permutation: the row's tiles are distinct */
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            const int64_t j = i + (int64_t)(s % (uint64_t)(pool - i));
            const int32_t x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
            list[r * k + i] = perm[i];
            keys += size[perm[i]];
        }
        pairs += (double)size[r % tiles] * (double)keys;
    }
    const int64_t video = p->canvas[0] * p->canvas[1] * p->canvas[2], valid = p->text - p->text_padding;
    *flops = 4.0 * (double)p->head_dim * (pairs + (double)(B * p->heads) * (double)(video * valid + p->text * (video + valid)));
    free(perm);
    free(size);
    return list;
}
