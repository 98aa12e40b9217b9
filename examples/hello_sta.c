/* The smallest complete use of stile: describe a problem, plan it on the best device, run it on
 * random inputs, and check a few query rows against the fp64 oracle. */
#include <stdio.h>
#include <stdlib.h>

#include <stile/stile.h>
#include <stile/stile_check.h> /* the oracle: libstile_check */

static void log_line(void *user, stile_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    fprintf(stderr, "stile: %s\n", msg);
}

int main(void)
{
    stile_log_set(log_line, NULL, STILE_LOG_ERROR);
    /* struct_size: the layout this program was built with, so the library never misreads it */
    stile_problem p = {.struct_size = sizeof p, .canvas = {6, 16, 16}, .tile = {2, 4, 4}, .window = {3, 3, 3}, .heads = 2,
                       .head_dim = 64, .text = 8};

    stile_device *dev = NULL;
    stile_plan *plan = NULL;
    if (stile_device_open("auto", NULL, &dev) != STILE_OK || stile_plan_create(dev, &p, &plan) != STILE_OK) return 1;
    stile_plan_info info;
    stile_plan_get_info(plan, &info);

    size_t n = (size_t)(info.tokens * p.heads * p.head_dim), bytes = n * sizeof(float);
    float *q = malloc(bytes), *k = malloc(bytes), *v = malloc(bytes), *o = malloc(bytes);
    for (size_t i = 0; i < n; i++) {
        q[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        k[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        v[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
    }
    /* Buffers hold the tensors where the device computes (host memory on the CPU, GPU memory on a GPU). */
    stile_buffer *bq = NULL, *bk = NULL, *bv = NULL, *bo = NULL;
    stile_status st = STILE_OK;
    if (stile_buffer_create(dev, bytes, &bq) || stile_buffer_create(dev, bytes, &bk) || stile_buffer_create(dev, bytes, &bv) ||
        stile_buffer_create(dev, bytes, &bo) || stile_buffer_upload(bq, 0, q, bytes) || stile_buffer_upload(bk, 0, k, bytes) ||
        stile_buffer_upload(bv, 0, v, bytes))
        st = STILE_ERR_OUT_OF_MEMORY;
    stile_io dio = {.struct_size = sizeof dio,
                    .q = stile_tensor_at(stile_buffer_data(bq), bytes, STILE_DTYPE_F32), .k = stile_tensor_at(stile_buffer_data(bk), bytes, STILE_DTYPE_F32),
                    .v = stile_tensor_at(stile_buffer_data(bv), bytes, STILE_DTYPE_F32), .o = stile_tensor_at(stile_buffer_data(bo), bytes, STILE_DTYPE_F32)};
    if (st == STILE_OK) st = stile_plan_execute(plan, &dio);
    if (st == STILE_OK) st = stile_buffer_download(bo, 0, o, bytes);
    stile_io io = {.struct_size = sizeof io, /* host copies, for the oracle */
                   .q = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .k = stile_tensor_at(k, bytes, STILE_DTYPE_F32), .v = stile_tensor_at(v, bytes, STILE_DTYPE_F32),
                   .o = stile_tensor_at(o, bytes, STILE_DTYPE_F32)};

    int64_t rows[3] = {0, info.video_tokens / 2, info.tokens - 1}; /* a video corner, the middle, the last text token */
    double ref[3 * 2 * 64];
    stile_check check = {0};
    if (st == STILE_OK) st = stile_oracle(&p, &io, rows, 3, ref, NULL);
    if (st == STILE_OK) st = stile_check_output(&p, &io, rows, 3, ref, NULL, &check);
    printf("%s: %lld tiles, sparsity %.1f%%, NMSE vs oracle %.2e: %s\n", info.device, (long long)info.tiles,
           100 * info.sparsity, check.nmse, st == STILE_OK && check.passed ? "ok" : "FAILED");

    free(q); free(k); free(v); free(o);
    stile_buffer_destroy(&bq); stile_buffer_destroy(&bk); stile_buffer_destroy(&bv); stile_buffer_destroy(&bo);
    stile_plan_destroy(&plan);
    stile_device_close(&dev);
    return st == STILE_OK && check.passed ? 0 : 1;
}
