/* Distributed plans on CUDA devices over NCCL: one process per device (forked here; the first makes
 * the NCCL id and hands it to the others through a pipe), the cases of dist_cases.c on each, through
 * libstile_nccl. Exit 77 with the reason where fewer than two CUDA devices are present.
 *   test_dist_nccl [RANKS]   (default: every CUDA device; STILE_TEST_SEED repeats a run) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dist_cases.h"
#include "stile/stile_nccl.h"

static int child(int rank, int ranks, int fd_in, int fd_out, unsigned long long seed)
{
    char name[32];
    snprintf(name, sizeof name, "cuda:%d", rank);
    stile_device *dev = NULL;
    if (stile_device_open(name, NULL, &dev) != STILE_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, stile_last_error());
        return 1;
    }
    ncclUniqueId id;
    if (rank == 0) {
        if (ncclGetUniqueId(&id) != ncclSuccess) return 1;
        for (int i = 1; i < ranks; i++)
            if (write(fd_out, &id, sizeof id) != (ssize_t)sizeof id) return 1;
    } else if (read(fd_in, &id, sizeof id) != (ssize_t)sizeof id) {
        return 1;
    }
    stile_comm comm;
    if (stile_comm_nccl_init(ranks, &id, rank, rank, &comm) != STILE_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, stile_last_error());
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < dist_ncases_gpu; i++) failures += dist_run_case(dev, &comm, &dist_cases_gpu[i], seed + 16 * (uint64_t)i);
    failures += dist_bad_calls(dev, &comm);
    stile_comm_free(&comm);
    stile_device_close(&dev);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    stile_device *probe = NULL;
    int ranks = argc > 1 ? atoi(argv[1]) : 0;
    if (!ranks) /* every CUDA device (opened in a child: the parent touches no GPU before forking) */
        for (;; ranks++) {
            char name[32];
            snprintf(name, sizeof name, "cuda:%d", ranks);
            pid_t pid = fork();
            if (pid == 0) _exit(stile_device_open(name, NULL, &probe) == STILE_OK ? 0 : 1);
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) break;
        }
    if (ranks < 2) {
        printf("SKIP: %d CUDA device(s) here; distributed plans over NCCL need two or more\n", ranks);
        return 77;
    }
    const char *env = getenv("STILE_TEST_SEED");
    const unsigned long long seed = env ? strtoull(env, NULL, 0) : (unsigned long long)time(NULL) * 2654435761ull;
    printf("test_dist_nccl: %d ranks, seed %llu (STILE_TEST_SEED=%llu repeats it)\n", ranks, seed, seed);
    fflush(stdout);
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pids[64];
    for (int r = 0; r < ranks && r < 64; r++) {
        pids[r] = fork();
        if (pids[r] == 0) _exit(child(r, ranks, fds[0], fds[1], seed));
    }
    int failed = 0;
    for (int r = 0; r < ranks && r < 64; r++) {
        int status = 0;
        waitpid(pids[r], &status, 0);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    printf("test_dist_nccl: %d ranks, %s (%d ranks failed)\n", ranks, failed ? "FAILED" : "passed", failed);
    return failed ? 1 : 0;
}
