/* The mask probe's inputs and verdict (tests/mask_probe.c), run by stile_conf_run_probe inside the
 * conformance harness (guard bands, poisoned outputs). */
#ifndef STILE_MASK_PROBE_H
#define STILE_MASK_PROBE_H

#include <stddef.h>

#include "check_internal.h"

typedef struct probe {
    stile_problem p;       /* batch >= 1, every tensor's strides explicit */
    int64_t n[3];          /* tiles per axis */
    int64_t video, text_valid, tokens;
    int64_t chan0[3], nchan[3]; /* the one-hot channels of the key's tile along t, h, w (folded modulo nchan) */
    int64_t *natural;      /* video token (p's order) -> natural raster index */
    const int32_t *key_tiles; /* p.key_tiles_k > 0: the caller's key tiles (i32 [B, heads, tiles, k]), set by the caller */
} probe;

/* p: the problem with batch >= 1 and explicit strides (the harness's own reading). 0 on success;
 * else why in why. */
int probe_init(probe *pr, const stile_problem *p, char *why, size_t why_size);
void probe_free(probe *pr);
/* Write every element of q (0) and v (the channels) through p's strides; k is left as it is. */
void probe_fill(const probe *pr, void *q, void *v);
/* Check every (batch, head, row) of o and lse (f32 [B, heads, tokens]); fills res's probe figures,
 * check.nonfinite/elements/max_abs_error/lse_max_abs_error, and a reason naming the first bad row.
 * Returns the number of bad rows. */
int64_t probe_check(const probe *pr, const void *o, const float *lse, stile_conf_result *res);

#endif
