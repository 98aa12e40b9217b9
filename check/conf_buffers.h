/* The conformance harness's buffers (check/conf_buffers.c): host arrays with guard bands mirrored in
 * device buffers, extents by the contract, and the checks of what a run may and may not touch.
 * Shared by the forward harness (harness.c) and the backward one (harness_backward.c). */
#ifndef STILE_CONF_BUFFERS_H
#define STILE_CONF_BUFFERS_H

#include "check_internal.h"

/* A host array of bytes + STILE_CONF_GUARD_BYTES (the guard band filled) and a device buffer as large. */
typedef struct conf_mirror {
    unsigned char *host;
    stile_buffer *dev;
    size_t bytes; /* without the guard */
} conf_mirror;

int conf_mirror_init(stile_device *dev, conf_mirror *m, size_t bytes); /* 1 on success */
void conf_mirror_free(conf_mirror *m);
int conf_up(conf_mirror *m);                       /* host -> device, guard included; 1 on success */
int conf_down(conf_mirror *m, unsigned char *dst); /* device -> dst (bytes + guard); 1 on success */
int conf_poison(conf_mirror *m);                   /* host bytes 0xff (NaN in every dtype), then conf_up */

/* The forward's tensors in the device buffers of m (q or packed qkv, k, v, o, lse), each lead bytes in
 * (lse at the start); with packed, k and v are views hd and 2 hd bytes into m[0]. */
stile_io conf_device_io(const conf_mirror m[5], int packed, size_t lead, size_t hd, const size_t span[4], size_t lse_bytes,
                        stile_dtype dt);

/* Seeded caller-chosen key tiles for p (key_tiles_k > 0; batch and tiles by the contract) into dst,
 * i32 [B, heads, tiles, k]: head h fills at most max(1, k (h + 1) / heads) entries of a row (the rest
 * -1), with -1 gaps, repeats, the query's own tile in some rows and not in others, and one row in
 * sixteen empty. */
void conf_key_tiles_fill(const stile_problem *p, uint64_t seed, int32_t *dst);
/* Bytes of p's key tiles (0 for a window problem). */
size_t conf_key_tiles_bytes(const stile_problem *p);

double conf_now_ms(void);
/* Elements a tensor of strides s and extents [B, S, H, D] reaches: its largest offset + 1. */
int64_t conf_span_of(const stile_strides *s, const int64_t ext[4]);
/* Whether the guard band after bytes bytes of buf is intact. */
int conf_guard_intact(const unsigned char *buf, size_t bytes);
/* p with the contract's defaults filled in by the harness itself (batch 1; all-zero strides:
 * contiguous [B, S, H, D]), so that a wrong default in the library shows up. */
void conf_contract_problem(stile_problem *p);
/* Whether every element of buf (span_bytes of es-byte elements) that strides s over extents ext do not
 * reach is still poison (0xff bytes). 1 yes, 0 no, -1 out of memory. */
int conf_gaps_poisoned(const unsigned char *buf, size_t span_bytes, const stile_strides *s, const int64_t ext[4], size_t es);

#endif
