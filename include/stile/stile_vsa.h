/* stile_vsa.h: Video Sparse Attention's steps (VSA, arXiv 2505.13389) around a plan of caller-chosen
 * key tiles: tile means of q, k and v, a coarse attention over them, the top-k key tiles of each query
 * tile by the coarse scores, the fine block-sparse attention on those tiles (stile_plan_execute), and
 * the gated sum of the two outputs. Each step is a call of its own; stile_vsa_forward runs them all.
 * docs/contract.md ("VSA steps") defines what each computes.
 *
 * The plan is one of caller-chosen key tiles (stile_problem.key_tiles_k = k: the top-k count) for a
 * video-only problem (text = 0). Intermediates are f32 and contiguous:
 *   q_c, k_c, v_c, o_c  [B, heads, tiles, head_dim]   (tiles in raster order over the grid)
 *   scores              [B, heads, tiles, tiles]       (query tile, key tile)
 *   key_tiles           i32 [B, heads, tiles, k]       (stile_io.key_tiles' layout)
 * Backends: the CPU, CUDA and HIP; Vulkan answers STILE_ERR_UNSUPPORTED with the reason logged. */
#ifndef STILE_VSA_H
#define STILE_VSA_H

#include "stile/stile.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The tensors of the VSA steps; each step reads and writes the fields its documentation names, and
 * checks them (dtype, alignment, extent, overlaps) before touching memory. Thread-safety: plain
 * data; concurrent calls must not share outputs. */
typedef struct stile_vsa_io {
    uint32_t struct_size;       /**< sizeof(stile_vsa_io) */
    stile_tensor q, k, v;       /**< the plan's dtype and strides (as stile_io's) */
    stile_tensor gate;          /**< the plan's dtype, o's strides: the coarse output's weight per element */
    stile_tensor o;             /**< the plan's dtype and o strides */
    stile_tensor q_c, k_c, v_c; /**< f32 [B, heads, tiles, head_dim]: the tile means of q, k, v */
    stile_tensor o_c;           /**< f32 [B, heads, tiles, head_dim]: the coarse attention's output */
    stile_tensor scores;        /**< f32 [B, heads, tiles, tiles]: the coarse scores, scaled, before softmax */
    stile_tensor key_tiles;     /**< i32 [B, heads, tiles, k]: the tiles each query tile keeps */
    void *stream;               /**< as stile_io.stream */
} stile_vsa_io;

/** Tile means: q_c, k_c, v_c from q, k, v (each the mean of the tile's tokens, a partial tile's over
 * the tokens it has). */
STILE_API stile_status stile_vsa_pool(const stile_plan *plan, const stile_vsa_io *io);

/** Coarse attention over the tile means: o_c from q_c, k_c, v_c (dense softmax attention over all
 * tiles with the plan's scale), and scores when given (its scaled logits). */
STILE_API stile_status stile_vsa_coarse(const stile_plan *plan, const stile_vsa_io *io);

/** Top-k: key_tiles from scores: per (batch, head, query tile) the k key tiles of largest score, ties
 * to the lower tile index, written in that order (largest first). A NaN score: the CPU refuses it
 * (STILE_ERR_INVALID_ARGUMENT); GPUs rank it after every number. */
STILE_API stile_status stile_vsa_select(const stile_plan *plan, const stile_vsa_io *io);

/** Gated sum, in place: o = o + gate * o_c[tile of the token], element by element (o holds the fine
 * attention's output, as stile_plan_execute wrote it). */
STILE_API stile_status stile_vsa_combine(const stile_plan *plan, const stile_vsa_io *io);

/** VSA's forward: pool, coarse, select, the fine attention on the selected tiles (stile_plan_execute
 * with io->key_tiles), combine. q, k, v, gate and o are required; q_c .. key_tiles are optional and,
 * where given, receive the intermediates (otherwise the library holds them for the call). */
STILE_API stile_status stile_vsa_forward(const stile_plan *plan, const stile_vsa_io *io);

#ifdef __cplusplus
}
#endif

#endif /* STILE_VSA_H */
