/* core's internal interface: the resolved problem, the tile layout, the block schedule and the
 * backend vtable. Backends include this and include/stile/stile.h, nothing else of core (GPU kernels and
 * shaders also include schedule_table.h, the layout of the schedule they read). */
#ifndef STILE_INTERNAL_H
#define STILE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "schedule_table.h"
#include "stile/stile.h"

/* ---- logging ---- */
#if defined(__GNUC__)
#define STILE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define STILE_PRINTF(a, b)
#endif
void stile_log(stile_log_level level, const char *fmt, ...) STILE_PRINTF(2, 3);
/* Log an error, keep it as this thread's stile_last_error(), and return its status:
 * `return stile_fail(STILE_ERR_INVALID_WINDOW, "window[1]=%d: ...", w);`. Inside libstile it is the
 * public stile_report_error; a backend module has its own, through the core (core/module_client.c). */
#ifdef STILE_MODULE
stile_status stile_fail(stile_status status, const char *fmt, ...) STILE_PRINTF(2, 3);
#else
#define stile_fail stile_report_error
#endif
void stile_vlog(stile_log_level level, const char *fmt, va_list ap);
stile_status stile_vfail(stile_status status, const char *fmt, va_list ap);

/* ---- input structures that can grow (core/abi.c): the caller's struct_size checked, the
 * structure copied into the current layout; read only the copy ---- */
stile_status stile_problem_import(const stile_problem *in, stile_problem *out, const char *what);
/* NULL params: the defaults. */
stile_status stile_device_params_import(const stile_device_params *in, stile_device_params *out);
stile_status stile_io_import(const stile_io *in, stile_io *out, const char *what);
stile_status stile_grad_io_import(const stile_grad_io *in, stile_grad_io *out, const char *what);

/* ---- checked arithmetic ---- */
static inline bool stile_mul_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool stile_add_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* ---- the resolved problem ---- */
typedef struct stile_resolved {
    stile_problem p;           /* defaults filled in; head_windows points at `windows` */
    int64_t (*windows)[3];     /* heads entries, owned */
    int64_t grid[3];           /* tiles per axis */
    int64_t tiles;             /* grid product */
    int64_t video;             /* video tokens */
    int64_t tokens;            /* video + text */
    int64_t text_valid;        /* text - text_padding */
    stile_strides strides[4];  /* q, k, v, o resolved */
    int64_t extent[4];         /* elements spanned by q, k, v, o: max offset + 1 */
} stile_resolved;

enum { STILE_Q = 0, STILE_K = 1, STILE_V = 2, STILE_O = 3 };

/* Validate p and fill r (r->windows allocated; free with stile_resolved_free). */
stile_status stile_resolve(const stile_problem *p, stile_resolved *r);
void stile_resolved_free(stile_resolved *r);

/* ---- tile layout (natural <-> tiled order, partial tiles) ---- */
typedef struct stile_layout {
    int64_t canvas[3], tile[3], grid[3];
    int64_t tiles;
    int64_t *tile_start; /* tiles + 1 entries: first tiled-order token of each tile, prefix of tile sizes */
} stile_layout;

stile_status stile_layout_init(stile_layout *l, const int64_t canvas[3], const int64_t tile[3]);
void stile_layout_free(stile_layout *l);
/* Tokens of tile `tile` along each axis (partial at the far edges). */
void stile_layout_tile_extent(const stile_layout *l, int64_t tile, int64_t ext[3], int64_t origin[3]);
int64_t stile_layout_natural_to_tiled(const stile_layout *l, int64_t natural);
int64_t stile_layout_tiled_to_natural(const stile_layout *l, int64_t tiled);

/* ---- block schedule: per distinct window, the key tiles of each query tile (CSR) ---- */
typedef struct stile_tile_run {
    int32_t first, end;   /* key tiles [first, end): consecutive in raster order, so contiguous in tiled order */
} stile_tile_run;

typedef struct stile_schedule {
    int64_t window[3];    /* effective window (clamped to the grid) */
    int64_t per_query;    /* key tiles per query tile */
    int32_t *row_start;   /* tiles + 1 entries */
    int32_t *key_tiles;   /* row_start[tiles] entries, ascending per row */
    int32_t *run_start;   /* tiles + 1 entries */
    stile_tile_run *runs; /* the same key tiles as maximal runs of consecutive tiles (one GEMM operand each) */
    int64_t video_pairs;  /* attended video x video token pairs, one head */
    /* the transposed schedule (the backward's dK/dV): for each key tile, the query tiles whose window
     * holds it, ascending; clamped windows make its rows longer at the grid's middle than its edges */
    int32_t *query_start; /* tiles + 1 entries */
    int32_t *query_tiles; /* query_start[tiles] = row_start[tiles] entries */
    int64_t min_per_key, max_per_key; /* the shortest and longest such row */
} stile_schedule;

/* Start of the window on one axis: s = clamp(q - floor(w/2), 0, n - w); w >= n means the whole axis. */
static inline int64_t stile_window_start(int64_t q, int64_t w, int64_t n)
{
    if (w >= n) return 0;
    int64_t s = q - w / 2;
    if (s < 0) s = 0;
    if (s > n - w) s = n - w;
    return s;
}

/* ---- the plan core shared by all backends ---- */
typedef struct stile_backend stile_backend;
struct stile_vsa_io; /* include/stile/stile_vsa.h */

struct stile_device {
    const stile_backend *backend;
    int index;
    void *impl;
    stile_device_info info;
    stile_log_fn log_fn;          /* the device's own sink (stile_device_params.log), or NULL */
    void *log_user;
    stile_log_level log_max;
};

/* Calls on a device route their messages to its own sink: enter returns the previous scope, which
 * leave restores (per thread; scopes nest). */
const stile_device *stile_log_enter(const stile_device *device);
void stile_log_leave(const stile_device *previous);

struct stile_plan {
    stile_device *device;
    stile_resolved r;
    stile_layout layout;
    int64_t nschedules;
    stile_schedule *schedules;
    int32_t *head_schedule;   /* heads entries: index into schedules */
    stile_plan_info info;
    void *impl;               /* the backend's */
};

/* ---- the schedule packed for GPU kernels: one buffer, laid out as core/schedule_table.h says ---- */
/* Flatten the plan's schedules with query blocks of at most block_rows rows and pack them after
 * header_bytes zeroed bytes (the backend's own header, a multiple of 8), tile_start as 32- or 64-bit
 * integers (tile_start_size 4 or 8). *host (free()) holds t->bytes bytes. */
stile_status stile_sched_table_pack(const stile_plan *plan, int64_t block_rows, size_t header_bytes, size_t tile_start_size,
                                    void **host, stile_sched_table *t);

/* ---- what distributed plans (core/dist_exec.c) ask of a backend ---- */
/* A part of a window plan's queries, in natural order: the query tiles computed and the tokens q, o
 * and lse hold (q and o contiguous [B, S, H, D] over those tokens; k and v hold the plan's whole canvas
 * as usual). */
typedef struct stile_region {
    int64_t hold[2][3]; /* tiles [hold[0][a], hold[1][a]) per axis: q, o and lse hold their video tokens,
                           natural order within that box, then the text tokens */
    int64_t run[2][3];  /* the video query tiles computed, a box inside hold (any empty axis: none); each
                           attends its window and the valid text keys, as in the whole plan */
    int text_queries;   /* nonzero: the text queries too, attending hold's tiles alone and, with text_keys,
                           the valid text keys (the partial result a distributed plan merges) */
    int text_keys;
} stile_region;

/* Video tokens of a region's hold box (its q, o and lse hold these, then the text), per axis in ext. */
static inline int64_t stile_region_extent(const stile_layout *l, const stile_region *region, int64_t ext[3])
{
    int64_t n = 1;
    for (int a = 0; a < 3; a++) {
        const int64_t end = region->hold[1][a] * l->tile[a];
        ext[a] = (end < l->canvas[a] ? end : l->canvas[a]) - region->hold[0][a] * l->tile[a];
        n *= ext[a];
    }
    return n;
}

/* A strided copy of rows (*c.bytes each) where the device computes: for every (n, t, h, w) below ext,
 * bytes from src + n*src.s[0] + t*src.s[1] + h*src.s[2] + w*src.s[3] to the same offsets of dst
 * (byte strides; the two ranges must not overlap). */
typedef struct stile_copy_rows {
    int64_t ext[4];
    size_t bytes;
    struct {
        char *base;
        int64_t s[4];
    } dst;
    struct {
        const char *base;
        int64_t s[4];
    } src;
} stile_copy_rows;

/* The log-sum-exp merge of n partial attentions of the same rows (text queries split by key ranges):
 * part i's output o_parts + i * part_elems ([batch, rows, heads, D] contiguous, dtype) and LSE
 * lse_parts + i * batch*heads*rows ([batch, heads, rows] f32; -inf: no keys) give o (dtype, element
 * strides o_batch, o_row, D per head, 1) and, when not NULL, lse (f32, lse_row elements between
 * (batch, head) rows). */
typedef struct stile_merge {
    int n;
    int64_t batch, rows, heads, dim;
    stile_dtype dtype;
    const void *o_parts;
    const float *lse_parts;
    void *o;
    int64_t o_batch, o_row;
    float *lse;
    int64_t lse_row;
} stile_merge;

/* ---- the backend vtable ---- */
struct stile_backend {
    const char *name;
    /* Devices present now; on 0, reason says why ("no driver: ..."); otherwise reason may say what
     * the backend holds ("shaders: ..."), shown after "ready". */
    int (*device_count)(char *reason, size_t reason_size);
    stile_status (*device_open)(int index, const stile_device_params *params, void **impl, stile_device_info *info);
    void (*device_close)(void *impl);
    /* STILE_OK or STILE_ERR_UNSUPPORTED with a reason logged. */
    stile_status (*supports)(void *device, const stile_plan *plan);
    stile_status (*plan)(void *device, const stile_plan *plan, void **impl);
    void (*plan_destroy)(void *impl);
    /* io already checked by core against the plan (and in the current layout); info->path receives
     * the kernel that ran. */
    stile_status (*execute)(void *device, const stile_plan *plan, void *impl, const stile_io *io, stile_exec_info *info);
    /* Device memory: allocate (*ptr is the device address), free, and copy to or from the host. */
    stile_status (*buffer_alloc)(void *device, size_t bytes, void **ptr);
    void (*buffer_free)(void *device, void *ptr);
    stile_status (*buffer_copy)(void *device, void *dst, const void *src, size_t bytes, int to_device);
    /* Optional: whether "auto" may pick device index (NULL: always); Vulkan leaves CPU renderers out. */
    int (*auto_ok)(int index);
    /* The kernel a plan uses (stile_plan_info.path), written into buf. */
    void (*plan_path)(void *device, void *impl, char *buf, size_t size);
    /* Nonzero: tensors may be given as (handle, offset) of the backend's buffer objects (Vulkan). */
    int takes_handles;
    /* Optional: the backward pass (stile_plan_backward; NULL: none), io checked by core as execute's. */
    stile_status (*backward)(void *device, const stile_plan *plan, void *impl, const stile_grad_io *io, stile_exec_info *info);
    /* With backward: the FLOPs it computes for plan (stile_plan_backward_flops). */
    double (*backward_flops)(const stile_plan *plan);
    /* Optional: one VSA step (STILE_VSA_POOL .. COMBINE: stile_vsa.h's calls), io checked by core (NULL:
     * the backend has none). */
    stile_status (*vsa)(void *device, const stile_plan *plan, void *impl, int step, const struct stile_vsa_io *io);
    /* Optional, all three or none (distributed plans, core/dist_exec.c): execute a region of the plan's queries
     * (io's q, o, lse sized to it; not checked by core: the caller made them), a strided copy, and the
     * merge of partial attentions; on stream where the backend has streams. */
    stile_status (*execute_region)(void *device, const stile_plan *plan, void *impl, const stile_io *io, const stile_region *region,
                                   stile_exec_info *info);
    stile_status (*copy_rows)(void *device, const stile_copy_rows *c, void *stream);
    stile_status (*merge)(void *device, const stile_merge *m, void *stream);
};

enum { STILE_VSA_POOL = 1, STILE_VSA_COARSE, STILE_VSA_SELECT, STILE_VSA_COMBINE };


/* A device around a backend implementation opened elsewhere (stile_vulkan_device_wrap): core takes
 * ownership of impl (closed through the backend's device_close). */
stile_status stile_device_adopt(const stile_backend *backend, void *impl, const stile_device_info *info, stile_device **out);
/* The checks of stile_plan_execute on the caller's io (what: the caller's name for messages): the
 * structure imported into *out (stile_io_import), then every tensor checked. Read only *out. */
stile_status stile_io_check(const stile_plan *plan, const stile_io *in, stile_io *out, const char *what);
/* One tensor of the plan's dtype checked (name: for messages, "io->NAME"): dtype, place (exactly one
 * of data and handle, aligned to its elements), and its bytes against need. */
stile_status stile_tensor_check(const stile_plan *plan, const stile_tensor *t, const char *name, size_t need);
/* The same for a tensor of dtype dt (f32 intermediates, i32 tile lists). */
stile_status stile_tensor_check_as(const stile_plan *plan, const stile_tensor *t, const char *name, stile_dtype dt, size_t need);
/* The key-tile tensors of an execution: unset for a window plan; for a plan with key_tiles_k, kt i32 of
 * [B, heads, tiles, key_tiles_k] and err (optional) one i32, placed, overlapping none of the nouts
 * outputs (outs, of out_bytes, named out_names) nor each other. */
stile_status stile_key_tiles_check(const stile_plan *plan, const stile_tensor *kt, const stile_tensor *err,
                                   const stile_tensor *const *outs, const size_t *out_bytes, const char *const *out_names, int nouts);
/* The caller's key tiles (host memory, i32 [B, heads, tiles, k]) read for walking: row r's distinct
 * entries within 0..tiles-1, ascending, at rows[r * k ..], their number in count[r] (-1 entries
 * skipped). Returns the number of other entries (out of range) and the first one's index in *first_bad. */
int64_t stile_key_tiles_read(const stile_plan *plan, const int32_t *in, int32_t *rows, int32_t *count, int64_t *first_bad);
/* An LSE tensor checked: f32, placed, at least *need bytes ([B, heads, tokens], set here). */
stile_status stile_lse_check(const stile_plan *plan, const stile_tensor *lse, size_t *need);
/* Whether two tensors of abytes and bbytes share memory. */
int stile_tensor_overlaps(const stile_tensor *a, size_t abytes, const stile_tensor *b, size_t bbytes);
/* A buffer around memory the backend has already set up at ptr (stile_vulkan_buffer_wrap). */
stile_status stile_buffer_adopt(stile_device *device, void *ptr, size_t bytes, stile_buffer **out);

struct stile_buffer {
    stile_device *device;
    void *ptr;
    size_t bytes;
};

/* Elementwise conversion helpers used by backends and the oracle. */
float stile_half_to_float(uint16_t h);
uint16_t stile_float_to_half(float f);
float stile_bf16_to_float(uint16_t b);
uint16_t stile_float_to_bf16(float f);
/* Load element i of a tensor of dtype dt as double / float. */
double stile_load_f64(const void *base, stile_dtype dt, int64_t i);
float stile_load_f32(const void *base, stile_dtype dt, int64_t i);

/* Maximum tokens a backend index may address in 32 bits. */
#define STILE_MAX_TILES INT32_MAX

#endif /* STILE_INTERNAL_H */
