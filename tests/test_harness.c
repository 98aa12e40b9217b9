/* The conformance harness's own verdicts: a case a backend refuses fails unless the table expects
 * it, and the mask probe tells a window shifted by one tile from the right one at the same count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "mask_probe.h"

static void test_a_case_the_cpu_refuses_fails_unless_the_table_expects_it(void **state)
{
    (void)state;
    /* head_dim 2048 is valid, but the CPU backend takes 1..1024 */
    stile_conf_case c = {.name = "head_dim 2048", .unsupported_on = NULL};
    stile_conf_variant v = {.c = &c, .p = {.struct_size = sizeof(stile_problem), .canvas = {2, 4, 4}, .tile = {2, 4, 4}, .window = {1, 1, 1}, .heads = 1, .head_dim = 2048}};
    stile_conf_result r = stile_conf_run_variant(conf_cpu, &v, 11);
    conf_report(&r, "not expected to be refused");
    assert_int_equal(r.status, STILE_CONF_FAIL);
    assert_true(r.unsupported);
    assert_non_null(strstr(r.reason, "expects cpu to run it"));

    c.unsupported_on = "vulkan,cuda,hip";
    r = stile_conf_run_variant(conf_cpu, &v, 11);
    assert_int_equal(r.status, STILE_CONF_FAIL);

    c.unsupported_on = "vulkan,cpu";
    r = stile_conf_run_variant(conf_cpu, &v, 11);
    conf_report(&r, "expected to be refused");
    assert_int_equal(r.status, STILE_CONF_UNSUPPORTED);
    assert_true(r.unsupported);
}

static void test_unsupported_on_matches_whole_backend_names_only(void **state)
{
    (void)state;
    stile_conf_case c = {.name = "x", .unsupported_on = "cpux,vulkan"};
    assert_false(stile_conf_unsupported_expected(&c, "cpu"));
    assert_true(stile_conf_unsupported_expected(&c, "vulkan"));
    assert_false(stile_conf_unsupported_expected(&c, "vulk"));
    c.unsupported_on = "hip,cpu";
    assert_true(stile_conf_unsupported_expected(&c, "cpu"));
    assert_true(stile_conf_unsupported_expected(&c, "hip"));
    c.unsupported_on = NULL;
    assert_false(stile_conf_unsupported_expected(&c, "cpu"));
}

/* Canvas 1x1x12 in tiles of 2 (6 tiles along w), window 3 tiles, no text, f32: every query attends 6
 * keys. Write the output of a kernel that attends the key tiles [s + shift, s + shift + 3) (the
 * count stays 6) with LSE ln 6 and see what the probe says. */
static int64_t probe_shifted(int shift, stile_conf_result *res)
{
    stile_problem p = {.struct_size = sizeof p, .batch = 1, .canvas = {1, 1, 12}, .tile = {1, 1, 2}, .window = {1, 1, 3}, .heads = 1, .head_dim = 64};
    p.q = p.k = p.v = p.o = (stile_strides){.batch = 12 * 64, .token = 64, .head = 64, .dim = 1};
    probe pr;
    char why[128];
    assert_int_equal(probe_init(&pr, &p, why, sizeof why), 0);
    float v[12 * 64], o[12 * 64], lse[12];
    probe_fill(&pr, v, v); /* q's zeros are overwritten by v's channels: only v is wanted */
    for (int t = 0; t < 12; t++) {
        int s = t / 2 - 1;
        s = s < 0 ? 0 : s > 3 ? 3 : s;
        s += shift;
        if (s > 3) s = 3 - shift; /* stay inside the grid; at the far edge shift the other way */
        for (int d = 0; d < 64; d++) {
            double sum = 0;
            for (int k = 2 * s; k < 2 * s + 6; k++) sum += v[k * 64 + d];
            o[t * 64 + d] = (float)(sum / 6);
        }
        lse[t] = (float)log(6.0);
    }
    memset(res, 0, sizeof *res);
    int64_t bad = probe_check(&pr, o, lse, res);
    printf("  shift %d: %lld bad rows, lse %.2g, channels %.3g of bound%s%s\n", shift, (long long)bad, res->probe_lse_ratio,
           res->probe_channel_ratio, bad ? ": " : "", res->reason);
    probe_free(&pr);
    return bad;
}

static void test_probe_tells_a_window_shifted_by_one_tile_at_the_same_count(void **state)
{
    (void)state;
    stile_conf_result r;
    assert_int_equal(probe_shifted(0, &r), 0);
    assert_true(r.check.passed);
    assert_int_equal(probe_shifted(1, &r), 12); /* every row: the LSE is right, the tiles are not */
    assert_true(r.probe_lse_ratio <= 1);
    assert_true(r.probe_channel_ratio > 1);
    assert_false(r.check.passed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_case_the_cpu_refuses_fails_unless_the_table_expects_it),
        cmocka_unit_test(test_unsupported_on_matches_whole_backend_names_only),
        cmocka_unit_test(test_probe_tells_a_window_shifted_by_one_tile_at_the_same_count),
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}
