/* The CUDA backend's host side (and HIP's, built from this file with -DSTILE_HIP): devices, device
 * memory, the plan's schedule tables on the device, and launches on the caller's stream. Every
 * runtime error becomes a stile status with the runtime's message in the log; nothing aborts. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_vendor.h"
#ifndef STILE_HIP
#include <cuda.h> /* CUcontext: the caller's context, saved and restored */
#endif
#include "sta_kernel.h"
#include "stile/stile_vsa.h"
#include "module.h"

#ifdef STILE_HIP
#define BACKEND_SYMBOL stile_backend_hip
#define MODULE_SYMBOL stile_module_hip
#else
#define BACKEND_SYMBOL stile_backend_cuda
#define MODULE_SYMBOL stile_module_cuda
#endif

typedef struct gpu_device {
    int index;
    int cc;            /* compute capability major*10 + minor (CUDA) */
    size_t smem_optin; /* shared memory a block may opt in to */
} gpu_device;

typedef struct gpu_plan {
    int device;    /* the device index the table lives on */
    void *table;   /* the schedule table (core/schedule_table.h), one device allocation */
    sta_params base;
} gpu_plan;

static stile_status gpu_fail(gpuError_t e, const char *what)
{
    const stile_status st = e == gpuErrorMemoryAllocation ? STILE_ERR_OUT_OF_MEMORY : gpuErrorIsFatal(e) ? STILE_ERR_DEVICE_LOST : STILE_ERR_BACKEND;
    return stile_fail(st, "%s: %s: %s%s", STILE_GPU_NAME, what, gpuGetErrorString(e),
                      st == STILE_ERR_DEVICE_LOST ? " (the context is unusable: close the device)" : "");
}

/* A call makes its device current and gives the caller's state back afterwards, so an application
 * working on another GPU, or in a context of its own, keeps it. CUDA: the caller's current context
 * (none included) is saved and restored exactly, through the driver's cuCtxGetCurrent and
 * cuCtxSetCurrent, so no context is made on a device the caller never touched. Where the driver
 * entry points are not found, and on HIP, the runtime's current device is restored instead (a
 * thread that never chose one reads as device 0, which is then made current again). */
typedef struct gpu_scope {
    int previous, restore;
#ifndef STILE_HIP
    CUcontext ctx;
    int have_ctx;
#endif
} gpu_scope;

#ifndef STILE_HIP
typedef CUresult (*ctx_get_fn)(CUcontext *ctx);
typedef CUresult (*ctx_set_fn)(CUcontext ctx);
static ctx_get_fn ctx_get;
static ctx_set_fn ctx_set;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_load(void)
{
    void *g = NULL, *s = NULL;
    enum cudaDriverEntryPointQueryResult qg = cudaDriverEntryPointSymbolNotFound, qs = qg;
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &g, 4000, cudaEnableDefault, &qg) == cudaSuccess &&
        cudaGetDriverEntryPointByVersion("cuCtxSetCurrent", &s, 4000, cudaEnableDefault, &qs) == cudaSuccess &&
        qg == cudaDriverEntryPointSuccess && qs == cudaDriverEntryPointSuccess) {
        *(void **)&ctx_get = g;
        *(void **)&ctx_set = s;
    } else {
        cudaGetLastError();
    }
}
#endif

static gpuError_t gpu_enter(int index, gpu_scope *s)
{
    s->restore = 0;
#ifndef STILE_HIP
    pthread_once(&ctx_once, ctx_load);
    s->have_ctx = ctx_get && ctx_set && ctx_get(&s->ctx) == CUDA_SUCCESS;
    if (s->have_ctx) return gpuSetDevice(index);
#endif
    s->restore = gpuGetDevice(&s->previous) == gpuSuccess && s->previous != index;
    return gpuSetDevice(index);
}

static void gpu_leave(const gpu_scope *s)
{
#ifndef STILE_HIP
    if (s->have_ctx) {
        ctx_set(s->ctx);
        return;
    }
#endif
    if (s->restore) gpuSetDevice(s->previous);
}

static int gpu_device_count(char *reason, size_t size)
{
    int n = 0;
    gpuError_t e = gpuGetDeviceCount(&n);
    if (e != gpuSuccess) {
        snprintf(reason, size, "no usable driver or device: %s", gpuGetErrorString(e));
        gpuGetLastError(); /* clear the sticky error */
        return 0;
    }
    if (n == 0) snprintf(reason, size, "the driver reports no device");
    return n;
}

static stile_status gpu_device_open(int index, const stile_device_params *params, void **impl, stile_device_info *info)
{
    (void)params;
    gpuDeviceProp prop;
    gpu_scope scope;
    gpuError_t e = gpu_enter(index, &scope);
    if (e == gpuSuccess) e = gpuGetDeviceProperties(&prop, index);
    gpu_leave(&scope);
    if (e != gpuSuccess) return gpu_fail(e, "opening the device");
    gpu_device *d = calloc(1, sizeof *d);
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory opening a GPU device");
    d->index = index;
    d->cc = prop.major * 10 + prop.minor;
#ifdef STILE_HIP
    d->smem_optin = prop.sharedMemPerBlock; /* ROCm's properties lack the opt-in size; HIP runs the portable kernels */
#else
    d->smem_optin = prop.sharedMemPerBlockOptin;
#endif
    int drv = 0, rt = 0;
    gpuDriverGetVersion(&drv);
    gpuRuntimeGetVersion(&rt);
    snprintf(info->card, sizeof info->card, "%.95s", prop.name);
    snprintf(info->driver, sizeof info->driver, "driver API %d.%d, runtime %d.%d", drv / 1000, (drv % 1000) / 10, rt / 1000,
             (rt % 1000) / 10);
    snprintf(info->description, sizeof info->description, "%.80s, compute capability %d.%d, %d SMs, %.0f GiB, %.60s", prop.name,
             prop.major, prop.minor, prop.multiProcessorCount, (double)prop.totalGlobalMem / (1u << 30), info->driver);
    *impl = d;
    return STILE_OK;
}

static void gpu_device_close(void *impl) { free(impl); }

static stile_status gpu_supports(void *device, const stile_plan *plan)
{
    (void)device;
    const stile_problem *p = &plan->r.p;
    if (p->head_dim > 256)
        return stile_fail(STILE_ERR_UNSUPPORTED, "head_dim=%lld: the %s backend supports 1..256", (long long)p->head_dim,
                          STILE_GPU_NAME);
    if (plan->r.tokens > INT32_MAX / 2 || plan->r.p.batch > 65535 || plan->r.p.heads > 65535)
        return stile_fail(STILE_ERR_UNSUPPORTED, "%s: more than 2^30 tokens, 65535 heads or 65535 batch entries",
                          STILE_GPU_NAME);
    if (p->key_tiles_k && plan->r.tiles > STA_KT_MAX_TILES)
        return stile_fail(STILE_ERR_UNSUPPORTED, "%s: caller-chosen key tiles over %lld tiles: at most %d (a row's set is a "
                                                 "bitmap in 48 KiB of shared memory)", STILE_GPU_NAME, (long long)plan->r.tiles, STA_KT_MAX_TILES);
    return STILE_OK;
}

static void gpu_plan_destroy(void *impl)
{
    gpu_plan *gp = impl;
    if (!gp) return;
    if (gp->table) {
        gpu_scope scope;
        if (gpu_enter(gp->device, &scope) == gpuSuccess) gpuFree(gp->table);
        gpu_leave(&scope);
    }
    free(gp);
}

static stile_status gpu_plan_create(void *device, const stile_plan *plan, void **impl)
{
    gpu_device *dev = device;
    const stile_resolved *r = &plan->r;
    const stile_layout *l = &plan->layout;
    const int64_t tiles = l->tiles, heads = r->p.heads;
    /* one device allocation: the schedule table (core/schedule_table.h), tile_start 64-bit */
    void *host;
    stile_sched_table tab;
    stile_status pst = stile_sched_table_pack(plan, STILE_BLOCK_ROWS_GPU, 0, sizeof(long long), &host, &tab);
    if (pst != STILE_OK) return pst;
    gpu_plan *gp = calloc(1, sizeof *gp);
    if (gp) gp->device = dev->index;
    if (!gp) {
        free(host);
        return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning for %s", STILE_GPU_NAME);
    }
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    if (e == gpuSuccess) e = gpuMalloc(&gp->table, tab.bytes);
    if (e == gpuSuccess) e = gpuMemcpy(gp->table, host, tab.bytes, gpuMemcpyHostToDevice);
    gpu_leave(&scope);
    free(host);
    if (e != gpuSuccess) {
        gpu_plan_destroy(gp);
        return gpu_fail(e, "uploading the schedule");
    }
    const char *dt = gp->table;
    sta_params *bp = &gp->base;
    bp->tile_start = (const long long *)(dt + tab.tile_start);
    bp->row_start = (const int *)(dt + tab.row_start);
    bp->head_row = (const int *)(dt + tab.head_row);
    bp->key_tiles = (const int *)(dt + tab.key_tiles);
    bp->blocks = (const int *)(dt + tab.blocks);
    bp->nblocks = tab.nblocks;
    bp->query_start = (const int *)(dt + tab.query_start);
    bp->query_tiles = (const int *)(dt + tab.query_tiles);
    bp->batch = (int)r->p.batch;
    bp->heads = (int)heads;
    bp->head_dim = (int)r->p.head_dim;
    bp->dtype = (int)r->p.dtype;
    for (int a = 0; a < 3; a++) {
        bp->canvas[a] = (int)r->p.canvas[a];
        bp->tile[a] = (int)r->p.tile[a];
        bp->grid[a] = (int)r->grid[a];
    }
    bp->tiles = (int)tiles;
    bp->video = (int)r->video;
    bp->tokens = (int)r->tokens;
    bp->text_valid = (int)r->text_valid;
    bp->tiled_order = r->p.order == STILE_ORDER_TILED;
    bp->kt_k = (int)r->p.key_tiles_k; /* the rows themselves come with each execution */
    bp->scale_log2 = (float)(r->p.scale * 1.4426950408889634);
    stile_gpu_region_whole(bp);
    const stile_strides *st[4] = {&r->strides[STILE_Q], &r->strides[STILE_K], &r->strides[STILE_V], &r->strides[STILE_O]};
    long long *dst[4] = {bp->sq, bp->sk, bp->sv, bp->so};
    for (int i = 0; i < 4; i++) {
        dst[i][0] = st[i]->batch;
        dst[i][1] = st[i]->token;
        dst[i][2] = st[i]->head;
        dst[i][3] = st[i]->dim;
    }
    *impl = gp;
    return STILE_OK;
}

static stile_status gpu_execute_on(gpu_device *dev, gpu_plan *gp, const stile_io *io, const stile_region *rg, stile_exec_info *info);
static stile_status launch_forward(gpu_device *dev, sta_params *pp, const stile_io *io, stile_exec_info *info);

/* Scratch in stream order (the stream's memory pool), or plain memory on a device without pools
 * (freed after the stream drains). */
typedef struct gpu_scratch {
    void *ptr;
    int pooled;
} gpu_scratch;

static gpuError_t scratch_alloc(gpu_scratch *s, size_t bytes, gpuStream_t stream)
{
    s->pooled = 1;
    gpuError_t e = gpuMallocAsync(&s->ptr, bytes, stream);
    if (e == gpuErrorNotSupported) {
        gpuGetLastError();
        s->pooled = 0;
        e = gpuMalloc(&s->ptr, bytes);
    }
    if (e != gpuSuccess) s->ptr = NULL;
    return e;
}

static gpuError_t scratch_free(gpu_scratch *s, gpuStream_t stream)
{
    if (!s->ptr) return gpuSuccess;
    gpuError_t e = s->pooled ? gpuFreeAsync(s->ptr, stream) : gpuStreamSynchronize(stream);
    if (!s->pooled) gpuFree(s->ptr);
    s->ptr = NULL;
    return e;
}

/* The caller's key tiles made walkable (p->kt_*) in new scratch on stream, for a plan with key_tiles_k;
 * *bad: the device's count of entries out of range. Nothing for a window plan. */
static stile_status key_tiles_prepare(sta_params *p, const stile_tensor *kt, const stile_tensor *errors, int transpose, gpu_scratch *s,
                                      int **bad, gpuStream_t stream)
{
    s->ptr = NULL;
    *bad = NULL;
    if (!p->kt_k) return STILE_OK;
    const long long ints = stile_gpu_key_tiles_scratch(p, transpose);
    gpuError_t e = scratch_alloc(s, (size_t)ints * sizeof(int), stream);
    if (e != gpuSuccess) return gpu_fail(e, "allocating scratch for the key tiles");
    char err[256] = "";
    const int rc = stile_gpu_key_tiles_prepare(p, kt->data, s->ptr, transpose, errors->data, bad, stream, err, sizeof err);
    if (rc != 0) {
        scratch_free(s, stream);
        return gpu_fail((gpuError_t)rc, "reading the key tiles");
    }
    return STILE_OK;
}

/* After a call that waited for its work (stream NULL): entries the device skipped are the caller's
 * error (the output holds the attention without them). */
static stile_status key_tiles_verdict(const int *bad_dev)
{
    int bad = 0;
    gpuError_t e = gpuMemcpy(&bad, bad_dev, sizeof bad, gpuMemcpyDeviceToHost);
    if (e != gpuSuccess) return gpu_fail(e, "reading the key tiles' error count");
    if (bad)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "io->key_tiles: %d entries outside -1..tiles-1 were skipped (o and lse hold the "
                                                  "attention without them)", bad);
    return STILE_OK;
}

/* p's region fields for rg (regions' q and o are contiguous [B, S, H, D] over the region's tokens). */
static void region_params(sta_params *p, const stile_region *rg)
{
    int64_t ext[3];
    const stile_layout l = {.canvas = {p->canvas[0], p->canvas[1], p->canvas[2]}, .tile = {p->tile[0], p->tile[1], p->tile[2]}};
    p->q_video = (int)stile_region_extent(&l, rg, ext);
    p->q_tokens = p->q_video + (p->tokens - p->video);
    for (int a = 0; a < 3; a++) {
        p->run_lo[a] = (int)rg->run[0][a];
        p->run_hi[a] = (int)rg->run[1][a];
        p->hold_lo[a] = (int)rg->hold[0][a];
        p->hold_hi[a] = (int)rg->hold[1][a];
        p->q_org[a] = (int)rg->hold[0][a] * p->tile[a];
        p->q_ext[a] = (int)ext[a];
    }
    p->text_queries = rg->text_queries != 0;
    p->text_keys = rg->text_keys != 0;
    p->sq[0] = (long long)p->q_tokens * p->sq[1];
    p->so[0] = (long long)p->q_tokens * p->so[1];
}

static stile_status gpu_execute_region(void *device, const stile_plan *plan, void *impl, const stile_io *io, const stile_region *rg,
                                       stile_exec_info *info)
{
    (void)plan;
    gpu_device *dev = device;
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    stile_status st = e == gpuSuccess ? gpu_execute_on(dev, impl, io, rg, info) : gpu_fail(e, "selecting the device");
    gpu_leave(&scope);
    return st;
}

static stile_status gpu_execute(void *device, const stile_plan *plan, void *impl, const stile_io *io, stile_exec_info *info)
{
    return gpu_execute_region(device, plan, impl, io, NULL, info);
}

/* Distributed plans' copies and merges, on stream (the default stream, waited for, without one). */
static stile_status dist_step(int rc, void *stream, const char *what)
{
    gpuError_t e = (gpuError_t)rc;
    if (e == gpuSuccess && !stream) e = gpuStreamSynchronize(0);
    return e == gpuSuccess ? STILE_OK : gpu_fail(e, what);
}

static stile_status gpu_copy_rows(void *device, const stile_copy_rows *c, void *stream)
{
    gpu_device *dev = device;
    sta_copy_args a = {.bytes = (long long)c->bytes, .dst = c->dst.base, .src = c->src.base};
    for (int i = 0; i < 4; i++) {
        a.ext[i] = c->ext[i];
        a.ds[i] = c->dst.s[i];
        a.ss[i] = c->src.s[i];
    }
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    stile_status st = e == gpuSuccess ? dist_step(stile_gpu_copy_rows(&a, stream), stream, "copying rows") : gpu_fail(e, "selecting the device");
    gpu_leave(&scope);
    return st;
}

static stile_status gpu_merge(void *device, const stile_merge *m, void *stream)
{
    gpu_device *dev = device;
    const sta_merge_args a = {.n = m->n, .dtype = (int)m->dtype, .batch = m->batch, .rows = m->rows, .heads = m->heads, .dim = m->dim,
                              .o_parts = m->o_parts, .lse_parts = m->lse_parts, .o = m->o, .o_batch = m->o_batch, .o_row = m->o_row,
                              .lse = m->lse, .lse_row = m->lse_row};
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    stile_status st = e == gpuSuccess ? dist_step(stile_gpu_merge(&a, stream), stream, "merging partial attentions") : gpu_fail(e, "selecting the device");
    gpu_leave(&scope);
    return st;
}

static stile_status gpu_execute_on(gpu_device *dev, gpu_plan *gp, const stile_io *io, const stile_region *rg, stile_exec_info *info)
{
    sta_params p = gp->base;
    if (rg) region_params(&p, rg);
    p.q = io->q.data;
    p.k = io->k.data;
    p.v = io->v.data;
    p.o = io->o.data;
    p.lse = io->lse.data;
    gpu_scratch kts;
    int *bad = NULL;
    stile_status kst = key_tiles_prepare(&p, &io->key_tiles, &io->key_tile_errors, 0, &kts, &bad, (gpuStream_t)io->stream);
    if (kst != STILE_OK) return kst;
    stile_status st = launch_forward(dev, &p, io, info);
    if (st == STILE_OK && !io->stream) {
        const gpuError_t e = gpuStreamSynchronize(0);
        if (e != gpuSuccess) st = gpu_fail(e, "running the STA kernel");
        else if (bad) st = key_tiles_verdict(bad); /* before its scratch goes */
    }
    const gpuError_t e = scratch_free(&kts, (gpuStream_t)io->stream);
    if (st == STILE_OK && e != gpuSuccess) st = gpu_fail(e, "freeing the key tiles' scratch");
    return st;
}

/* The forward's kernel for p on io's stream; info->path says which ran. */
static stile_status launch_forward(gpu_device *dev, sta_params *pp, const stile_io *io, stile_exec_info *info)
{
    sta_params p = *pp;
    int path = stile_gpu_path_select(&p, dev->cc);
    if (path == STA_PATH_SCALAR && p.dtype != STILE_DTYPE_F32 && (p.head_dim == 64 || p.head_dim == 128))
        stile_log(STILE_LOG_INFO, "%s: portable kernel: the tensor-core path needs sm_80+, a contiguous head dim, "
                                  "strides that are multiples of 8 and 16-byte aligned tensors", STILE_GPU_NAME);
    const int chosen = path;
    char err[256] = "";
    int rc = stile_gpu_sta_launch(&p, &path, io->stream, err, sizeof err);
    /* the runtime's error, under the same rule as every other call (a sticky one loses the device) */
    if (rc != 0) return gpu_fail((gpuError_t)rc, "launching the STA kernel");
    if (path != chosen)
        stile_log(STILE_LOG_WARN, "%s: %s kernel unavailable (%s): %s kernel instead", STILE_GPU_NAME, stile_gpu_path_name(chosen), err,
                  stile_gpu_path_name(path));
    snprintf(info->path, sizeof info->path, "%s", stile_gpu_path_name(path));
    return STILE_OK;
}

/* The backward (stile_plan_backward): the kernels of stile_gpu_sta_backward on the caller's stream, with
 * scratch for D_i allocated and freed in stream order (the stream's memory pool), so nothing waits
 * (on a device without memory pools the call waits for its stream before freeing plain memory). */
static stile_status gpu_backward(void *device, const stile_plan *plan, void *impl, const stile_grad_io *io, stile_exec_info *info)
{
    gpu_device *dev = device;
    gpu_plan *gp = impl;
    const stile_resolved *r = &plan->r;
    sta_bwd_params bp = {.f = gp->base};
    bp.f.q = io->q.data;
    bp.f.k = io->k.data;
    bp.f.v = io->v.data;
    bp.f.o = io->o.data;
    bp.f.lse = io->lse.data;
    bp.d_o = io->d_o.data;
    bp.d_q = io->d_q.data;
    bp.d_k = io->d_k.data;
    bp.d_v = io->d_v.data;
    bp.scale = (float)r->p.scale;
    const size_t scratch = (size_t)(r->p.batch * r->p.heads * r->tokens) * sizeof(float);
    const gpuStream_t stream = (gpuStream_t)io->stream;
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    if (e != gpuSuccess) {
        gpu_leave(&scope);
        return gpu_fail(e, "selecting the device");
    }
    gpu_scratch delta, kts;
    int *bad = NULL;
    stile_status st = key_tiles_prepare(&bp.f, &io->key_tiles, &io->key_tile_errors, 1, &kts, &bad, stream);
    if (st != STILE_OK) {
        gpu_leave(&scope);
        return st;
    }
    if ((e = scratch_alloc(&delta, scratch, stream)) != gpuSuccess) {
        scratch_free(&kts, stream);
        gpu_leave(&scope);
        return gpu_fail(e, "allocating the backward's scratch");
    }
    bp.delta = delta.ptr;
    const int path = stile_gpu_backward_path(&bp, dev->cc, dev->smem_optin);
    char err[256] = "";
    const int rc = stile_gpu_sta_backward(&bp, path, stream, err, sizeof err);
    e = scratch_free(&delta, stream);
    if (rc != 0) st = gpu_fail((gpuError_t)rc, "launching the STA backward");
    else if (e != gpuSuccess) st = gpu_fail(e, "freeing the backward's scratch");
    else if (!io->stream && (e = gpuStreamSynchronize(0)) != gpuSuccess) st = gpu_fail(e, "running the STA backward");
    else if (!io->stream && bad) st = key_tiles_verdict(bad); /* before its scratch goes */
    e = scratch_free(&kts, stream);
    if (st == STILE_OK && e != gpuSuccess) st = gpu_fail(e, "freeing the key tiles' scratch");
    gpu_leave(&scope);
    if (st == STILE_OK)
        snprintf(info->path, sizeof info->path, "%s backward",
                 path == STA_PATH_HOPPER ? "wgmma (sm_90a)" : path == STA_PATH_MMA ? "mma.sync" : "portable");
    return st;
}

static double gpu_backward_flops(const stile_plan *plan)
{
    return 3.5 * plan->info.flops; /* per attended pair: S, dP, dQ in one kernel, S, dP, dV, dK in the other: 2 D each */
}

static stile_status gpu_buffer_alloc(void *device, size_t bytes, void **ptr)
{
    gpu_device *dev = device;
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    if (e == gpuSuccess) e = gpuMalloc(ptr, bytes);
    gpu_leave(&scope);
    return e == gpuSuccess ? STILE_OK : gpu_fail(e, "allocating a buffer");
}

static void gpu_buffer_free(void *device, void *ptr)
{
    gpu_device *dev = device;
    gpu_scope scope;
    if (gpu_enter(dev->index, &scope) == gpuSuccess) gpuFree(ptr);
    gpu_leave(&scope);
}

static stile_status gpu_buffer_copy(void *device, void *dst, const void *src, size_t bytes, int to_device)
{
    gpu_device *dev = device;
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    if (e == gpuSuccess) e = gpuMemcpy(dst, src, bytes, to_device ? gpuMemcpyHostToDevice : gpuMemcpyDeviceToHost);
    gpu_leave(&scope);
    return e == gpuSuccess ? STILE_OK : gpu_fail(e, to_device ? "uploading" : "downloading");
}

/* At plan time the pointers are not known: NULL stands for an aligned one, so this is the strides' verdict. */
static void gpu_plan_path(void *device, void *impl, char *buf, size_t size)
{
    const gpu_device *dev = device;
    const gpu_plan *gp = impl;
    snprintf(buf, size, "%s", stile_gpu_path_name(stile_gpu_path_select(&gp->base, dev->cc)));
}

/* One VSA step (core/vsa.c checked io) on io's stream; with stream NULL the call waits for it. */
_Static_assert((int)STA_VSA_POOL == (int)STILE_VSA_POOL && (int)STA_VSA_COARSE == (int)STILE_VSA_COARSE &&
                   (int)STA_VSA_SELECT == (int)STILE_VSA_SELECT && (int)STA_VSA_COMBINE == (int)STILE_VSA_COMBINE,
               "the VSA step numbers of core and kernels");
static stile_status gpu_vsa(void *device, const stile_plan *plan, void *impl, int step, const stile_vsa_io *io)
{
    gpu_device *dev = device;
    const gpu_plan *gp = impl;
    sta_params p = gp->base;
    p.q = io->q.data;
    p.k = io->k.data;
    p.v = io->v.data;
    p.o = io->o.data;
    const sta_vsa_args a = {.gate = io->gate.data, .q_c = io->q_c.data, .k_c = io->k_c.data, .v_c = io->v_c.data, .o_c = io->o_c.data,
                            .scores = io->scores.data, .key_tiles = io->key_tiles.data, .k = (int)plan->r.p.key_tiles_k,
                            .scale = (float)plan->r.p.scale};
    gpu_scope scope;
    gpuError_t e = gpu_enter(dev->index, &scope);
    stile_status st = e == gpuSuccess ? STILE_OK : gpu_fail(e, "selecting the device");
    if (st == STILE_OK) {
        char err[256] = "";
        const int rc = stile_gpu_vsa_launch(&p, step, &a, io->stream, err, sizeof err);
        if (rc < 0) st = stile_fail(STILE_ERR_UNSUPPORTED, "%s: VSA: %s", STILE_GPU_NAME, err);
        else if (rc > 0) st = stile_fail(STILE_ERR_BACKEND, "%s: launching a VSA step: %s", STILE_GPU_NAME, err);
        else if (!io->stream && (e = gpuStreamSynchronize(0)) != gpuSuccess) st = gpu_fail(e, "running a VSA step");
    }
    gpu_leave(&scope);
    return st;
}

const stile_backend BACKEND_SYMBOL = {
    .name = STILE_GPU_NAME,
    .device_count = gpu_device_count,
    .device_open = gpu_device_open,
    .device_close = gpu_device_close,
    .supports = gpu_supports,
    .plan = gpu_plan_create,
    .plan_destroy = gpu_plan_destroy,
    .execute = gpu_execute,
    .backward = gpu_backward,
    .backward_flops = gpu_backward_flops,
    .buffer_alloc = gpu_buffer_alloc,
    .buffer_free = gpu_buffer_free,
    .buffer_copy = gpu_buffer_copy,
    .plan_path = gpu_plan_path,
    .vsa = gpu_vsa,
    .execute_region = gpu_execute_region,
    .copy_rows = gpu_copy_rows,
    .merge = gpu_merge,
};

const stile_module_info MODULE_SYMBOL = {STILE_GPU_NAME, &BACKEND_SYMBOL, NULL};
