/* The CLI's .npy reader: round trips, and refusals of truncated, foreign and absurd files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stile-npy-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write a v1.0 .npy with this header dict and `data_bytes` bytes of data. */
static const char *make(const char *name, const char *dict, size_t data_bytes)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    size_t n = strlen(dict);
    unsigned hl = (unsigned)(n + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, n, f);
    fputc('\n', f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
    return path;
}

static void refuse(const char *name, const char *dict, size_t data_bytes, stile_status want, const char *needle)
{
    npy_array a;
    char err[512] = "";
    stile_status st = npy_read(make(name, dict, data_bytes), &a, err, sizeof err);
    printf("  %-16s -> %s\n", name, err);
    assert_int_equal(st, want);
    assert_non_null(strstr(err, needle));
    assert_null(a.data);
}

static void test_npy_round_trips_every_dtype(void **state)
{
    (void)state;
    const stile_dtype dts[3] = {STILE_DTYPE_F32, STILE_DTYPE_F16, STILE_DTYPE_BF16};
    for (int t = 0; t < 3; t++) {
        const int64_t shape[4] = {1, 5, 2, 3};
        float src[30];
        unsigned char data[120];
        for (int i = 0; i < 30; i++) src[i] = (float)i * 0.25f - 3.0f;
        assert_int_equal(stile_convert(src, STILE_DTYPE_F32, data, dts[t], 30), STILE_OK);
        char path[300], err[256];
        snprintf(path, sizeof path, "%s/rt%d.npy", dir, t);
        assert_int_equal(npy_write(path, dts[t], 4, shape, data, err, sizeof err), STILE_OK);
        npy_array a;
        assert_int_equal(npy_read(path, &a, err, sizeof err), STILE_OK);
        assert_int_equal(a.dtype, dts[t]);
        assert_int_equal(a.ndim, 4);
        assert_int_equal(a.shape[1], 5);
        assert_int_equal(a.count, 30);
        assert_memory_equal(a.data, data, 30 * stile_dtype_size(dts[t]));
        npy_free(&a);
        /* the header is padded so the data starts at a multiple of 64 */
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        assert_int_equal((ftell(f) - 30 * (long)stile_dtype_size(dts[t])) % 64, 0);
        fclose(f);
    }
}

static void test_npy_refuses_truncated_foreign_and_absurd_files(void **state)
{
    (void)state;
    refuse("truncated", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", 60, STILE_ERR_FORMAT, "truncated");
    refuse("trailing", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 9, STILE_ERR_FORMAT, "trailing");
    refuse("f64", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, STILE_ERR_FORMAT, "'<f8'");
    refuse("big-endian", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, STILE_ERR_FORMAT, "not supported");
    refuse("fortran", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, STILE_ERR_FORMAT, "fortran");
    refuse("absurd", "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", 0,
           STILE_ERR_FORMAT, "absurd");
    refuse("negative", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", 0, STILE_ERR_FORMAT, "bad dimension");
    refuse("no-shape", "{'descr': '<f4', 'fortran_order': False, }", 0, STILE_ERR_FORMAT, "'shape'");
    refuse("nine-dims", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, STILE_ERR_FORMAT,
           "8 dimensions");
    char path[300];
    snprintf(path, sizeof path, "%s/not-npy", dir);
    FILE *f = fopen(path, "wb");
    fputs("hello world, not numpy", f);
    fclose(f);
    npy_array a;
    char err[256];
    assert_int_equal(npy_read(path, &a, err, sizeof err), STILE_ERR_FORMAT);
    assert_non_null(strstr(err, "magic"));
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    assert_int_equal(npy_read(path, &a, err, sizeof err), STILE_ERR_IO);
}

static void test_npy_write_leaves_nothing_behind_on_failure(void **state)
{
    (void)state;
    const int64_t shape[1] = {2};
    float d[2] = {1, 2};
    char err[256];
    assert_int_equal(npy_write("/nonexistent-dir/x.npy", STILE_DTYPE_F32, 1, shape, d, err, sizeof err), STILE_ERR_IO);
    assert_int_equal(access("/nonexistent-dir/x.npy", F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_round_trips_every_dtype),
        cmocka_unit_test(test_npy_refuses_truncated_foreign_and_absurd_files),
        cmocka_unit_test(test_npy_write_leaves_nothing_behind_on_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
