/* The CPU backend's parallel-for (see cpu_threads.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cpu_threads.h"

typedef struct pf_shared {
    atomic_int_fast64_t next;
    int64_t items;
    void (*fn)(void *ctx, int64_t item, int thread);
    void *ctx;
} pf_shared;

typedef struct pf_worker {
    pf_shared *s;
    int id;
} pf_worker;

static void *pf_run(void *arg)
{
    pf_worker *w = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&w->s->next, 1);
        if (i >= w->s->items) break;
        w->s->fn(w->s->ctx, i, w->id);
    }
    return NULL;
}

int stile_cpu_parallel_for(int threads, int64_t items, void (*fn)(void *ctx, int64_t item, int thread), void *ctx)
{
    pf_shared s = {.items = items, .fn = fn, .ctx = ctx};
    atomic_init(&s.next, 0);
    if (threads > items) threads = (int)(items > 0 ? items : 1);
    if (threads <= 1) {
        pf_worker w = {&s, 0};
        pf_run(&w);
        return 0;
    }
    pthread_t *tid = malloc((size_t)threads * sizeof *tid);
    pf_worker *ws = malloc((size_t)threads * sizeof *ws);
    if (!tid || !ws) {
        free(tid);
        free(ws);
        pf_worker w = {&s, 0};
        pf_run(&w); /* no memory for threads: still correct, on this thread */
        return 0;
    }
    int started = 1;
    for (int t = 1; t < threads; t++) {
        ws[t] = (pf_worker){&s, t};
        if (pthread_create(&tid[t], NULL, pf_run, &ws[t]) != 0) break;
        started++;
    }
    ws[0] = (pf_worker){&s, 0};
    pf_run(&ws[0]);
    for (int t = 1; t < started; t++) pthread_join(tid[t], NULL);
    free(tid);
    free(ws);
    return 0;
}
