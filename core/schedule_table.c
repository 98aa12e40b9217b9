/* The device schedule table (schedule_table.h): every distinct window's schedule flattened into one
 * buffer with the query blocks, as the GPU backends upload it and their kernels walk it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stile_internal.h"

stile_status stile_sched_table_pack(const stile_plan *plan, int64_t block_rows, size_t header_bytes, size_t tile_start_size,
                                    void **host, stile_sched_table *t)
{
    *host = NULL;
    memset(t, 0, sizeof *t);
    const stile_layout *l = &plan->layout;
    const stile_resolved *r = &plan->r;
    const int64_t tiles = l->tiles, heads = r->p.heads;
    int64_t nrows = 0, nkeys = 0, nblocks = (r->p.text + block_rows - 1) / block_rows;
    for (int64_t q = 0; q < tiles; q++) nblocks += (l->tile_start[q + 1] - l->tile_start[q] + block_rows - 1) / block_rows;
    for (int64_t s = 0; s < plan->nschedules; s++) {
        nrows += tiles + 1;
        nkeys += plan->schedules[s].row_start[tiles];
    }
    if (2 * (nrows + nkeys) + STILE_BLOCK_INTS * nblocks > INT32_MAX)
        return stile_fail(STILE_ERR_UNSUPPORTED, "the schedule tables exceed 2^31 entries");

    /* the arrays in the order schedule_table.h gives */
    t->tile_start = header_bytes;
    t->row_start = t->tile_start + (size_t)(tiles + 1) * tile_start_size;
    t->head_row = t->row_start + (size_t)nrows * sizeof(int32_t);
    t->key_tiles = t->head_row + (size_t)heads * sizeof(int32_t);
    t->blocks = t->key_tiles + (size_t)(nkeys ? nkeys : 1) * sizeof(int32_t);
    t->query_start = t->blocks + (size_t)(STILE_BLOCK_INTS * nblocks) * sizeof(int32_t);
    t->query_tiles = t->query_start + (size_t)nrows * sizeof(int32_t);
    t->bytes = t->query_tiles + (size_t)(nkeys ? nkeys : 1) * sizeof(int32_t); /* as many pairs as key_tiles */
    t->nblocks = (int)nblocks;
    char *buf = calloc(1, t->bytes);
    if (!buf) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory flattening the schedule");

    for (int64_t q = 0; q <= tiles; q++) {
        if (tile_start_size == sizeof(int64_t)) ((int64_t *)(buf + t->tile_start))[q] = l->tile_start[q];
        else ((int32_t *)(buf + t->tile_start))[q] = (int32_t)l->tile_start[q];
    }
    int32_t *row_start = (int32_t *)(buf + t->row_start), *head_row = (int32_t *)(buf + t->head_row),
            *key_tiles = (int32_t *)(buf + t->key_tiles);
    int32_t *query_start = (int32_t *)(buf + t->query_start), *query_tiles = (int32_t *)(buf + t->query_tiles);
    int64_t ro = 0, ko = 0;
    for (int64_t s = 0; s < plan->nschedules; s++) {
        const stile_schedule *sc = &plan->schedules[s];
        for (int64_t h = 0; h < heads; h++)
            if (plan->head_schedule[h] == s) head_row[h] = (int32_t)ro;
        for (int64_t q = 0; q <= tiles; q++) {
            row_start[ro + q] = (int32_t)(ko + sc->row_start[q]);
            query_start[ro + q] = (int32_t)(ko + sc->query_start[q]); /* the same pairs, transposed */
        }
        ro += tiles + 1;
        memcpy(key_tiles + ko, sc->key_tiles, (size_t)sc->row_start[tiles] * sizeof *key_tiles);
        memcpy(query_tiles + ko, sc->query_tiles, (size_t)sc->query_start[tiles] * sizeof *query_tiles);
        ko += sc->row_start[tiles];
    }

    int32_t *b = (int32_t *)(buf + t->blocks);
    for (int64_t q = 0; q < tiles; q++) {
        const int64_t sz = l->tile_start[q + 1] - l->tile_start[q];
        for (int64_t o = 0; o < sz; o += block_rows, b += STILE_BLOCK_INTS) {
            b[STILE_BLOCK_TILE] = (int32_t)q;
            b[STILE_BLOCK_ROW] = (int32_t)o;
            b[STILE_BLOCK_NROWS] = (int32_t)(sz - o < block_rows ? sz - o : block_rows);
            b[STILE_BLOCK_TOKEN] = (int32_t)(l->tile_start[q] + o);
        }
    }
    for (int64_t o = 0; o < r->p.text; o += block_rows, b += STILE_BLOCK_INTS) {
        b[STILE_BLOCK_TILE] = STILE_BLOCK_TEXT;
        b[STILE_BLOCK_ROW] = 0;
        b[STILE_BLOCK_NROWS] = (int32_t)(r->p.text - o < block_rows ? r->p.text - o : block_rows);
        b[STILE_BLOCK_TOKEN] = (int32_t)(r->video + o);
    }
    *host = buf;
    return STILE_OK;
}
