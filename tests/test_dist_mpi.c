/* Distributed plans on CPU ranks over MPI (run under mpiexec -n P; tests/meson.build runs P = 2, 3, 5):
 * the cases of dist_cases.c on each rank's CPU device, through libstile_mpi. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dist_cases.h"
#include "stile/stile_mpi.h"

int main(int argc, char **argv)
{
    int rank, ranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    const char *env = getenv("STILE_TEST_SEED");
    unsigned long long seed = env ? strtoull(env, NULL, 0) : 0;
    if (!env) { /* fresh inputs every run, the same on every rank */
        if (rank == 0) seed = (unsigned long long)time(NULL) * 2654435761ull;
        MPI_Bcast(&seed, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    }
    if (rank == 0) printf("test_dist_mpi: %d ranks, seed %llu (STILE_TEST_SEED=%llu repeats it)\n", ranks, seed, seed);
    stile_device *dev = NULL;
    stile_device_params dparams = {.struct_size = sizeof dparams, .threads = 1};
    stile_comm comm;
    if (stile_device_open("cpu:0", &dparams, &dev) != STILE_OK || stile_comm_mpi(MPI_COMM_WORLD, &comm) != STILE_OK) {
        fprintf(stderr, "rank %d: setup failed: %s\n", rank, stile_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int failures = 0;
    for (int i = 0; i < dist_ncases_cpu; i++) {
        failures += dist_run_case(dev, &comm, &dist_cases_cpu[i], seed + 16 * (uint64_t)i);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    failures += dist_bad_calls(dev, &comm);
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    stile_comm_free(&comm);
    stile_device_close(&dev);
    if (rank == 0) printf("test_dist_mpi: %d ranks, %s (%d failures)\n", ranks, total ? "FAILED" : "passed", total);
    MPI_Finalize();
    return total ? 1 : 0;
}
