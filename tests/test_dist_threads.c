/* Distributed plans with P ranks as threads of one process sharing one device (the cases of
 * dist_cases.c): CPU ranks here without MPI (the sanitizers see every allocation of the distributed
 * code), and several ranks on one GPU, where NCCL would refuse two ranks of one device. The transport
 * is this test's own, in memory: each exchange posts its sends, meets the other ranks at a barrier,
 * copies what it receives (cudaMemcpy between GPU buffers; memcpy on the CPU) and meets them again.
 * Streams are not used (every call waits), so nothing in flight is read.
 *   test_dist_threads DEVICE RANKS   (STILE_TEST_SEED repeats a run; exit 77 without the device) */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_cases.h"
#if STILE_TEST_CUDART
#include <cuda_runtime_api.h>
#endif

enum { MAX_RANKS = 8, MAX_MSGS = 256 };

typedef struct world {
    int size, gpu;
    pthread_barrier_t bar;
    pthread_mutex_t lock;
    stile_comm_msg posted[MAX_RANKS][MAX_MSGS]; /* sends of the current exchange, by sender */
    int nposted[MAX_RANKS];
    float reduce[MAX_RANKS][64];
    int failed;
} world;

typedef struct rank_ctx {
    world *w;
    int rank;
} rank_ctx;

static int copy(const world *w, void *dst, const void *src, size_t n)
{
#if STILE_TEST_CUDART
    if (w->gpu) return cudaMemcpy(dst, src, n, cudaMemcpyDefault) == cudaSuccess ? 0 : -1;
#endif
    (void)w;
    memcpy(dst, src, n);
    return 0;
}

static stile_status ex_start(void *ctx, const stile_comm_msg *sends, int nsends, const stile_comm_msg *recvs, int nrecvs, void *stream,
                             void **pending)
{
    (void)stream;
    rank_ctx *c = ctx;
    world *w = c->w;
    if (nsends > MAX_MSGS) return stile_report_error(STILE_ERR_UNSUPPORTED, "test transport: %d sends", nsends);
    memcpy(w->posted[c->rank], sends, (size_t)nsends * sizeof *sends);
    w->nposted[c->rank] = nsends;
    pthread_barrier_wait(&w->bar);
    /* the i-th receive from peer p takes p's i-th send to this rank */
    int taken[MAX_RANKS] = {0}, bad = 0;
    for (int i = 0; i < nrecvs; i++) {
        const int p = recvs[i].peer;
        const stile_comm_msg *m = NULL;
        for (int j = 0, seen = 0; j < w->nposted[p]; j++)
            if (w->posted[p][j].peer == c->rank && seen++ == taken[p]) {
                m = &w->posted[p][j];
                break;
            }
        taken[p]++;
        if (!m || m->bytes != recvs[i].bytes || copy(w, recvs[i].data, m->data, m->bytes) != 0) bad = 1;
    }
    pthread_barrier_wait(&w->bar); /* every copy out of the send buffers is done */
    *pending = NULL;
    return bad ? stile_report_error(STILE_ERR_BACKEND, "test transport: rank %d: a receive matched no send of its size", c->rank) : STILE_OK;
}

static stile_status ex_wait(void *ctx, void *pending, void *stream)
{
    (void)ctx;
    (void)pending;
    (void)stream;
    return STILE_OK;
}

static stile_status allreduce(void *ctx, float *data, size_t count, stile_comm_op op, void *stream)
{
    (void)stream;
    rank_ctx *c = ctx;
    world *w = c->w;
    if (count > 64) return stile_report_error(STILE_ERR_UNSUPPORTED, "test transport: all-reduce of %zu floats", count);
    float v[64];
    copy(w, v, data, count * sizeof(float));
    memcpy(w->reduce[c->rank], v, count * sizeof(float));
    pthread_barrier_wait(&w->bar);
    for (size_t i = 0; i < count; i++) {
        float r = w->reduce[0][i];
        for (int p = 1; p < w->size; p++) r = op == STILE_COMM_MAX ? (w->reduce[p][i] > r ? w->reduce[p][i] : r) : r + w->reduce[p][i];
        v[i] = r;
    }
    pthread_barrier_wait(&w->bar);
    copy(w, data, v, count * sizeof(float));
    return STILE_OK;
}

typedef struct thread_arg {
    world *w;
    int rank;
    const char *device;
    unsigned long long seed;
} thread_arg;

static void *rank_thread(void *p)
{
    thread_arg *a = p;
    rank_ctx ctx = {a->w, a->rank};
    stile_comm comm = {.struct_size = sizeof comm, .rank = a->rank, .size = a->w->size, .ctx = &ctx, .exchange_start = ex_start,
                       .exchange_wait = ex_wait, .allreduce = allreduce};
    stile_device *dev = NULL;
    stile_device_params dp = {.struct_size = sizeof dp, .threads = 1};
    int failures = 0;
    if (stile_device_open(a->device, &dp, &dev) != STILE_OK) {
        fprintf(stderr, "rank %d: %s\n", a->rank, stile_last_error());
        failures = 1;
    }
    const dist_case *cases = a->w->gpu ? dist_cases_gpu : dist_cases_cpu;
    const int n = a->w->gpu ? dist_ncases_gpu : dist_ncases_cpu;
    for (int i = 0; i < n && dev; i++) {
        failures += dist_run_case(dev, &comm, &cases[i], a->seed + 16 * (uint64_t)i);
        pthread_barrier_wait(&a->w->bar);
    }
    if (dev) failures += dist_bad_calls(dev, &comm);
    stile_device_close(&dev);
    pthread_mutex_lock(&a->w->lock);
    a->w->failed += failures;
    pthread_mutex_unlock(&a->w->lock);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *device = argc > 1 ? argv[1] : "cpu:0";
    const int ranks = argc > 2 ? atoi(argv[2]) : 2;
    if (ranks < 1 || ranks > MAX_RANKS) return fprintf(stderr, "test_dist_threads: 1 to %d ranks\n", MAX_RANKS), 2;
    stile_device *probe = NULL;
    if (stile_device_open(device, NULL, &probe) != STILE_OK) {
        printf("SKIP: %s: %s\n", device, stile_last_error());
        return 77;
    }
    stile_device_info info;
    stile_device_get_info(probe, &info);
    stile_device_close(&probe);
    world *w = calloc(1, sizeof *w);
    w->size = ranks;
    w->gpu = strcmp(info.backend, "cpu") != 0;
#if !STILE_TEST_CUDART
    if (w->gpu) {
        printf("SKIP: %s: this test copies GPU memory with the CUDA runtime, not built in\n", device);
        return 77;
    }
#endif
    const char *env = getenv("STILE_TEST_SEED");
    const unsigned long long seed = env ? strtoull(env, NULL, 0) : (unsigned long long)time(NULL) * 2654435761ull;
    printf("test_dist_threads: %s, %d ranks as threads, seed %llu (STILE_TEST_SEED=%llu repeats it)\n", info.name, ranks, seed, seed);
    pthread_barrier_init(&w->bar, NULL, (unsigned)ranks);
    pthread_mutex_init(&w->lock, NULL);
    pthread_t th[MAX_RANKS];
    thread_arg args[MAX_RANKS];
    for (int r = 0; r < ranks; r++) {
        args[r] = (thread_arg){w, r, device, seed};
        pthread_create(&th[r], NULL, rank_thread, &args[r]);
    }
    for (int r = 0; r < ranks; r++) pthread_join(th[r], NULL);
    const int failed = w->failed;
    printf("test_dist_threads: %s, %d ranks, %s (%d failures)\n", info.name, ranks, failed ? "FAILED" : "passed", failed);
    pthread_barrier_destroy(&w->bar);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return failed ? 1 : 0;
}
