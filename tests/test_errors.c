/* Bad inputs: each gets its own status and a log line, never a crash, a leak or a half-written output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

static stile_problem good(void)
{
    stile_problem p = {.canvas = {4, 8, 8}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 2, .head_dim = 64};
    return p;
}

static void expect(stile_status got, stile_status want, const char *what)
{
    printf("  %-44s -> %s: %s\n", what, stile_status_string(got), conf_last_log());
    assert_int_equal(got, want);
}

static void test_bad_problems_get_their_own_status(void **state)
{
    (void)state;
    stile_problem p;
    expect(stile_problem_check(NULL), STILE_ERR_NULL_ARGUMENT, "NULL problem");
    p = good(); p.canvas[1] = 0; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "canvas h = 0");
    p = good(); p.canvas[0] = -3; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "canvas t = -3");
    p = good(); p.tile[2] = 0; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "tile w = 0");
    p = good(); p.heads = 0; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "heads = 0");
    p = good(); p.head_dim = -64; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "head_dim = -64");
    p = good(); p.batch = -1; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "batch = -1");
    p = good(); p.text = -1; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "text = -1");
    p = good(); p.text = 4; p.text_padding = 5; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "text_padding > text");
    p = good(); p.window[1] = 0; expect(stile_problem_check(&p), STILE_ERR_INVALID_WINDOW, "window h = 0");
    p = good(); p.window[0] = p.window[1] = p.window[2] = 0; expect(stile_problem_check(&p), STILE_ERR_INVALID_WINDOW, "no window");
    const int64_t hw[2][3] = {{1, 1, 1}, {1, -2, 1}};
    p = good(); p.head_windows = hw; expect(stile_problem_check(&p), STILE_ERR_INVALID_WINDOW, "head 1 window h = -2");
    p = good(); p.dtype = (stile_dtype)7; expect(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT, "dtype 7");
    p = good(); p.order = (stile_token_order)3; expect(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT, "order 3");
    p = good(); p.canvas[0] = p.canvas[1] = p.canvas[2] = INT64_C(1) << 22;
    expect(stile_problem_check(&p), STILE_ERR_OVERFLOW, "canvas (2^22)^3 overflows");
    p = good(); p.canvas[0] = INT64_C(1) << 20; p.canvas[1] = 1 << 12; p.canvas[2] = 1; memcpy(p.tile, p.canvas, sizeof p.tile);
    expect(stile_problem_check(&p), STILE_ERR_OVERFLOW, "tokens^2 x 4d overflows");
    p = good(); p.q.dim = 1; p.q.head = 32; p.q.token = 128; p.q.batch = 128 * 128;
    expect(stile_problem_check(&p), STILE_ERR_INVALID_STRIDES, "q heads overlap (head stride 32 < d)");
    p = good(); p.k.dim = -1; p.k.head = 64; p.k.token = 128; p.k.batch = 1;
    expect(stile_problem_check(&p), STILE_ERR_INVALID_STRIDES, "k negative stride");
    p = good(); p.v.dim = 1; p.v.head = 64; p.v.token = 0; p.v.batch = 100000;
    expect(stile_problem_check(&p), STILE_ERR_INVALID_STRIDES, "v token stride 0");
    p = good(); p.o.dim = 1; p.o.head = 64; p.o.token = INT64_C(1) << 60; p.o.batch = 1;
    expect(stile_problem_check(&p), STILE_ERR_OVERFLOW, "o strides overflow");
    p = good(); p.scale = 0.0 / 0.0; expect(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT, "scale NaN");
    p = good(); expect(stile_problem_check(&p), STILE_OK, "a good problem");
}

static void test_bad_device_names_get_their_own_status(void **state)
{
    (void)state;
    stile_device *d = (stile_device *)&d; /* must be cleared on failure */
    expect(stile_device_open("gpu", NULL, &d), STILE_ERR_UNKNOWN_DEVICE, "device 'gpu'");
    assert_null(d);
    expect(stile_device_open("cpu:x", NULL, &d), STILE_ERR_UNKNOWN_DEVICE, "device 'cpu:x'");
    expect(stile_device_open("cpu:", NULL, &d), STILE_ERR_UNKNOWN_DEVICE, "device 'cpu:'");
    expect(stile_device_open("cpu:1", NULL, &d), STILE_ERR_NO_DEVICE, "device 'cpu:1'");
    expect(stile_device_open(NULL, NULL, &d), STILE_ERR_NULL_ARGUMENT, "device NULL");
    expect(stile_device_open("cpu", NULL, NULL), STILE_ERR_NULL_ARGUMENT, "out NULL");
    stile_device_params bad = {.threads = -2};
    expect(stile_device_open("cpu", &bad, &d), STILE_ERR_INVALID_ARGUMENT, "threads -2");
    /* backends this build lacks answer "unsupported", never crash */
    for (int i = 0; i < stile_backend_count(); i++) {
        stile_backend_info bi;
        assert_int_equal(stile_backend_get_info(i, &bi), STILE_OK);
        char name[32];
        snprintf(name, sizeof name, "%s:%d", bi.name, bi.devices);
        /* not built: unsupported; built with no such device (no driver, no card, index past the last): no device */
        expect(stile_device_open(name, NULL, &d), bi.built ? STILE_ERR_NO_DEVICE : STILE_ERR_UNSUPPORTED, name);
        assert_null(d);
    }
    stile_backend_info bi;
    expect(stile_backend_get_info(99, &bi), STILE_ERR_OUT_OF_RANGE, "backend 99");
    stile_device_close(NULL); /* harmless */
    d = NULL;
    stile_device_close(&d);
}

static void test_bad_plans_and_executions_get_their_own_status_and_write_nothing(void **state)
{
    (void)state;
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("cpu", NULL, &dev), STILE_OK);
    stile_problem p = good();
    stile_plan *plan = (stile_plan *)&plan;
    expect(stile_plan_create(NULL, &p, &plan), STILE_ERR_NULL_ARGUMENT, "plan on NULL device");
    assert_null(plan);
    expect(stile_plan_create(dev, NULL, &plan), STILE_ERR_NULL_ARGUMENT, "plan of NULL problem");
    p.head_dim = 4096;
    expect(stile_plan_create(dev, &p, &plan), STILE_ERR_UNSUPPORTED, "head_dim 4096 on cpu");
    p = good();
    assert_int_equal(stile_plan_create(dev, &p, &plan), STILE_OK);

    const size_t n = (size_t)(256 * 2 * 64), bytes = n * 4;
    float *q = calloc(n, 4), *k = calloc(n, 4), *v = calloc(n, 4), *o = malloc(bytes), *lse = malloc(2 * 256 * 4);
    uint16_t *half = calloc(n, 2);
    memset(o, 0x5a, bytes);
    stile_io io = {.q = {q, bytes, 0}, .k = {k, bytes, 0}, .v = {v, bytes, 0}, .o = {o, bytes, 0}};
    stile_io bad;
    expect(stile_plan_execute(NULL, &io), STILE_ERR_NULL_ARGUMENT, "execute NULL plan");
    expect(stile_plan_execute(plan, NULL), STILE_ERR_NULL_ARGUMENT, "execute NULL io");
    bad = io; bad.k.data = NULL; expect(stile_plan_execute(plan, &bad), STILE_ERR_NULL_ARGUMENT, "k NULL");
    bad = io; bad.v.dtype = STILE_DTYPE_BF16; bad.v.data = half; expect(stile_plan_execute(plan, &bad), STILE_ERR_DTYPE_MISMATCH, "v bf16 for an f32 plan");
    bad = io; bad.q.bytes = bytes - 4; expect(stile_plan_execute(plan, &bad), STILE_ERR_OUT_OF_RANGE, "q one element short");
    bad = io; bad.o.data = q; expect(stile_plan_execute(plan, &bad), STILE_ERR_ALIASING, "o is q");
    bad = io; bad.o.data = (char *)k + bytes - 8; bad.o.bytes = bytes; expect(stile_plan_execute(plan, &bad), STILE_ERR_ALIASING, "o overlaps k's tail");
    bad = io; bad.lse = (stile_tensor){lse, 2 * 256 * 4, STILE_DTYPE_F16}; expect(stile_plan_execute(plan, &bad), STILE_ERR_DTYPE_MISMATCH, "lse f16");
    bad = io; bad.lse = (stile_tensor){lse, 100, STILE_DTYPE_F32}; expect(stile_plan_execute(plan, &bad), STILE_ERR_OUT_OF_RANGE, "lse too small");
    bad = io; bad.lse = (stile_tensor){o, 2 * 256 * 4, STILE_DTYPE_F32}; expect(stile_plan_execute(plan, &bad), STILE_ERR_ALIASING, "lse is o");
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char *)o)[i] != 0x5a) fail_msg("a failed execute wrote o at byte %zu", i);

    const int32_t *tiles;
    int64_t cnt;
    stile_head_info hi;
    expect(stile_plan_key_tiles(plan, 2, 0, &tiles, &cnt), STILE_ERR_OUT_OF_RANGE, "key tiles of head 2 of 2");
    expect(stile_plan_key_tiles(plan, 0, 32, &tiles, &cnt), STILE_ERR_OUT_OF_RANGE, "key tiles of tile 32 of 32");
    expect(stile_plan_get_head(plan, -1, &hi), STILE_ERR_OUT_OF_RANGE, "head -1");
    size_t len;
    expect(stile_plan_json(plan, 0, NULL, 10, &len), STILE_ERR_NULL_ARGUMENT, "json NULL buf, size 10");
    expect(stile_convert(q, (stile_dtype)9, o, 0, 4), STILE_ERR_INVALID_ARGUMENT, "convert from dtype 9");

    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    free(q); free(k); free(v); free(o); free(lse); free(half);
    stile_plan_destroy(&plan);
    stile_plan_destroy(&plan); /* harmless twice */
    stile_device_close(&dev);
}

static void test_bad_buffer_calls_get_their_own_status(void **state)
{
    (void)state;
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("cpu", NULL, &dev), STILE_OK);
    stile_buffer *b = (stile_buffer *)&b;
    expect(stile_buffer_create(dev, 0, &b), STILE_ERR_INVALID_SIZE, "buffer of 0 bytes");
    assert_null(b);
    expect(stile_buffer_create(NULL, 16, &b), STILE_ERR_NULL_ARGUMENT, "buffer on NULL device");
    assert_int_equal(stile_buffer_create(dev, 16, &b), STILE_OK);
    unsigned char src[32] = {1, 2, 3}, dst[32] = {0};
    expect(stile_buffer_upload(b, 8, src, 9), STILE_ERR_OUT_OF_RANGE, "upload past the end");
    expect(stile_buffer_download(b, 17, dst, 0), STILE_ERR_OUT_OF_RANGE, "download from past the end");
    expect(stile_buffer_upload(b, 0, NULL, 4), STILE_ERR_NULL_ARGUMENT, "upload from NULL");
    assert_int_equal(stile_buffer_upload(b, 4, src, 12), STILE_OK);
    assert_int_equal(stile_buffer_download(b, 4, dst, 12), STILE_OK);
    assert_memory_equal(src, dst, 12);
    assert_int_equal(stile_buffer_size(b), 16);
    assert_non_null(stile_buffer_data(b));
    stile_buffer_destroy(&b);
    assert_null(b);
    stile_buffer_destroy(&b); /* harmless twice */
    stile_device_close(&dev);
}

static void test_status_strings_exist_for_every_status(void **state)
{
    (void)state;
    for (int s = STILE_OK; s <= STILE_ERR_DEVICE_LOST; s++) {
        const char *msg = stile_status_string((stile_status)s);
        assert_non_null(msg);
        assert_string_not_equal(msg, "unknown status");
    }
    assert_string_equal(stile_status_string((stile_status)999), "unknown status");
    assert_int_equal(stile_version(), STILE_VERSION);
    assert_string_equal(stile_version_string(), STILE_VERSION_STRING);
}

int main(void)
{
    conf_log_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_problems_get_their_own_status),
        cmocka_unit_test(test_bad_device_names_get_their_own_status),
        cmocka_unit_test(test_bad_plans_and_executions_get_their_own_status_and_write_nothing),
        cmocka_unit_test(test_bad_buffer_calls_get_their_own_status),
        cmocka_unit_test(test_status_strings_exist_for_every_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
