/* Named benchmark workloads: the shapes `stile bench --workload` and the peer scripts time. */
#ifndef STILE_WORKLOADS_H
#define STILE_WORKLOADS_H

#include "stile/stile.h"

typedef struct workload {
    const char *name;
    const char *about;
    int64_t canvas[3], tile[3], window[3];
    int64_t heads, head_dim, text;
    stile_dtype dtype;
} workload;

extern const workload workloads[];
extern const int nworkloads;

/* The workload called name, or NULL. */
const workload *workload_find(const char *name);
/* Its problem (batch 1, natural order). */
stile_problem workload_problem(const workload *w);

#endif
