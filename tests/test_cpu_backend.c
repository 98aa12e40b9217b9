/* The CPU backend against the fp64 oracle: f32/f16/bf16 x d 64/128 x shapes (non-divisible canvases,
 * full windows), text with padding, per-head windows, batch 2, natural and tiled order, strided and
 * packed layouts, LSE; guard bands, poisoned outputs, concurrent execution of one plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static stile_device *dev;

static int setup(void **state)
{
    (void)state;
    harness_log_init();
    return stile_device_open("cpu", NULL, &dev) == STILE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stile_device_close(&dev);
    return 0;
}

static void expect_pass(const stile_problem *p, uint64_t seed, const char *label)
{
    harness_result r = harness_run(dev, p, seed, label);
    assert_int_equal(r.status, STILE_OK);
    assert_true(r.guard_ok);
    assert_true(r.gaps_ok);
    assert_int_equal(r.check.nonfinite, 0);
    assert_true(r.check.nmse <= r.check.threshold);
    assert_true(harness_passed(&r));
}

static const struct shape {
    const char *name;
    int64_t canvas[3], tile[3], window[3];
} shapes[] = {
    {"5x7x9/2x4x4 w3x1x3 (partial tiles)", {5, 7, 9}, {2, 4, 4}, {3, 1, 3}},
    {"4x8x8/2x4x4 w1x2x1 (divisible)", {4, 8, 8}, {2, 4, 4}, {1, 2, 1}},
    {"3x5x6/3x2x4 w1x3x5 (w >= grid on w)", {3, 5, 6}, {3, 2, 4}, {1, 3, 5}},
    {"2x9x11/1x4x4 w2x2x2 (even window)", {2, 9, 11}, {1, 4, 4}, {2, 2, 2}},
};

static void test_every_dtype_head_dim_and_shape_matches_the_oracle(void **state)
{
    (void)state;
    const stile_dtype dts[3] = {STILE_DTYPE_F32, STILE_DTYPE_F16, STILE_DTYPE_BF16};
    const int64_t dims[2] = {64, 128};
    uint64_t seed = 1000;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 3; t++)
            for (int d = 0; d < 2; d++) {
                stile_problem p = {.heads = 2, .head_dim = dims[d], .dtype = dts[t]};
                memcpy(p.canvas, shapes[s].canvas, sizeof p.canvas);
                memcpy(p.tile, shapes[s].tile, sizeof p.tile);
                memcpy(p.window, shapes[s].window, sizeof p.window);
                char label[128];
                snprintf(label, sizeof label, "%s d%lld", shapes[s].name, (long long)dims[d]);
                expect_pass(&p, seed += 10, label);
            }
}

static void test_text_with_padding_matches_the_oracle(void **state)
{
    (void)state;
    for (int t = 0; t < 3; t++) {
        stile_problem p = {.canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {1, 1, 3}, .heads = 2, .head_dim = 64,
                           .text = 150, .text_padding = 37, .dtype = (stile_dtype)t};
        expect_pass(&p, 2000 + (uint64_t)t, "text 150 (37 padding)");
    }
    stile_problem all_pad = {.canvas = {3, 4, 4}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 64,
                             .text = 5, .text_padding = 5};
    expect_pass(&all_pad, 2010, "text all padding");
}

static void test_per_head_windows_match_the_oracle(void **state)
{
    (void)state;
    const int64_t w[4][3] = {{1, 1, 1}, {3, 1, 3}, {2, 2, 2}, {9, 9, 9}};
    stile_problem p = {.canvas = {5, 7, 9}, .tile = {2, 4, 4}, .head_windows = w, .heads = 4, .head_dim = 128,
                       .text = 9, .text_padding = 2, .dtype = STILE_DTYPE_BF16};
    expect_pass(&p, 3000, "per-head windows");
    p.dtype = STILE_DTYPE_F32;
    expect_pass(&p, 3001, "per-head windows f32");
}

static void test_batch_two_matches_the_oracle(void **state)
{
    (void)state;
    stile_problem p = {.batch = 2, .canvas = {4, 6, 6}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 3, .head_dim = 64,
                       .text = 4, .dtype = STILE_DTYPE_F16};
    expect_pass(&p, 4000, "batch 2");
}

static void test_tiled_order_matches_the_oracle(void **state)
{
    (void)state;
    for (int t = 0; t < 3; t++) {
        stile_problem p = {.canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 1, 3}, .heads = 2, .head_dim = 128,
                           .text = 6, .text_padding = 1, .order = STILE_ORDER_TILED, .dtype = (stile_dtype)t};
        expect_pass(&p, 5000 + (uint64_t)t, "tiled order");
    }
}

static void test_bhsd_padded_and_packed_layouts_match_the_oracle(void **state)
{
    (void)state;
    stile_problem p = {.batch = 2, .canvas = {3, 5, 6}, .tile = {2, 2, 4}, .window = {1, 3, 1}, .heads = 2, .head_dim = 64,
                       .text = 3, .dtype = STILE_DTYPE_BF16};
    const int64_t S = 3 * 5 * 6 + 3, H = 2, D = 64;
    p.q = p.k = p.v = p.o = stile_strides_bhsd(&p);
    expect_pass(&p, 6000, "[B,H,S,D]");
    /* rows padded to 80 elements, heads 200 apart: gaps in o must stay poisoned */
    stile_strides padded = {.batch = S * 400, .token = 400, .head = 200, .dim = 1};
    p.q = p.k = p.v = p.o = padded;
    expect_pass(&p, 6001, "padded strides");
    /* one packed [B, S, 3, H, D] buffer: q, k, v differ only by where they start */
    const size_t es = 2, total = (size_t)(2 * S * 3 * H * D);
    uint16_t *qkv = malloc(total * es + 64), *out = malloc((size_t)(2 * S * H * D) * es);
    harness_fill(qkv, STILE_DTYPE_BF16, (int64_t)total, 6002);
    stile_problem pk = p;
    stile_strides packed = {.batch = S * 3 * H * D, .token = 3 * H * D, .head = D, .dim = 1};
    pk.q = pk.k = pk.v = packed;
    memset(&pk.o, 0, sizeof pk.o);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, &pk, &plan), STILE_OK);
    size_t span = (size_t)(packed.batch * 1 + packed.token * (S - 1) + D * (H - 1) + D) * es;
    stile_io io = {.q = {qkv, span, STILE_DTYPE_BF16}, .k = {qkv + H * D, span, STILE_DTYPE_BF16},
                   .v = {qkv + 2 * H * D, span, STILE_DTYPE_BF16}, .o = {out, (size_t)(2 * S * H * D) * es, STILE_DTYPE_BF16}};
    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    double *ref = malloc(sizeof(double) * (size_t)(2 * S * H * D));
    stile_check c;
    assert_int_equal(stile_oracle(&pk, &io, NULL, 0, ref, NULL), STILE_OK);
    assert_int_equal(stile_check_output(&pk, &io, NULL, 0, ref, NULL, &c), STILE_OK);
    printf("  [packed qkv] seed 6002: NMSE %.3e\n", c.nmse);
    assert_true(c.passed);
    free(qkv); free(out); free(ref);
    stile_plan_destroy(&plan);
}

static void test_single_thread_device_gives_bitwise_the_same_output(void **state)
{
    (void)state;
    stile_device *one = NULL;
    stile_device_params dp = {.threads = 1};
    assert_int_equal(stile_device_open("cpu:0", &dp, &one), STILE_OK);
    stile_problem p = {.canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 1, 3}, .heads = 2, .head_dim = 64, .text = 5};
    harness_result r = harness_run(one, &p, 7000, "1 thread");
    assert_true(harness_passed(&r));
    const size_t n = (size_t)(320 * 2 * 64);
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o1 = malloc(n * 4), *o2 = malloc(n * 4);
    harness_fill(q, 0, (int64_t)n, 7001);
    harness_fill(k, 0, (int64_t)n, 7002);
    harness_fill(v, 0, (int64_t)n, 7003);
    stile_plan *a = NULL, *b = NULL;
    assert_int_equal(stile_plan_create(one, &p, &a), STILE_OK);
    assert_int_equal(stile_plan_create(dev, &p, &b), STILE_OK);
    stile_io io = {.q = {q, n * 4, 0}, .k = {k, n * 4, 0}, .v = {v, n * 4, 0}, .o = {o1, n * 4, 0}};
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
    harness_fill(q, STILE_DTYPE_F16, (int64_t)n, c->seed);
    harness_fill(k, STILE_DTYPE_F16, (int64_t)n, c->seed + 1);
    harness_fill(v, STILE_DTYPE_F16, (int64_t)n, c->seed + 2);
    stile_io io = {.q = {q, n * 2, 1}, .k = {k, n * 2, 1}, .v = {v, n * 2, 1}, .o = {o, n * 2, 1}};
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
    stile_problem p = {.canvas = {4, 8, 8}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 2, .head_dim = 64, .text = 2,
                       .dtype = STILE_DTYPE_F16};
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, &p, &plan), STILE_OK);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dtype_head_dim_and_shape_matches_the_oracle),
        cmocka_unit_test(test_text_with_padding_matches_the_oracle),
        cmocka_unit_test(test_per_head_windows_match_the_oracle),
        cmocka_unit_test(test_batch_two_matches_the_oracle),
        cmocka_unit_test(test_tiled_order_matches_the_oracle),
        cmocka_unit_test(test_bhsd_padded_and_packed_layouts_match_the_oracle),
        cmocka_unit_test(test_single_thread_device_gives_bitwise_the_same_output),
        cmocka_unit_test(test_one_plan_executes_from_four_threads_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
