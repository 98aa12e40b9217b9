/* The oracle's reading of the mask (check/oracle_geom.c): which key each query attends, decided
 * token pair by token pair from docs/contract.md. Shared by the forward oracle and its gradients, and
 * by nothing in libstile on purpose (see check/oracle.c). */
#ifndef STILE_ORACLE_GEOM_H
#define STILE_ORACLE_GEOM_H

#include "oracle_problem.h"

typedef struct oracle_geom {
    int64_t canvas[3], tile[3], n[3];
    int64_t video, text, text_valid;
    int64_t *natural; /* token index (problem order) -> natural raster index, video tokens only */
    /* caller-chosen key tiles (op->key_tiles_k > 0): the caller's i32 [B, heads, tiles, k], and the
     * tiles the current query row attends (oracle_row) as one flag per tile */
    const int32_t *key_tiles;
    int64_t k, heads;
    unsigned char *row_tiles;
} oracle_geom;

/* The geometry of op and, for caller-chosen key tiles, io->key_tiles (host memory; an entry outside
 * -1..tiles-1 is STILE_ERR_OUT_OF_RANGE); failures reported as who. */
stile_status oracle_geom_init(const oracle_problem *op, const stile_io *io, const char *who, oracle_geom *g);
void oracle_geom_free(oracle_geom *g);

/* Make query token qi of batch entry b, head h the current row (before oracle_attends on it). */
void oracle_row(oracle_geom *g, int64_t b, int64_t h, int64_t qi);

/* Whether the current query row qi attends key token ki, under a head's window win (unless the
 * caller chose the key tiles). */
int oracle_attends(const oracle_geom *g, const int64_t win[3], int64_t qi, int64_t ki);

/* q, k and v of io (already imported) against op: host data of op's dtype, aligned, large enough. */
stile_status oracle_inputs_check(const stile_io *io, const oracle_problem *op, const char *who);

#endif
