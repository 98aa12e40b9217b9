/* What the CPU backend promises beyond the conformance table (test_conformance.c runs that on every
 * device, the CPU included): results independent of the thread count, and one plan executed from
 * several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static void test_single_thread_device_gives_bitwise_the_same_output(void **state)
{
    (void)state;
    stile_device *one = NULL;
    stile_device_params dp = {.struct_size = sizeof dp, .threads = 1};
    assert_int_equal(stile_device_open("cpu:0", &dp, &one), STILE_OK);
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 1, 3}, .heads = 2, .head_dim = 64, .text = 5};
    stile_conf_result r = stile_conf_run(one, &p, STILE_CONF_BSHD, 7000, 0);
    assert_true(conf_report(&r, "1 thread"));
    const size_t n = (size_t)(320 * 2 * 64);
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o1 = malloc(n * 4), *o2 = malloc(n * 4);
    stile_conf_fill_normal(q, 0, (int64_t)n, 7001);
    stile_conf_fill_normal(k, 0, (int64_t)n, 7002);
    stile_conf_fill_normal(v, 0, (int64_t)n, 7003);
    stile_plan *a = NULL, *b = NULL;
    assert_int_equal(stile_plan_create(one, &p, &a), STILE_OK);
    assert_int_equal(stile_plan_create(conf_cpu, &p, &b), STILE_OK);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, n * 4, 0), .k = stile_tensor_at(k, n * 4, 0), .v = stile_tensor_at(v, n * 4, 0), .o = stile_tensor_at(o1, n * 4, 0)};
    assert_int_equal(stile_plan_execute(a, &io), STILE_OK);
    io.o.data = o2;
    assert_int_equal(stile_plan_execute(b, &io), STILE_OK);
    assert_memory_equal(o1, o2, n * 4); /* work items never share rows: thread count cannot change results */
    free(q); free(k); free(v); free(o1); free(o2);
    stile_plan_destroy(&a);
    stile_plan_destroy(&b);
    stile_device_close(&one);
}

typedef struct conc {
    const stile_plan *plan;
    const stile_problem *p;
    uint64_t seed;
    int passed;
} conc;

static void *conc_run(void *arg)
{
    conc *c = arg;
    const size_t n = (size_t)((4 * 8 * 8 + 2) * 2 * 64);
    uint16_t *q = malloc(n * 2), *k = malloc(n * 2), *v = malloc(n * 2), *o = malloc(n * 2);
    stile_conf_fill_normal(q, STILE_DTYPE_F16, (int64_t)n, c->seed);
    stile_conf_fill_normal(k, STILE_DTYPE_F16, (int64_t)n, c->seed + 1);
    stile_conf_fill_normal(v, STILE_DTYPE_F16, (int64_t)n, c->seed + 2);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, n * 2, 1), .k = stile_tensor_at(k, n * 2, 1), .v = stile_tensor_at(v, n * 2, 1), .o = stile_tensor_at(o, n * 2, 1)};
    double *ref = malloc(n * sizeof *ref);
    stile_check chk = {0};
    for (int rep = 0; rep < 3; rep++) {
        memset(o, 0xff, n * 2);
        c->passed = stile_plan_execute(c->plan, &io) == STILE_OK && stile_oracle(c->p, &io, NULL, 0, ref, NULL) == STILE_OK &&
                    stile_check_output(c->p, &io, NULL, 0, ref, NULL, &chk) == STILE_OK && chk.passed;
        if (!c->passed) break;
    }
    free(q); free(k); free(v); free(o); free(ref);
    return NULL;
}

static void test_one_plan_executes_from_four_threads_at_once(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {4, 8, 8}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 2, .head_dim = 64, .text = 2,
                       .dtype = STILE_DTYPE_F16};
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    pthread_t t[4];
    conc c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (conc){plan, &p, 8000 + 10 * (uint64_t)i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, conc_run, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        printf("  [thread %d] seed %llu: %s\n", i, (unsigned long long)c[i].seed, c[i].passed ? "pass" : "FAIL");
        assert_true(c[i].passed);
    }
    stile_plan_destroy(&plan);
}

/* The inputs of tests and benchmarks: filled in blocks on all processors, the same values as one stream. */
static void test_parallel_fill_is_the_single_stream(void **state)
{
    (void)state;
    const int64_t n = (3 << 20) + 777; /* big enough to split, odd */
    const stile_dtype dts[2] = {STILE_DTYPE_F32, STILE_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        const size_t bytes = (size_t)n * stile_dtype_size(dts[d]);
        char *par = malloc(bytes), *one = malloc(bytes);
        assert_non_null(par);
        assert_non_null(one);
        stile_conf_fill_normal(par, dts[d], n, 77);
        stile_conf_fill_normal_range(one, dts[d], 0, n, 77);
        assert_memory_equal(par, one, bytes);
        stile_conf_fill_normal_range(one, dts[d], 0, n, 78);
        assert_memory_not_equal(par, one, bytes); /* and the seed matters */
        free(par);
        free(one);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_fill_is_the_single_stream),
        cmocka_unit_test(test_single_thread_device_gives_bitwise_the_same_output),
        cmocka_unit_test(test_one_plan_executes_from_four_threads_at_once),
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}
