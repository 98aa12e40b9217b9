/* .npy files (NumPy format 1.0-3.0) for the CLI: little-endian f32 ('<f4'), f16 ('<f2') and bf16,
 * which NumPy has no type for, stored as its bit pattern in '<u2'. C order only. */
#ifndef STILE_NPY_H
#define STILE_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "file_out.h"
#include "stile/stile.h"

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    stile_dtype dtype;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t count;  /* elements */
    void *data;     /* count * dtype size bytes, owned */
} npy_array;

/* Read path into a; on failure returns a non-zero status, a->data NULL, and one line in err
 * ("PATH: reason"). Nothing is allocated for the data before the file is known to hold it. */
stile_status npy_read(const char *path, npy_array *a, char *err, size_t err_size);
/* The same from a stream at its start (a pipe too: the data buffer then grows only as bytes
 * arrive); name prefixes the messages (NULL: none). The stream is left open. */
stile_status npy_read_fp(FILE *fp, const char *name, npy_array *a, char *err, size_t err_size);
/* The same from a whole file's bytes in memory (a fuzzer's input). */
stile_status npy_read_mem(const void *bytes, size_t size, npy_array *a, char *err, size_t err_size);
/* Parse a header: the dict ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), then
 * spaces, then '\n' ending it, len bytes in all (no NUL needed). Sets dtype, ndim, shape, count. */
stile_status npy_parse_header(const char *hdr, size_t len, npy_array *a, char *err, size_t err_size);

/* Stage data (shape, dtype) as path in set, to appear when the set commits (core/file_out.h). */
stile_status npy_stage(stile_out_set *set, const char *path, stile_dtype dtype, int ndim, const int64_t *shape, const void *data,
                       char *err, size_t err_size);
/* Write data (shape, dtype) to path on its own, all or nothing (see file_out.h for what path may be). */
stile_status npy_write(const char *path, stile_dtype dtype, int ndim, const int64_t *shape, const void *data, char *err,
                       size_t err_size);
void npy_free(npy_array *a);

#endif
