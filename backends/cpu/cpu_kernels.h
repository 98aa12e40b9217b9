/* Row kernels of the CPU backend's online softmax, built for several x86 levels and picked at load. */
#ifndef STILE_CPU_KERNELS_H
#define STILE_CPU_KERNELS_H

#include <stdint.h>

/* One block of the online softmax over rows of S (m rows, n columns, row stride lds), scores already
 * in log2 units. Per row: new max m' = max(mx, rowmax); S <- 2^(S - m'); l <- l * 2^(mx - m') + sum;
 * alpha[i] = 2^(mx - m') (the factor the accumulator row must be scaled by); mx <- m'. */
void stile_cpu_softmax_block(float *s, int64_t m, int64_t n, int64_t lds, float *mx, float *l, float *alpha);

/* acc[i][:] *= alpha[i] for m rows of width d. */
void stile_cpu_scale_rows(float *acc, int64_t m, int64_t d, const float *alpha);

#endif
