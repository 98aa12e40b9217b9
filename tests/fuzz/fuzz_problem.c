/* libFuzzer harness: random problems through stile_plan_create on the CPU, then every read-only view
 * of the plan (info, per-head info, key tiles, JSON). Nothing may crash, leak or read out of bounds,
 * and an accepted plan must be self-consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stile/stile.h"

typedef struct reader {
    const uint8_t *d;
    size_t n;
} reader;

static uint64_t take(reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = v << 8 | (r->n ? *r->d : 0);
        if (r->n) r->d++, r->n--;
    }
    return v;
}

/* Mostly small values, where the interesting shapes are; now and then any 64-bit value. */
static int64_t value(reader *r)
{
    unsigned sel = (unsigned)take(r, 1);
    if (sel < 160) return sel % 12;
    if (sel < 224) return (int64_t)take(r, 2) - 64;
    return (int64_t)take(r, 8);
}

/* The harness keeps to at most 2^16 video tokens, 1,024 tiles and 256 heads: bigger problems are
 * valid ones whose planning is legitimately slow or large (a full window over n tiles holds n^2 key
 * tiles), which is not what this target looks for, and they would cut the executions per second. */
static int affordable(const stile_problem *p)
{
    int64_t tokens = 1, tiles = 1;
    for (int i = 0; i < 3; i++) {
        if (p->canvas[i] <= 0 || p->tile[i] <= 0) return 1; /* refused by the checks: cheap */
        if (p->canvas[i] > (1 << 16)) return 0;
        tokens *= p->canvas[i];
        if (tokens > (1 << 16)) return 0;
        tiles *= (p->canvas[i] - 1) / p->tile[i] + 1;
    }
    return tiles <= 1024 && p->heads <= 256;
}

static void quiet(void *user, stile_log_level level, const char *msg) { (void)user, (void)level, (void)msg; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static stile_device *cpu;
    if (!cpu) {
        stile_log_set(quiet, NULL, STILE_LOG_ERROR);
        stile_device_params dp = {.struct_size = sizeof dp, .threads = 1};
        if (stile_device_open("cpu", &dp, &cpu) != STILE_OK) abort();
    }
    reader r = {data, size};
    stile_problem p = {.struct_size = sizeof p};
    p.batch = value(&r);
    for (int i = 0; i < 3; i++) p.canvas[i] = value(&r), p.tile[i] = value(&r), p.window[i] = value(&r);
    p.heads = value(&r);
    p.head_dim = value(&r);
    if (!affordable(&p)) return 0;
    p.text = value(&r);
    p.text_padding = value(&r);
    p.dtype = (stile_dtype)(take(&r, 1) % 5);
    p.order = (stile_token_order)(take(&r, 1) % 3);
    unsigned flags = (unsigned)take(&r, 1);
    if (flags & 1) {
        int64_t bits = (int64_t)take(&r, 8);
        memcpy(&p.scale, &bits, sizeof p.scale); /* any double: NaN, Inf, subnormal, negative */
    }
    stile_strides *st[4] = {&p.q, &p.k, &p.v, &p.o};
    for (int t = 0; t < 4; t++)
        if (flags & (2u << t)) st[t]->batch = value(&r), st[t]->token = value(&r), st[t]->head = value(&r), st[t]->dim = value(&r);
    /* per-head windows: as many as the input holds, at most 64 (heads beyond them make a bad problem) */
    int64_t hw[64][3];
    if (flags & 32) {
        int n = 0;
        while (n < 64 && r.n >= 3) hw[n][0] = value(&r), hw[n][1] = value(&r), hw[n][2] = value(&r), n++;
        if (p.heads > n || p.heads <= 0) return 0; /* the library reads `heads` entries: the caller's promise */
        p.head_windows = (const int64_t(*)[3])hw;
    }

    stile_status check = stile_problem_check(&p);
    stile_plan *plan = NULL;
    stile_status st_plan = stile_plan_create(cpu, &p, &plan);
    if ((st_plan == STILE_OK) != (plan != NULL)) abort();
    if (check != STILE_OK && st_plan == STILE_OK) abort(); /* planning accepted what checking refused */
    if (!plan) return 0;
    stile_plan_info info;
    if (stile_plan_get_info(plan, &info) != STILE_OK) abort();
    if (info.tiles != info.grid[0] * info.grid[1] * info.grid[2] || info.attended_pairs < info.attended_video_pairs) abort();
    stile_problem back = {.struct_size = sizeof back};
    if (stile_plan_get_problem(plan, &back) != STILE_OK || back.heads != p.heads) abort();
    for (int64_t h = 0; h < back.heads && h < 64; h++) {
        stile_head_info hi;
        if (stile_plan_get_head(plan, h, &hi) != STILE_OK) abort();
        for (int64_t q = 0; q < info.tiles && q < 8; q++) {
            const int32_t *tiles;
            int64_t count;
            if (stile_plan_key_tiles(plan, h, q, &tiles, &count) != STILE_OK || count != hi.key_tiles) abort();
            for (int64_t i = 0; i < count; i++)
                if (tiles[i] < 0 || tiles[i] >= info.tiles || (i && tiles[i] <= tiles[i - 1])) abort();
        }
    }
    size_t len = 0;
    if (info.tiles <= 4096 && stile_plan_json(plan, info.tiles > 256, NULL, 0, &len) == STILE_ERR_BUFFER_TOO_SMALL) {
        char *buf = malloc(len + 1);
        if (!buf || stile_plan_json(plan, info.tiles > 256, buf, len + 1, &len) != STILE_OK || strlen(buf) != len) abort();
        free(buf);
    }
    stile_plan_destroy(&plan);
    return 0;
}
