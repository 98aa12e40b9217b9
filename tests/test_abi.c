/* The ABI that can grow (include/stile/stile.h, docs/packaging.md): structures of a layout the
 * library does not know are refused with a status and a sentence, never misread; enum values stay
 * what they are; stile_last_error is per thread; an execution reports the kernel that ran. */
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
#include "stile/stile.h"

/* stile_problem as stile 0.1's header laid it out: no struct_size, batch first. */
typedef struct problem_v0_1 {
    int64_t batch;
    int64_t canvas[3], tile[3], window[3];
    const int64_t (*head_windows)[3];
    int64_t heads, head_dim, text, text_padding;
    stile_dtype dtype;
    stile_token_order order;
    double scale;
    stile_strides q, k, v, o;
} problem_v0_1;

static stile_problem good(void)
{
    return (stile_problem){.struct_size = sizeof(stile_problem), .canvas = {4, 8, 8}, .tile = {2, 4, 4}, .window = {1, 1, 1},
                           .heads = 2, .head_dim = 64};
}

static void test_a_problem_of_the_old_layout_gets_a_status_not_a_misreading(void **state)
{
    (void)state;
    /* A program built against 0.1's header, linked with this library: batch lands where struct_size is. */
    const int64_t batches[] = {0, 1, 2, 7, 1000, 1048576};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        problem_v0_1 old = {.batch = batches[i], .canvas = {4, 8, 8}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 2, .head_dim = 64};
        stile_status st = stile_problem_check((const stile_problem *)(const void *)&old);
        assert_true(st == STILE_ERR_INVALID_ARGUMENT || st == STILE_ERR_UNSUPPORTED);
        assert_non_null(strstr(stile_last_error(), "stile_problem.struct_size"));
        stile_device *cpu = NULL;
        assert_int_equal(stile_device_open("cpu", NULL, &cpu), STILE_OK);
        stile_plan *plan = (stile_plan *)&old; /* must come back NULL */
        assert_int_equal(stile_plan_create(cpu, (const stile_problem *)(const void *)&old, &plan), st);
        assert_null(plan);
        stile_device_close(&cpu);
    }
    stile_problem p = good();
    assert_int_equal(stile_problem_check(&p), STILE_OK);
    p.struct_size = 0;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "struct_size is 0: set it to sizeof(stile_problem)"));
    p.struct_size = sizeof p - 4;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "matches no layout"));
    /* API 2's layout (before key_tiles_k) is taken, the missing field read as 0 */
    p.struct_size = offsetof(stile_problem, key_tiles_k);
    p.key_tiles_k = 5; /* past the caller's layout: never read */
    assert_int_equal(stile_problem_check(&p), STILE_OK);
    /* a header newer than the library: refused without reading past what this library knows */
    p.struct_size = sizeof p + 64;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_UNSUPPORTED);
    assert_non_null(strstr(stile_last_error(), "newer stile header"));
}

static void test_io_and_device_params_of_an_unknown_layout_are_refused(void **state)
{
    (void)state;
    stile_device *cpu = NULL;
    stile_device_params dp = {.threads = 1}; /* struct_size left 0 */
    assert_int_equal(stile_device_open("cpu", &dp, &cpu), STILE_ERR_INVALID_ARGUMENT);
    assert_null(cpu);
    assert_non_null(strstr(stile_last_error(), "stile_device_params.struct_size is 0"));
    dp.struct_size = sizeof dp;
    assert_int_equal(stile_device_open("cpu", &dp, &cpu), STILE_OK);
    stile_problem p = good();
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(cpu, &p, &plan), STILE_OK);
    const size_t bytes = (size_t)(4 * 8 * 8) * 2 * 64 * sizeof(float);
    float *q = calloc(1, bytes), *o = calloc(1, bytes);
    stile_io io = {.q = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .k = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .v = stile_tensor_at(q, bytes, STILE_DTYPE_F32),
                   .o = stile_tensor_at(o, bytes, STILE_DTYPE_F32)}; /* struct_size left 0 */
    memset(o, 0x7f, bytes);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "stile_io.struct_size is 0"));
    assert_int_equal(((unsigned char *)o)[0], 0x7f); /* nothing written */
    /* the current layout runs, and says which kernel ran */
    stile_exec_info info;
    memset(&info, 0xff, sizeof info);
    io.struct_size = sizeof io;
    io.info = &info;
    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    assert_string_equal(info.path, "cblas");
    /* get_problem writes only a layout the caller names */
    stile_problem back;
    memset(&back, 0, sizeof back);
    assert_int_equal(stile_plan_get_problem(plan, &back), STILE_ERR_INVALID_ARGUMENT);
    back.struct_size = sizeof back;
    assert_int_equal(stile_plan_get_problem(plan, &back), STILE_OK);
    assert_int_equal(back.heads, 2);
    assert_int_equal(back.struct_size, sizeof back);
    /* API 2's layouts: io runs; get_problem writes that many bytes and no more */
    io.struct_size = offsetof(stile_io, key_tiles);
    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    memset(&back, 0x5a, sizeof back);
    back.struct_size = offsetof(stile_problem, key_tiles_k);
    assert_int_equal(stile_plan_get_problem(plan, &back), STILE_OK);
    assert_int_equal(back.heads, 2);
    assert_int_equal(back.struct_size, offsetof(stile_problem, key_tiles_k));
    assert_int_equal(((unsigned char *)&back.key_tiles_k)[0], 0x5a);
    free(q);
    free(o);
    stile_plan_destroy(&plan);
    stile_device_close(&cpu);
}

/* Enum values are part of the ABI: written out in the header, never renumbered. */
static void test_enum_values_are_fixed(void **state)
{
    (void)state;
    assert_int_equal(STILE_OK, 0);
    assert_int_equal(STILE_ERR_NULL_ARGUMENT, 1);
    assert_int_equal(STILE_ERR_UNSUPPORTED, 10);
    assert_int_equal(STILE_ERR_DEVICE_LOST, 18);
    assert_int_equal(STILE_DTYPE_BF16, 2);
    assert_int_equal(STILE_ORDER_TILED, 1);
    assert_int_equal(STILE_LOG_DEBUG, 4);
    assert_int_equal(STILE_DTYPE_I32, 3);
    extern const int stile_api_2; /* API 2's tag stays while API 3 only adds */
    assert_int_equal(stile_api_2, 2);
    assert_int_equal(stile_api_3, 3);
    assert_int_equal(STILE_API_VERSION, 3);
}

static void *fail_on_another_thread(void *arg)
{
    (void)arg;
    stile_problem p = good();
    p.heads = 0;
    if (stile_problem_check(&p) != STILE_ERR_INVALID_SIZE) return (void *)1;
    return strstr(stile_last_error(), "heads=0") ? NULL : (void *)1;
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    stile_problem p = good();
    p.window[1] = 0;
    assert_int_equal(stile_problem_check(&p), STILE_ERR_INVALID_WINDOW);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", stile_last_error());
    assert_non_null(strstr(mine, "window"));
    pthread_t t;
    void *rc = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, fail_on_another_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_null(rc);
    assert_string_equal(stile_last_error(), mine); /* the other thread's failure left this one's alone */
    p = good();
    assert_int_equal(stile_problem_check(&p), STILE_OK);
    assert_string_equal(stile_last_error(), mine); /* a success leaves it, as errno */
}

static void collect(void *user, stile_log_level level, const char *msg)
{
    (void)level;
    snprintf(user, 512, "%s", msg);
}

/* Errors without globals: a device's own sink hears its calls, the global sink does not. */
static void test_a_device_has_its_own_log_sink(void **state)
{
    (void)state;
    char mine[512] = "", global[512] = "";
    stile_log_set(collect, global, STILE_LOG_DEBUG);
    stile_device_params dp = {.struct_size = sizeof dp, .threads = 1, .log = collect, .log_user = mine, .log_level = 9};
    stile_device *cpu = NULL;
    assert_int_equal(stile_device_open("cpu", &dp, &cpu), STILE_ERR_INVALID_ARGUMENT); /* log_level 9 */
    assert_non_null(strstr(mine, "log_level=9")); /* refused params still reach the device's sink */
    mine[0] = '\0';
    dp.log_level = STILE_LOG_ERROR;
    assert_int_equal(stile_device_open("cpu", &dp, &cpu), STILE_OK);
    stile_problem p = good();
    p.head_dim = 2048; /* valid, but the CPU backend takes 1..1024 */
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(cpu, &p, &plan), STILE_ERR_UNSUPPORTED);
    assert_non_null(strstr(mine, "2048"));
    assert_string_equal(global, "");
    assert_non_null(strstr(stile_last_error(), "2048"));
    stile_problem bad = good();
    bad.heads = 0; /* no device involved: the global sink */
    assert_int_equal(stile_problem_check(&bad), STILE_ERR_INVALID_SIZE);
    assert_non_null(strstr(global, "heads=0"));
    stile_device_close(&cpu);
    conf_log_init(); /* the harness's sink back */
}

int main(void)
{
    conf_log_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_problem_of_the_old_layout_gets_a_status_not_a_misreading),
        cmocka_unit_test(test_io_and_device_params_of_an_unknown_layout_are_refused),
        cmocka_unit_test(test_enum_values_are_fixed),
        cmocka_unit_test(test_last_error_is_per_thread),
        cmocka_unit_test(test_a_device_has_its_own_log_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
