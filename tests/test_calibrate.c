/* `stile calibrate` on captures with planted locality: each head's attention mass is built to lie in
 * a known window (q of a query tile = alpha on the key tiles of that window, k = one-hot of its
 * tile), so calibration must recover the planted windows; a two-level head shows the budget rule
 * choosing a sparser window than the lowest-distance rule. Run as: test_calibrate PATH/TO/stile */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "npy.h"

static const char *stile_exe;
static char dir[64];

enum { T = 2, H = 4, W = 8, TT = 1, TH = 2, TW = 2, HEADS = 3, D = 64 };
static const int64_t grid[3] = {T / TT, H / TH, W / TW}; /* 2 x 2 x 4 = 16 tiles */

static int64_t start(int64_t q, int64_t w, int64_t n)
{
    if (w >= n) return 0;
    int64_t s = q - w / 2;
    s = s < 0 ? 0 : s;
    return s > n - w ? n - w : s;
}

/* Is key tile kt inside window w of query tile qt (the contract's rule)? */
static int inside(int64_t qt, int64_t kt, const int64_t w[3])
{
    const int64_t q[3] = {qt / (grid[1] * grid[2]), (qt / grid[2]) % grid[1], qt % grid[2]};
    const int64_t k[3] = {kt / (grid[1] * grid[2]), (kt / grid[2]) % grid[1], kt % grid[2]};
    for (int a = 0; a < 3; a++) {
        int64_t e = w[a] < grid[a] ? w[a] : grid[a], s = start(q[a], w[a], grid[a]);
        if (k[a] < s || k[a] >= s + e) return 0;
    }
    return 1;
}

static int64_t tile_of(int64_t tok)
{
    int64_t t = tok / (H * W), h = (tok / W) % H, w = tok % W;
    return ((t / TT) * grid[1] + h / TH) * grid[2] + w / TW;
}

/* The capture: 2 steps of 1 layer, the same tensors; f32 [1, S, HEADS, D]. */
static void write_capture(void)
{
    const int64_t S = T * H * W;
    float *q = calloc((size_t)(S * HEADS * D), sizeof *q), *k = calloc((size_t)(S * HEADS * D), sizeof *k),
          *v = malloc((size_t)(S * HEADS * D) * sizeof *v);
    conf_fill_normal(v, STILE_DTYPE_F32, S * HEADS * D, 77);
    const int64_t planted0[3] = {1, 1, 1}, planted1[3] = {2, 1, 3}, inner[3] = {1, 1, 1}, ring[3] = {1, 2, 2};
    for (int64_t i = 0; i < S; i++)
        for (int h = 0; h < HEADS; h++) {
            float *qi = q + (i * HEADS + h) * D, *ki = k + (i * HEADS + h) * D;
            ki[tile_of(i)] = 1.0f;
            for (int64_t t = 0; t < grid[0] * grid[1] * grid[2]; t++) {
                if (h == 0) qi[t] = inside(tile_of(i), t, planted0) ? 40.0f : 0.0f;
                if (h == 1) qi[t] = inside(tile_of(i), t, planted1) ? 40.0f : 0.0f;
                if (h == 2) qi[t] = inside(tile_of(i), t, inner) ? 12.0f : inside(tile_of(i), t, ring) ? 4.0f : 0.0f;
            }
        }
    /* the scale is 1/sqrt(D): undo it so the logits are the values above */
    for (int64_t i = 0; i < S * HEADS * D; i++) q[i] *= 8.0f;
    const int64_t shape[4] = {1, S, HEADS, D};
    char path[256], err[256];
    const char *names[3] = {"q.npy", "k.npy", "v.npy"};
    float *data[3] = {q, k, v};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        assert_int_equal(npy_write(path, STILE_DTYPE_F32, 4, shape, data[i], err, sizeof err), STILE_OK);
    }
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"canvas\": [%d, %d, %d], \"tile\": [%d, %d, %d], \"heads\": %d, \"head_dim\": %d, \"text\": 0, \"samples\": ["
               "{\"step\": 0, \"layer\": 0, \"q\": \"q.npy\", \"k\": \"k.npy\", \"v\": \"v.npy\"},"
               "{\"step\": 1, \"layer\": 0, \"q\": \"q.npy\", \"k\": \"k.npy\", \"v\": \"v.npy\"}]}\n",
            T, H, W, TT, TH, TW, HEADS, D);
    fclose(f);
    free(q); free(k); free(v);
}

static stile_strategy *calibrate(const char *extra, const char *out)
{
    char cmd[2048], path[256];
    snprintf(path, sizeof path, "%s/%s", dir, out);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu --candidates '1,1,1;2,1,3;1,2,2;2,2,4' --out %s %s", stile_exe, dir, path,
             extra);
    printf("  $ %s\n", cmd);
    fflush(stdout);
    assert_int_equal(system(cmd), 0);
    stile_strategy *s = NULL;
    assert_int_equal(stile_strategy_load(path, &s), STILE_OK);
    return s;
}

static void expect(const stile_strategy *s, int64_t step, int64_t head, int64_t a, int64_t b, int64_t c)
{
    int64_t w[3];
    assert_int_equal(stile_strategy_get(s, step, 0, head, w), STILE_OK);
    printf("  step %lld head %lld: %lldx%lldx%lld (expected %lldx%lldx%lld)\n", (long long)step, (long long)head, (long long)w[0],
           (long long)w[1], (long long)w[2], (long long)a, (long long)b, (long long)c);
    assert_true(w[0] == a && w[1] == b && w[2] == c);
}

static void test_calibration_recovers_planted_windows_and_keeps_skipped_steps_full(void **state)
{
    (void)state;
    stile_strategy *s = calibrate("--skip-steps 1", "lowest.json");
    expect(s, 1, 0, 1, 1, 1);
    expect(s, 1, 1, 2, 1, 3);
    expect(s, 1, 2, 2, 2, 4); /* the two-level head: only the full grid is exact */
    for (int h = 0; h < HEADS; h++) expect(s, 0, h, grid[0], grid[1], grid[2]); /* skipped: full */
    stile_strategy_destroy(&s);
}

static void test_a_second_run_resumes_from_the_measurements(void **state)
{
    (void)state;
    char cmd[2048], line[4096] = "";
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu --candidates '1,1,1;2,1,3;1,2,2;2,2,4' --out %s/lowest.json --skip-steps 1",
             stile_exe, dir, dir);
    FILE *p = popen(cmd, "r");
    size_t n = fread(line, 1, sizeof line - 1, p);
    line[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(line, "resuming: 2 sample(s) already measured"));
    assert_non_null(strstr(line, "(0 runs)")); /* nothing ran again */
}

static void test_budget_rule_picks_the_sparsest_window_within_the_budget(void **state)
{
    (void)state;
    stile_strategy *s = calibrate("--max-rel-l2 0.02", "budget.json");
    expect(s, 1, 0, 1, 1, 1);
    expect(s, 1, 1, 2, 1, 3);
    expect(s, 1, 2, 1, 1, 1); /* the ring leaks under 2%: the sparsest window is within budget */
    stile_strategy_destroy(&s);
    s = calibrate("--max-rel-l2 1e-9", "tight.json");
    expect(s, 1, 2, 2, 2, 4); /* nothing sparser is that close: the full grid */
    stile_strategy_destroy(&s);
}

static void test_bad_captures_and_candidates_fail_with_one_line(void **state)
{
    (void)state;
    char cmd[2048];
    const char *cases[][2] = {
        {"--candidates '3,1,1' --out X", "outside the grid"},
        {"--candidates '1,1' --out X", "is not wt,wh,ww"},
        {"--out X", "--candidates is required"},
        {"--candidates '1,1,1'", "--out FILE is required"},
    };
    /* a malformed manifest and a capture whose tensors disagree with it name the file */
    char bad_dir[300], path[400], line2[512] = "";
    snprintf(bad_dir, sizeof bad_dir, "%s/bad", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && printf '{\"canvas\": [2, 4' > %s/manifest.json", bad_dir, bad_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --candidates '1,1,1' -o %s/never.json 2>&1 >/dev/null; echo \"exit=$?\"", stile_exe,
             bad_dir, dir);
    FILE *pp = popen(cmd, "r");
    line2[fread(line2, 1, sizeof line2 - 1, pp)] = 0;
    pclose(pp);
    printf("  malformed manifest -> %s", line2);
    assert_non_null(strstr(line2, "manifest.json:1"));
    assert_non_null(strstr(line2, "exit=2"));
    snprintf(path, sizeof path, "%s/manifest.json", bad_dir);
    FILE *mf = fopen(path, "w");
    fprintf(mf, "{\"canvas\": [2, 4, 4], \"tile\": [1, 2, 2], \"heads\": %d, \"head_dim\": %d, \"samples\": "
                "[{\"step\": 0, \"layer\": 0, \"q\": \"../q.npy\", \"k\": \"../k.npy\", \"v\": \"../v.npy\"}]}", HEADS, D);
    fclose(mf);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --candidates '1,1,1' -o %s/never.json 2>&1 >/dev/null; echo \"exit=$?\"", stile_exe,
             bad_dir, dir);
    pp = popen(cmd, "r");
    line2[fread(line2, 1, sizeof line2 - 1, pp)] = 0;
    pclose(pp);
    printf("  shape mismatch -> %s", line2);
    assert_non_null(strstr(line2, "q.npy: shape disagrees with the manifest"));
    assert_non_null(strstr(line2, "exit=2"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256], line[512] = "";
        snprintf(out, sizeof out, "%s/never.json", dir);
        char args[512];
        snprintf(args, sizeof args, "%s", cases[i][0]);
        char *x = strstr(args, " X");
        if (x) snprintf(x, sizeof args - (size_t)(x - args), " %s", out);
        snprintf(cmd, sizeof cmd, "%s calibrate %s %s 2>&1 >/dev/null; echo \"exit=$?\"", stile_exe, dir, args);
        FILE *p = popen(cmd, "r");
        size_t n = fread(line, 1, sizeof line - 1, p);
        line[n] = 0;
        pclose(p);
        printf("  %s -> %s", cases[i][0], line);
        assert_non_null(strstr(line, cases[i][1]));
        assert_non_null(strstr(line, "exit=2"));
        FILE *f = fopen(out, "r");
        assert_null(f); /* nothing written */
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_calibrate PATH/TO/stile\n");
        return 1;
    }
    stile_exe = argv[1];
    conf_log_init();
    if (conf_tmpdir(dir, sizeof dir, "calibrate") != 0) return 1;
    write_capture();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calibration_recovers_planted_windows_and_keeps_skipped_steps_full),
        cmocka_unit_test(test_a_second_run_resumes_from_the_measurements),
        cmocka_unit_test(test_budget_rule_picks_the_sparsest_window_within_the_budget),
        cmocka_unit_test(test_bad_captures_and_candidates_fail_with_one_line),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (conf_tmpdir_remove(dir) != 0) rc = rc ? rc : 1;
    return rc;
}
