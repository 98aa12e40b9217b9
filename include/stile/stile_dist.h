/* stile_dist.h: one STA problem over several ranks (processes, usually one per GPU), each holding a
 * slab of the canvas. docs/distributed.md says what each mode moves and what it costs.
 *
 * Halo mode (STILE_DIST_HALO): the tile grid is cut along one axis into P slabs of whole tiles; rank r
 * holds the video tokens of its slab (natural order within the slab) and all text tokens. Its query
 * tiles attend key tiles within the window's reach, so a rank receives from its neighbours only the
 * key and value tiles its windows reach past the slab (the halo; per-head windows: their union), and
 * computes the query tiles that need no halo while the halo travels. Text queries attend every key:
 * each rank attends its own slab, and the partial outputs are merged by their log-sum-exp.
 *
 * Head mode (STILE_DIST_HEADS, Ulysses sequence parallelism): an all-to-all gives each rank every
 * token of heads/P heads, it runs the whole canvas on those heads, and a second all-to-all returns
 * the output to the slabs. The same slabs and tensors as halo mode, so the two compare directly.
 *
 * The transport is the caller's: a stile_comm filled by an adapter (stile_comm_mpi in stile_mpi.h for
 * CPU ranks, stile_comm_nccl in stile_nccl.h for CUDA devices) or by the application. The library
 * itself links no MPI or NCCL. */
#ifndef STILE_DIST_H
#define STILE_DIST_H

#include "stile/stile.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One message of an exchange: bytes at data (where the device computes) to or from rank peer. */
typedef struct stile_comm_msg {
    int peer;
    void *data;
    size_t bytes;
} stile_comm_msg;

/** Reductions of stile_comm.allreduce (f32 elements). */
typedef enum stile_comm_op { STILE_COMM_SUM = 0, STILE_COMM_MAX = 1 } stile_comm_op;

/** A transport between the ranks of one distributed plan. Every call is collective in the sense the
 * plan needs: each rank makes the same calls in the same order. `stream` is the caller's stream of the
 * execution (stile_io.stream; NULL on the CPU): a transport for GPU memory orders its work after what
 * is already queued there, and the wait after the transfer. Each call returns STILE_OK or a status,
 * with the reason given to stile_report_error. Thread-safety: as the transport underneath. */
typedef struct stile_comm {
    uint32_t struct_size; /**< sizeof(stile_comm) */
    int rank, size;       /**< this rank, and the number of ranks (1..) */
    void *ctx;            /**< the adapter's state, passed to every call */
    /** Start sending every sends[i] and receiving every recvs[i] (peers may repeat, or be this rank:
     * then the adapter copies); *pending receives what wait needs. Buffers stay untouched until wait. */
    stile_status (*exchange_start)(void *ctx, const stile_comm_msg *sends, int nsends, const stile_comm_msg *recvs, int nrecvs,
                                   void *stream, void **pending);
    /** The exchange is complete (on a GPU: work queued on stream after this call sees it). */
    stile_status (*exchange_wait)(void *ctx, void *pending, void *stream);
    /** Element-wise reduction of count f32 at data across the ranks, in place. */
    stile_status (*allreduce)(void *ctx, float *data, size_t count, stile_comm_op op, void *stream);
    /** Release ctx (stile_comm_free calls it); may be NULL. */
    void (*release)(void *ctx);
} stile_comm;

/** Release an adapter's transport (comm->release) and zero *comm; harmless on NULL or a zeroed one. */
STILE_API void stile_comm_free(stile_comm *comm);

/** How the work is split. Thread-safety: a value. */
typedef enum stile_dist_mode {
    STILE_DIST_HALO = 0, /**< slabs of the canvas with halo exchange (context parallelism) */
    STILE_DIST_HEADS = 1 /**< all-to-all to heads/P heads per rank (Ulysses) */
} stile_dist_mode;

/** The grid axis cut into slabs. Auto picks the axis whose largest slab holds the fewest video tokens
 * (the best balance), then the one whose halos hold the fewest tokens, then the outer one.
 * Thread-safety: a value. */
typedef enum stile_dist_axis { STILE_DIST_AXIS_AUTO = 0, STILE_DIST_AXIS_T = 1, STILE_DIST_AXIS_H = 2, STILE_DIST_AXIS_W = 3 } stile_dist_axis;

/** Options of stile_dist_plan_create; zero fields take their defaults. Thread-safety: plain data, only read. */
typedef struct stile_dist_params {
    uint32_t struct_size;  /**< sizeof(stile_dist_params) */
    stile_dist_mode mode;
    stile_dist_axis axis;  /**< halo mode: the grid axis cut into slabs; 0 (auto): the planner picks */
    const int64_t *split;  /**< optional: tiles per rank along the axis (comm size entries, each >= 1, summing to the grid) */
} stile_dist_params;

/** A plan over ranks. Thread-safety: one execution at a time per plan. */
typedef struct stile_dist_plan stile_dist_plan;

/** What a rank holds and moves. Thread-safety: plain data, filled by the call. */
typedef struct stile_dist_info {
    int rank, ranks;
    int axis;                 /**< the grid axis of the slabs: 0 t, 1 h, 2 w */
    stile_dist_mode mode;
    int64_t slab_tiles[2];    /**< this rank's tiles along axis: [first, end) */
    int64_t slab_canvas[3];   /**< its video tokens per axis: q, k, v, o hold slab_canvas product + text tokens */
    int64_t slab_tokens;      /**< video tokens of the slab + text tokens: the token extent of its tensors */
    int64_t halo_tiles[2];    /**< halo mode: tiles received from below and from above along axis */
    int64_t interior_tiles[2];/**< halo mode: the slab's query tiles along axis that need no halo, [first, end) (may be empty) */
    int64_t heads_local[2];   /**< head mode: the heads this rank computes, [first, end) */
    int64_t bytes_sent;       /**< bytes this rank sends per execution (to all peers) */
    int64_t bytes_received;   /**< ... and receives */
    double flops;             /**< FLOPs this rank computes per execution */
    uint8_t reserved[64];     /**< room for later fields; zero */
} stile_dist_info;

/** Plan problem p over comm's ranks on device (each rank calls it with the same p and params; comm is
 * copied, and must stay valid while the plan lives). p describes the whole canvas; tensors are
 * contiguous [B, S, H, D] (its strides unset) in natural order. Halo mode: any window, text, per-head
 * windows; up to as many ranks as tiles along the axis, uneven splits allowed. Head mode: heads a
 * multiple of the ranks. Devices without the distributed steps (Vulkan, for now) answer
 * STILE_ERR_UNSUPPORTED. *out is NULL on failure. */
STILE_API stile_status stile_dist_plan_create(stile_device *device, const stile_problem *p, const stile_comm *comm,
                                              const stile_dist_params *params, stile_dist_plan **out);
/** Destroy a plan (not its comm) and set *plan to NULL; harmless on NULL. */
STILE_API void stile_dist_plan_destroy(stile_dist_plan **plan);
STILE_API stile_status stile_dist_plan_get_info(const stile_dist_plan *plan, stile_dist_info *out);

/** Run this rank's part. io's q, k, v, o are the slab's tensors ([B, slab_tokens, H, D], the problem's
 * dtype); lse is optional (f32 [B, H, slab_tokens]); no key tiles. Every rank calls it; o and lse then
 * hold what the single-device plan writes for the slab's tokens and the text tokens. On a GPU with a
 * stream the call returns once the work is queued. */
STILE_API stile_status stile_dist_execute(stile_dist_plan *plan, const stile_io *io);

#ifdef __cplusplus
}
#endif

#endif /* STILE_DIST_H */
