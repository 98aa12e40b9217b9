/* The CLI's .npy reader: round trips, headers as numpy writes them, and refusals of truncated,
 * foreign, malformed and absurd files without allocating what a header merely claims. */
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

/* Write a version MAJOR.0 .npy whose header is exactly hdr (hlen bytes) and `data_bytes` zero bytes. */
static const char *make_raw(const char *name, int major, const char *hdr, size_t hlen, size_t data_bytes)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    const unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0, (unsigned char)(hlen & 0xff),
                                   (unsigned char)(hlen >> 8 & 0xff), (unsigned char)(hlen >> 16 & 0xff), (unsigned char)(hlen >> 24)};
    fwrite(pre, 1, major == 1 ? 10 : 12, f);
    fwrite(hdr, 1, hlen, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
    return path;
}

/* Write a v1.0 .npy with this header dict, a '\n', and `data_bytes` bytes of data. */
static const char *make(const char *name, const char *dict, size_t data_bytes)
{
    char hdr[1024];
    snprintf(hdr, sizeof hdr, "%s\n", dict);
    return make_raw(name, 1, hdr, strlen(hdr), data_bytes);
}

/* The header numpy writes for dict in version MAJOR.0: spaces and '\n' up to a multiple of 64 bytes. */
static const char *make_numpy(const char *name, int major, const char *dict, size_t data_bytes)
{
    char hdr[1024];
    const size_t pre = major == 1 ? 10 : 12, n = strlen(dict), total = (pre + n + 1 + 63) / 64 * 64;
    memcpy(hdr, dict, n);
    memset(hdr + n, ' ', total - pre - n - 1);
    hdr[total - pre - 1] = '\n';
    return make_raw(name, major, hdr, total - pre, data_bytes);
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

/* Read path and require success with this dtype and shape. */
static void accept(const char *path, stile_dtype dt, int ndim, const int64_t *shape)
{
    npy_array a;
    char err[512] = "";
    stile_status st = npy_read(path, &a, err, sizeof err);
    if (st != STILE_OK) printf("  %s\n", err);
    assert_int_equal(st, STILE_OK);
    assert_int_equal(a.dtype, dt);
    assert_int_equal(a.ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(a.shape[i], shape[i]);
    npy_free(&a);
}

static void test_npy_reads_headers_as_numpy_writes_them(void **state)
{
    (void)state;
    const int64_t s23[2] = {2, 3}, s3[1] = {3}, s04[2] = {0, 4}, s2[1] = {2};
    for (int major = 1; major <= 3; major++) { /* 2.0 and 3.0 differ only in a 4-byte header length */
        char name[32];
        snprintf(name, sizeof name, "v%d.npy", major);
        accept(make_numpy(name, major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24), STILE_DTYPE_F32, 2, s23);
    }
    accept(make_numpy("1d", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 6), STILE_DTYPE_F16, 1, s3);
    accept(make_numpy("0d", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4), STILE_DTYPE_F32, 0, NULL);
    accept(make_numpy("empty", 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (0, 4), }", 0), STILE_DTYPE_BF16, 2, s04);
    /* older numpy wrote no trailing comma; any tool may quote with " and order the keys its way */
    accept(make_numpy("no-comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 24), STILE_DTYPE_F32, 2, s23);
    accept(make_numpy("dquote", 1, "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<u2\"}", 4), STILE_DTYPE_BF16, 1, s2);
    accept(make("tight", "{'descr':'<f4','fortran_order':False,'shape':(2,3,)}", 24), STILE_DTYPE_F32, 2, s23);
}

static void test_npy_refuses_a_data_length_the_file_lacks_before_allocating_it(void **state)
{
    (void)state;
    /* 130 bytes whose header claims 2^35 f16 elements: 64 GiB that must never be allocated */
    char hdr[118];
    const char *dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (32768, 1048576), }";
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, dict, strlen(dict));
    hdr[sizeof hdr - 1] = '\n';
    const char *path = make_raw("claims-64g.npy", 1, hdr, sizeof hdr, 2);
    FILE *f = fopen(path, "rb");
    unsigned char bytes[256];
    const size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    assert_int_equal(n, 130);
    npy_array a;
    char err[512];
    assert_int_equal(npy_read(path, &a, err, sizeof err), STILE_ERR_FORMAT);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "truncated: the header claims 68719476736 bytes of data, the file has 2"));
    assert_null(a.data);
    assert_int_equal(npy_read_mem(bytes, n, &a, err, sizeof err), STILE_ERR_FORMAT);
    assert_non_null(strstr(err, "claims 68719476736 bytes of data, the file has 2"));
    /* a pipe's length is unknown: the buffer grows only as bytes arrive */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat %s", path);
    FILE *p = popen(cmd, "r");
    assert_int_equal(npy_read_fp(p, "pipe", &a, err, sizeof err), STILE_ERR_FORMAT);
    pclose(p);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "claims 68719476736 bytes of data, the file has 2"));
    assert_null(a.data);
    refuse("longer", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12, STILE_ERR_FORMAT,
           "trailing bytes after the data: the header claims 8 bytes of data, the file has 12");
}

static void test_npy_keys_inside_strings_are_not_keys(void **state)
{
    (void)state;
    refuse("embedded-shape", "{'x': \"'shape': (1, 8, 1, 4)\", 'descr': '<f4', 'fortran_order': False, 'shape': (2, 8, 1, 4)}", 32 * 4,
           STILE_ERR_FORMAT, "unknown key 'x'");
    refuse("embedded-note", "{'descr': '<f4', 'fortran_order': False, 'note': \"'shape': (1,)\", 'shape': (2,), }", 4, STILE_ERR_FORMAT,
           "unknown key 'note'");
    refuse("embedded-descr", "{'descr': \"<f4', 'shape': (1,)\", 'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT,
           "not supported");
    refuse("escaped", "{'descr': '<f4\\', 'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT, "escapes");
}

static void test_npy_values_are_exact_tokens(void **state)
{
    (void)state;
    refuse("falsey", "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }", 8, STILE_ERR_FORMAT, "Falsey");
    refuse("false-str", "{'descr': '<f4', 'fortran_order': 'False', 'shape': (2,), }", 8, STILE_ERR_FORMAT, "True or False");
    refuse("zero", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, STILE_ERR_FORMAT, "0 is not a value");
    refuse("descr-tuple", "{'descr': (4,), 'fortran_order': False, 'shape': (2,), }", 8, STILE_ERR_FORMAT, "must be a string");
    refuse("shape-str", "{'descr': '<f4', 'fortran_order': False, 'shape': '(2,)', }", 8, STILE_ERR_FORMAT, "must be a tuple");
}

static void test_npy_keys_must_be_exactly_descr_fortran_order_and_shape(void **state)
{
    (void)state;
    refuse("duplicate", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}", 8, STILE_ERR_FORMAT,
           "'shape' appears twice");
    refuse("unknown", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': True}", 8, STILE_ERR_FORMAT,
           "unknown key 'extra'");
    refuse("no-descr", "{'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT, "lacks 'descr'");
    refuse("no-order", "{'descr': '<f4', 'shape': (2,)}", 8, STILE_ERR_FORMAT, "lacks 'fortran_order'");
    refuse("empty-dict", "{}", 0, STILE_ERR_FORMAT, "lacks");
    refuse("bare-key", "{descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT, "quoted key");
    refuse("no-colon", "{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT, "expected ':'");
    refuse("no-comma", "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT, "expected ',' or '}'");
    refuse("two-commas", "{'descr': '<f4',, 'fortran_order': False, 'shape': (2,)}", 8, STILE_ERR_FORMAT, "quoted key");
    refuse("not-a-dict", "['descr', '<f4']", 8, STILE_ERR_FORMAT, "not a dict");
}

static void test_npy_only_spaces_and_a_newline_may_follow_the_dict(void **state)
{
    (void)state;
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    refuse("garbage", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8, STILE_ERR_FORMAT, "only spaces");
    refuse("two-braces", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }}", 8, STILE_ERR_FORMAT, "only spaces");
    refuse("second-line", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n ", 8, STILE_ERR_FORMAT, "only spaces");
    char hdr[128];
    npy_array a;
    char err[512];
    const size_t n = strlen(good);
    memcpy(hdr, good, n); /* no final newline */
    assert_int_equal(npy_read(make_raw("no-newline", 1, hdr, n, 8), &a, err, sizeof err), STILE_ERR_FORMAT);
    assert_non_null(strstr(err, "final newline"));
    memcpy(hdr + n, " \0 \n", 4); /* a NUL in the padding */
    assert_int_equal(npy_read(make_raw("nul", 1, hdr, n + 4, 8), &a, err, sizeof err), STILE_ERR_FORMAT);
    assert_non_null(strstr(err, "only spaces"));
}

static void test_npy_shapes_are_tuples_of_whole_numbers(void **state)
{
    (void)state;
    const char *bad[][2] = {{"(3)", "(N,)"}, {"[2, 3]", "expected a value"}, {"(2 3)", "expected ',' or ')'"}, {"(2,,3)", "bad dimension"},
                            {"(,)", "bad dimension"}, {"(+3,)", "bad dimension"}, {"(03,)", "leading zero"}, {"(2.0,)", "expected ',' or ')'"},
                            {"(2, 3", "expected ',' or ')'"}, {"2", "2 is not a value"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dict[256], name[32];
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s}", bad[i][0]);
        snprintf(name, sizeof name, "shape%zu", i);
        refuse(name, dict, 24, STILE_ERR_FORMAT, bad[i][1]);
    }
}

static void test_npy_long_headers_and_digit_runs_are_refused_without_reading_them_twice(void **state)
{
    (void)state;
    /* over numpy's own 10000-byte limit: refused from the length alone, before reading the header */
    static char hdr[20000];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, dict, strlen(dict));
    hdr[sizeof hdr - 1] = '\n';
    npy_array a;
    char err[512];
    assert_int_equal(npy_read(make_raw("long", 2, hdr, sizeof hdr, 8), &a, err, sizeof err), STILE_ERR_FORMAT);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "over 10000 bytes"));
    /* just under the limit, padding is fine */
    hdr[9999 - 1] = '\n';
    const int64_t s2[1] = {2};
    accept(make_raw("long-ok", 2, hdr, 9999, 8), STILE_DTYPE_F32, 1, s2);
    /* a dimension of 9000 digits stops at the first digit past 2^36 */
    char *p = hdr + sprintf(hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    memset(p, '9', 9000);
    strcpy(p + 9000, ",)}\n");
    assert_int_equal(npy_read(make_raw("digits", 1, hdr, strlen(hdr), 8), &a, err, sizeof err), STILE_ERR_FORMAT);
    assert_non_null(strstr(err, "absurdly large"));
    /* thousands of dimensions stop at the ninth */
    p = hdr + sprintf(hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < 3000; i++) p += sprintf(p, "1, ");
    strcpy(p, ")}\n");
    assert_int_equal(npy_read(make_raw("dims", 1, hdr, strlen(hdr), 4), &a, err, sizeof err), STILE_ERR_FORMAT);
    assert_non_null(strstr(err, "more than 8 dimensions"));
}

/* Every proper prefix of a good file, and the file with a byte more, from memory and from a stream
 * whose length is unknown (fmemopen has no descriptor): all refused, none read out of bounds. */
static void test_npy_every_prefix_of_a_good_file_is_refused(void **state)
{
    (void)state;
    const int64_t shape[2] = {3, 5};
    float d[15];
    for (int i = 0; i < 15; i++) d[i] = (float)i;
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/good.npy", dir);
    assert_int_equal(npy_write(path, STILE_DTYPE_F32, 2, shape, d, err, sizeof err), STILE_OK);
    unsigned char buf[512];
    FILE *f = fopen(path, "rb");
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_int_equal(n, 128 + sizeof d);
    npy_array a;
    for (size_t len = 0; len <= n + 1; len++) {
        stile_status want = len == n ? STILE_OK : STILE_ERR_FORMAT;
        unsigned char *copy = malloc(len ? len : 1); /* exactly len bytes, so ASan sees any overread */
        memcpy(copy, buf, len);
        assert_int_equal(npy_read_mem(copy, len, &a, err, sizeof err), want);
        if (want == STILE_OK) assert_memory_equal(a.data, d, sizeof d);
        npy_free(&a);
        FILE *m = fmemopen(copy, len ? len : 1, "rb");
        if (len) {
            assert_int_equal(npy_read_fp(m, "stream", &a, err, sizeof err), want);
            npy_free(&a);
        }
        fclose(m);
        free(copy);
    }
    FILE *p;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat %s", path);
    p = popen(cmd, "r");
    assert_int_equal(npy_read_fp(p, "pipe", &a, err, sizeof err), STILE_OK);
    pclose(p);
    assert_memory_equal(a.data, d, sizeof d);
    npy_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_round_trips_every_dtype),
        cmocka_unit_test(test_npy_refuses_truncated_foreign_and_absurd_files),
        cmocka_unit_test(test_npy_write_leaves_nothing_behind_on_failure),
        cmocka_unit_test(test_npy_reads_headers_as_numpy_writes_them),
        cmocka_unit_test(test_npy_refuses_a_data_length_the_file_lacks_before_allocating_it),
        cmocka_unit_test(test_npy_keys_inside_strings_are_not_keys),
        cmocka_unit_test(test_npy_values_are_exact_tokens),
        cmocka_unit_test(test_npy_keys_must_be_exactly_descr_fortran_order_and_shape),
        cmocka_unit_test(test_npy_only_spaces_and_a_newline_may_follow_the_dict),
        cmocka_unit_test(test_npy_shapes_are_tuples_of_whole_numbers),
        cmocka_unit_test(test_npy_long_headers_and_digit_runs_are_refused_without_reading_them_twice),
        cmocka_unit_test(test_npy_every_prefix_of_a_good_file_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
