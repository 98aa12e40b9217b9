/* Problem validation: every fault gets its own status and a log line naming the field and why. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stile_internal.h"

stile_strides stile_strides_bhsd(const stile_problem *p)
{
    stile_strides s = {0, 0, 0, 0};
    if (!p || p->struct_size != sizeof *p) return s; /* only fields of the current layout are read */
    int64_t tokens = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text;
    s.dim = 1;
    s.token = p->head_dim;
    s.head = tokens * p->head_dim;
    s.batch = p->heads * tokens * p->head_dim;
    return s;
}

static const char *tensor_name[4] = {"q", "k", "v", "o"};

/* Elements spanned by a tensor with these extents and strides, and whether distinct indices stay
 * distinct: sort the dimensions of extent > 1 by stride; each stride must exceed the span of all
 * smaller ones. This is sufficient (not necessary) for no overlap, and what every layout in use meets. */
static stile_status check_strides(int which, const int64_t ext[4], const int64_t st[4], int64_t *span)
{
    static const char *dim_name[4] = {"batch", "token", "head", "dim"};
    int order[4], n = 0;
    for (int i = 0; i < 4; i++) {
        if (st[i] < 0)
            return stile_fail(STILE_ERR_INVALID_STRIDES, "%s stride %s=%lld: must be >= 0", tensor_name[which],
                              dim_name[i], (long long)st[i]);
        if (ext[i] > 1) order[n++] = i;
    }
    for (int i = 1; i < n; i++) /* insertion sort by stride */
        for (int j = i; j > 0 && st[order[j]] < st[order[j - 1]]; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    int64_t reach = 0; /* largest offset reachable by the smaller dimensions */
    for (int i = 0; i < n; i++) {
        int d = order[i];
        if (st[d] <= reach)
            return stile_fail(STILE_ERR_INVALID_STRIDES,
                              "%s stride %s=%lld: overlaps the smaller dimensions (needs > %lld)",
                              tensor_name[which], dim_name[d], (long long)st[d], (long long)reach);
        int64_t add;
        if (!stile_mul_ok(st[d], ext[d] - 1, &add) || !stile_add_ok(reach, add, &reach))
            return stile_fail(STILE_ERR_OVERFLOW, "%s: strides times sizes overflow 64 bits", tensor_name[which]);
    }
    *span = reach + 1;
    return STILE_OK;
}

void stile_resolved_free(stile_resolved *r)
{
    if (!r) return;
    free(r->windows);
    r->windows = NULL;
}

stile_status stile_resolve(const stile_problem *in, stile_resolved *r)
{
    memset(r, 0, sizeof *r);
    stile_problem p;
    stile_status st = stile_problem_import(in, &p, "problem");
    if (st != STILE_OK) return st;
    static const char axis[3] = {'t', 'h', 'w'};

    if (p.batch < 0) return stile_fail(STILE_ERR_INVALID_SIZE, "batch=%lld: must be >= 1 (0 means 1)", (long long)p.batch);
    if (p.batch == 0) p.batch = 1;
    for (int i = 0; i < 3; i++) {
        if (p.canvas[i] <= 0)
            return stile_fail(STILE_ERR_INVALID_SIZE, "canvas[%d]=%lld (%c): must be >= 1", i, (long long)p.canvas[i], axis[i]);
        if (p.tile[i] <= 0)
            return stile_fail(STILE_ERR_INVALID_SIZE, "tile[%d]=%lld (%c): must be >= 1", i, (long long)p.tile[i], axis[i]);
    }
    if (p.batch > STILE_MAX_BATCH)
        return stile_fail(STILE_ERR_INVALID_SIZE, "batch=%lld: must be <= %d", (long long)p.batch, STILE_MAX_BATCH);
    if (p.heads <= 0 || p.heads > STILE_MAX_HEADS)
        return stile_fail(STILE_ERR_INVALID_SIZE, "heads=%lld: must be within 1..%d", (long long)p.heads, STILE_MAX_HEADS);
    if (p.head_dim <= 0 || p.head_dim > STILE_MAX_HEAD_DIM)
        return stile_fail(STILE_ERR_INVALID_SIZE, "head_dim=%lld: must be within 1..%d", (long long)p.head_dim, STILE_MAX_HEAD_DIM);
    if (p.text < 0) return stile_fail(STILE_ERR_INVALID_SIZE, "text=%lld: must be >= 0", (long long)p.text);
    if (p.text_padding < 0 || p.text_padding > p.text)
        return stile_fail(STILE_ERR_INVALID_SIZE, "text_padding=%lld: must be within 0..text (%lld)",
                          (long long)p.text_padding, (long long)p.text);
    if (!stile_dtype_name(p.dtype)) return stile_fail(STILE_ERR_INVALID_ARGUMENT, "dtype=%d: unknown", (int)p.dtype);
    if (p.dtype == STILE_DTYPE_I32)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "dtype=i32: q, k, v and o are f32, f16 or bf16 (i32 is for index tensors)");
    if (p.order != STILE_ORDER_NATURAL && p.order != STILE_ORDER_TILED)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "order=%d: unknown", (int)p.order);
    /* Kernels scale in f32 (scale * log2(e)): a subnormal, huge or negative scale is refused rather
     * than turned into zeros, infinities and NaN outputs with status OK. */
    if (p.scale != 0 && !(p.scale >= STILE_MIN_SCALE && p.scale <= STILE_MAX_SCALE))
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "scale=%g: must be 0 (1/sqrt(head_dim)) or within %g..%g", p.scale,
                          STILE_MIN_SCALE, STILE_MAX_SCALE);
    if (p.scale == 0) p.scale = 1.0 / sqrt((double)p.head_dim);

    /* sizes and their products */
    int64_t video, tokens, tiles = 1, t;
    if (!stile_mul_ok(p.canvas[0], p.canvas[1], &t) || !stile_mul_ok(t, p.canvas[2], &video) ||
        !stile_add_ok(video, p.text, &tokens))
        return stile_fail(STILE_ERR_OVERFLOW, "canvas %lldx%lldx%lld plus text overflows 64 bits",
                          (long long)p.canvas[0], (long long)p.canvas[1], (long long)p.canvas[2]);
    for (int i = 0; i < 3; i++) {
        r->grid[i] = (p.canvas[i] + p.tile[i] - 1) / p.tile[i];
        tiles *= r->grid[i]; /* <= video, cannot overflow */
    }
    if (tokens > STILE_MAX_TOKENS)
        return stile_fail(STILE_ERR_OVERFLOW, "%lld tokens (video + text): more than %lld, what backends index in 32 bits",
                          (long long)tokens, (long long)STILE_MAX_TOKENS);
    if (tiles > STILE_MAX_TILES)
        return stile_fail(STILE_ERR_OVERFLOW, "%lld tiles: more than 2^31-1", (long long)tiles);
    int64_t pairs, all;
    if (!stile_mul_ok(tokens, tokens, &pairs) || !stile_mul_ok(pairs, p.batch, &all) || !stile_mul_ok(all, p.heads, &all) ||
        !stile_mul_ok(all, 4 * p.head_dim, &all))
        return stile_fail(STILE_ERR_OVERFLOW, "batch x heads x tokens^2 x 4d overflows 64 bits (tokens=%lld)", (long long)tokens);
    int64_t elems;
    if (!stile_mul_ok(p.batch, tokens, &elems) || !stile_mul_ok(elems, p.heads, &elems) ||
        !stile_mul_ok(elems, p.head_dim, &elems) || !stile_mul_ok(elems, 4, &t))
        return stile_fail(STILE_ERR_OVERFLOW, "batch x tokens x heads x head_dim overflows 64 bits");

    /* windows, or key tiles chosen at execute time */
    if (p.key_tiles_k != 0) {
        if (p.key_tiles_k < 0 || p.key_tiles_k > tiles)
            return stile_fail(STILE_ERR_INVALID_SIZE, "key_tiles_k=%lld: must be within 1..%lld (the tiles of the grid), or 0", (long long)p.key_tiles_k,
                              (long long)tiles);
        int64_t entries;
        if (!stile_mul_ok(p.batch * p.heads, tiles, &entries) || !stile_mul_ok(entries, p.key_tiles_k, &entries) ||
            entries > INT32_MAX)
            return stile_fail(STILE_ERR_OVERFLOW, "key tiles: batch x heads x tiles x key_tiles_k = %lld x %lld x %lld x %lld entries exceed 2^31-1",
                              (long long)p.batch, (long long)p.heads, (long long)tiles, (long long)p.key_tiles_k);
        if (p.head_windows || p.window[0] || p.window[1] || p.window[2])
            return stile_fail(STILE_ERR_INVALID_WINDOW,
                              "key_tiles_k=%lld: the key tiles come with each execution, so window and head_windows must be unset",
                              (long long)p.key_tiles_k);
    } else if (!p.head_windows && p.window[0] == 0 && p.window[1] == 0 && p.window[2] == 0)
        return stile_fail(STILE_ERR_INVALID_WINDOW, "window is required (or head_windows, one per head, or key_tiles_k)");
    for (int64_t h = 0; h < (p.key_tiles_k ? 0 : p.head_windows ? p.heads : 1); h++)
        for (int i = 0; i < 3; i++) {
            int64_t w = p.head_windows ? p.head_windows[h][i] : p.window[i];
            if (w <= 0) {
                if (p.head_windows)
                    return stile_fail(STILE_ERR_INVALID_WINDOW, "head %lld: window[%d]=%lld (%c): must be >= 1", (long long)h,
                                      i, (long long)w, axis[i]);
                return stile_fail(STILE_ERR_INVALID_WINDOW, "window[%d]=%lld (%c): must be >= 1", i, (long long)w, axis[i]);
            }
        }

    /* strides */
    const int64_t ext[4] = {p.batch, tokens, p.heads, p.head_dim};
    stile_strides *sp[4] = {&p.q, &p.k, &p.v, &p.o};
    for (int k = 0; k < 4; k++) {
        stile_strides s = *sp[k];
        if (s.batch == 0 && s.token == 0 && s.head == 0 && s.dim == 0) {
            s.dim = 1;
            s.head = p.head_dim;
            s.token = p.heads * p.head_dim;
            s.batch = tokens * p.heads * p.head_dim;
        }
        const int64_t st[4] = {s.batch, s.token, s.head, s.dim};
        stile_status rc = check_strides(k, ext, st, &r->extent[k]);
        if (rc != STILE_OK) return rc;
        int64_t bytes;
        if (!stile_mul_ok(r->extent[k], (int64_t)stile_dtype_size(p.dtype), &bytes))
            return stile_fail(STILE_ERR_OVERFLOW, "%s spans more than 2^63 bytes", tensor_name[k]);
        r->strides[k] = s;
        *sp[k] = s;
    }

    r->windows = malloc((size_t)p.heads * sizeof *r->windows);
    if (!r->windows) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for %lld head windows", (long long)p.heads);
    for (int64_t h = 0; h < p.heads; h++)
        for (int i = 0; i < 3; i++) r->windows[h][i] = p.head_windows ? p.head_windows[h][i] : p.window[i];
    p.head_windows = (const int64_t(*)[3])r->windows; /* p.window stays as the caller gave it */
    r->p = p;
    r->tiles = tiles;
    r->video = video;
    r->tokens = tokens;
    r->text_valid = p.text - p.text_padding;
    return STILE_OK;
}

stile_status stile_problem_check(const stile_problem *p)
{
    stile_resolved r;
    stile_status rc = stile_resolve(p, &r);
    stile_resolved_free(&r);
    return rc;
}
