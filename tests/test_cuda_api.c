/* stile_cuda.h: the typed doors refuse plans and devices of other backends, and on a CUDA device
 * (where one is present) run on the stream given, checked against the oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "stile/stile_cuda.h"

static const stile_problem small = {.struct_size = sizeof(stile_problem), .canvas = {2, 4, 8}, .tile = {1, 2, 4},
                                    .window = {1, 1, 1}, .heads = 2, .head_dim = 64, .text = 3};

static void test_other_backends_are_refused(void **state)
{
    (void)state;
    stile_device *cpu = NULL;
    assert_int_equal(stile_device_open("cpu", NULL, &cpu), STILE_OK);
    int ordinal = -1;
    assert_int_equal(stile_cuda_device_ordinal(cpu, &ordinal), STILE_ERR_INVALID_ARGUMENT);
    assert_int_equal(stile_cuda_device_ordinal(NULL, &ordinal), STILE_ERR_NULL_ARGUMENT);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(cpu, &small, &plan), STILE_OK);
    stile_io io = {.struct_size = sizeof io};
    assert_int_equal(stile_cuda_execute(plan, &io, 0), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "not a CUDA device"));
    assert_int_equal(stile_cuda_execute(plan, NULL, 0), STILE_ERR_NULL_ARGUMENT);
    stile_plan_destroy(&plan);
    stile_device_close(&cpu);
}

/* The calling thread's current CUDA context, from the driver itself (NULL: none). */
static void *current_context(void)
{
    static int (*get)(void **);
    if (!get) {
        void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (h) *(void **)&get = dlsym(h, "cuCtxGetCurrent");
    }
    void *ctx = (void *)1;
    assert_non_null(get);
    assert_int_equal(get(&ctx), 0);
    return ctx;
}

static void test_runs_on_the_stream_given(void **state)
{
    (void)state;
    stile_device *dev = NULL;
    if (stile_device_open("cuda:0", NULL, &dev) != STILE_OK) {
        printf("cuda:0 is not here (%s): the on-GPU half did not run\n", stile_last_error());
        return;
    }
    int ordinal = -1;
    assert_int_equal(stile_cuda_device_ordinal(dev, &ordinal), STILE_OK);
    assert_int_equal(ordinal, 0);
    /* this thread had no context before stile's calls and has none after them: stile gives the caller's back */
    assert_null(current_context());
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, &small, &plan), STILE_OK);
    const int64_t tokens = 2 * 4 * 8 + 3, n = tokens * 2 * 64;
    const size_t bytes = (size_t)n * sizeof(float);
    float *h[4];
    stile_buffer *b[4] = {NULL};
    for (int i = 0; i < 4; i++) {
        h[i] = malloc(bytes);
        for (int64_t j = 0; j < n; j++) h[i][j] = (float)((double)rand() / RAND_MAX - 0.5);
        assert_int_equal(stile_buffer_create(dev, bytes, &b[i]), STILE_OK);
        assert_int_equal(stile_buffer_upload(b[i], 0, h[i], bytes), STILE_OK);
    }
    stile_exec_info info;
    memset(&info, 0, sizeof info);
    stile_io dio = {.struct_size = sizeof dio, .q = stile_cuda_tensor(stile_buffer_data(b[0]), bytes, STILE_DTYPE_F32),
                    .k = stile_cuda_tensor(stile_buffer_data(b[1]), bytes, STILE_DTYPE_F32),
                    .v = stile_cuda_tensor(stile_buffer_data(b[2]), bytes, STILE_DTYPE_F32),
                    .o = stile_cuda_tensor(stile_buffer_data(b[3]), bytes, STILE_DTYPE_F32), .info = &info};
    dio.stream = (void *)1; /* both streams set: refused */
    assert_int_equal(stile_cuda_execute(plan, &dio, 0), STILE_ERR_INVALID_ARGUMENT);
    dio.stream = NULL;
    assert_int_equal(stile_cuda_execute(plan, &dio, 0), STILE_OK); /* the legacy default stream: returns when done */
    assert_true(info.path[0] != '\0');
    assert_null(current_context());
    assert_int_equal(stile_buffer_download(b[3], 0, h[3], bytes), STILE_OK);
    stile_io hio = {.struct_size = sizeof hio, .q = stile_tensor_at(h[0], bytes, STILE_DTYPE_F32), .k = stile_tensor_at(h[1], bytes, STILE_DTYPE_F32),
                    .v = stile_tensor_at(h[2], bytes, STILE_DTYPE_F32), .o = stile_tensor_at(h[3], bytes, STILE_DTYPE_F32)};
    double *ref = malloc((size_t)n * sizeof(double));
    assert_int_equal(stile_oracle(&small, &hio, NULL, 0, ref, NULL), STILE_OK);
    stile_check c;
    assert_int_equal(stile_check_output(&small, &hio, NULL, 0, ref, NULL, &c), STILE_OK);
    printf("cuda:0 via stile_cuda_execute (%s): NMSE %.3e\n", info.path, c.nmse);
    assert_true(c.passed);
    free(ref);
    for (int i = 0; i < 4; i++) {
        stile_buffer_destroy(&b[i]);
        free(h[i]);
    }
    stile_plan_destroy(&plan);
    stile_device_close(&dev);
}

int main(void)
{
    conf_log_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_backends_are_refused),
        cmocka_unit_test(test_runs_on_the_stream_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
