/* Planning: the block schedule per distinct window (CSR of key tiles per query tile), exact
 * accounting, introspection, and the checks made before every execution. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stile_internal.h"

/* The transposed schedule of s. Window starts rise with the query tile along each axis, so the query
 * tiles attending key tile k on an axis are one range [lo, hi]: those whose window starts at or
 * before k and ends after it; a key tile's row is the box of its three ranges, in raster order. */
static stile_status schedule_transpose(const stile_layout *l, const int64_t win[3], stile_schedule *s)
{
    const int64_t *n = l->grid, total = s->row_start[l->tiles];
    s->query_start = malloc((size_t)(l->tiles + 1) * sizeof *s->query_start);
    s->query_tiles = malloc((size_t)(total ? total : 1) * sizeof *s->query_tiles);
    int64_t *lo[3], *hi[3], *buf = malloc((size_t)(2 * (n[0] + n[1] + n[2])) * sizeof *buf);
    if (!s->query_start || !s->query_tiles || !buf) {
        free(buf);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a transposed schedule");
    }
    for (int i = 0, off = 0; i < 3; off += (int)(2 * n[i]), i++) {
        lo[i] = buf + off;
        hi[i] = buf + off + n[i];
        for (int64_t k = 0; k < n[i]; k++) {
            lo[i][k] = n[i];
            hi[i][k] = -1;
        }
        for (int64_t q = 0; q < n[i]; q++) {
            const int64_t st = stile_window_start(q, win[i], n[i]);
            for (int64_t k = st; k < st + win[i] && k < n[i]; k++) {
                if (q < lo[i][k]) lo[i][k] = q;
                hi[i][k] = q; /* q rises: the last one seen is the largest */
            }
        }
    }
    int32_t *out = s->query_tiles;
    int64_t key = 0;
    s->min_per_key = INT64_MAX;
    s->max_per_key = 0;
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++, key++) {
                s->query_start[key] = (int32_t)(out - s->query_tiles);
                for (int64_t x = lo[0][a]; x <= hi[0][a]; x++)
                    for (int64_t y = lo[1][b]; y <= hi[1][b]; y++)
                        for (int64_t z = lo[2][c]; z <= hi[2][c]; z++) *out++ = (int32_t)((x * n[1] + y) * n[2] + z);
                const int64_t len = out - s->query_tiles - s->query_start[key];
                if (len < s->min_per_key) s->min_per_key = len;
                if (len > s->max_per_key) s->max_per_key = len;
            }
    s->query_start[key] = (int32_t)(out - s->query_tiles);
    free(buf); /* out - query_tiles == total: each (query tile, key tile) pair once either way (tests/test_planner.c) */
    return STILE_OK;
}

/* Build the schedule of one effective window. Key tiles of a query tile are the box
 * [s_t, s_t+w_t) x [s_h, s_h+w_h) x [s_w, s_w+w_w), enumerated in raster (ascending) order. */
static stile_status schedule_build(const stile_layout *l, const int64_t win[3], stile_schedule *s)
{
    const int64_t *n = l->grid;
    memcpy(s->window, win, sizeof s->window);
    s->per_query = win[0] * win[1] * win[2];
    int64_t total;
    if (!stile_mul_ok(s->per_query, l->tiles, &total) || total > INT32_MAX)
        return stile_fail(STILE_ERR_OVERFLOW, "schedule of window %lldx%lldx%lld over %lld tiles exceeds 2^31 entries",
                          (long long)win[0], (long long)win[1], (long long)win[2], (long long)l->tiles);
    s->row_start = malloc((size_t)(l->tiles + 1) * sizeof *s->row_start);
    s->key_tiles = malloc((size_t)(total ? total : 1) * sizeof *s->key_tiles);
    s->run_start = malloc((size_t)(l->tiles + 1) * sizeof *s->run_start);
    s->runs = malloc((size_t)(l->tiles * win[0] * win[1]) * sizeof *s->runs); /* at most one run per (t, h) row */
    if (!s->row_start || !s->key_tiles || !s->run_start || !s->runs)
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a schedule");

    /* Token extents per axis position, so window sums are per-axis products. */
    int64_t *ext[3];
    int64_t *buf = malloc((size_t)(n[0] + n[1] + n[2]) * sizeof *buf);
    if (!buf) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a schedule");
    ext[0] = buf; ext[1] = buf + n[0]; ext[2] = buf + n[0] + n[1];
    for (int i = 0; i < 3; i++)
        for (int64_t g = 0; g < n[i]; g++) {
            int64_t e = l->canvas[i] - g * l->tile[i];
            ext[i][g] = e < l->tile[i] ? e : l->tile[i];
        }

    int32_t *out = s->key_tiles;
    stile_tile_run *run = s->runs;
    int64_t q = 0, pairs = 0;
    for (int64_t a = 0; a < n[0]; a++) {
        int64_t sa = stile_window_start(a, win[0], n[0]), ka = 0;
        for (int64_t x = sa; x < sa + win[0]; x++) ka += ext[0][x];
        for (int64_t b = 0; b < n[1]; b++) {
            int64_t sb = stile_window_start(b, win[1], n[1]), kb = 0;
            for (int64_t x = sb; x < sb + win[1]; x++) kb += ext[1][x];
            for (int64_t c = 0; c < n[2]; c++, q++) {
                int64_t sc = stile_window_start(c, win[2], n[2]), kc = 0;
                for (int64_t x = sc; x < sc + win[2]; x++) kc += ext[2][x];
                s->row_start[q] = (int32_t)(out - s->key_tiles);
                s->run_start[q] = (int32_t)(run - s->runs);
                stile_tile_run *row_runs = run;
                for (int64_t x = sa; x < sa + win[0]; x++)
                    for (int64_t y = sb; y < sb + win[1]; y++) {
                        int32_t base = (int32_t)((x * n[1] + y) * n[2] + sc);
                        for (int64_t z = 0; z < win[2]; z++) *out++ = base + (int32_t)z;
                        if (run > row_runs && run[-1].end == base) run[-1].end = base + (int32_t)win[2];
                        else *run++ = (stile_tile_run){base, base + (int32_t)win[2]};
                    }
                pairs += ext[0][a] * ext[1][b] * ext[2][c] * ka * kb * kc;
            }
        }
    }
    s->row_start[q] = (int32_t)(out - s->key_tiles);
    s->run_start[q] = (int32_t)(run - s->runs);
    s->video_pairs = pairs;
    free(buf);
    return schedule_transpose(l, win, s);
}

/* A head's effective window, sorted to find the distinct ones. */
typedef struct head_window {
    int64_t eff[3], head;
} head_window;

static int cmp_head_window(const void *a, const void *b)
{
    const head_window *x = a, *y = b;
    for (int i = 0; i < 3; i++)
        if (x->eff[i] != y->eff[i]) return x->eff[i] < y->eff[i] ? -1 : 1;
    return (x->head > y->head) - (x->head < y->head);
}

static void plan_free_core(stile_plan *p)
{
    for (int64_t i = 0; i < p->nschedules; i++) {
        free(p->schedules[i].row_start);
        free(p->schedules[i].key_tiles);
        free(p->schedules[i].run_start);
        free(p->schedules[i].runs);
        free(p->schedules[i].query_start);
        free(p->schedules[i].query_tiles);
    }
    free(p->schedules);
    free(p->head_schedule);
    stile_layout_free(&p->layout);
    stile_resolved_free(&p->r);
    free(p);
}

/* The plan's accounting from the video x video pairs of one batch entry, all heads. */
static void plan_accounting(stile_plan *p, int64_t video_pairs)
{
    stile_plan_info *in = &p->info;
    const stile_resolved *r = &p->r;
    const int64_t B = r->p.batch, heads = r->p.heads, keys = r->video + r->text_valid;
    memcpy(in->grid, r->grid, sizeof in->grid);
    in->tiles = r->tiles;
    in->video_tokens = r->video;
    in->tokens = r->tokens;
    in->text_valid = r->text_valid;
    in->distinct_windows = p->nschedules;
    /* video q x text k, text q x (video + valid text) k */
    const int64_t text_pairs = r->video * r->text_valid + r->p.text * keys;
    in->attended_video_pairs = B * video_pairs;
    in->attended_pairs = B * (video_pairs + heads * text_pairs);
    in->full_pairs = B * heads * r->tokens * keys;
    in->flops = 4.0 * (double)r->p.head_dim * (double)in->attended_pairs;
    in->full_flops = 4.0 * (double)r->p.head_dim * (double)in->full_pairs;
    in->sparsity = 1.0 - (double)video_pairs / ((double)heads * (double)r->video * (double)r->video);
}

static int cmp_desc_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* A plan whose key tiles come with each execution: no schedules (head_schedule -1), and accounting
 * as if every query tile attended key_tiles_k distinct tiles, the largest (an upper bound). */
static stile_status key_tiles_plan_core(stile_plan *p, stile_plan **out)
{
    const int64_t heads = p->r.p.heads, tiles = p->r.tiles, k = p->r.p.key_tiles_k;
    p->head_schedule = malloc((size_t)heads * sizeof *p->head_schedule);
    int64_t *size = malloc((size_t)tiles * sizeof *size);
    if (!p->head_schedule || !size) {
        free(size);
        plan_free_core(p);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a plan of %lld tiles", (long long)tiles);
    }
    for (int64_t h = 0; h < heads; h++) p->head_schedule[h] = -1;
    for (int64_t t = 0; t < tiles; t++) size[t] = p->layout.tile_start[t + 1] - p->layout.tile_start[t];
    qsort(size, (size_t)tiles, sizeof *size, cmp_desc_i64);
    int64_t keys = 0; /* <= video: no overflow */
    for (int64_t t = 0; t < k; t++) keys += size[t];
    free(size);
    plan_accounting(p, heads * p->r.video * keys); /* <= heads x video^2: checked by stile_resolve */
    *out = p;
    return STILE_OK;
}

static stile_status plan_core(const stile_problem *problem, stile_plan **out)
{
    stile_plan *p = calloc(1, sizeof *p);
    if (!p) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a plan");
    stile_status rc = stile_resolve(problem, &p->r);
    if (rc != STILE_OK) goto fail;
    rc = stile_layout_init(&p->layout, p->r.p.canvas, p->r.p.tile);
    if (rc != STILE_OK) goto fail;

    const int64_t heads = p->r.p.heads;
    if (p->r.p.key_tiles_k) return key_tiles_plan_core(p, out);
    p->head_schedule = malloc((size_t)heads * sizeof *p->head_schedule);
    p->schedules = calloc((size_t)heads, sizeof *p->schedules);
    if (!p->head_schedule || !p->schedules) {
        rc = stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for %lld head schedules", (long long)heads);
        goto fail;
    }
    /* Distinct effective windows by sorting (heads x distinct comparisons would be quadratic), their
     * schedules' total size checked before any is built, then numbered in the order of their first head. */
    head_window *hw = malloc((size_t)heads * sizeof *hw);
    int32_t *group_schedule = malloc((size_t)heads * sizeof *group_schedule);
    if (!hw || !group_schedule) {
        free(hw);
        free(group_schedule);
        rc = stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for %lld head schedules", (long long)heads);
        goto fail;
    }
    for (int64_t h = 0; h < heads; h++) {
        for (int i = 0; i < 3; i++) hw[h].eff[i] = p->r.windows[h][i] < p->r.grid[i] ? p->r.windows[h][i] : p->r.grid[i];
        hw[h].head = h;
    }
    qsort(hw, (size_t)heads, sizeof *hw, cmp_head_window);
    int64_t groups = 0, entries = 0;
    for (int64_t i = 0; i < heads && entries <= INT32_MAX; i++) {
        if (i == 0 || memcmp(hw[i].eff, hw[i - 1].eff, sizeof hw[i].eff) != 0) {
            entries += hw[i].eff[0] * hw[i].eff[1] * hw[i].eff[2] * p->r.tiles; /* a term <= 2^62; the sum stops past 2^31 */
            group_schedule[groups++] = -1;
        }
        p->head_schedule[hw[i].head] = (int32_t)(groups - 1); /* for now: the head's group */
    }
    free(hw);
    if (entries > INT32_MAX) {
        free(group_schedule);
        rc = stile_fail(STILE_ERR_OVERFLOW, "the key-tile schedules of the distinct windows over %lld tiles exceed 2^31 entries",
                        (long long)p->r.tiles);
        goto fail;
    }
    for (int64_t h = 0; h < heads; h++) {
        const int32_t g = p->head_schedule[h];
        if (group_schedule[g] < 0) {
            int64_t eff[3];
            for (int i = 0; i < 3; i++) eff[i] = p->r.windows[h][i] < p->r.grid[i] ? p->r.windows[h][i] : p->r.grid[i];
            group_schedule[g] = (int32_t)p->nschedules;
            rc = schedule_build(&p->layout, eff, &p->schedules[p->nschedules++]); /* counted even on failure: freed */
            if (rc != STILE_OK) {
                free(group_schedule);
                goto fail;
            }
        }
        p->head_schedule[h] = group_schedule[g];
    }
    free(group_schedule);

    int64_t video_pairs = 0;
    for (int64_t h = 0; h < heads; h++) video_pairs += p->schedules[p->head_schedule[h]].video_pairs;
    plan_accounting(p, video_pairs);
    *out = p;
    return STILE_OK;
fail:
    plan_free_core(p);
    return rc;
}

static stile_status plan_create(stile_device *device, const stile_problem *problem, stile_plan **out);

stile_status stile_plan_create(stile_device *device, const stile_problem *problem, stile_plan **out)
{
    if (out) *out = NULL;
    if (!device) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_create: device is NULL");
    if (!out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_create: out is NULL");
    const stile_device *previous = stile_log_enter(device);
    stile_status st = plan_create(device, problem, out);
    stile_log_leave(previous);
    return st;
}

static stile_status plan_create(stile_device *device, const stile_problem *problem, stile_plan **out)
{
    stile_plan *p = NULL;
    stile_status rc = plan_core(problem, &p);
    if (rc != STILE_OK) return rc;
    p->device = device;
    snprintf(p->info.device, sizeof p->info.device, "%s", device->info.name);
    rc = device->backend->supports(device->impl, p);
    if (rc == STILE_OK) rc = device->backend->plan(device->impl, p, &p->impl);
    if (rc == STILE_OK && device->backend->plan_path) device->backend->plan_path(device->impl, p->impl, p->info.path, sizeof p->info.path);
    if (rc != STILE_OK) {
        plan_free_core(p);
        return rc;
    }
    *out = p;
    return STILE_OK;
}

void stile_plan_destroy(stile_plan **plan)
{
    if (!plan || !*plan) return;
    stile_plan *p = *plan;
    const stile_device *previous = stile_log_enter(p->device);
    if (p->impl) p->device->backend->plan_destroy(p->impl);
    stile_log_leave(previous);
    plan_free_core(p);
    *plan = NULL;
}

stile_status stile_plan_get_info(const stile_plan *plan, stile_plan_info *out)
{
    if (!plan || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_get_info: %s is NULL", plan ? "out" : "plan");
    *out = plan->info;
    return STILE_OK;
}

stile_status stile_plan_get_problem(const stile_plan *plan, stile_problem *out)
{
    if (!plan || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_get_problem: %s is NULL", plan ? "out" : "plan");
    stile_problem layout; /* the caller says which layout it holds; only that is written */
    const uint32_t size = out->struct_size; /* read before import: it may be an older, shorter layout */
    stile_status st = stile_problem_import(out, &layout, "stile_plan_get_problem (out)");
    if (st != STILE_OK) return st;
    stile_problem cur = plan->r.p;
    cur.struct_size = size;
    memcpy(out, &cur, size);
    return STILE_OK;
}

stile_status stile_plan_get_head(const stile_plan *plan, int64_t head, stile_head_info *out)
{
    if (!plan || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_get_head: %s is NULL", plan ? "out" : "plan");
    if (head < 0 || head >= plan->r.p.heads)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "head %lld: must be within 0..%lld", (long long)head,
                          (long long)plan->r.p.heads - 1);
    memset(out, 0, sizeof *out);
    if (plan->r.p.key_tiles_k) { /* no windows: the bounds of the plan's accounting, per head */
        const int64_t pairs = plan->info.attended_video_pairs / plan->r.p.batch / plan->r.p.heads;
        out->key_tiles = plan->r.p.key_tiles_k;
        out->attended_video_pairs = pairs;
        out->sparsity = 1.0 - (double)pairs / ((double)plan->r.video * (double)plan->r.video);
        out->schedule = -1;
        return STILE_OK;
    }
    const stile_schedule *s = &plan->schedules[plan->head_schedule[head]];
    memcpy(out->window, plan->r.windows[head], sizeof out->window);
    memcpy(out->effective, s->window, sizeof out->effective);
    out->key_tiles = s->per_query;
    out->attended_video_pairs = s->video_pairs;
    out->sparsity = 1.0 - (double)s->video_pairs / ((double)plan->r.video * (double)plan->r.video);
    out->schedule = plan->head_schedule[head];
    out->min_query_tiles = s->min_per_key;
    out->max_query_tiles = s->max_per_key;
    return STILE_OK;
}

/* The checks of a schedule row's lookup: pointers, head, and tile (kind: "query" or "key"). */
static stile_status row_check(const stile_plan *plan, int64_t head, int64_t tile, const char *kind, const char *who, int ptrs_ok)
{
    if (!plan || !ptrs_ok) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: an argument is NULL", who);
    if (head < 0 || head >= plan->r.p.heads)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "head %lld: must be within 0..%lld", (long long)head,
                          (long long)plan->r.p.heads - 1);
    if (tile < 0 || tile >= plan->r.tiles)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "%s tile %lld: must be within 0..%lld", kind, (long long)tile,
                          (long long)plan->r.tiles - 1);
    if (plan->r.p.key_tiles_k)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "%s: the plan's key tiles come with each execution (key_tiles_k=%lld)", who,
                          (long long)plan->r.p.key_tiles_k);
    return STILE_OK;
}

stile_status stile_plan_key_tiles(const stile_plan *plan, int64_t head, int64_t query_tile, const int32_t **tiles,
                                  int64_t *count)
{
    stile_status st = row_check(plan, head, query_tile, "query", "stile_plan_key_tiles", tiles && count);
    if (st != STILE_OK) return st;
    const stile_schedule *s = &plan->schedules[plan->head_schedule[head]];
    *tiles = s->key_tiles + s->row_start[query_tile];
    *count = s->row_start[query_tile + 1] - s->row_start[query_tile];
    return STILE_OK;
}

stile_status stile_plan_query_tiles(const stile_plan *plan, int64_t head, int64_t key_tile, const int32_t **tiles,
                                    int64_t *count)
{
    stile_status st = row_check(plan, head, key_tile, "key", "stile_plan_query_tiles", tiles && count);
    if (st != STILE_OK) return st;
    const stile_schedule *s = &plan->schedules[plan->head_schedule[head]];
    *tiles = s->query_tiles + s->query_start[key_tile];
    *count = s->query_start[key_tile + 1] - s->query_start[key_tile];
    return STILE_OK;
}

/* ---- execution: check every tensor before anything is written ---- */

/* Two tensors overlap when they share memory: the same address range, or the same buffer object and
 * overlapping offsets (an address and a handle never alias: a backend takes one kind per buffer). */
int stile_tensor_overlaps(const stile_tensor *a, size_t abytes, const stile_tensor *b, size_t bbytes)
{
    if (!a->handle != !b->handle || a->handle != b->handle) return 0;
    uintptr_t a0 = a->handle ? (uintptr_t)a->offset : (uintptr_t)a->data, b0 = b->handle ? (uintptr_t)b->offset : (uintptr_t)b->data;
    return a0 < b0 + bbytes && b0 < a0 + abytes;
}

/* Where a tensor is, checked: exactly one of data and handle, a handle only where the backend takes
 * them, and the first byte aligned to unit. */
static stile_status check_place(const stile_plan *plan, const stile_tensor *t, const char *name, size_t unit)
{
    if (t->data && t->handle)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "io->%s: data and handle are both set (one place per tensor)", name);
    if (!t->data && !t->handle) return stile_fail(STILE_ERR_NULL_ARGUMENT, "io->%s.data is NULL", name);
    if (t->handle && !plan->device->backend->takes_handles)
        return stile_fail(STILE_ERR_UNSUPPORTED, "io->%s.handle: the %s backend takes addresses (data), not buffer handles", name,
                          plan->device->backend->name);
    const uint64_t first = t->handle ? t->offset : (uint64_t)(uintptr_t)t->data;
    if (first % unit != 0)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "io->%s.%s=%#llx: not aligned to its %zu-byte elements", name,
                          t->handle ? "offset" : "data", (unsigned long long)first, unit);
    if (t->handle && t->offset > UINT64_MAX - t->bytes)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "io->%s: offset %llu + %zu bytes overflows", name, (unsigned long long)t->offset,
                          t->bytes);
    return STILE_OK;
}

stile_status stile_tensor_check(const stile_plan *plan, const stile_tensor *t, const char *name, size_t need)
{
    return stile_tensor_check_as(plan, t, name, plan->r.p.dtype, need);
}

stile_status stile_tensor_check_as(const stile_plan *plan, const stile_tensor *t, const char *name, stile_dtype dt, size_t need)
{
    if (t->dtype != dt && (t->data || t->handle))
        return stile_fail(STILE_ERR_DTYPE_MISMATCH, "io->%s.dtype=%s: %s %s", name,
                          stile_dtype_name(t->dtype) ? stile_dtype_name(t->dtype) : "unknown",
                          dt == plan->r.p.dtype ? "the plan is for" : "it is", stile_dtype_name(dt));
    /* One rule for every backend: a kernel loads elements as their type (misaligned loads are
     * undefined in C, fault on some GPUs, and cannot be bound as typed storage buffers). */
    stile_status st = check_place(plan, t, name, stile_dtype_size(dt));
    if (st != STILE_OK) return st;
    if (t->bytes < need)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "io->%s: strides reach %zu bytes, the buffer has %zu", name, need, t->bytes);
    return STILE_OK;
}

stile_status stile_lse_check(const stile_plan *plan, const stile_tensor *lse, size_t *need)
{
    *need = (size_t)(plan->r.p.batch * plan->r.p.heads * plan->r.tokens) * sizeof(float);
    if (lse->dtype != STILE_DTYPE_F32)
        return stile_fail(STILE_ERR_DTYPE_MISMATCH, "io->lse.dtype=%s: lse is always f32",
                          stile_dtype_name(lse->dtype) ? stile_dtype_name(lse->dtype) : "unknown");
    stile_status st = check_place(plan, lse, "lse", sizeof(float));
    if (st != STILE_OK) return st;
    if (lse->bytes < *need)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "io->lse: needs %zu bytes ([B, heads, tokens] f32), the buffer has %zu", *need,
                          lse->bytes);
    return STILE_OK;
}

stile_status stile_key_tiles_check(const stile_plan *plan, const stile_tensor *kt, const stile_tensor *err,
                                   const stile_tensor *const *outs, const size_t *out_bytes, const char *const *out_names, int nouts)
{
    const stile_resolved *r = &plan->r;
    const int64_t k = r->p.key_tiles_k;
    const int kt_set = kt->data || kt->handle, err_set = err->data || err->handle;
    if (!k) {
        if (kt_set || err_set)
            return stile_fail(STILE_ERR_INVALID_ARGUMENT, "io->%s is set: the plan's windows choose the key tiles (key_tiles_k is 0)",
                              kt_set ? "key_tiles" : "key_tile_errors");
        return STILE_OK;
    }
    if (!kt_set)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "io->key_tiles: the plan takes its key tiles at execution (i32 [B, heads, tiles, %lld])",
                          (long long)k);
    const size_t need = (size_t)(r->p.batch * r->p.heads * r->tiles * k) * sizeof(int32_t); /* < 2^33: stile_resolve */
    const stile_tensor *t[2] = {kt, err};
    static const char *nm[2] = {"key_tiles", "key_tile_errors"};
    const size_t needs[2] = {need, sizeof(int32_t)};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && !err_set) break;
        if (t[i]->dtype != STILE_DTYPE_I32)
            return stile_fail(STILE_ERR_DTYPE_MISMATCH, "io->%s.dtype=%s: it is i32", nm[i],
                              stile_dtype_name(t[i]->dtype) ? stile_dtype_name(t[i]->dtype) : "unknown");
        stile_status st = check_place(plan, t[i], nm[i], sizeof(int32_t));
        if (st != STILE_OK) return st;
        if (t[i]->bytes < needs[i])
            return stile_fail(STILE_ERR_OUT_OF_RANGE, "io->%s: needs %zu bytes%s, the buffer has %zu", nm[i], needs[i],
                              i ? "" : " (i32 [B, heads, tiles, key_tiles_k])", t[i]->bytes);
        for (int j = 0; j < nouts; j++)
            if (stile_tensor_overlaps(t[i], needs[i], outs[j], out_bytes[j]))
                return stile_fail(STILE_ERR_ALIASING, "io->%s overlaps io->%s", out_names[j], nm[i]);
    }
    if (err_set && stile_tensor_overlaps(kt, need, err, sizeof(int32_t)))
        return stile_fail(STILE_ERR_ALIASING, "io->key_tile_errors overlaps io->key_tiles");
    return STILE_OK;
}

stile_status stile_io_check(const stile_plan *plan, const stile_io *in, stile_io *out, const char *what)
{
    if (!plan || !in) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: %s is NULL", what, plan ? "io" : "plan");
    stile_status st = stile_io_import(in, out, what);
    if (st != STILE_OK) return st;
    const stile_io *io = out;
    const stile_resolved *r = &plan->r;
    const stile_tensor *t[4] = {&io->q, &io->k, &io->v, &io->o};
    static const char *nm[4] = {"q", "k", "v", "o"};
    size_t need[4];
    const size_t esz = stile_dtype_size(r->p.dtype);
    for (int i = 0; i < 4; i++) {
        need[i] = (size_t)r->extent[i] * esz;
        if ((st = stile_tensor_check(plan, t[i], nm[i], need[i])) != STILE_OK) return st;
    }
    size_t lse_need = 0;
    if (io->lse.data || io->lse.handle) {
        if ((st = stile_lse_check(plan, &io->lse, &lse_need)) != STILE_OK) return st;
        for (int i = 0; i < 4; i++)
            if (stile_tensor_overlaps(&io->lse, lse_need, t[i], need[i]))
                return stile_fail(STILE_ERR_ALIASING, "io->lse overlaps io->%s", nm[i]);
    }
    for (int i = 0; i < 3; i++)
        if (stile_tensor_overlaps(&io->o, need[3], t[i], need[i])) return stile_fail(STILE_ERR_ALIASING, "io->o overlaps io->%s", nm[i]);
    const stile_tensor *outs[2] = {&io->o, &io->lse};
    const size_t out_bytes[2] = {need[3], lse_need};
    static const char *out_names[2] = {"o", "lse"};
    return stile_key_tiles_check(plan, &io->key_tiles, &io->key_tile_errors, outs, out_bytes, out_names, lse_need ? 2 : 1);
}

stile_status stile_plan_execute(const stile_plan *plan, const stile_io *io)
{
    const stile_device *previous = stile_log_enter(plan ? plan->device : NULL);
    stile_io cur;
    stile_status rc = stile_io_check(plan, io, &cur, "stile_plan_execute");
    if (rc == STILE_OK) {
        stile_exec_info info;
        memset(&info, 0, sizeof info);
        rc = plan->device->backend->execute(plan->device->impl, plan, plan->impl, &cur, &info);
        if (rc == STILE_OK && cur.info) *cur.info = info;
    }
    stile_log_leave(previous);
    return rc;
}
