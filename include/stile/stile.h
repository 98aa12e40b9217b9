/* stile — Sliding Tile Attention (STA): the public C API.
 * Describe a problem, plan it on a device, execute the plan; every backend runs the same contract
 * (docs/contract.md) and is checked against the fp64 oracle of libstile_check (stile_check.h).
 *
 * ABI rules (docs/packaging.md): every enum value is written out and never renumbered. Structures
 * the caller fills (stile_problem, stile_device_params, stile_io, stile_vulkan_context) begin with
 * struct_size, which the caller sets to sizeof the structure: the library takes the layouts it
 * knows and refuses any other with STILE_ERR_INVALID_ARGUMENT (or STILE_ERR_UNSUPPORTED for a
 * newer header) and a message, instead of misreading it. Structures the library fills end in
 * reserved bytes that later fields take, so their size does not change. A program refers to the
 * API version of the header it was built with (stile_api_N below), so linking it against a
 * library without that version fails at link time. */
#ifndef STILE_STILE_H
#define STILE_STILE_H

#include <stddef.h>
#include <stdint.h>

#include "stile_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STILE_BUILDING) && defined(__GNUC__)
#define STILE_API __attribute__((visibility("default")))
#else
#define STILE_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------------------------- */

/** The API version of this header: bumped on every change to the API (a new function, a field
 * taken from reserved space, a new enum value). A library provides every API version since the last
 * one that took something away (API 2: the oracle and checks moved to libstile_check, stile_check.h;
 * API 3 added caller-chosen key tiles: stile_problem.key_tiles_k, stile_io.key_tiles, STILE_DTYPE_I32). */
#define STILE_API_VERSION 3

/** Link-time check, as Qt's qt_version_tag: every program that includes this header refers to the
 * symbol stile_api_<STILE_API_VERSION>, which only a library providing that API version defines, so
 * a header newer than the library fails to link (or to load) instead of misreading structures.
 * Define STILE_NO_API_TAG before including the header to leave the reference out. */
#define STILE_API_TAG_(n) stile_api_##n
#define STILE_API_TAG(n) STILE_API_TAG_(n)
STILE_API extern const int STILE_API_TAG(STILE_API_VERSION);
#if !defined(STILE_BUILDING) && !defined(STILE_MODULE) && !defined(STILE_NO_API_TAG) && defined(__GNUC__)
static const int *const stile_api_tag_ __attribute__((used)) = &STILE_API_TAG(STILE_API_VERSION);
#endif

/** STILE_VERSION: the header's version as one number, major·10000 + minor·100 + patch. */
#define STILE_VERSION (STILE_VERSION_MAJOR * 10000 + STILE_VERSION_MINOR * 100 + STILE_VERSION_PATCH)

/** The library's version as one number (compare with STILE_VERSION to detect a header mismatch). */
STILE_API int stile_version(void);
/** The library's version as "MAJOR.MINOR.PATCH", and the commit it was built from ("unknown" if none). */
STILE_API const char *stile_version_string(void);
STILE_API const char *stile_build_commit(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes and logging
 * ------------------------------------------------------------------------------------------- */

/** What a call did. Every call that can fail returns one; the log callback says which argument and why.
 * Thread-safety: a value; stile_status_string returns constant strings, safe from any thread. */
typedef enum stile_status {
    STILE_OK = 0,
    STILE_ERR_NULL_ARGUMENT = 1,   /**< a required pointer was NULL */
    STILE_ERR_INVALID_SIZE = 2,    /**< a size (canvas, tile, heads, head_dim, batch, text) was zero, negative or past its limit (STILE_MAX_HEADS, ...) */
    STILE_ERR_INVALID_WINDOW = 3,  /**< a window extent was zero or negative */
    STILE_ERR_INVALID_STRIDES = 4, /**< strides are negative or make distinct elements overlap */
    STILE_ERR_OUT_OF_RANGE = 5,    /**< a tensor's strides reach past the end of its buffer, or an index is out of range */
    STILE_ERR_DTYPE_MISMATCH = 6,  /**< a tensor's dtype differs from the problem's */
    STILE_ERR_OVERFLOW = 7,        /**< sizes whose products overflow 64-bit (or a backend's index) arithmetic */
    STILE_ERR_ALIASING = 8,        /**< the output overlaps an input */
    STILE_ERR_INVALID_ARGUMENT = 9,/**< any other invalid argument (unknown enum value, bad combination) */
    STILE_ERR_UNSUPPORTED = 10,    /**< valid, but this backend (or this build) cannot do it; the log says why */
    STILE_ERR_UNKNOWN_DEVICE = 11, /**< a device name that names no backend stile knows */
    STILE_ERR_NO_DEVICE = 12,      /**< the backend is built but has no such device (driver or hardware missing) */
    STILE_ERR_OUT_OF_MEMORY = 13,  /**< an allocation failed */
    STILE_ERR_BACKEND = 14,        /**< the backend's runtime failed; the log carries its message */
    STILE_ERR_IO = 15,             /**< reading or writing a file failed */
    STILE_ERR_FORMAT = 16,         /**< a file or string is malformed */
    STILE_ERR_BUFFER_TOO_SMALL = 17,/**< a caller-provided buffer is too small; the needed size is returned */
    STILE_ERR_DEVICE_LOST = 18     /**< the GPU was lost (reset, hang, driver error): close the device and open it again */
} stile_status;

/** A constant English sentence for a status ("invalid window"); never NULL, also for unknown values. */
STILE_API const char *stile_status_string(stile_status status);

/** Severity of a log message. Thread-safety: a value. */
typedef enum stile_log_level {
    STILE_LOG_ERROR = 1,
    STILE_LOG_WARN = 2,
    STILE_LOG_INFO = 3,
    STILE_LOG_DEBUG = 4
} stile_log_level;

/** A log sink: receives one complete line (no trailing newline) per message.
 * Thread-safety: called from whichever thread logs, possibly several at once. */
typedef void (*stile_log_fn)(void *user, stile_log_level level, const char *message);

/** Route the library's messages of level <= max_level to fn (NULL: silence, the default).
 * Thread-safety: may be called at any time; a message already being delivered goes to the old sink. */
STILE_API void stile_log_set(stile_log_fn fn, void *user, stile_log_level max_level);

/** The message of the last call on this thread that failed ("" if none has): the sentence the log
 * sink receives at STILE_LOG_ERROR, kept whether or not a sink is set. Like errno, a later success
 * leaves it as it was. Thread-safety: per thread; the text stays valid until this thread's next
 * failing call. */
STILE_API const char *stile_last_error(void);

/** For libraries layered on libstile (libstile_check, language bindings): record a failure as
 * libstile records its own. The formatted sentence becomes this thread's stile_last_error() and goes
 * to the log sink at STILE_LOG_ERROR; returns status, so `return stile_report_error(st, "...", ...);`.
 * Thread-safety: as stile_last_error. */
STILE_API stile_status stile_report_error(stile_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------------------------------------
 * Describing a problem
 * ------------------------------------------------------------------------------------------- */

/** Element types of q, k, v and o (f32, f16, bf16; arithmetic always accumulates in f32 or wider),
 * and of index tensors (i32: stile_io.key_tiles, never q, k, v or o). Thread-safety: a value. */
typedef enum stile_dtype {
    STILE_DTYPE_F32 = 0,
    STILE_DTYPE_F16 = 1,
    STILE_DTYPE_BF16 = 2,
    STILE_DTYPE_I32 = 3
} stile_dtype;

/** "f32", "f16", "bf16", "i32" (NULL for an unknown value) and the size of one element in bytes (0 if unknown). */
STILE_API const char *stile_dtype_name(stile_dtype dtype);
STILE_API size_t stile_dtype_size(stile_dtype dtype);

/** Order of the video tokens along the token axis. Text tokens always follow the video tokens.
 * Thread-safety: a value. */
typedef enum stile_token_order {
    STILE_ORDER_NATURAL = 0, /**< raster order over the canvas: t, then h, then w (what models hold) */
    STILE_ORDER_TILED = 1    /**< tile by tile (tiles in raster order over the grid), raster order inside a tile */
} stile_token_order;

/** Element strides of a tensor indexed [batch, token, head, dim] (Thread-safety: plain data). All zero means contiguous
 * [B, S, H, D]; stile_strides_bhsd() gives contiguous [B, H, S, D]; a packed [B, S, 3, H, D] qkv
 * tensor is {S*3*H*D, 3*H*D, D, 1} with the k and v pointers offset by H*D and 2*H*D elements. */
typedef struct stile_strides {
    int64_t batch, token, head, dim;
} stile_strides;

/** Limits of a problem, refused by stile_problem_check (and so by planning, the oracle and the checks)
 * before anything is allocated: sizes past them (STILE_ERR_INVALID_SIZE; tokens STILE_ERR_OVERFLOW)
 * would only make planning allocate and loop for nothing (a plan keeps a window and a schedule index
 * per head, and tables per tile and per token), and scales past them (STILE_ERR_INVALID_ARGUMENT)
 * only turn every output into 0, Inf or NaN, as kernels scale in f32. Backends may take less (the
 * CPU: head_dim 1..1024) and say so with STILE_ERR_UNSUPPORTED. */
#define STILE_MAX_HEADS 65536            /**< heads: 1..2^16 */
#define STILE_MAX_HEAD_DIM 65536         /**< head_dim: 1..2^16 */
#define STILE_MAX_BATCH 1048576          /**< batch: 1..2^20 */
#define STILE_MAX_TOKENS INT64_C(2147483647) /**< video + text tokens: 2^31 - 1, what backends index in 32 bits */
#define STILE_MIN_SCALE 1.17549435e-38   /**< scale, when given: at least the smallest normal float ... */
#define STILE_MAX_SCALE 1e4              /**< ... and at most 1e4 (1/sqrt(head_dim) is < 1) */

/** One STA problem. Zero-valued fields take their defaults, so write only what matters:
 *   stile_problem p = { .struct_size = sizeof p, .canvas = {30, 48, 80}, .tile = {6, 8, 8},
 *                       .window = {3, 3, 3}, .heads = 24, .head_dim = 128, .dtype = STILE_DTYPE_BF16 };
 * Every size is bounded: see STILE_MAX_HEADS and the limits above.
 * Thread-safety: plain data; the library only reads it, and copies what it keeps. */
typedef struct stile_problem {
    uint32_t struct_size;             /**< sizeof(stile_problem) (required: see the ABI rules at the top) */
    int64_t batch;                    /**< B; 0 means 1; at most STILE_MAX_BATCH */
    int64_t canvas[3];                /**< video tokens T, H, W (required, >= 1; T·H·W + text <= STILE_MAX_TOKENS) */
    int64_t tile[3];                  /**< tile t, h, w in tokens (required, >= 1) */
    int64_t window[3];                /**< window (wt, wh, ww) in tiles for every head (required unless head_windows or key_tiles_k) */
    const int64_t (*head_windows)[3]; /**< optional: one window per head, `heads` entries; overrides window */
    int64_t heads;                    /**< H (required, 1..STILE_MAX_HEADS) */
    int64_t head_dim;                 /**< D (required, 1..STILE_MAX_HEAD_DIM; 64 and 128 everywhere, others where a backend can) */
    int64_t text;                     /**< text tokens after the video tokens (0: none; T·H·W + text <= STILE_MAX_TOKENS) */
    int64_t text_padding;             /**< how many of the last text tokens are padding, never attended as keys */
    stile_dtype dtype;                /**< dtype of q, k, v, o (default f32) */
    stile_token_order order;          /**< order of the video tokens in q, k, v, o and lse */
    double scale;                     /**< softmax scale; 0 means 1/sqrt(head_dim); else STILE_MIN_SCALE..STILE_MAX_SCALE */
    stile_strides q, k, v, o;         /**< element strides per tensor; all zero: contiguous [B, S, H, D] */
    int64_t key_tiles_k;              /**< 0: the windows choose each query tile's key tiles. 1..tiles: the caller
                                           chooses them at every execution, up to key_tiles_k per (batch, head,
                                           query tile), in stile_io.key_tiles (docs/contract.md, "Caller-chosen
                                           key tiles"); window and head_windows must then be unset (API 3) */
} stile_problem;

/** Strides of a contiguous [B, H, S, D] tensor for problem p (S = video + text tokens). */
STILE_API stile_strides stile_strides_bhsd(const stile_problem *p);

/** Check a problem without planning it: STILE_OK, or the status of its first fault (and a log line). */
STILE_API stile_status stile_problem_check(const stile_problem *p);

/* ---------------------------------------------------------------------------------------------
 * Devices and backends
 * ------------------------------------------------------------------------------------------- */

/** An opened compute device ("cpu:0", later "vulkan:0", "cuda:0").
 * Thread-safety: opening and closing must not race with other use of the same device; plans made
 * on it may be created and executed from several threads at once. */
typedef struct stile_device stile_device;

/** Options for stile_device_open; NULL or zero fields mean defaults. Thread-safety: plain data, only read. */
typedef struct stile_device_params {
    uint32_t struct_size;  /**< sizeof(stile_device_params) (required: see the ABI rules at the top) */
    int threads;           /**< CPU worker threads; 0: one per online processor */
    int keep_blas_threads; /**< CPU: nonzero leaves OpenBLAS's thread count alone. By default the first
                                open CPU device sets it to 1 (stile threads over tiles itself; a threaded
                                BLAS inside its workers oversubscribes the cores) and the last close
                                restores it. This is process-wide: it also applies to the caller's own
                                OpenBLAS calls while a CPU device is open. */
    stile_log_fn log;      /**< optional: this device's own log sink. Messages of calls on the device, its
                                plans and its buffers (opening it included) go here instead of to the
                                stile_log_set sink; NULL: the global sink. Called on the calling thread. */
    void *log_user;        /**< passed to log */
    stile_log_level log_level; /**< the most detailed level log receives; 0: STILE_LOG_ERROR */
} stile_device_params;

/** What stile_device_get_info reports. Thread-safety: plain data, filled by the call. */
typedef struct stile_device_info {
    char name[32];         /**< "cpu:0" */
    char backend[16];      /**< "cpu" */
    char description[192]; /**< processor or card, driver, BLAS, threads */
    char card[96];         /**< the processor or card alone ("AMD EPYC", "NVIDIA H100 80GB HBM3") */
    char driver[96];       /**< the driver or runtime ("OpenBLAS 0.3.21 ...", "NVIDIA 570.86") */
    uint8_t reserved[64];  /**< room for later fields; zero */
} stile_device_info;

/** Backends that stile knows, built or not, in a fixed order (cpu, vulkan, cuda, hip). A backend is
 * linked into the library or, in a build with backend modules (the default for shared builds), a
 * module libstile-<name>.so loaded at the first device query (docs/packaging.md); a module that
 * cannot load (its GPU runtime missing, another build's module) leaves the others working.
 * Thread-safety: plain data; stile_backend_get_info may be called from any thread. */
typedef struct stile_backend_info {
    char name[16];        /**< "cpu" */
    int built;            /**< 1 if this library was built with it (linked in or as a module) */
    int available;        /**< 1 if its code is here: linked in, or its module loaded */
    int devices;          /**< devices it finds now (0 if unavailable or no driver/hardware) */
    char status[256];     /**< "ready", "not built into this library", "unavailable: <why the module did
                               not load>", "no driver: ..." */
    char module[256];     /**< the module file loaded ("" when linked in or not found) */
    uint8_t reserved[64]; /**< room for later fields; zero */
} stile_backend_info;

/** Number of known backends, and what one of them can do on this machine now. */
STILE_API int stile_backend_count(void);
STILE_API stile_status stile_backend_get_info(int index, stile_backend_info *out);

/** Open a device by name: "auto" (the best device available), "cpu", "cpu:0", "vulkan:N", "cuda:N",
 * "hip:N". Unknown names: STILE_ERR_UNKNOWN_DEVICE; a backend not built: STILE_ERR_UNSUPPORTED;
 * a built backend with no such device: STILE_ERR_NO_DEVICE. *out is NULL on failure. */
STILE_API stile_status stile_device_open(const char *name, const stile_device_params *params, stile_device **out);
/** Close a device and set *device to NULL; NULL or an already closed device is harmless.
 * Every plan made on the device must be destroyed first. */
STILE_API void stile_device_close(stile_device **device);
STILE_API stile_status stile_device_get_info(const stile_device *device, stile_device_info *out);

/* ---------------------------------------------------------------------------------------------
 * Plans
 * ------------------------------------------------------------------------------------------- */

/** A problem planned for one device: the tile schedule plus whatever the backend prepared.
 * Thread-safety: immutable after creation; stile_plan_execute may run on one plan from several
 * threads at once (each call brings its own tensors). Destroy only when no call uses it. */
typedef struct stile_plan stile_plan;

/** Exact accounting of a plan; pair counts add up over batch and heads. A plan with key_tiles_k
 * reports bounds instead (the tiles come with each execution): its video pairs as if every query tile
 * attended key_tiles_k distinct tiles, the largest ones, so pairs and flops are upper bounds and
 * sparsity a lower bound; distinct_windows is 0. Thread-safety: plain data. */
typedef struct stile_plan_info {
    int64_t grid[3];               /**< tiles per axis: ceil(canvas / tile) */
    int64_t tiles;                 /**< grid[0]*grid[1]*grid[2] */
    int64_t video_tokens;          /**< T*H*W */
    int64_t tokens;                /**< video_tokens + text */
    int64_t text_valid;            /**< text - text_padding */
    int64_t distinct_windows;      /**< distinct effective windows among the heads (one schedule each) */
    int64_t attended_pairs;        /**< (query, key) pairs attended, text included */
    int64_t attended_video_pairs;  /**< of those, video query x video key */
    int64_t full_pairs;            /**< pairs of dense attention over the same tokens (valid keys only) */
    double flops;                  /**< FLOPs computed: 4 * head_dim * attended_pairs */
    double full_flops;             /**< 4 * head_dim * full_pairs */
    double sparsity;               /**< 1 - attended_video_pairs / (B * heads * video_tokens^2) */
    char device[32];               /**< the device it was planned for, "cpu:0" */
    char path[48];                 /**< the kernel the backend chose: "cblas", "mma.sync", "nv-coopmat 16x8x16",
                                        "portable"; an execution whose tensors the path cannot take (e.g.
                                        addresses not 16-byte aligned) falls back to the portable kernel and logs it;
                                        stile_exec_info says what each execution ran */
    uint8_t reserved[64];          /**< room for later fields; zero */
} stile_plan_info;

/** One head's window and its per-query-tile cost (a plan with key_tiles_k: window and effective 0,
 * key_tiles = key_tiles_k, the plan info's bounds, schedule -1, query tile counts 0). Thread-safety: plain data. */
typedef struct stile_head_info {
    int64_t window[3];             /**< as requested */
    int64_t effective[3];          /**< clamped to the grid: min(window, grid) per axis */
    int64_t key_tiles;             /**< key tiles each query tile attends (the same for every query tile) */
    int64_t attended_video_pairs;  /**< video x video pairs of this head, one batch entry */
    double sparsity;               /**< 1 - attended_video_pairs / video_tokens^2 */
    int64_t schedule;              /**< index of the distinct window schedule the head uses */
    int64_t min_query_tiles;       /**< the transposed schedule (stile_plan_query_tiles): fewest query tiles attending one key tile */
    int64_t max_query_tiles;       /**< ... and most (clamped windows make them differ; key_tiles x tiles in all) */
    uint8_t reserved[16];          /**< room for later fields; zero */
} stile_head_info;

/** Plan problem p on device. Validates p fully (see stile_problem_check) and asks the backend
 * whether it supports it (STILE_ERR_UNSUPPORTED with a reason if not). *out is NULL on failure. */
STILE_API stile_status stile_plan_create(stile_device *device, const stile_problem *p, stile_plan **out);
/** Destroy a plan and set *plan to NULL; harmless on NULL. */
STILE_API void stile_plan_destroy(stile_plan **plan);

STILE_API stile_status stile_plan_get_info(const stile_plan *plan, stile_plan_info *out);
STILE_API stile_status stile_plan_get_head(const stile_plan *plan, int64_t head, stile_head_info *out);
/** The problem the plan was made for, defaults filled in (strides resolved, scale set, batch >= 1).
 * Set out->struct_size first (it says which layout out holds). head_windows points into the plan
 * and lives as long as it. */
STILE_API stile_status stile_plan_get_problem(const stile_plan *plan, stile_problem *out);

/** The key tiles (tile indices in raster order over the grid, ascending) that query tile `query_tile`
 * of `head` attends. *tiles points into the plan. A plan with key_tiles_k has no such rows (they come
 * with each execution): STILE_ERR_INVALID_ARGUMENT, as for stile_plan_query_tiles. */
STILE_API stile_status stile_plan_key_tiles(const stile_plan *plan, int64_t head, int64_t query_tile,
                                            const int32_t **tiles, int64_t *count);

/** The transposed schedule: the query tiles (ascending) whose window holds key tile `key_tile` of
 * `head`, i.e. the query tiles a key tile's gradients (dK, dV) gather from. Clamped windows make it
 * differ from the key tile's own window: a key tile in the grid's middle is attended by more query
 * tiles than one at its edge. *tiles points into the plan. */
STILE_API stile_status stile_plan_query_tiles(const stile_plan *plan, int64_t head, int64_t key_tile,
                                              const int32_t **tiles, int64_t *count);

/** The plan as one line of JSON (problem, grid, accounting, per-head windows, and unless compact the
 * key tiles of every query tile per distinct window) written into buf
 * (NUL-terminated). *length receives the length without the NUL; if size is too small nothing
 * is written and STILE_ERR_BUFFER_TOO_SMALL is returned with *length set, snprintf style.
 * buf may be NULL when size is 0. */
STILE_API stile_status stile_plan_json(const stile_plan *plan, int compact, char *buf, size_t size, size_t *length);

/** A caller's memory for one tensor: where it is, how many bytes it spans, and its dtype. Where it is:
 * an address (data), or, on backends whose memory has no addresses, a buffer object and a byte offset
 * in it (handle, offset: a VkBuffer on Vulkan devices, see stile_vulkan_tensor; other backends answer
 * STILE_ERR_UNSUPPORTED). Exactly one of data and handle is set. data, or offset, must be aligned to
 * the dtype's element size (f32: 4 bytes, f16 and bf16: 2), lse's to 4, on every backend.
 * Thread-safety: plain data; the library reads the memory during the call only. */
typedef struct stile_tensor {
    void *data;       /**< the tensor's first byte where the device computes, or NULL with handle */
    size_t bytes;     /**< bytes from there that the tensor may span */
    stile_dtype dtype;
    uint64_t handle;  /**< a backend's buffer object holding the tensor (data NULL), or 0 */
    uint64_t offset;  /**< with handle: the tensor's first byte in that buffer */
} stile_tensor;

/** A tensor at an address (host memory, a device pointer, stile_buffer_data()): data, bytes and dtype,
 * the rest zero. Thread-safety: a pure function. */
static inline stile_tensor stile_tensor_at(void *data, size_t bytes, stile_dtype dtype)
{
    stile_tensor t = {.data = data, .bytes = bytes, .dtype = dtype};
    return t;
}

/** What one execution did. Thread-safety: plain data, written by the call. */
typedef struct stile_exec_info {
    char path[48];         /**< the kernel that ran: the plan's path, or the one it fell back to for these
                                tensors ("portable" for addresses a tensor-core path cannot take) */
    uint8_t reserved[80];  /**< room for later fields; zero */
} stile_exec_info;

/** The tensors of one execution. q, k, v are only read. o receives the output. lse is optional
 * (data NULL: not wanted): f32, contiguous [B, heads, tokens], tokens in the problem's order,
 * natural-log log-sum-exp of the scaled scores over the attended keys. Thread-safety: plain data;
 * concurrent executions must not share o or lse.
 * Tensor data lives where the device computes: host memory for the CPU, device memory (e.g. a
 * cudaMalloc'd pointer or a torch tensor's data_ptr) for a GPU, or stile_buffer_data() of a buffer. */
typedef struct stile_io {
    uint32_t struct_size; /**< sizeof(stile_io) (required: see the ABI rules at the top) */
    stile_tensor q, k, v, o, lse;
    void *stream; /**< GPU backends: the caller's stream (a cudaStream_t / hipStream_t) to enqueue on, and
                       the call returns at once; NULL: the default stream, and the call returns when the
                       work is done. The CPU ignores it and always returns when done. */
    stile_exec_info *info; /**< optional: receives what this execution did (filled when it succeeds) */
    /* API 3: plans with key_tiles_k (unset for window plans) */
    stile_tensor key_tiles; /**< the key tiles each query tile attends: i32, contiguous [B, heads, tiles, key_tiles_k],
                                 where the device computes; tile indices in raster order over the grid, entries
                                 -1 unused, repeats counted once, any order (docs/contract.md) */
    stile_tensor key_tile_errors; /**< optional: i32, one element where the device computes; GPU backends add to it
                                       the entries of key_tiles outside -1..tiles-1 that they skipped (see
                                       stile_plan_execute); the CPU leaves it alone (it refuses such entries) */
} stile_io;

/** Run the plan. Checks every tensor (NULL, dtype, alignment to its element size, extent against bytes,
 * o overlapping q/k/v or lse) before touching any memory; on failure nothing is written. A misaligned
 * q, k, v, o or lse is STILE_ERR_INVALID_ARGUMENT, with the tensor and its address in the log.
 * A plan with key_tiles_k needs io->key_tiles (a window plan refuses one). An entry outside
 * -1..tiles-1: the CPU returns STILE_ERR_OUT_OF_RANGE, naming the first, before writing anything; a GPU
 * never reads past the grid for it: it skips the entry and adds one to io->key_tile_errors when given,
 * and, when the call waits for the work (stream NULL), returns STILE_ERR_OUT_OF_RANGE after it
 * (o and lse then hold the attention without the skipped entries). */
STILE_API stile_status stile_plan_execute(const stile_plan *plan, const stile_io *io);

/** Inputs and outputs of a backward pass (stile_plan_backward): the forward's q, k, v, its output o
 * and its LSE, the upstream gradient d_o = dL/dO, and the gradients the call writes. d_q, d_k and d_v
 * take the problem's q, k and v strides, d_o its o strides, all of the problem's dtype; every element
 * the gradients' strides reach is written (a padded text key's d_k and d_v rows are zero). lse is
 * required: f32 [B, heads, tokens], as stile_plan_execute wrote it for this o.
 * Thread-safety: plain data; concurrent calls must not share outputs. */
typedef struct stile_grad_io {
    uint32_t struct_size;              /**< sizeof(stile_grad_io) (required: see the ABI rules at the top) */
    stile_tensor q, k, v, o, lse, d_o; /**< inputs: read only */
    stile_tensor d_q, d_k, d_v;        /**< outputs */
    void *stream;                      /**< as stile_io.stream */
    stile_exec_info *info;             /**< optional: receives what this call did (filled when it succeeds) */
    stile_tensor key_tiles, key_tile_errors; /**< plans with key_tiles_k: as stile_io's, the forward's key tiles (API 3) */
} stile_grad_io;

/** The backward pass of the plan's attention (docs/contract.md, "Gradients"): dQ, dK and dV from the
 * forward's inputs, output and LSE and from dO. Deterministic: the same inputs give bitwise the same
 * gradients on a device, whatever its thread count or scheduling (no floating-point atomics: each
 * key's sums run over the plan's transposed schedule, stile_plan_query_tiles, in a fixed order).
 * Checks every tensor as stile_plan_execute does, and that no output overlaps any other tensor,
 * before writing anything. Every backend has one (CPU, CUDA, HIP, Vulkan); a backend without one
 * would return STILE_ERR_UNSUPPORTED with the reason in the log. */
STILE_API stile_status stile_plan_backward(const stile_plan *plan, const stile_grad_io *io);

/** The FLOPs one stile_plan_backward of this plan computes on its device, recomputed scores included
 * (the CPU computes QK^T and dO V^T in both of its passes: 3.5x the forward's), or 0 where the
 * backend has no backward pass. */
STILE_API double stile_plan_backward_flops(const stile_plan *plan);

/* ---------------------------------------------------------------------------------------------
 * Buffers: memory where a device computes, for callers without their own GPU allocator
 * ------------------------------------------------------------------------------------------- */

/** Device memory owned by the library (host memory on the CPU).
 * Thread-safety: a buffer may be used by one call at a time; distinct buffers are independent. */
typedef struct stile_buffer stile_buffer;

/** Allocate `bytes` (> 0) on device. *out is NULL on failure (STILE_ERR_OUT_OF_MEMORY and the
 * backend's message in the log). The contents are undefined until written. */
STILE_API stile_status stile_buffer_create(stile_device *device, size_t bytes, stile_buffer **out);
/** Free a buffer and set *buffer to NULL; harmless on NULL. Destroy buffers before their device. */
STILE_API void stile_buffer_destroy(stile_buffer **buffer);
/** Copy bytes from host memory into the buffer at offset, or out of it; returns when done.
 * A range past the end is STILE_ERR_OUT_OF_RANGE and copies nothing. */
STILE_API stile_status stile_buffer_upload(stile_buffer *buffer, size_t offset, const void *src, size_t bytes);
STILE_API stile_status stile_buffer_download(const stile_buffer *buffer, size_t offset, void *dst, size_t bytes);
/** The buffer's address as the device sees it, for stile_tensor.data, and its size. */
STILE_API void *stile_buffer_data(const stile_buffer *buffer);
STILE_API size_t stile_buffer_size(const stile_buffer *buffer);

/* ---------------------------------------------------------------------------------------------
 * Window strategies: a window per (denoising step, layer, head), FastVideo's JSON format
 * ------------------------------------------------------------------------------------------- */

/** Windows per (step, layer, head), and the plans made from them, cached per (step, layer).
 * Files are FastVideo's format: {"STEP_LAYER_HEAD": [wt, wh, ww], ...}, windows in tiles.
 * Thread-safety: stile_strategy_plan may be called from several threads; the other calls must not
 * race with any call on the same strategy. */
typedef struct stile_strategy stile_strategy;

STILE_API stile_status stile_strategy_create(stile_strategy **out);
/** Read a FastVideo strategy file; STILE_ERR_IO / STILE_ERR_FORMAT name the file and the fault. Keys are
 * decimal without leading zeros ("00_0_0" is refused: it would be a second spelling of "0_0_0").
 * Loading, setting and getting take O(1) expected time per entry (a hash table). */
STILE_API stile_status stile_strategy_load(const char *path, stile_strategy **out);
/** Write the strategy (keys sorted by step, layer, head) atomically: a temporary file beside the
 * target, then rename. A symlink is followed and kept; a FIFO or character device is written
 * through (a write error fails); a directory, socket or block device is refused. */
STILE_API stile_status stile_strategy_save(const stile_strategy *s, const char *path);
/** The strategy as stile_strategy_save writes it, into buf (NUL-terminated), for a caller that
 * writes it along with other files. *length receives the length without the NUL; if size is too
 * small nothing is written and STILE_ERR_BUFFER_TOO_SMALL is returned with *length set, snprintf
 * style. buf may be NULL when size is 0. */
STILE_API stile_status stile_strategy_json(const stile_strategy *s, char *buf, size_t size, size_t *length);
/** Destroy the strategy and every plan it made; harmless on NULL. Its devices must outlive it. */
STILE_API void stile_strategy_destroy(stile_strategy **s);
STILE_API stile_status stile_strategy_set(stile_strategy *s, int64_t step, int64_t layer, int64_t head, const int64_t window[3]);
/** The window of (step, layer, head), or STILE_ERR_OUT_OF_RANGE if the strategy has none. */
STILE_API stile_status stile_strategy_get(const stile_strategy *s, int64_t step, int64_t layer, int64_t head, int64_t window[3]);
/** Number of (step, layer, head) entries. */
STILE_API int64_t stile_strategy_size(const stile_strategy *s);

/** The plan of (step, layer) on device: base with its per-head windows from the strategy (a head
 * without an entry attends fully, as FastVideo's skipped steps do). The first call per
 * (device, step, layer) plans; later calls return the same plan. It stays owned by the strategy. */
STILE_API stile_status stile_strategy_plan(stile_strategy *s, stile_device *device, const stile_problem *base, int64_t step,
                                           int64_t layer, const stile_plan **out);

/* ---------------------------------------------------------------------------------------------
 * Elementwise helpers
 * ------------------------------------------------------------------------------------------- */

/** Convert n elements between dtypes (round to nearest even when narrowing); src and dst may be at any address. */
STILE_API stile_status stile_convert(const void *src, stile_dtype src_dtype, void *dst, stile_dtype dst_dtype, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* STILE_STILE_H */
