/* Output files, written all or nothing and never replacing what is not a regular file: used by the
 * library (stile_strategy_save) and compiled into the stile tool too (internal, not exported). */
#ifndef STILE_FILE_OUT_H
#define STILE_FILE_OUT_H

#include <stddef.h>

#include "stile/stile.h"

/* One piece of an output's bytes; an output is its pieces in order (e.g. a .npy header, then data). */
typedef struct stile_out_piece {
    const void *data;
    size_t size;
} stile_out_piece;

/* The outputs of one command or call. What a path names decides how it is written (symlinks are
 * followed to their final target and kept):
 *  - a regular file or a new name: staged as a temporary (mkstemp) in the same directory, renamed
 *    over the name at commit; a replaced file's permission bits (and owner, where allowed) carry over;
 *  - a FIFO or a character device (/dev/stdout, /dev/null): staged in memory and written through at
 *    commit, opened without O_CREAT or O_TRUNC; a write error (ENOSPC from /dev/full) fails;
 *  - anything else (a directory, a socket, a block device): refused.
 * Commit writes through to FIFOs and devices first, as they are what fails in practice, and renames
 * only if all of that succeeded: a failure then commits no file, though a FIFO or device may have
 * taken part of its stream. Left over: a rename failing after another succeeded (the directory
 * changed under us) leaves the earlier ones done. A temporary never outlives its set.
 * Errors are "PATH: reason" lines in err; nothing is logged, so the tool can use this without the
 * library's internals. Thread-safety: one set per thread; sets naming the same path race. */
typedef struct stile_out_set stile_out_set;

stile_status stile_out_set_create(stile_out_set **out);
/* Remove every temporary staged and not committed, and free the set; harmless on NULL. */
void stile_out_set_destroy(stile_out_set **set);
/* Stage the pieces as the contents of path. After a failure the set is unchanged. */
stile_status stile_out_stage(stile_out_set *set, const char *path, const stile_out_piece *pieces, int npieces, char *err,
                             size_t err_size);
/* Make every staged output appear (see above); after a failure no temporary is left. Once only. */
stile_status stile_out_commit(stile_out_set *set, char *err, size_t err_size);

/* Could an output go to path: an existing regular file, FIFO or character device, or a new name
 * in a directory we may write? For refusing a bad path before the work that makes the output. */
stile_status stile_out_check(const char *path, char *err, size_t err_size);
/* One output on its own: stage and commit. */
stile_status stile_out_write(const char *path, const stile_out_piece *pieces, int npieces, char *err, size_t err_size);

#endif
