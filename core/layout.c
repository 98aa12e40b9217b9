/* Tile layout: the grid over the canvas, partial edge tiles, and natural <-> tiled token order. */
#include <stdlib.h>

#include "stile_internal.h"

void stile_layout_tile_extent(const stile_layout *l, int64_t tile, int64_t ext[3], int64_t origin[3])
{
    int64_t g[3] = {tile / (l->grid[1] * l->grid[2]), (tile / l->grid[2]) % l->grid[1], tile % l->grid[2]};
    for (int i = 0; i < 3; i++) {
        int64_t o = g[i] * l->tile[i];
        int64_t e = l->canvas[i] - o;
        if (e > l->tile[i]) e = l->tile[i];
        if (origin) origin[i] = o;
        ext[i] = e;
    }
}

stile_status stile_layout_init(stile_layout *l, const int64_t canvas[3], const int64_t tile[3])
{
    l->tiles = 1;
    for (int i = 0; i < 3; i++) {
        l->canvas[i] = canvas[i];
        l->tile[i] = tile[i];
        l->grid[i] = (canvas[i] + tile[i] - 1) / tile[i];
        l->tiles *= l->grid[i];
    }
    l->tile_start = malloc((size_t)(l->tiles + 1) * sizeof *l->tile_start);
    if (!l->tile_start) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for the tile layout");
    /* Tile sizes factor per axis: size(tile) = ext_t * ext_h * ext_w. */
    int64_t pos = 0, ti = 0;
    for (int64_t a = 0; a < l->grid[0]; a++) {
        int64_t et = canvas[0] - a * tile[0] < tile[0] ? canvas[0] - a * tile[0] : tile[0];
        for (int64_t b = 0; b < l->grid[1]; b++) {
            int64_t eh = canvas[1] - b * tile[1] < tile[1] ? canvas[1] - b * tile[1] : tile[1];
            for (int64_t c = 0; c < l->grid[2]; c++) {
                int64_t ew = canvas[2] - c * tile[2] < tile[2] ? canvas[2] - c * tile[2] : tile[2];
                l->tile_start[ti++] = pos;
                pos += et * eh * ew;
            }
        }
    }
    l->tile_start[ti] = pos;
    return STILE_OK;
}

void stile_layout_free(stile_layout *l)
{
    if (!l) return;
    free(l->tile_start);
    l->tile_start = NULL;
}

int64_t stile_layout_natural_to_tiled(const stile_layout *l, int64_t n)
{
    int64_t x[3] = {n / (l->canvas[1] * l->canvas[2]), (n / l->canvas[2]) % l->canvas[1], n % l->canvas[2]};
    int64_t g[3], loc[3];
    for (int i = 0; i < 3; i++) {
        g[i] = x[i] / l->tile[i];
        loc[i] = x[i] % l->tile[i];
    }
    int64_t tile = (g[0] * l->grid[1] + g[1]) * l->grid[2] + g[2];
    int64_t ext[3];
    stile_layout_tile_extent(l, tile, ext, NULL);
    return l->tile_start[tile] + (loc[0] * ext[1] + loc[1]) * ext[2] + loc[2];
}

int64_t stile_layout_tiled_to_natural(const stile_layout *l, int64_t t)
{
    /* binary search for the tile holding position t */
    int64_t lo = 0, hi = l->tiles - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (l->tile_start[mid] <= t) lo = mid; else hi = mid - 1;
    }
    int64_t ext[3], org[3];
    stile_layout_tile_extent(l, lo, ext, org);
    int64_t r = t - l->tile_start[lo];
    int64_t x[3] = {org[0] + r / (ext[1] * ext[2]), org[1] + (r / ext[2]) % ext[1], org[2] + r % ext[2]};
    return (x[0] * l->canvas[1] + x[1]) * l->canvas[2] + x[2];
}
