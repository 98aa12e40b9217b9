/* Online-softmax row kernels (see cpu_kernels.h): a branch-free exp2 the compiler vectorizes, cloned
 * for AVX2/AVX-512 on x86-64 so one binary runs everywhere and fast where it can. */
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

/* GCC only: clang 14 names the clones' ifunc differently and hidden symbols then fail to link. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define STILE_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define STILE_CLONES
#endif

/* 2^x for x <= 0, relative error ~1e-8: x = k + f with k = round(x), |f| <= 1/2, 2^f by its
 * degree-7 Taylor polynomial in f*ln2, 2^k put into the exponent bits. */
static inline float exp2_neg(float x)
{
    if (x < -126.0f) x = -126.0f;
    float k = (x + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
    float f = x - k;
    float p = 1.5252733804e-5f;
    p = p * f + 1.5403530393e-4f;
    p = p * f + 1.3333558146e-3f;
    p = p * f + 9.6181291076e-3f;
    p = p * f + 5.5504108665e-2f;
    p = p * f + 2.4022650696e-1f;
    p = p * f + 6.9314718056e-1f;
    p = p * f + 1.0f;
    if (k != k) k = 0.0f; /* NaN input: keep the cast defined; p is NaN already and carries it */
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

STILE_CLONES
void stile_cpu_softmax_block(float *s, int64_t m, int64_t n, int64_t lds, float *mx, float *l, float *alpha)
{
    for (int64_t i = 0; i < m; i++) {
        float *row = s + i * lds;
        float rmax = mx[i];
#pragma omp simd reduction(max : rmax)
        for (int64_t j = 0; j < n; j++) rmax = row[j] > rmax ? row[j] : rmax;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            float e = exp2_neg(row[j] - rmax);
            row[j] = e;
            sum += e;
        }
        float a = mx[i] == -INFINITY ? 0.0f : exp2_neg(mx[i] - rmax);
        alpha[i] = a;
        l[i] = l[i] * a + sum;
        mx[i] = rmax;
    }
}

STILE_CLONES
void stile_cpu_scale_rows(float *acc, int64_t m, int64_t d, const float *alpha)
{
    for (int64_t i = 0; i < m; i++) {
        float a = alpha[i];
        float *row = acc + i * d;
#pragma omp simd
        for (int64_t j = 0; j < d; j++) row[j] *= a;
    }
}
