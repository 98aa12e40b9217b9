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
} oracle_geom;

/* The geometry of op (allocates g->natural); STILE_ERR_OUT_OF_MEMORY, reported as who. */
stile_status oracle_geom_init(const oracle_problem *op, const char *who, oracle_geom *g);
void oracle_geom_free(oracle_geom *g);

/* Whether query token qi attends key token ki under a head's window win. */
int oracle_attends(const oracle_geom *g, const int64_t win[3], int64_t qi, int64_t ki);

/* q, k and v of io (already imported) against op: host data of op's dtype, aligned, large enough. */
stile_status oracle_inputs_check(const stile_io *io, const oracle_problem *op, const char *who);

#endif
