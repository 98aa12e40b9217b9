/* Window strategies: FastVideo files round-trip through load and save, bad files are refused with the
 * file and the fault named, and plans per (step, layer) are made once and reused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static char dir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_fastvideo_file_round_trips_through_load_and_save(void **state)
{
    (void)state;
    /* FastVideo's layout: "step_layer_head": [wt, wh, ww] in tiles */
    const char *src = write_file("fv.json", "{\"0_0_0\": [3, 3, 3], \"0_0_1\": [1, 6, 10], \"12_39_23\": [5, 6, 10], \"3_1_0\": [3, 1, 5]}");
    stile_strategy *s = NULL;
    assert_int_equal(stile_strategy_load(src, &s), STILE_OK);
    assert_int_equal(stile_strategy_size(s), 4);
    int64_t w[3];
    assert_int_equal(stile_strategy_get(s, 12, 39, 23, w), STILE_OK);
    assert_int_equal(w[0], 5);
    assert_int_equal(w[2], 10);
    assert_int_equal(stile_strategy_get(s, 1, 0, 0, w), STILE_ERR_OUT_OF_RANGE);
    char out[256];
    snprintf(out, sizeof out, "%s/out.json", dir);
    assert_int_equal(stile_strategy_save(s, out), STILE_OK);
    stile_strategy *t = NULL;
    assert_int_equal(stile_strategy_load(out, &t), STILE_OK);
    assert_int_equal(stile_strategy_size(t), 4);
    const int64_t keys[4][3] = {{0, 0, 0}, {0, 0, 1}, {12, 39, 23}, {3, 1, 0}};
    for (int i = 0; i < 4; i++) {
        int64_t a[3], b[3];
        assert_int_equal(stile_strategy_get(s, keys[i][0], keys[i][1], keys[i][2], a), STILE_OK);
        assert_int_equal(stile_strategy_get(t, keys[i][0], keys[i][1], keys[i][2], b), STILE_OK);
        assert_memory_equal(a, b, sizeof a);
    }
    stile_strategy_destroy(&s);
    stile_strategy_destroy(&t);
    assert_null(t);
}

static void test_bad_strategy_files_name_the_file_and_the_fault(void **state)
{
    (void)state;
    stile_strategy *s = (stile_strategy *)&s;
    struct { const char *name, *text; stile_status st; const char *needle; } bad[] = {
        {"trunc.json", "{\"0_0_0\": [3, 3", STILE_ERR_FORMAT, "malformed JSON"},
        {"array.json", "[1, 2, 3]", STILE_ERR_FORMAT, "expected an object"},
        {"key.json", "{\"0_0\": [3, 3, 3]}", STILE_ERR_FORMAT, "not STEP_LAYER_HEAD"},
        {"neg.json", "{\"0_0_0\": [3, 0, 3]}", STILE_ERR_FORMAT, ">= 1"},
        {"two.json", "{\"0_0_0\": [3, 3]}", STILE_ERR_FORMAT, "[wt, wh, ww]"},
        {"dup.json", "{\"0_0_0\": [3, 3, 3], \"0_0_0\": [1, 1, 1]}", STILE_ERR_FORMAT, "malformed JSON"},
        /* the same entry spelled twice: once the last won */
        {"zeros.json", "{\"0_0_0\": [3, 3, 3], \"00_0_0\": [1, 1, 1]}", STILE_ERR_FORMAT, "\"00_0_0\" is not STEP_LAYER_HEAD"},
        {"zeros2.json", "{\"1_02_3\": [3, 3, 3]}", STILE_ERR_FORMAT, "leading zeros"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_file(bad[i].name, bad[i].text);
        assert_int_equal(stile_strategy_load(path, &s), bad[i].st);
        assert_null(s);
        printf("  %s -> %s\n", bad[i].name, conf_last_log());
        assert_non_null(strstr(conf_last_log(), bad[i].name));
        assert_non_null(strstr(conf_last_log(), bad[i].needle));
    }
    assert_int_equal(stile_strategy_load("/nonexistent/strategy.json", &s), STILE_ERR_IO);
}

static void test_plans_per_step_and_layer_are_made_once_and_reused(void **state)
{
    (void)state;
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open("cpu", NULL, &dev), STILE_OK);
    stile_strategy *s = NULL;
    assert_int_equal(stile_strategy_create(&s), STILE_OK);
    const int64_t a[3] = {1, 1, 1}, b[3] = {3, 1, 3};
    assert_int_equal(stile_strategy_set(s, 5, 2, 0, a), STILE_OK);
    assert_int_equal(stile_strategy_set(s, 5, 2, 1, b), STILE_OK);
    stile_problem base = {.struct_size = sizeof base, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .heads = 3, .head_dim = 64};
    const stile_plan *p1 = NULL, *p2 = NULL, *p3 = NULL;
    assert_int_equal(stile_strategy_plan(s, dev, &base, 5, 2, &p1), STILE_OK);
    assert_int_equal(stile_strategy_plan(s, dev, &base, 5, 2, &p2), STILE_OK);
    assert_ptr_equal(p1, p2);
    assert_int_equal(stile_strategy_plan(s, dev, &base, 0, 0, &p3), STILE_OK); /* no entries: full attention */
    assert_ptr_not_equal(p1, p3);
    stile_head_info hi;
    assert_int_equal(stile_plan_get_head(p1, 1, &hi), STILE_OK);
    assert_int_equal(hi.window[0], 3);
    assert_int_equal(stile_plan_get_head(p1, 2, &hi), STILE_OK); /* head 2 has no entry: full */
    assert_true(hi.sparsity == 0.0);
    stile_plan_info in;
    stile_plan_get_info(p3, &in);
    assert_true(in.sparsity == 0.0);
    const int64_t bad[3] = {1, 0, 1};
    assert_int_equal(stile_strategy_set(s, 0, 0, 0, bad), STILE_ERR_INVALID_WINDOW);
    stile_strategy_destroy(&s);
    stile_device_close(&dev);
}

static void test_an_empty_strategy_saves_as_an_empty_object_and_loads_back_empty(void **state)
{
    (void)state;
    stile_strategy *s = NULL, *t = NULL;
    assert_int_equal(stile_strategy_create(&s), STILE_OK);
    char out[256], text[16];
    snprintf(out, sizeof out, "%s/empty.json", dir);
    assert_int_equal(stile_strategy_save(s, out), STILE_OK); /* once a memcpy from NULL (UBSan) */
    FILE *f = fopen(out, "r");
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "{}");
    size_t len = 0;
    assert_int_equal(stile_strategy_json(s, NULL, 0, &len), STILE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 2);
    assert_int_equal(stile_strategy_load(out, &t), STILE_OK);
    assert_int_equal(stile_strategy_size(t), 0);
    stile_strategy_destroy(&s);
    stile_strategy_destroy(&t);
}

static void test_saving_through_a_symlink_keeps_the_link_and_a_directory_is_refused(void **state)
{
    (void)state;
    stile_strategy *s = NULL, *t = NULL;
    assert_int_equal(stile_strategy_create(&s), STILE_OK);
    const int64_t w[3] = {3, 1, 3};
    assert_int_equal(stile_strategy_set(s, 0, 1, 2, w), STILE_OK);
    char link[256], target[256];
    snprintf(link, sizeof link, "%s/link.json", dir);
    snprintf(target, sizeof target, "%s/target.json", dir);
    write_file("target.json", "{}");
    assert_int_equal(symlink("target.json", link), 0);
    assert_int_equal(stile_strategy_save(s, link), STILE_OK);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stile_strategy_load(target, &t), STILE_OK);
    assert_int_equal(stile_strategy_size(t), 1);
    /* the JSON text is what save writes */
    size_t len = 0;
    char buf[256], file[256] = "";
    assert_int_equal(stile_strategy_json(s, buf, sizeof buf, &len), STILE_OK);
    FILE *f = fopen(target, "r");
    assert_int_equal(fread(file, 1, sizeof file - 1, f), len);
    fclose(f);
    assert_string_equal(buf, file);
    assert_int_equal(stile_strategy_save(s, dir), STILE_ERR_IO);
    printf("  %s\n", conf_last_log());
    assert_non_null(strstr(conf_last_log(), "is a directory"));
    assert_int_equal(unlink(link), 0);
    stile_strategy_destroy(&s);
    stile_strategy_destroy(&t);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 200,000 entries (FastVideo's 50 steps x 40 layers x 100 heads): once a linear search per entry,
 * 11 s; now a hash table. The time is printed; only correctness and a generous bound are asserted. */
static void test_a_200000_entry_file_loads_quickly_and_every_entry_reads_back(void **state)
{
    (void)state;
    enum { STEPS = 50, LAYERS = 40, HEADS = 100 };
    char path[256];
    snprintf(path, sizeof path, "%s/big.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{", f);
    for (int st = 0; st < STEPS; st++)
        for (int l = 0; l < LAYERS; l++)
            for (int h = 0; h < HEADS; h++)
                fprintf(f, "%s\"%d_%d_%d\": [%d, %d, %d]", st || l || h ? ", " : "", st, l, h, 1 + st % 5, 1 + l % 7, 1 + h % 11);
    fputs("}", f);
    fclose(f);
    stile_strategy *s = NULL;
    double t0 = now_s();
    assert_int_equal(stile_strategy_load(path, &s), STILE_OK);
    const double load_s = now_s() - t0;
    assert_int_equal(stile_strategy_size(s), STEPS * LAYERS * HEADS);
    t0 = now_s();
    for (int st = 0; st < STEPS; st++)
        for (int l = 0; l < LAYERS; l++)
            for (int h = 0; h < HEADS; h++) {
                int64_t w[3];
                assert_int_equal(stile_strategy_get(s, st, l, h, w), STILE_OK);
                if (w[0] != 1 + st % 5 || w[1] != 1 + l % 7 || w[2] != 1 + h % 11) fail_msg("entry %d_%d_%d read back wrong", st, l, h);
            }
    int64_t w[3];
    assert_int_equal(stile_strategy_get(s, STEPS, 0, 0, w), STILE_ERR_OUT_OF_RANGE);
    assert_int_equal(stile_strategy_get(s, 0, 0, HEADS, w), STILE_ERR_OUT_OF_RANGE);
    /* a set after the load replaces, never adds a second entry */
    const int64_t one[3] = {1, 1, 1};
    assert_int_equal(stile_strategy_set(s, 7, 3, 9, one), STILE_OK);
    assert_int_equal(stile_strategy_size(s), STEPS * LAYERS * HEADS);
    assert_int_equal(stile_strategy_get(s, 7, 3, 9, w), STILE_OK);
    assert_true(w[0] == 1 && w[1] == 1 && w[2] == 1);
    printf("  load: %.3f s, %d gets: %.3f s\n", load_s, STEPS * LAYERS * HEADS, now_s() - t0);
    assert_true(load_s < 5.0);
    stile_strategy_destroy(&s);
    unlink(path);
}

int main(void)
{
    conf_log_init();
    if (conf_tmpdir(dir, sizeof dir, "strategy") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fastvideo_file_round_trips_through_load_and_save),
        cmocka_unit_test(test_bad_strategy_files_name_the_file_and_the_fault),
        cmocka_unit_test(test_plans_per_step_and_layer_are_made_once_and_reused),
        cmocka_unit_test(test_a_200000_entry_file_loads_quickly_and_every_entry_reads_back),
        cmocka_unit_test(test_an_empty_strategy_saves_as_an_empty_object_and_loads_back_empty),
        cmocka_unit_test(test_saving_through_a_symlink_keeps_the_link_and_a_directory_is_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (conf_tmpdir_remove(dir) != 0) rc = rc ? rc : 1;
    return rc;
}
