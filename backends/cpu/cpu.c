/* The CPU backend: runs the block schedule with an online softmax over dense blocks, GEMMs through
 * CBLAS, threads over (query tile, row block) within each (batch, head). */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_internal.h"
#include "cpu_kernels.h"
#include "cpu_threads.h"
#include "module.h"

/* The backend calls BLAS from its own worker threads. A BLAS that threads each call as well
 * oversubscribes the cores: on 2 cores with OpenBLAS 0.3.21 an STA run fell from 166 to 46 GFLOPS.
 * CBLAS has no call for this, so where OpenBLAS is the BLAS, the first open CPU device sets its
 * thread count to 1 and the last one closed restores it (unless params->keep_blas_threads). */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_holders, blas_saved_threads;

static void blas_hold(cpu_device *d)
{
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    if (!set || !get) return;
    pthread_mutex_lock(&blas_lock);
    if (blas_holders++ == 0) {
        blas_saved_threads = get();
        set(1);
        stile_log(STILE_LOG_INFO, "cpu: OpenBLAS set to 1 thread while CPU devices are open (it had %d)", blas_saved_threads);
    }
    d->holds_blas = 1;
    pthread_mutex_unlock(&blas_lock);
}

static void blas_release(cpu_device *d)
{
    if (!d->holds_blas) return;
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    pthread_mutex_lock(&blas_lock);
    if (--blas_holders == 0 && set) set(blas_saved_threads);
    pthread_mutex_unlock(&blas_lock);
}

/* ---- device ---- */

static int cpu_device_count(char *reason, size_t size)
{
    (void)reason;
    (void)size;
    return 1;
}

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown processor");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = 0;
                snprintf(out, size, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static stile_status cpu_device_open(int index, const stile_device_params *params, void **impl, stile_device_info *info)
{
    (void)index;
    cpu_device *d = calloc(1, sizeof *d);
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory opening the CPU device");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    d->threads = params && params->threads > 0 ? params->threads : (int)(n > 0 ? n : 1);
    /* Name the BLAS where it can tell (OpenBLAS can); CBLAS itself has no such call. */
    char *(*get_config)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
    char model[80];
    cpu_model(model, sizeof model);
    snprintf(info->description, sizeof info->description, "%s, %d threads, BLAS: %.80s", model, d->threads,
             get_config ? get_config() : "CBLAS");
    snprintf(info->card, sizeof info->card, "%s", model);
    snprintf(info->driver, sizeof info->driver, "%.95s", get_config ? get_config() : "CBLAS");
    if (!(params && params->keep_blas_threads)) blas_hold(d);
    *impl = d;
    return STILE_OK;
}

static void cpu_device_close(void *impl)
{
    blas_release(impl);
    free(impl);
}

/* ---- plan ---- */

static stile_status cpu_supports(void *device, const stile_plan *plan)
{
    (void)device;
    const stile_problem *p = &plan->r.p;
    if (p->head_dim > CPU_MAX_HEAD_DIM)
        return stile_fail(STILE_ERR_UNSUPPORTED, "head_dim=%lld: the CPU backend supports 1..%d", (long long)p->head_dim,
                          CPU_MAX_HEAD_DIM);
    if (plan->r.tokens > INT32_MAX)
        return stile_fail(STILE_ERR_UNSUPPORTED, "%lld tokens: the CPU backend's BLAS calls index with int",
                          (long long)plan->r.tokens);
    return STILE_OK;
}

static void cpu_plan_destroy(void *impl)
{
    cpu_plan *cp = impl;
    if (!cp) return;
    free(cp->items);
    free(cp);
}

static stile_status cpu_plan_create(void *device, const stile_plan *plan, void **impl)
{
    (void)device;
    const stile_resolved *r = &plan->r;
    const stile_layout *l = &plan->layout;
    cpu_plan *cp = calloc(1, sizeof *cp);
    if (!cp) goto oom;
    int64_t nitems = (r->p.text + CPU_ROW_BLOCK - 1) / CPU_ROW_BLOCK;
    cp->max_rows = r->p.text < CPU_ROW_BLOCK ? r->p.text : CPU_ROW_BLOCK;
    for (int64_t t = 0; t < l->tiles; t++) {
        int64_t sz = l->tile_start[t + 1] - l->tile_start[t];
        nitems += (sz + CPU_ROW_BLOCK - 1) / CPU_ROW_BLOCK;
        if (sz > cp->max_rows) cp->max_rows = sz;
    }
    cp->items = malloc((size_t)nitems * sizeof *cp->items);
    if (!cp->items) goto oom;
    for (int64_t t = 0; t < l->tiles; t++) {
        int64_t sz = l->tile_start[t + 1] - l->tile_start[t];
        for (int64_t o = 0; o < sz; o += CPU_ROW_BLOCK)
            cp->items[cp->nitems++] = (cpu_item){t, l->tile_start[t] + o, o, sz - o < CPU_ROW_BLOCK ? sz - o : CPU_ROW_BLOCK};
    }
    for (int64_t o = 0; o < r->p.text; o += CPU_ROW_BLOCK)
        cp->items[cp->nitems++] =
            (cpu_item){-1, r->video + o, 0, r->p.text - o < CPU_ROW_BLOCK ? r->p.text - o : CPU_ROW_BLOCK};

    *impl = cp;
    return STILE_OK;
oom:
    cpu_plan_destroy(cp);
    return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning on the CPU");
}

/* ---- execute ---- */

typedef struct cpu_exec {
    const stile_plan *plan;
    const cpu_plan *cp;
    const stile_io *io;
    int64_t b, h;
    int64_t keys;      /* packed keys: video (tiled order) then valid text */
    float *kp, *vp;    /* [keys x D] */
    float *work;       /* per thread: see thread_buffers */
    size_t work_floats;
    int64_t *pos;      /* per thread: max_rows positions */
    float qscale;      /* softmax scale * log2(e): scores come out in log2 units */
    cpu_key_tiles kt;  /* plans with key_tiles_k: the caller's key tiles, read */
    const stile_region *rg; /* a region of the queries (distributed plans), or NULL: all of them */
    int64_t rg_video;       /* with rg: video tokens of its hold box (q, o and lse index them, then the text) */
    int64_t *run;           /* with rg: the items it computes (nrun of them) */
    int64_t nrun;
    stile_strides qs, os;   /* q's and o's: the plan's, or with rg the batch entries of its tokens apart */
} cpu_exec;

stile_status stile_cpu_key_tiles_read(const stile_plan *plan, const stile_tensor *key_tiles, cpu_key_tiles *out)
{
    out->rows = out->count = NULL;
    const int64_t k = plan->r.p.key_tiles_k, nrows = plan->r.p.batch * plan->r.p.heads * plan->r.tiles;
    if (!k) return STILE_OK;
    out->rows = malloc((size_t)(nrows * k) * sizeof *out->rows);
    out->count = malloc((size_t)nrows * sizeof *out->count);
    if (!out->rows || !out->count) {
        stile_cpu_key_tiles_free(out);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "CPU: out of memory for %lld rows of key tiles", (long long)nrows);
    }
    int64_t first;
    const int64_t bad = stile_key_tiles_read(plan, key_tiles->data, out->rows, out->count, &first);
    if (!bad) return STILE_OK;
    stile_cpu_key_tiles_free(out);
    const int64_t row = first / k, tiles = plan->r.tiles, H = plan->r.p.heads;
    return stile_fail(STILE_ERR_OUT_OF_RANGE,
                      "io->key_tiles: %lld entries outside -1..%lld; the first, [%lld, %lld, %lld, %lld], is %d (nothing written)",
                      (long long)bad, (long long)tiles - 1, (long long)(row / tiles / H), (long long)(row / tiles % H),
                      (long long)(row % tiles), (long long)(first % k), (int)((const int32_t *)key_tiles->data)[first]);
}

void stile_cpu_key_tiles_free(cpu_key_tiles *kt)
{
    free(kt->rows);
    free(kt->count);
    kt->rows = kt->count = NULL;
}

void stile_cpu_tile_positions(const stile_plan *plan, int64_t tile, int64_t local, int64_t rows, int64_t *pos)
{
    const stile_layout *l = &plan->layout;
    if (plan->r.p.order == STILE_ORDER_TILED) {
        for (int64_t i = 0; i < rows; i++) pos[i] = l->tile_start[tile] + local + i;
        return;
    }
    int64_t ext[3], org[3];
    stile_layout_tile_extent(l, tile, ext, org);
    const int64_t H = l->canvas[1], W = l->canvas[2];
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = local + i;
        int64_t t = org[0] + r / (ext[1] * ext[2]), hh = org[1] + (r / ext[2]) % ext[1], w = org[2] + r % ext[2];
        pos[i] = (t * H + hh) * W + w;
    }
}

void stile_cpu_load_row(const void *data, stile_dtype dt, const stile_strides *s, int64_t b, int64_t h, int64_t pos, int64_t D,
                        float *dst, float mul)
{
    const int64_t base = b * s->batch + pos * s->token + h * s->head;
    if (dt == STILE_DTYPE_F32 && s->dim == 1) {
        const float *src = (const float *)data + base;
        for (int64_t d = 0; d < D; d++) dst[d] = src[d] * mul;
        return;
    }
    for (int64_t d = 0; d < D; d++) dst[d] = stile_load_f32(data, dt, base + d * s->dim) * mul;
}

void stile_cpu_store_row(void *data, stile_dtype dt, const stile_strides *s, int64_t b, int64_t h, int64_t pos, int64_t D,
                         const float *src, float mul)
{
    const int64_t base = b * s->batch + pos * s->token + h * s->head;
    for (int64_t d = 0; d < D; d++) {
        float v = src[d] * mul;
        int64_t i = base + d * s->dim;
        switch (dt) {
        case STILE_DTYPE_F32: ((float *)data)[i] = v; break;
        case STILE_DTYPE_F16: ((uint16_t *)data)[i] = stile_float_to_half(v); break;
        case STILE_DTYPE_BF16: ((uint16_t *)data)[i] = stile_float_to_bf16(v); break;
        case STILE_DTYPE_I32: break; /* never a value tensor (stile_resolve) */
        }
    }
}

/* Token `pos` of tensor `which` for (b, h) as D floats times mul. */
static void load_row(const cpu_exec *x, int which, int64_t pos, float *dst, float mul)
{
    const stile_resolved *r = &x->plan->r;
    const stile_tensor *t = which == STILE_Q ? &x->io->q : which == STILE_K ? &x->io->k : &x->io->v;
    stile_cpu_load_row(t->data, r->p.dtype, which == STILE_Q ? &x->qs : &r->strides[which], x->b, x->h, pos, r->p.head_dim, dst, mul);
}

static void store_row(const cpu_exec *x, int64_t pos, const float *src, float mul)
{
    const stile_resolved *r = &x->plan->r;
    stile_cpu_store_row(x->io->o.data, r->p.dtype, &x->os, x->b, x->h, pos, r->p.head_dim, src, mul);
}

/* Phase 1: item t < tiles packs key tile t; item == tiles packs the valid text keys. */
static void pack_item(void *ctx, int64_t item, int thread)
{
    cpu_exec *x = ctx;
    const stile_plan *plan = x->plan;
    const int64_t D = plan->r.p.head_dim;
    if (item == plan->layout.tiles) {
        for (int64_t j = 0; j < plan->r.text_valid; j++) {
            int64_t row = plan->r.video + j;
            load_row(x, STILE_K, row, x->kp + row * D, 1.0f);
            load_row(x, STILE_V, row, x->vp + row * D, 1.0f);
        }
        return;
    }
    int64_t *pos = x->pos + (size_t)thread * (size_t)x->cp->max_rows;
    int64_t first = plan->layout.tile_start[item], rows = plan->layout.tile_start[item + 1] - first;
    stile_cpu_tile_positions(plan, item, 0, rows, pos);
    for (int64_t i = 0; i < rows; i++) {
        load_row(x, STILE_K, pos[i], x->kp + (first + i) * D, 1.0f);
        load_row(x, STILE_V, pos[i], x->vp + (first + i) * D, 1.0f);
    }
}

/* One chunk of keys [k0, k0+n) against the row block: S = Q K^T, online softmax, acc += P V. */
static void attend_span(const cpu_exec *x, int64_t m, int64_t start, int64_t end, float *q, float *s, float *acc, float *mx,
                        float *l, float *alpha)
{
    const int64_t D = x->plan->r.p.head_dim;
    for (int64_t k0 = start; k0 < end; k0 += CPU_KEY_CHUNK) {
        int64_t n = end - k0 < CPU_KEY_CHUNK ? end - k0 : CPU_KEY_CHUNK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)D, 1.0f, q, (int)D, x->kp + k0 * D, (int)D,
                    0.0f, s, (int)n);
        stile_cpu_softmax_block(s, m, n, n, mx, l, alpha);
        stile_cpu_scale_rows(acc, m, D, alpha);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)D, (int)n, 1.0f, s, (int)n, x->vp + k0 * D, (int)D,
                    1.0f, acc, (int)D);
    }
}

/* Whether tile t of the plan's grid lies in box [lo, hi). */
static int tile_in_box(const stile_plan *plan, int64_t t, const int64_t lo[3], const int64_t hi[3])
{
    const int64_t *g = plan->layout.grid, c[3] = {t / (g[1] * g[2]), t / g[2] % g[1], t % g[2]};
    for (int a = 0; a < 3; a++)
        if (c[a] < lo[a] || c[a] >= hi[a]) return 0;
    return 1;
}

/* With a region: where the rows' canvas positions pos[] sit in the region's q, o and lse (natural order
 * within the hold box, whose first token is origin and extent ext). */
static void region_positions(const cpu_exec *x, int64_t m, int64_t *pos)
{
    const stile_layout *l = &x->plan->layout;
    int64_t org[3], ext[3];
    stile_region_extent(l, x->rg, ext);
    for (int a = 0; a < 3; a++) org[a] = x->rg->hold[0][a] * l->tile[a];
    for (int64_t i = 0; i < m; i++) {
        const int64_t n = pos[i], t = n / (l->canvas[1] * l->canvas[2]), h = n / l->canvas[2] % l->canvas[1], w = n % l->canvas[2];
        pos[i] = ((t - org[0]) * ext[1] + h - org[1]) * ext[2] + w - org[2];
    }
}

/* A text query block of a region attends the key tiles of the hold box (runs of consecutive tiles). */
static void attend_hold(const cpu_exec *x, int64_t m, float *q, float *s, float *acc, float *mx, float *l, float *alpha)
{
    const stile_plan *plan = x->plan;
    const int64_t *ts = plan->layout.tile_start;
    for (int64_t t = 0; t < plan->layout.tiles;) {
        if (!tile_in_box(plan, t, x->rg->hold[0], x->rg->hold[1])) {
            t++;
            continue;
        }
        int64_t e = t + 1;
        while (e < plan->layout.tiles && tile_in_box(plan, e, x->rg->hold[0], x->rg->hold[1])) e++;
        attend_span(x, m, ts[t], ts[e], q, s, acc, mx, l, alpha);
        t = e;
    }
}

/* Phase 2: one row block of queries against every key it attends. */
static void compute_item(void *ctx, int64_t index, int thread)
{
    cpu_exec *x = ctx;
    const stile_plan *plan = x->plan;
    const stile_resolved *r = &plan->r;
    const int64_t item = x->rg ? x->run[index] : index;
    const cpu_item *it = &x->cp->items[item];
    const int64_t D = r->p.head_dim, m = it->rows;
    float *q = x->work + (size_t)thread * x->work_floats;
    float *acc = q + CPU_ROW_BLOCK * D, *s = acc + CPU_ROW_BLOCK * D, *mx = s + (size_t)CPU_ROW_BLOCK * CPU_KEY_CHUNK;
    float *l = mx + CPU_ROW_BLOCK, *alpha = l + CPU_ROW_BLOCK;
    int64_t *pos = x->pos + (size_t)thread * (size_t)x->cp->max_rows;

    if (it->tile >= 0) {
        stile_cpu_tile_positions(plan, it->tile, it->local, m, pos);
        if (x->rg) region_positions(x, m, pos);
    } else {
        const int64_t first = x->rg ? x->rg_video + it->first - r->video : it->first;
        for (int64_t i = 0; i < m; i++) pos[i] = first + i;
    }
    for (int64_t i = 0; i < m; i++) {
        load_row(x, STILE_Q, pos[i], q + i * D, x->qscale);
        mx[i] = -INFINITY;
        l[i] = 0.0f;
    }
    memset(acc, 0, (size_t)(m * D) * sizeof *acc);

    if (it->tile >= 0 && x->kt.rows) {
        /* the caller's tiles, ascending: each run of consecutive ones is one range of the packed keys */
        const int64_t row = (x->b * r->p.heads + x->h) * plan->layout.tiles + it->tile;
        const int32_t *list = x->kt.rows + row * r->p.key_tiles_k, n = x->kt.count[row];
        const int64_t *ts = plan->layout.tile_start;
        for (int32_t i = 0, j; i < n; i = j) {
            j = stile_cpu_run_end(list, i, n);
            int64_t end = ts[list[j - 1] + 1];
#ifdef STILE_FAULT_DROP_LAST_KEY
            if (j == n) end--; /* the same deliberate fault as below: the last key of the list */
#endif
            attend_span(x, m, ts[list[i]], end, q, s, acc, mx, l, alpha);
        }
        if (r->text_valid > 0) attend_span(x, m, r->video, x->keys, q, s, acc, mx, l, alpha);
    } else if (it->tile >= 0) {
        /* Each run of consecutive key tiles is one contiguous range of the packed (tiled-order) keys. */
        const stile_schedule *sc = &plan->schedules[plan->head_schedule[x->h]];
        const int64_t *ts = plan->layout.tile_start;
        for (int32_t k = sc->run_start[it->tile]; k < sc->run_start[it->tile + 1]; k++) {
            int64_t end = ts[sc->runs[k].end];
#ifdef STILE_FAULT_DROP_LAST_KEY
            /* A deliberate fault, built only into tests/test_mask_probe.c's copy of the library: every
             * video query skips the last video key of its window, which the sampled NMSE cannot see. */
            if (k == sc->run_start[it->tile + 1] - 1) end--;
#endif
            attend_span(x, m, ts[sc->runs[k].first], end, q, s, acc, mx, l, alpha);
        }
        if (r->text_valid > 0) attend_span(x, m, r->video, x->keys, q, s, acc, mx, l, alpha);
    } else if (x->rg) {
        attend_hold(x, m, q, s, acc, mx, l, alpha);
        if (x->rg->text_keys && r->text_valid > 0) attend_span(x, m, r->video, x->keys, q, s, acc, mx, l, alpha);
    } else {
        attend_span(x, m, 0, x->keys, q, s, acc, mx, l, alpha);
    }

    float *lse = x->io->lse.data;
    const int64_t lse_row = x->rg ? x->rg_video + r->p.text : r->tokens;
    for (int64_t i = 0; i < m; i++) {
        /* a row of no keys (an empty set of tiles and no valid text) has l = 0: its output is 0, its LSE -inf */
        const int none = l[i] == 0.0f;
        store_row(x, pos[i], acc + i * D, none ? 0.0f : 1.0f / l[i]);
        if (lse)
            lse[(x->b * r->p.heads + x->h) * lse_row + pos[i]] = none ? -INFINITY : (float)((mx[i] + log2((double)l[i])) * M_LN2);
    }
}

static stile_status cpu_execute_region(void *device, const stile_plan *plan, void *impl, const stile_io *io, const stile_region *rg,
                                       stile_exec_info *info)
{
    snprintf(info->path, sizeof info->path, "cblas");
    cpu_device *dev = device;
    const stile_resolved *r = &plan->r;
    const int64_t D = r->p.head_dim;
    cpu_exec x = {.plan = plan, .cp = impl, .io = io, .rg = rg, .qs = r->strides[STILE_Q], .os = r->strides[STILE_O]};
    if (rg) {
        int64_t ext[3];
        x.rg_video = stile_region_extent(&plan->layout, rg, ext);
        x.qs.batch = (x.rg_video + r->p.text) * x.qs.token; /* regions' tensors are contiguous [B, S, H, D] */
        x.os.batch = (x.rg_video + r->p.text) * x.os.token;
        x.run = malloc((size_t)x.cp->nitems * sizeof *x.run);
        if (!x.run) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "CPU execute: out of memory for a region's items");
        for (int64_t i = 0; i < x.cp->nitems; i++) {
            const int64_t t = x.cp->items[i].tile;
            if (t >= 0 ? tile_in_box(plan, t, rg->run[0], rg->run[1]) : rg->text_queries) x.run[x.nrun++] = i;
        }
    }
    x.keys = r->video + r->text_valid;
    x.qscale = (float)(r->p.scale * M_LOG2E);
    x.work_floats = (size_t)(2 * CPU_ROW_BLOCK * D + CPU_ROW_BLOCK * CPU_KEY_CHUNK + 3 * CPU_ROW_BLOCK);
    x.work_floats = (x.work_floats + 15) & ~(size_t)15; /* keep each thread's block 64-byte aligned */
    int threads = dev->threads;
    x.kp = malloc((size_t)(x.keys * D) * sizeof(float));
    x.vp = malloc((size_t)(x.keys * D) * sizeof(float));
    x.work = aligned_alloc(64, (size_t)threads * x.work_floats * sizeof(float));
    x.pos = malloc((size_t)threads * (size_t)x.cp->max_rows * sizeof *x.pos);
    stile_status rc = STILE_OK;
    if (!x.kp || !x.vp || !x.work || !x.pos) {
        rc = stile_fail(STILE_ERR_OUT_OF_MEMORY, "CPU execute: out of memory for %lld packed keys x %lld", (long long)x.keys,
                        (long long)D);
        goto done;
    }
    if ((rc = stile_cpu_key_tiles_read(plan, &io->key_tiles, &x.kt)) != STILE_OK) goto done; /* before anything is written */
    for (x.b = 0; x.b < r->p.batch; x.b++)
        for (x.h = 0; x.h < r->p.heads; x.h++) {
            stile_cpu_parallel_for(threads, plan->layout.tiles + 1, pack_item, &x);
            stile_cpu_parallel_for(threads, rg ? x.nrun : x.cp->nitems, compute_item, &x);
        }
done:
    free(x.run);
    free(x.kp);
    free(x.vp);
    free(x.work);
    free(x.pos);
    stile_cpu_key_tiles_free(&x.kt);
    return rc;
}

static stile_status cpu_execute(void *device, const stile_plan *plan, void *impl, const stile_io *io, stile_exec_info *info)
{
    return cpu_execute_region(device, plan, impl, io, NULL, info);
}

/* ---- buffers: host memory ---- */

static stile_status cpu_buffer_alloc(void *device, size_t bytes, void **ptr)
{
    (void)device;
    *ptr = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    return *ptr ? STILE_OK : stile_fail(STILE_ERR_OUT_OF_MEMORY, "cpu: out of memory for a %zu-byte buffer", bytes);
}

static void cpu_buffer_free(void *device, void *ptr)
{
    (void)device;
    free(ptr);
}

static stile_status cpu_buffer_copy(void *device, void *dst, const void *src, size_t bytes, int to_device)
{
    (void)device;
    (void)to_device;
    memcpy(dst, src, bytes);
    return STILE_OK;
}

static void cpu_plan_path(void *device, void *impl, char *buf, size_t size)
{
    (void)device;
    (void)impl;
    snprintf(buf, size, "cblas");
}

const stile_backend stile_backend_cpu = {
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_open = cpu_device_open,
    .device_close = cpu_device_close,
    .supports = cpu_supports,
    .plan = cpu_plan_create,
    .plan_destroy = cpu_plan_destroy,
    .execute = cpu_execute,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_copy = cpu_buffer_copy,
    .plan_path = cpu_plan_path,
    .backward = stile_cpu_backward,
    .backward_flops = stile_cpu_backward_flops,
    .vsa = stile_cpu_vsa,
    .execute_region = cpu_execute_region,
    .copy_rows = stile_cpu_copy_rows,
    .merge = stile_cpu_merge,
};

const stile_module_info stile_module_cpu = {"cpu", &stile_backend_cpu, NULL};

