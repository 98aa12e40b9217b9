/* The mask probe judged on two builds of this file: against the library as it is, where every probe
 * case passes, and (STILE_EXPECT_FAULT) against a copy whose CPU backend drops the last key of every
 * video query's window, where every probe case must fail while sampled NMSE on a video shape passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static const char *skip; /* STILE_CONFORMANCE_SKIP, as in test_conformance */

static int skipped(const stile_conf_variant *v) { return skip && strstr(v->label, skip); }

#ifndef STILE_EXPECT_FAULT
static void test_every_probe_case_passes_on_the_correct_kernel(void **state)
{
    (void)state;
    int n = 0, ran = 0, passed = 0;
    stile_conf_variant *v = stile_conf_expand(&n);
    assert_non_null(v);
    for (int i = 0; i < n; i++) {
        if (!v[i].probe || skipped(&v[i])) continue;
        stile_conf_result r = stile_conf_run_variant(conf_cpu, &v[i], 5000 + 10 * (uint64_t)i);
        passed += conf_report(&r, v[i].label);
        ran++;
    }
    free(v);
    printf("  %d of %d probe cases pass\n", passed, ran);
    assert_true(ran > 0);
    assert_int_equal(passed, ran);
}
#else
static void test_every_probe_case_fails_on_a_kernel_that_drops_one_key_per_row(void **state)
{
    (void)state;
    int n = 0, ran = 0, failed = 0;
    stile_conf_variant *v = stile_conf_expand(&n);
    assert_non_null(v);
    for (int i = 0; i < n; i++) {
        if (!v[i].probe || skipped(&v[i])) continue;
        stile_conf_result r = stile_conf_run_variant(conf_cpu, &v[i], 5000 + 10 * (uint64_t)i);
        conf_report(&r, v[i].label);
        /* one key short: every video row's LSE is ln(n - 1), nearer to that than to ln(n) */
        const int caught = r.status == STILE_CONF_FAIL && r.probe_bad_rows > 0 && r.probe_lse_ratio > 1;
        if (!caught) printf("  NOT CAUGHT: %s\n", v[i].label);
        failed += caught;
        ran++;
    }
    free(v);
    printf("  %d of %d probe cases catch the dropped key\n", failed, ran);
    assert_true(ran > 0);
    assert_int_equal(failed, ran);
}

/* The point of the probe: on HunyuanVideo 720p the dropped key (1 of ~10,600 per row) stays within
 * the bf16 NMSE and LSE bounds of the sampled oracle check (measured: NMSE 6.5e-5 of 1e-4, LSE error
 * 5.1e-4 of 1e-3), so that check alone passes the broken kernel. On smaller windows it need not. */
static void test_sampled_oracle_check_on_a_video_shape_misses_the_dropped_key(void **state)
{
    (void)state;
    int n = 0, found = 0;
    stile_conf_variant *v = stile_conf_expand(&n);
    assert_non_null(v);
    /* the seed by the variant's place among the forward ones (the backward variants came later and
     * must not move it: the sampled check's margin depends on the inputs) */
    for (int i = 0, fwd = -1; i < n; i++) {
        fwd += !v[i].backward;
        if (v[i].probe || v[i].backward || !strstr(v[i].label, "HunyuanVideo 720p + 256 text (sampled)") || !strstr(v[i].label, "bf16"))
            continue;
        if (skipped(&v[i])) {
            printf("  left out by STILE_CONFORMANCE_SKIP: %s\n", v[i].label);
            found = -1;
            break;
        }
        stile_conf_result r = stile_conf_run_variant(conf_cpu, &v[i], 6000 + 10 * (uint64_t)fwd);
        conf_report(&r, v[i].label);
        assert_int_equal(r.status, STILE_CONF_PASS);
        found++;
    }
    free(v);
    if (found < 0) skip();
    assert_int_equal(found, 1);
}

/* Where the oracle checks every row of a small shape, it sees the fault too. */
static void test_full_oracle_check_on_a_small_shape_catches_the_dropped_key(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 1, 3}, .heads = 2, .head_dim = 64,
                       .dtype = STILE_DTYPE_BF16};
    stile_conf_result r = stile_conf_run(conf_cpu, &p, STILE_CONF_BSHD, 6500, 0);
    conf_report(&r, "partial tiles, bf16, every row");
    assert_int_equal(r.status, STILE_CONF_FAIL);
}
#endif

int main(void)
{
    skip = getenv("STILE_CONFORMANCE_SKIP");
    if (skip && !*skip) skip = NULL;
    if (skip) printf("# leaving out cases whose label contains '%s'\n", skip);
    const struct CMUnitTest tests[] = {
#ifndef STILE_EXPECT_FAULT
        cmocka_unit_test(test_every_probe_case_passes_on_the_correct_kernel),
#else
        cmocka_unit_test(test_every_probe_case_fails_on_a_kernel_that_drops_one_key_per_row),
        cmocka_unit_test(test_sampled_oracle_check_on_a_video_shape_misses_the_dropped_key),
        cmocka_unit_test(test_full_oracle_check_on_a_small_shape_catches_the_dropped_key),
#endif
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}
