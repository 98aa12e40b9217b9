/* Distributed plans' checks, whatever the transport (tests/test_dist_mpi.c: CPU ranks over MPI;
 * tests/test_dist_nccl.c: CUDA devices over NCCL): every rank makes the same seeded problem, runs its
 * slab through stile_dist_execute with tensors in its device's memory, and checks its rows (its
 * slab's video tokens and the text) against the fp64 oracle of the whole problem and against the
 * single-device plan's output on the same device (bitwise where the arithmetic is the same: head mode,
 * and halo mode's video rows when the slabs cut the t axis). Outputs are poisoned (NaN) before each
 * run; guard bands after them must stay intact. */
#ifndef STILE_TEST_DIST_CASES_H
#define STILE_TEST_DIST_CASES_H

#include "stile/stile_check.h"
#include "stile/stile_dist.h"

typedef struct dist_case {
    const char *name;
    stile_dist_mode mode;
    stile_dist_axis axis;
    int64_t batch, canvas[3], tile[3], heads, head_dim, text, padding;
    int64_t windows[4][3]; /* per head, repeated over the heads */
    stile_dtype dtype;
    int uneven;            /* split the axis as unevenly as allowed: one tile each, the rest to the last rank */
    int heads_per_rank;    /* head mode: heads = this x ranks */
} dist_case;

/* The cases for CPU ranks (small head dims, every dtype) and for GPUs (the tensor-core paths' dtypes
 * and head dims, and one f32 case for the portable kernel). */
extern const dist_case dist_cases_cpu[];
extern const int dist_ncases_cpu;
extern const dist_case dist_cases_gpu[];
extern const int dist_ncases_gpu;

/* Run case c on this rank (comm's), printing one line; the number of failures (0: passed). Cases whose
 * axis has fewer tiles than ranks print a line and return 0. */
int dist_run_case(stile_device *dev, const stile_comm *comm, const dist_case *c, uint64_t seed);
/* Bad calls answer with their status on every rank, before any message; the number of failures. */
int dist_bad_calls(stile_device *dev, const stile_comm *comm);

#endif
