/* The capture manifest of `stile calibrate` (docs/calibration.md): JSON text parsed into a problem
 * and its samples, every field checked for its JSON type and range. Nothing here prints or exits:
 * each call returns a status and a one-line message, so that a fuzzer can drive the parser. */
#ifndef STILE_MANIFEST_H
#define STILE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "stile/stile.h"

/* At most this many samples (the report groups them by (step, layer) pairwise). */
#define MANIFEST_MAX_SAMPLES 65536

typedef struct manifest_sample {
    int64_t step, layer;
    char *q, *k, *v; /* DIR/name (malloc'd) */
} manifest_sample;

typedef struct manifest {
    stile_problem p;    /* canvas, tile, heads, head_dim, text, text_padding; window = canvas (full attention) */
    int nsamples;
    manifest_sample *s;
    uint64_t digest;    /* FNV-1a 64 of the manifest's bytes (manifest_load; 0 from manifest_parse) */
} manifest;

/* Parse manifest JSON text of len bytes (it need not be NUL-terminated); file names are joined to
 * dir ("DIR/NAME"; dir NULL: as written). STILE_OK and *out filled, or STILE_ERR_FORMAT (malformed
 * JSON, a field of the wrong type or range, an unknown field), STILE_ERR_INVALID_SIZE /
 * STILE_ERR_OVERFLOW (a problem the library refuses) or STILE_ERR_OUT_OF_MEMORY, with *out empty
 * and the reason in msg (naming the field, e.g. "\"text\" must be a whole number >= 0, not a string"). */
stile_status manifest_parse(const char *text, size_t len, const char *dir, manifest *out, char *msg, size_t msg_size);
/* DIR/manifest.json read and parsed; msg starts with the file's path. A missing file is STILE_ERR_IO. */
stile_status manifest_load(const char *dir, manifest *out, char *msg, size_t msg_size);
/* Free what a manifest holds and empty it; harmless on an empty one. */
void manifest_free(manifest *m);

/* FNV-1a 64 of n bytes, continuing from h (start with MANIFEST_FNV_START). */
#define MANIFEST_FNV_START UINT64_C(0xcbf29ce484222325)
uint64_t manifest_fnv(uint64_t h, const void *data, size_t n);

#endif
