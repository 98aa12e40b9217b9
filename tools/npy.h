/* .npy files (NumPy format 1.0-3.0) for the CLI: little-endian f32 ('<f4'), f16 ('<f2') and bf16,
 * which NumPy has no type for, stored as its bit pattern in '<u2'. C order only. */
#ifndef STILE_NPY_H
#define STILE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "stile/stile.h"

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    stile_dtype dtype;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t count;  /* elements */
    void *data;     /* count * dtype size bytes, owned */
} npy_array;

/* Read path into a; on failure returns a non-zero status and writes one line into err. */
stile_status npy_read(const char *path, npy_array *a, char *err, size_t err_size);
/* Write data (shape, dtype) to path atomically (temporary file, then rename). */
stile_status npy_write(const char *path, stile_dtype dtype, int ndim, const int64_t *shape, const void *data, char *err,
                       size_t err_size);
/* Parse a header dict ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") into a. */
stile_status npy_parse_header(const char *hdr, size_t len, npy_array *a, char *err, size_t err_size);
void npy_free(npy_array *a);

#endif
