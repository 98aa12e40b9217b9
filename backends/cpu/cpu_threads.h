/* A parallel-for for the CPU backend: threads made per call, items handed out by an atomic counter.
 * Spawning per call keeps concurrent executions of one plan independent (no shared pool to lock). */
#ifndef STILE_CPU_THREADS_H
#define STILE_CPU_THREADS_H

#include <stdint.h>

/* fn(ctx, item, thread) for every item in [0, items); thread is in [0, threads). Returns 0, or -1 if
 * no thread could be started at all (then nothing ran). Fewer threads than asked still run everything. */
int stile_cpu_parallel_for(int threads, int64_t items, void (*fn)(void *ctx, int64_t item, int thread), void *ctx);

#endif
