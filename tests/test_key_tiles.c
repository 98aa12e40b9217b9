/* Caller-chosen key tiles (stile_problem.key_tiles_k) beyond what the conformance table checks: the
 * problem and io checks, the plan's bounds, and on every device that opens here (the CPU always;
 * vulkan:0 and cuda:0 where present) the out-of-range rule and the set semantics (the same set in
 * another order, with repeats, gives bitwise the same output). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stile/stile_check.h"
#include "test_util.h"

enum { TILES = 18, K = 5, HEADS = 2, TOKENS = 8 * 12 * 12 };

static stile_problem problem(void)
{
    return (stile_problem){.struct_size = sizeof(stile_problem), .canvas = {8, 12, 12}, .tile = {4, 4, 4}, .heads = HEADS,
                           .head_dim = 64, .key_tiles_k = K};
}

static void test_problem_checks(void **state)
{
    (void)state;
    stile_problem p = problem();
    assert_int_equal(stile_problem_check(&p), STILE_OK);
    p.key_tiles_k = TILES + 1;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_SIZE);
    assert_non_null(strstr(stile_last_error(), "key_tiles_k=19"));
    p.key_tiles_k = -1;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_SIZE);
    p = problem();
    p.window[0] = 1;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_WINDOW);
    assert_non_null(strstr(stile_last_error(), "window and head_windows must be unset"));
    p = problem();
    p.dtype = STILE_DTYPE_I32;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT);
}

static void test_plan_reports_bounds_and_no_rows(void **state)
{
    (void)state;
    stile_problem p = problem();
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    stile_plan_info in;
    assert_int_equal(stile_plan_get_info(plan, &in), STILE_OK);
    assert_int_equal(in.attended_video_pairs, (int64_t)HEADS * TOKENS * K * 64); /* every tile is whole: 64 tokens */
    assert_int_equal(in.distinct_windows, 0);
    stile_head_info hi;
    assert_int_equal(stile_plan_get_head(plan, 1, &hi), STILE_OK);
    assert_int_equal(hi.key_tiles, K);
    assert_int_equal(hi.schedule, -1);
    const int32_t *tiles;
    int64_t n;
    assert_int_equal(stile_plan_key_tiles(plan, 0, 0, &tiles, &n), STILE_ERR_INVALID_ARGUMENT);
    assert_int_equal(stile_plan_query_tiles(plan, 0, 0, &tiles, &n), STILE_ERR_INVALID_ARGUMENT);
    stile_plan_destroy(&plan);
}

static void test_io_checks(void **state)
{
    (void)state;
    stile_problem p = problem();
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    const size_t bytes = (size_t)TOKENS * HEADS * 64 * sizeof(float);
    float *q = calloc(1, bytes), *o = malloc(bytes);
    int32_t kt[HEADS * TILES * K];
    for (int i = 0; i < HEADS * TILES * K; i++) kt[i] = i % TILES;
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .k = stile_tensor_at(q, bytes, STILE_DTYPE_F32),
                   .v = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .o = stile_tensor_at(o, bytes, STILE_DTYPE_F32)};
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_NULL_ARGUMENT); /* no lists */
    io.key_tiles = stile_tensor_at(kt, sizeof kt, STILE_DTYPE_F32);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_DTYPE_MISMATCH);
    io.key_tiles = stile_tensor_at(kt, sizeof kt - 4, STILE_DTYPE_I32);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_OUT_OF_RANGE);
    io.key_tiles = stile_tensor_at(o, sizeof kt, STILE_DTYPE_I32);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_ALIASING);
    io.key_tiles = stile_tensor_at(kt, sizeof kt, STILE_DTYPE_I32);
    io.key_tile_errors = stile_tensor_at(kt, sizeof(int32_t), STILE_DTYPE_I32);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_ALIASING);
    io.key_tile_errors = (stile_tensor){0};
    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    stile_plan_destroy(&plan);
    /* a window plan takes no lists */
    p.key_tiles_k = 0;
    p.window[0] = p.window[1] = p.window[2] = 1;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "key_tiles is set"));
    stile_plan_destroy(&plan);
    free(q);
    free(o);
}

/* One execution on dev of p with the lists kt (host), o poisoned first; o and the error count back. */
static stile_status run(stile_device *dev, const stile_problem *p, const int32_t *kt, uint16_t *o_host, int32_t *errors)
{
    const size_t bytes = (size_t)TOKENS * HEADS * 64 * 2, kb = sizeof(int32_t) * HEADS * TILES * K;
    uint16_t *in = malloc(bytes);
    stile_buffer *b[5] = {0}; /* q, k, v, o, key tiles */
    stile_buffer *eb = NULL;
    stile_plan *plan = NULL;
    stile_status st = stile_plan_create(dev, p, &plan);
    for (int i = 0; i < 5 && st == STILE_OK; i++) st = stile_buffer_create(dev, i == 4 ? kb : bytes, &b[i]);
    if (st == STILE_OK) st = stile_buffer_create(dev, sizeof(int32_t), &eb);
    for (int i = 0; i < 3 && st == STILE_OK; i++) {
        stile_conf_fill_normal(in, STILE_DTYPE_BF16, (int64_t)(bytes / 2), 40 + (uint64_t)i);
        st = stile_buffer_upload(b[i], 0, in, bytes);
    }
    memset(o_host, 0xff, bytes);
    const int32_t zero = 0;
    if (st == STILE_OK) st = stile_buffer_upload(b[3], 0, o_host, bytes);
    if (st == STILE_OK) st = stile_buffer_upload(b[4], 0, kt, kb);
    if (st == STILE_OK) st = stile_buffer_upload(eb, 0, &zero, sizeof zero);
    if (st == STILE_OK) {
        stile_tensor t[4];
        for (int i = 0; i < 4; i++) t[i] = stile_tensor_at(stile_buffer_data(b[i]), bytes, STILE_DTYPE_BF16);
        stile_io io = {.struct_size = sizeof io, .q = t[0], .k = t[1], .v = t[2], .o = t[3],
                       .key_tiles = stile_tensor_at(stile_buffer_data(b[4]), kb, STILE_DTYPE_I32),
                       .key_tile_errors = stile_tensor_at(stile_buffer_data(eb), sizeof(int32_t), STILE_DTYPE_I32)};
        st = stile_plan_execute(plan, &io);
        if (stile_buffer_download(b[3], 0, o_host, bytes) != STILE_OK || stile_buffer_download(eb, 0, errors, sizeof *errors) != STILE_OK)
            st = STILE_ERR_BACKEND;
    }
    for (int i = 0; i < 5; i++) stile_buffer_destroy(&b[i]);
    stile_buffer_destroy(&eb);
    stile_plan_destroy(&plan);
    free(in);
    return st;
}

static void test_out_of_range_and_set_semantics_on_every_device(void **state)
{
    (void)state;
    static const char *names[3] = {"cpu:0", "vulkan:0", "cuda:0"};
    stile_problem p = problem();
    p.dtype = STILE_DTYPE_BF16;
    int32_t good[HEADS * TILES * K], shuffled[HEADS * TILES * K], bad[HEADS * TILES * K];
    for (int r = 0; r < HEADS * TILES; r++)
        for (int i = 0; i < K; i++) {
            good[r * K + i] = i == K - 1 ? -1 : (r * 7 + i * 5) % TILES; /* four tiles and a gap */
            shuffled[r * K + (K - 1 - i)] = good[r * K + i];
        }
    for (int r = 0; r < HEADS * TILES; r++) shuffled[r * K + 0] = shuffled[r * K + 2]; /* the gap becomes a repeat */
    memcpy(bad, good, sizeof bad);
    bad[3 * K + 4] = TILES;  /* two entries out of range, in place of gaps */
    bad[20 * K + 4] = -2;
    const size_t bytes = (size_t)TOKENS * HEADS * 64 * 2;
    uint16_t *o1 = malloc(bytes), *o2 = malloc(bytes);
    for (int d = 0; d < 3; d++) {
        stile_device *dev = NULL;
        if (stile_device_open(names[d], NULL, &dev) != STILE_OK) {
            printf("  %s: not here (%s)\n", names[d], stile_last_error());
            continue;
        }
        int32_t errs = -1;
        const stile_status gst = run(dev, &p, good, o1, &errs);
        if (gst != STILE_OK) printf("  %s: %s\n", names[d], stile_last_error());
        assert_int_equal(gst, STILE_OK);
        assert_int_equal(errs, 0);
        assert_int_equal(run(dev, &p, shuffled, o2, &errs), STILE_OK);
        assert_memory_equal(o1, o2, bytes); /* the same sets: bitwise the same output */
        const stile_status st = run(dev, &p, bad, o2, &errs);
        printf("  %s: the lists with two entries out of range: %s, %d counted\n", names[d], stile_status_string(st), (int)errs);
        assert_int_equal(st, STILE_ERR_OUT_OF_RANGE);
        if (d == 0) { /* the CPU refuses before writing: o stays poisoned, the count untouched */
            assert_non_null(strstr(stile_last_error(), "the first, [0, 0, 3, 4], is 18"));
            for (size_t i = 0; i < bytes / 2; i++) assert_int_equal(o2[i], 0xffff);
            assert_int_equal(errs, 0);
        } else { /* a GPU skips and counts: the output of the lists without them */
            assert_int_equal(errs, 2);
            assert_memory_equal(o1, o2, bytes);
        }
        printf("  %s: out-of-range entries %s; the same sets give the same output\n", names[d], d ? "skipped and counted" : "refused");
        stile_device_close(&dev);
    }
    free(o1);
    free(o2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_problem_checks),
        cmocka_unit_test(test_plan_reports_bounds_and_no_rows),
        cmocka_unit_test(test_io_checks),
        cmocka_unit_test(test_out_of_range_and_set_semantics_on_every_device),
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}
