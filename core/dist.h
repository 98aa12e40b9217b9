/* Distributed plans (include/stile/stile_dist.h): what the planner (dist_plan.c) works out once per
 * rank and the execution (dist_exec.c) walks. Planning talks to no other rank: every rank computes
 * every rank's slab, halo and messages from the same problem, so the ranks agree without a message. */
#ifndef STILE_DIST_INTERNAL_H
#define STILE_DIST_INTERNAL_H

#include "stile/stile_dist.h"
#include "stile_internal.h"

/* A message of a halo exchange: the tiles [tiles[0], tiles[1]) along the axis, all of the other
 * two axes, k then v, [B, box tokens, H, D] each, at offset bytes of the send or receive buffer. */
typedef struct dist_msg {
    int peer;
    int64_t tiles[2];
    int64_t box_org[3], box_ext[3]; /* in tokens of the whole canvas */
    size_t offset, bytes;
} dist_msg;

struct stile_dist_plan {
    stile_device *device;
    stile_comm comm;
    stile_dist_mode mode;
    int axis, P, me;
    stile_resolved r;         /* the whole problem */
    int64_t *lo, *hi;         /* each rank's slab along axis, tiles */
    int64_t slab_org[3], slab_ext[3], slab_video; /* this rank's slab in tokens */
    size_t elem, token_bytes; /* bytes of one element and of one token of q, k, v, o (H * D elements) */
    stile_dist_info info;
    stile_plan *local;        /* halo: the canvas of the slab and its halos; heads: the whole canvas, this rank's heads */
    /* halo mode */
    int64_t ext_tiles[2];     /* the local canvas along axis (tiles of the whole grid) */
    int64_t ext_org[3], ext_ext[3], ext_video; /* ... in tokens */
    int64_t interior[2];      /* query tiles needing no halo along axis (tiles of the whole grid) */
    int nsend, nrecv;
    dist_msg *sends, *recvs;
    stile_buffer *kx, *vx;    /* k and v of the local canvas, then the text */
    stile_buffer *send_buf, *recv_buf;
    stile_buffer *lse_buf;    /* lse of the slab when the caller wants none and text queries need merging */
    stile_buffer *parts, *parts_lse; /* text queries: every rank's partial o and lse */
    /* head mode */
    int64_t hl;               /* heads per rank */
    stile_buffer *qf, *kf, *vf, *of, *lsef;
};

/* The slab of rank `rank` along the axis as a box of the canvas, in tokens. */
void stile_dist_slab_box(const stile_dist_plan *d, int64_t t0, int64_t t1, int64_t org[3], int64_t ext[3]);

#endif
