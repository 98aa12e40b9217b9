/* Caller-chosen key tiles (stile_problem.key_tiles_k) read on the host: each row of the caller's
 * [B, heads, tiles, k] tensor as the set it stands for (docs/contract.md, "Caller-chosen key tiles"):
 * -1 entries unused, repeats once, in ascending order, so the same set gives the same walk whatever
 * order the caller wrote it in. The GPU backends do the same on the device. */
#include <stdlib.h>
#include <string.h>

#include "stile_internal.h"

static int cmp_i32(const void *a, const void *b)
{
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int64_t stile_key_tiles_read(const stile_plan *plan, const int32_t *in, int32_t *rows, int32_t *count, int64_t *first_bad)
{
    const int64_t k = plan->r.p.key_tiles_k, tiles = plan->r.tiles;
    const int64_t nrows = plan->r.p.batch * plan->r.p.heads * tiles;
    int64_t bad = 0;
    *first_bad = -1;
    for (int64_t r = 0; r < nrows; r++) {
        const int32_t *src = in + r * k;
        int32_t *dst = rows + r * k, n = 0;
        for (int64_t i = 0; i < k; i++) {
            if (src[i] == -1) continue;
            if (src[i] < -1 || src[i] >= tiles) {
                if (!bad++) *first_bad = r * k + i;
                continue;
            }
            dst[n++] = src[i];
        }
        if (n > 1) qsort(dst, (size_t)n, sizeof *dst, cmp_i32);
        int32_t u = 0;
        for (int32_t i = 0; i < n; i++)
            if (i == 0 || dst[i] != dst[u - 1]) dst[u++] = dst[i];
        count[r] = u;
    }
    return bad;
}
