/* The conformance case table: every backend is judged by these cases, expanded over their dtypes,
 * head dims and checks. Realistic video shapes check sampled query rows against the oracle so they
 * stay affordable, and every row with the mask probe; "sampled" in a name marks a video-sized case,
 * which the ASan build and lavapipe leave out (STILE_CONFORMANCE_SKIP=sampled). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

#define F32 (1u << STILE_DTYPE_F32)
#define F16 (1u << STILE_DTYPE_F16)
#define BF16 (1u << STILE_DTYPE_BF16)
#define D64 1u
#define D128 2u
#define ORACLE STILE_CONF_CHECK_ORACLE
#define PROBE STILE_CONF_CHECK_PROBE
#define BOTH (STILE_CONF_CHECK_ORACLE | STILE_CONF_CHECK_PROBE)

static const int64_t four_windows[4][3] = {{1, 1, 1}, {3, 1, 3}, {2, 2, 2}, {9, 9, 9}};
static const int64_t hunyuan_mix[2][3] = {{1, 6, 10}, {3, 3, 3}}; /* FastVideo-style candidates; kept to 2 heads for CI */

static const stile_conf_case conf_cases[] = {
    /* name                               batch canvas       tile        window     per-head   heads text pad order layout dtypes dims rows
     * checks (ORACLE, PROBE or BOTH), the backends that may refuse the case (NULL: none may), key_tiles_k (0: windows) */
    {"partial tiles 5x7x9 / 2x4x4 w3x1x3", 1, {5, 7, 9}, {2, 4, 4}, {3, 1, 3}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"tile 6x8x8, canvas 12x16x24 w1x3x3", 1, {12, 16, 24}, {6, 8, 8}, {1, 3, 3}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"tile 4x4x4, canvas 8x12x12 w3x3x3", 1, {8, 12, 12}, {4, 4, 4}, {3, 3, 3}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"image tile 1x8x8, canvas 1x40x48 w1x3x3", 1, {1, 40, 48}, {1, 8, 8}, {1, 3, 3}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"text 40 with 13 padding", 1, {5, 7, 9}, {2, 4, 4}, {1, 1, 3}, NULL, 2, 40, 13, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"text all padding", 1, {4, 8, 8}, {2, 4, 4}, {1, 1, 1}, NULL, 1, 6, 6, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, D64, 0, BOTH, NULL, 0},
    {"per-head windows with text", 1, {5, 7, 9}, {2, 4, 4}, {0, 0, 0}, four_windows, 4, 9, 2, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"window >= grid (full)", 1, {3, 5, 6}, {3, 2, 4}, {2, 9, 9}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"even window 2x2x2", 1, {2, 9, 11}, {1, 4, 4}, {2, 2, 2}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"batch 2 with text", 2, {4, 6, 6}, {2, 4, 4}, {1, 1, 1}, NULL, 3, 4, 1, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"tiled order with text", 1, {5, 7, 9}, {2, 4, 4}, {3, 1, 3}, NULL, 2, 6, 1, STILE_ORDER_TILED, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 0},
    {"[B,H,S,D] layout", 2, {3, 5, 6}, {2, 2, 4}, {1, 3, 1}, NULL, 2, 3, 0, STILE_ORDER_NATURAL, STILE_CONF_BHSD, 0, 0, 0, BOTH, NULL, 0},
    {"padded strides", 1, {3, 5, 6}, {2, 2, 4}, {1, 3, 1}, NULL, 2, 3, 0, STILE_ORDER_NATURAL, STILE_CONF_PADDED, 0, 0, 0, BOTH, NULL, 0},
    {"packed qkv [B,S,3,H,D]", 2, {3, 5, 6}, {2, 2, 4}, {1, 3, 1}, NULL, 2, 3, 1, STILE_ORDER_NATURAL, STILE_CONF_PACKED_QKV, 0, 0, 0, BOTH, NULL, 0},
    /* a shape the tensor-core paths take, at addresses they cannot (not 16-byte aligned): they must fall back */
    {"tensors not 16-byte aligned", 1, {4, 16, 16}, {2, 8, 8}, {1, 3, 3}, NULL, 2, 7, 2, STILE_ORDER_NATURAL, STILE_CONF_UNALIGNED, 0, 0, 0, BOTH, NULL, 0},
    {"HunyuanVideo 720p + 256 text (sampled)", 1, {30, 48, 80}, {6, 8, 8}, {3, 3, 3}, NULL, 2, 256, 0, STILE_ORDER_NATURAL,
     STILE_CONF_BSHD, F16 | BF16, D128, 48, ORACLE, NULL, 0},
    {"HunyuanVideo 720p mixed windows (sampled)", 1, {30, 48, 80}, {6, 8, 8}, {0, 0, 0}, hunyuan_mix, 2, 256, 0,
     STILE_ORDER_NATURAL, STILE_CONF_BSHD, BF16, D128, 24, ORACLE, NULL, 0},
    {"Wan 2.1 480p 21x30x52 (sampled)", 1, {21, 30, 52}, {6, 8, 8}, {3, 3, 3}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD,
     F16 | BF16, D128, 96, ORACLE, NULL, 0},
    /* caller-chosen key tiles (key_tiles_k, the last field): lists with gaps, repeats and empty rows; d 64 alone
     * where the head dim changes nothing the lists do (lavapipe's time in CI) */
    {"key tiles k6, partial tiles 5x7x9 / 2x4x4", 1, {5, 7, 9}, {2, 4, 4}, {0, 0, 0}, NULL, 3, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, D64, 0, BOTH, NULL, 6},
    {"key tiles k4 with text 9, 2 padding", 1, {5, 7, 9}, {2, 4, 4}, {0, 0, 0}, NULL, 2, 9, 2, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 4},
    {"key tiles k5, batch 2, tiled order, text 3", 2, {4, 6, 10}, {2, 4, 4}, {0, 0, 0}, NULL, 2, 3, 0, STILE_ORDER_TILED, STILE_CONF_BSHD, 0, D64, 0, BOTH, NULL, 5},
    {"key tiles k5, tile 6x8x8, canvas 12x16x24, text 5", 1, {12, 16, 24}, {6, 8, 8}, {0, 0, 0}, NULL, 2, 5, 1, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, 0, 0, BOTH, NULL, 5},
    {"key tiles k = all 18 tiles, 4x4x4", 1, {8, 12, 12}, {4, 4, 4}, {0, 0, 0}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD, 0, D64, 0, BOTH, NULL, 18},
    {"key tiles k3, [B,H,S,D] layout", 2, {3, 5, 6}, {2, 2, 4}, {0, 0, 0}, NULL, 2, 3, 1, STILE_ORDER_NATURAL, STILE_CONF_BHSD, 0, D64, 0, BOTH, NULL, 3},
    {"key tiles k8, tensors not 16-byte aligned", 1, {4, 16, 16}, {2, 8, 8}, {0, 0, 0}, NULL, 2, 7, 2, STILE_ORDER_NATURAL, STILE_CONF_UNALIGNED, 0, 0, 0, BOTH, NULL, 8},
    {"key tiles Wan 480p 4x4x4 k78 (sampled size)", 1, {21, 30, 52}, {4, 4, 4}, {0, 0, 0}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD,
     BF16, D128, 0, PROBE, NULL, 78},
    /* probe only: a grid wider than head_dim's channels (they fold modulo), and the video shapes, every row */
    {"grid wider than the probe's channels", 1, {2, 6, 200}, {1, 2, 8}, {1, 3, 5}, NULL, 2, 5, 2, STILE_ORDER_NATURAL, STILE_CONF_BSHD,
     F16, D64, 0, PROBE, NULL, 0},
    {"HunyuanVideo 720p + 256 text (sampled size)", 1, {30, 48, 80}, {6, 8, 8}, {3, 3, 3}, NULL, 2, 256, 0, STILE_ORDER_NATURAL,
     STILE_CONF_BSHD, BF16, D128, 0, PROBE, NULL, 0},
    {"Wan 2.1 480p 21x30x52 (sampled size)", 1, {21, 30, 52}, {6, 8, 8}, {3, 3, 3}, NULL, 2, 0, 0, STILE_ORDER_NATURAL, STILE_CONF_BSHD,
     F16, D128, 0, PROBE, NULL, 0},
};
static const int conf_ncases = (int)(sizeof conf_cases / sizeof conf_cases[0]);

const stile_conf_case *stile_conf_cases(int *n)
{
    if (n) *n = conf_ncases;
    return conf_cases;
}

stile_conf_variant *stile_conf_expand(int *n)
{
    const stile_dtype dts[3] = {STILE_DTYPE_F32, STILE_DTYPE_F16, STILE_DTYPE_BF16};
    const int64_t dims[2] = {64, 128};
    stile_conf_variant *v = malloc((size_t)conf_ncases * 18 * sizeof *v); /* 3 dtypes x 2 dims x oracle, probe, backward */
    if (!v) return NULL;
    int k = 0;
    for (int i = 0; i < conf_ncases; i++) {
        const stile_conf_case *c = &conf_cases[i];
        for (int t = 0; t < 3; t++) {
            if (c->dtypes && !(c->dtypes & (1u << dts[t]))) continue;
            for (int d = 0; d < 2; d++) {
                if (c->dims && !(c->dims & (1u << d))) continue;
                stile_problem p = {.struct_size = sizeof p, .batch = c->batch, .heads = c->heads, .head_dim = dims[d], .text = c->text,
                                   .text_padding = c->text_padding, .dtype = dts[t], .order = c->order,
                                   .head_windows = c->head_windows, .key_tiles_k = c->key_tiles_k};
                memcpy(p.canvas, c->canvas, sizeof p.canvas);
                memcpy(p.tile, c->tile, sizeof p.tile);
                memcpy(p.window, c->window, sizeof p.window);
                const int64_t S = c->canvas[0] * c->canvas[1] * c->canvas[2] + c->text, H = c->heads, D = dims[d];
                switch (c->layout) {
                case STILE_CONF_BSHD: break;
                case STILE_CONF_BHSD: p.q = p.k = p.v = p.o = stile_strides_bhsd(&p); break;
                case STILE_CONF_PADDED: { /* rows and heads padded: gaps the backend must not write */
                    stile_strides s = {.batch = S * H * (D + 24), .token = H * (D + 24), .head = D + 24, .dim = 1};
                    p.q = p.k = p.v = p.o = s;
                    break;
                }
                case STILE_CONF_PACKED_QKV: {
                    stile_strides s = {.batch = S * 3 * H * D, .token = 3 * H * D, .head = D, .dim = 1};
                    p.q = p.k = p.v = s;
                    break;
                }
                case STILE_CONF_UNALIGNED: break; /* default strides; the harness offsets the pointers */
                }
                /* kinds: 0 the oracle, 1 the mask probe, 2 the backward pass (oracle cases checked on every
                 * row: its oracle costs tokens^2, so not the sampled video shapes) */
                for (int kind = 0; kind < 3; kind++) {
                    const int oracle = !c->checks || (c->checks & STILE_CONF_CHECK_ORACLE);
                    if (kind == 0 && !oracle) continue;
                    if (kind == 1 && c->checks && !(c->checks & STILE_CONF_CHECK_PROBE)) continue;
                    if (kind == 2 && (!oracle || c->sample_rows)) continue;
                    v[k].c = c;
                    v[k].p = p;
                    v[k].probe = kind == 1;
                    v[k].backward = kind == 2;
                    snprintf(v[k].label, sizeof v[k].label, "%s, %s, d%lld%s", c->name, stile_dtype_name(dts[t]), (long long)D,
                             kind == 1 ? ", mask probe" : kind == 2 ? ", backward" : "");
                    k++;
                }
            }
        }
    }
    *n = k;
    return v;
}
