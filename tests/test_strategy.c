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
#include <unistd.h>

#include "conformance.h"

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
    stile_problem base = {.canvas = {5, 7, 9}, .tile = {2, 4, 4}, .heads = 3, .head_dim = 64};
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

int main(void)
{
    conf_log_init();
    if (conf_tmpdir(dir, sizeof dir, "strategy") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fastvideo_file_round_trips_through_load_and_save),
        cmocka_unit_test(test_bad_strategy_files_name_the_file_and_the_fault),
        cmocka_unit_test(test_plans_per_step_and_layer_are_made_once_and_reused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (conf_tmpdir_remove(dir) != 0) rc = rc ? rc : 1;
    return rc;
}
