/* libFuzzer harness: any bytes as a .npy file through the CLI's reader (tools/npy.c). What it accepts
 * must be consistent (count = product of the shape, data of that many elements) and must survive a
 * write and a read back bit for bit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

static char dir[64], path[96];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/stile-fuzz-npy-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/a.npy", dir);
        atexit(cleanup);
    }
    npy_array a;
    char err[256];
    stile_status st = npy_read_mem(data, size, &a, err, sizeof err);
    if (st != STILE_OK) {
        if (a.data || !err[0] || !memchr(err, 0, sizeof err)) abort(); /* refused: nothing kept, a message said why */
        return 0;
    }
    int64_t count = 1;
    for (int i = 0; i < a.ndim; i++) count *= a.shape[i];
    const size_t bytes = (size_t)count * stile_dtype_size(a.dtype);
    if (count != a.count || a.ndim < 0 || a.ndim > NPY_MAX_DIMS || !a.data) abort();
    if (bytes > size) abort(); /* the data came from the input: it cannot be longer than the input */
    npy_array b;
    if (npy_write(path, a.dtype, a.ndim, a.shape, a.data, err, sizeof err) != STILE_OK ||
        npy_read(path, &b, err, sizeof err) != STILE_OK)
        abort();
    if (b.dtype != a.dtype || b.ndim != a.ndim || memcmp(b.shape, a.shape, sizeof a.shape[0] * (size_t)a.ndim) != 0 ||
        b.count != a.count || memcmp(a.data, b.data, bytes) != 0)
        abort();
    npy_free(&a);
    npy_free(&b);
    return 0;
}
