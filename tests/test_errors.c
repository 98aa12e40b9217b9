/* Bad inputs: each gets its own status and a log line, never a crash, a leak or a half-written output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

static stile_problem good(void)
{
    stile_problem p = {.struct_size = sizeof p, .canvas = {4, 8, 8}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 2, .head_dim = 64};
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
    p = good(); p.scale = 1e308; expect(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT, "scale 1e308 (all-NaN outputs)");
    p = good(); p.scale = -0.125; expect(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT, "scale -0.125");
    p = good(); p.scale = 1e-40; expect(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT, "scale 1e-40 (subnormal in f32)");
    p = good(); p.scale = STILE_MAX_SCALE; expect(stile_problem_check(&p), STILE_OK, "scale STILE_MAX_SCALE");
    p = good(); p.scale = STILE_MIN_SCALE; expect(stile_problem_check(&p), STILE_OK, "scale STILE_MIN_SCALE");
    p = good(); expect(stile_problem_check(&p), STILE_OK, "a good problem");
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 2^28 heads once made the check allocate 6 GB and take 39 s: every size has a limit, refused at once. */
static void test_sizes_past_their_limits_are_refused_before_anything_is_allocated(void **state)
{
    (void)state;
    stile_problem p;
    double t0 = now_s();
    p = good(); p.heads = INT64_C(1) << 28; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "heads 2^28");
    assert_non_null(strstr(conf_last_log(), "heads=268435456"));
    p = good(); p.heads = STILE_MAX_HEADS + 1; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "heads STILE_MAX_HEADS + 1");
    p = good(); p.heads = INT64_MAX; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "heads INT64_MAX");
    p = good(); p.head_dim = STILE_MAX_HEAD_DIM + 1; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "head_dim STILE_MAX_HEAD_DIM + 1");
    p = good(); p.batch = STILE_MAX_BATCH + 1; expect(stile_problem_check(&p), STILE_ERR_INVALID_SIZE, "batch STILE_MAX_BATCH + 1");
    p = good(); p.text = STILE_MAX_TOKENS; expect(stile_problem_check(&p), STILE_ERR_OVERFLOW, "video + text past STILE_MAX_TOKENS");
    assert_non_null(strstr(conf_last_log(), "tokens"));
    const double refused_s = now_s() - t0;
    printf("  the refusals took %.6f s\n", refused_s);
    assert_true(refused_s < 1.0);
    /* at the limits: accepted, and quick to check and plan */
    p = good(); p.heads = STILE_MAX_HEADS; expect(stile_problem_check(&p), STILE_OK, "heads STILE_MAX_HEADS");
    p = good(); p.head_dim = STILE_MAX_HEAD_DIM; expect(stile_problem_check(&p), STILE_OK, "head_dim STILE_MAX_HEAD_DIM");
    p = good(); p.batch = STILE_MAX_BATCH; expect(stile_problem_check(&p), STILE_OK, "batch STILE_MAX_BATCH");

    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("cpu", NULL, &dev), STILE_OK);
    stile_plan *plan = NULL;
    /* 65536 heads, 64 distinct windows (1 x a x b, a and b up to 8, on a 1x64x64 grid), numbered in head order */
    int64_t (*hw)[3] = malloc(STILE_MAX_HEADS * sizeof *hw);
    for (int64_t h = 0; h < STILE_MAX_HEADS; h++) {
        hw[h][0] = 1;
        hw[h][1] = 1 + (h / 8) % 8;
        hw[h][2] = 1 + h % 8;
    }
    p = good(); p.canvas[0] = 1; p.canvas[1] = p.canvas[2] = 64; p.tile[0] = p.tile[1] = p.tile[2] = 1;
    p.heads = STILE_MAX_HEADS; p.head_windows = (const int64_t(*)[3])hw;
    t0 = now_s();
    assert_int_equal(stile_plan_create(dev, &p, &plan), STILE_OK);
    stile_plan_info in;
    stile_head_info hi;
    assert_int_equal(stile_plan_get_info(plan, &in), STILE_OK);
    assert_int_equal(in.distinct_windows, 64);
    assert_int_equal(stile_plan_get_head(plan, 9, &hi), STILE_OK); /* head 9: 1x2x2, the tenth distinct window met */
    assert_int_equal(hi.schedule, 9);
    assert_int_equal(stile_plan_get_head(plan, 65536 - 1, &hi), STILE_OK);
    assert_int_equal(hi.schedule, 63);
    printf("  planning 65536 heads: %.3f s\n", now_s() - t0);
    stile_plan_destroy(&plan);
    free(hw);
    /* two windows whose schedules hold < 2^31 entries each, > 2^31 together: refused before either is built
     * (once the first one's 8.5 GB was allocated and filled) */
    const int64_t two[2][3] = {{1, 127, 256}, {1, 126, 256}};
    p = good(); p.canvas[0] = 1; p.canvas[1] = p.canvas[2] = 256; p.tile[0] = p.tile[1] = p.tile[2] = 1;
    p.heads = 2; p.head_windows = two; p.head_dim = 1;
    t0 = now_s();
    expect(stile_plan_create(dev, &p, &plan), STILE_ERR_OVERFLOW, "two schedules of 2^31 entries in all");
    assert_null(plan);
    assert_true(now_s() - t0 < 1.0);
    stile_device_close(&dev);
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
    stile_device_params bad = {.struct_size = sizeof bad, .threads = -2};
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
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, bytes, 0), .k = stile_tensor_at(k, bytes, 0), .v = stile_tensor_at(v, bytes, 0), .o = stile_tensor_at(o, bytes, 0)};
    stile_io bad;
    expect(stile_plan_execute(NULL, &io), STILE_ERR_NULL_ARGUMENT, "execute NULL plan");
    expect(stile_plan_execute(plan, NULL), STILE_ERR_NULL_ARGUMENT, "execute NULL io");
    bad = io; bad.k.data = NULL; expect(stile_plan_execute(plan, &bad), STILE_ERR_NULL_ARGUMENT, "k NULL");
    bad = io; bad.v.dtype = STILE_DTYPE_BF16; bad.v.data = half; expect(stile_plan_execute(plan, &bad), STILE_ERR_DTYPE_MISMATCH, "v bf16 for an f32 plan");
    bad = io; bad.q.bytes = bytes - 4; expect(stile_plan_execute(plan, &bad), STILE_ERR_OUT_OF_RANGE, "q one element short");
    bad = io; bad.o.data = q; expect(stile_plan_execute(plan, &bad), STILE_ERR_ALIASING, "o is q");
    bad = io; bad.o.data = (char *)k + bytes - 8; bad.o.bytes = bytes; expect(stile_plan_execute(plan, &bad), STILE_ERR_ALIASING, "o overlaps k's tail");
    bad = io; bad.lse = (stile_tensor){.data = lse, .bytes = 2 * 256 * 4, .dtype = STILE_DTYPE_F16}; expect(stile_plan_execute(plan, &bad), STILE_ERR_DTYPE_MISMATCH, "lse f16");
    bad = io; bad.lse = (stile_tensor){.data = lse, .bytes = 100, .dtype = STILE_DTYPE_F32}; expect(stile_plan_execute(plan, &bad), STILE_ERR_OUT_OF_RANGE, "lse too small");
    bad = io; bad.lse = (stile_tensor){.data = o, .bytes = 2 * 256 * 4, .dtype = STILE_DTYPE_F32}; expect(stile_plan_execute(plan, &bad), STILE_ERR_ALIASING, "lse is o");
    /* misaligned tensors: one rule for every backend (the CPU once loaded them misaligned: UBSan) */
    unsigned char *raw = malloc(bytes + 8), *lraw = malloc(2 * 256 * 4 + 8);
    memset(raw, 0, bytes + 8);
    const char *names[4] = {"q", "k", "v", "o"};
    for (int t = 0; t < 4; t++)
        for (int off = 1; off < 4; off++) {
            char what[64], needle[64];
            bad = io;
            stile_tensor *x = t == 0 ? &bad.q : t == 1 ? &bad.k : t == 2 ? &bad.v : &bad.o;
            x->data = raw + off;
            snprintf(what, sizeof what, "%s at a malloc'd address + %d", names[t], off);
            expect(stile_plan_execute(plan, &bad), STILE_ERR_INVALID_ARGUMENT, what);
            snprintf(needle, sizeof needle, "io->%s.data=%p: not aligned", names[t], (void *)(raw + off));
            assert_non_null(strstr(conf_last_log(), needle));
        }
    bad = io; bad.lse = (stile_tensor){.data = lraw + 2, .bytes = 2 * 256 * 4, .dtype = STILE_DTYPE_F32};
    expect(stile_plan_execute(plan, &bad), STILE_ERR_INVALID_ARGUMENT, "lse at a malloc'd address + 2");
    assert_non_null(strstr(conf_last_log(), "io->lse.data="));
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char *)o)[i] != 0x5a) fail_msg("a failed execute wrote o at byte %zu", i);
    /* f16: 2-byte elements, so an odd address is refused and an address 2 past an aligned one is taken */
    stile_plan *hplan = NULL;
    stile_problem hp = good();
    hp.dtype = STILE_DTYPE_F16;
    assert_int_equal(stile_plan_create(dev, &hp, &hplan), STILE_OK);
    const size_t hbytes = n * 2;
    uint16_t *hq = calloc(n, 2), *hk = calloc(n, 2), *hv = calloc(n, 2);
    stile_io hio = {.struct_size = sizeof hio, .q = stile_tensor_at(hq, hbytes, STILE_DTYPE_F16), .k = stile_tensor_at(hk, hbytes, STILE_DTYPE_F16), .v = stile_tensor_at(hv, hbytes, STILE_DTYPE_F16),
                    .o = stile_tensor_at(raw + 1, hbytes, STILE_DTYPE_F16)};
    expect(stile_plan_execute(hplan, &hio), STILE_ERR_INVALID_ARGUMENT, "f16 o at an odd address");
    hio.o.data = raw + 2;
    expect(stile_plan_execute(hplan, &hio), STILE_OK, "f16 o 2 bytes past an aligned address");
    stile_plan_destroy(&hplan);
    free(hq); free(hk); free(hv); free(raw); free(lraw);
    /* stile_convert takes any address */
    float f3[3] = {1.5f, -2.0f, 3.25f}, back[3];
    unsigned char cbuf[16];
    assert_int_equal(stile_convert(f3, STILE_DTYPE_F32, cbuf + 1, STILE_DTYPE_BF16, 3), STILE_OK);
    assert_int_equal(stile_convert(cbuf + 1, STILE_DTYPE_BF16, cbuf + 9, STILE_DTYPE_F32, 1), STILE_OK);
    assert_int_equal(stile_convert(cbuf + 1, STILE_DTYPE_BF16, back, STILE_DTYPE_F32, 3), STILE_OK);
    assert_memory_equal(f3, back, sizeof f3);

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
        cmocka_unit_test(test_sizes_past_their_limits_are_refused_before_anything_is_allocated),
        cmocka_unit_test(test_bad_device_names_get_their_own_status),
        cmocka_unit_test(test_bad_plans_and_executions_get_their_own_status_and_write_nothing),
        cmocka_unit_test(test_bad_buffer_calls_get_their_own_status),
        cmocka_unit_test(test_status_strings_exist_for_every_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
