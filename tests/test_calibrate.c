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

#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "manifest.h"
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

/* The capture in directory d: 2 steps of 1 layer, the same tensors; f32 [1, S, heads, D]. Heads from
 * 2 on are two-level (only the full grid is exact). */
static void write_capture_to(const char *d, int heads)
{
    const int64_t S = T * H * W;
    float *q = calloc((size_t)(S * heads * D), sizeof *q), *k = calloc((size_t)(S * heads * D), sizeof *k),
          *v = malloc((size_t)(S * heads * D) * sizeof *v);
    stile_conf_fill_normal(v, STILE_DTYPE_F32, S * heads * D, 77);
    const int64_t planted0[3] = {1, 1, 1}, planted1[3] = {2, 1, 3}, inner[3] = {1, 1, 1}, ring[3] = {1, 2, 2};
    for (int64_t i = 0; i < S; i++)
        for (int h = 0; h < heads; h++) {
            float *qi = q + (i * heads + h) * D, *ki = k + (i * heads + h) * D;
            ki[tile_of(i)] = 1.0f;
            for (int64_t t = 0; t < grid[0] * grid[1] * grid[2]; t++) {
                if (h == 0) qi[t] = inside(tile_of(i), t, planted0) ? 40.0f : 0.0f;
                if (h == 1) qi[t] = inside(tile_of(i), t, planted1) ? 40.0f : 0.0f;
                if (h >= 2) qi[t] = inside(tile_of(i), t, inner) ? 12.0f : inside(tile_of(i), t, ring) ? 4.0f : 0.0f;
            }
        }
    /* the scale is 1/sqrt(D): undo it so the logits are the values above */
    for (int64_t i = 0; i < S * heads * D; i++) q[i] *= 8.0f;
    const int64_t shape[4] = {1, S, heads, D};
    char path[256], err[256];
    const char *names[3] = {"q.npy", "k.npy", "v.npy"};
    float *data[3] = {q, k, v};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", d, names[i]);
        assert_int_equal(npy_write(path, STILE_DTYPE_F32, 4, shape, data[i], err, sizeof err), STILE_OK);
    }
    snprintf(path, sizeof path, "%s/manifest.json", d);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"canvas\": [%d, %d, %d], \"tile\": [%d, %d, %d], \"heads\": %d, \"head_dim\": %d, \"text\": 0, \"samples\": ["
               "{\"step\": 0, \"layer\": 0, \"q\": \"q.npy\", \"k\": \"k.npy\", \"v\": \"v.npy\"},"
               "{\"step\": 1, \"layer\": 0, \"q\": \"q.npy\", \"k\": \"k.npy\", \"v\": \"v.npy\"}]}\n",
            T, H, W, TT, TH, TW, heads, D);
    fclose(f);
    free(q); free(k); free(v);
}

static void write_capture(void) { write_capture_to(dir, HEADS); }

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

/* Run a shell command; its stdout and stderr into out; the exit status. */
static int run_cmd(const char *cmd, char *out, size_t size)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    printf("  $ %.300s%s\n", cmd, strlen(cmd) > 300 ? " ..." : "");
    fflush(stdout);
    FILE *p = popen(full, "r");
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Calibrating another capture with the same --out once resumed from the first one's measurements:
 * its fourth head, missing there, read as distance 0 and got the sparsest window, 1x1x1. */
static void test_measurements_of_another_capture_are_not_resumed_and_no_head_reads_as_zero(void **state)
{
    (void)state;
    char other[128], cmd[2048], out[16384], path[256];
    snprintf(other, sizeof other, "%s/other", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", other);
    assert_int_equal(system(cmd), 0);
    write_capture_to(other, 4);
    const char *cands = "--candidates '1,1,1;2,1,3;1,2,2;2,2,4'";
    snprintf(path, sizeof path, "%s/shared.json", dir);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu %s --out %s", stile_exe, dir, cands, path);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu %s --out %s", stile_exe, other, cands, path);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    printf("%s", strstr(out, "wrote") ? strstr(out, "wrote") : out);
    assert_null(strstr(out, "resuming"));
    assert_non_null(strstr(out, "from another capture"));
    assert_non_null(strstr(out, "(8 runs)")); /* both samples measured again */
    stile_strategy *s = NULL;
    assert_int_equal(stile_strategy_load(path, &s), STILE_OK);
    expect(s, 1, 0, 1, 1, 1);
    expect(s, 1, 2, 2, 2, 4);
    expect(s, 1, 3, 2, 2, 4); /* as a fresh run picks */
    stile_strategy_destroy(&s);
    /* the same capture again resumes */
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "resuming: 2 sample(s) already measured"));
}

/* A measurements file of this capture with a head missing from a row is not trusted either. */
static void test_a_measurements_file_with_a_missing_head_is_measured_afresh(void **state)
{
    (void)state;
    char cmd[2048], out[16384], path[256], mpath[300];
    snprintf(path, sizeof path, "%s/cut.json", dir);
    snprintf(mpath, sizeof mpath, "%s.measurements.json", path);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu --candidates '1,1,1;2,1,3;1,2,2;2,2,4' --out %s", stile_exe, dir, path);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    json_t *m = json_load_file(mpath, 0, NULL);
    assert_non_null(m);
    assert_true(json_is_string(json_object_get(m, "capture")));
    json_t *row = json_array_get(json_object_get(json_object_get(m, "samples"), "1"), 0);
    assert_int_equal(json_array_size(row), HEADS);
    assert_int_equal(json_array_remove(row, HEADS - 1), 0);
    assert_int_equal(json_dump_file(m, mpath, 0), 0);
    json_decref(m);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "is malformed: measuring afresh"));
    assert_non_null(strstr(out, "(8 runs)"));
    stile_strategy *s = NULL;
    assert_int_equal(stile_strategy_load(path, &s), STILE_OK);
    expect(s, 1, 2, 2, 2, 4);
    stile_strategy_destroy(&s);
}

/* Once a 2,048-byte copy: the last window of a longer list was cut ("1,1,12" became "1,1,1"). */
static void test_a_candidate_list_longer_than_2047_characters_is_used_whole(void **state)
{
    (void)state;
    static char cmd[8192], cands[4096], out[1 << 16];
    size_t n = 0;
    for (int i = 0; i < 420; i++) n += (size_t)snprintf(cands + n, sizeof cands - n, "1,1,1;");
    snprintf(cands + n, sizeof cands - n, "2,2,4");
    assert_true(strlen(cands) > 2047);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu --candidates '%s' --out %s/long.json", stile_exe, dir, cands, dir);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/long.json", dir);
    stile_strategy *s = NULL;
    assert_int_equal(stile_strategy_load(path, &s), STILE_OK);
    expect(s, 1, 2, 2, 2, 4); /* only the last candidate is exact for the two-level head */
    stile_strategy_destroy(&s);
}

/* Writing the measurements fails (their path is a directory): exit 1, nothing written, nothing leaked (ASan). */
static void test_a_failed_measurements_write_exits_1_and_writes_no_strategy(void **state)
{
    (void)state;
    char cmd[2048], out[4096], path[256];
    snprintf(path, sizeof path, "%s/blocked.json", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s.measurements.json", path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --device cpu --candidates '1,1,1' --out %s", stile_exe, dir, path);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 1);
    printf("  %s", out);
    assert_non_null(strstr(out, "measurements"));
    assert_int_equal(access(path, F_OK), -1);
}

/* The manifest parser alone: each bad field named; a status and a message, never an exit. */
static void test_every_manifest_field_is_checked_for_its_type_and_range(void **state)
{
    (void)state;
    const char *head = "\"canvas\": [2, 4, 8], \"tile\": [1, 2, 2], \"heads\": 3, \"head_dim\": 64";
    const char *sample = "{\"step\": 0, \"layer\": 1, \"q\": \"q.npy\", \"k\": \"k.npy\", \"v\": \"v.npy\"}";
    char good[1024];
    snprintf(good, sizeof good, "{%s, \"text\": 4, \"text_padding\": 1, \"samples\": [%s]}", head, sample);
    manifest m;
    char msg[512];
    assert_int_equal(manifest_parse(good, strlen(good), "cap", &m, msg, sizeof msg), STILE_OK);
    assert_int_equal(m.p.text, 4);
    assert_int_equal(m.p.text_padding, 1);
    assert_int_equal(m.nsamples, 1);
    assert_int_equal(m.s[0].layer, 1);
    assert_string_equal(m.s[0].k, "cap/k.npy");
    manifest_free(&m);
    struct { const char *fields, *samples, *needle; } bad[] = {
        {"\"text\": \"5\"", NULL, "\"text\" must be a whole number within 0..2147483647, not a string"},
        {"\"text\": 2.5", NULL, "\"text\" must be a whole number"},
        {"\"text\": -1", NULL, "\"text\" is -1"},
        {"\"text\": 2, \"text_padding\": 3", NULL, "\"text_padding\" is 3: must be within 0..2"},
        {"\"text_padding\": true", NULL, "\"text_padding\" must be a whole number"},
        {"\"text_pading\": 1", NULL, "unknown field \"text_pading\""},
        {"\"text\": 0", "[]", "\"samples\" must be an array of 1..65536 samples, not an empty one"},
        {"\"text\": 0", "{}", "\"samples\" must be an array"},
        {"\"text\": 0", "[{\"step\": -1, \"layer\": 0, \"q\": \"q\", \"k\": \"k\", \"v\": \"v\"}]", "\"samples[0].step\" is -1"},
        {"\"text\": 0", "[{\"step\": 0, \"layer\": \"0\", \"q\": \"q\", \"k\": \"k\", \"v\": \"v\"}]", "\"samples[0].layer\" must be"},
        {"\"text\": 0", "[{\"step\": 0, \"layer\": 0, \"q\": 5, \"k\": \"k\", \"v\": \"v\"}]", "\"samples[0].q\" must be a file name"},
        {"\"text\": 0", "[{\"step\": 0, \"layer\": 0, \"q\": \"q\\u0000x\", \"k\": \"k\", \"v\": \"v\"}]", "is not allowed"}, /* a NUL would cut the name */
        {"\"text\": 0", "[{\"step\": 0, \"layer\": 0, \"q\": \"q\", \"k\": \"\", \"v\": \"v\"}]", "\"samples[0].k\" must be"},
        {"\"text\": 0", "[{\"step\": 0, \"layer\": 0, \"q\": \"q\", \"k\": \"k\"}]", "\"samples[0].v\" must be a file name"},
        {"\"text\": 0", "[{\"step\": 0, \"layer\": 0, \"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"w\": 1}]", "samples[0]: unknown field \"w\""},
        {"\"text\": 0", "[7]", "samples[0] must be an object, not a whole number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "{%s, %s, \"samples\": %s}", head, bad[i].fields, bad[i].samples ? bad[i].samples : "[{\"step\": 0, \"layer\": 0, \"q\": \"q\", \"k\": \"k\", \"v\": \"v\"}]");
        const stile_status st = manifest_parse(text, strlen(text), NULL, &m, msg, sizeof msg);
        printf("  %-60.60s -> %s\n", bad[i].fields, msg);
        assert_int_equal(st, STILE_ERR_FORMAT);
        assert_non_null(strstr(msg, bad[i].needle));
        assert_null(m.s);
    }
    /* whole-document faults, and the problem's own fields */
    const char *docs[][2] = {
        {"[1, 2]", "must be a JSON object, not an array"},
        {"{\"heads\": 3, \"heads\": 4}", "malformed JSON"},
        {"{\"canvas\": [2, 4], \"tile\": [1, 2, 2], \"heads\": 3, \"head_dim\": 64}", "\"canvas\" must be [T, H, W]"},
        {"{\"canvas\": [2, 4, \"8\"], \"tile\": [1, 2, 2], \"heads\": 3, \"head_dim\": 64}", "\"canvas[2]\" must be a whole number"},
        {"{\"canvas\": [2, 4, 8], \"tile\": [1, 0, 2], \"heads\": 3, \"head_dim\": 64}", "\"tile[1]\" is 0"},
        {"{\"canvas\": [2, 4, 8], \"tile\": [1, 2, 2], \"heads\": 268435456, \"head_dim\": 64}", "\"heads\" is 268435456: must be within 1..65536"},
        {"{\"canvas\": [2, 4, 8], \"tile\": [1, 2, 2], \"heads\": 3}", "\"head_dim\" is missing"},
        {"{\"canvas\": [65536, 65536, 1], \"tile\": [1, 1, 1], \"heads\": 1, \"head_dim\": 64}", "canvas 65536x65536x1"},
        {"", "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        const stile_status st = manifest_parse(docs[i][0], strlen(docs[i][0]), NULL, &m, msg, sizeof msg);
        printf("  %-60.60s -> %s\n", docs[i][0], msg);
        assert_int_not_equal(st, STILE_OK);
        assert_non_null(strstr(msg, docs[i][1]));
    }
    /* the command line: one line naming the file and the field, exit 2 */
    char bad_dir[300], cmd[2048], out[2048];
    snprintf(bad_dir, sizeof bad_dir, "%s/textstr", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && printf '{%s, \"text\": \"5\", \"samples\": [%s]}' > %s/manifest.json", bad_dir, head, sample, bad_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s calibrate %s --candidates '1,1,1' -o %s/never.json", stile_exe, bad_dir, dir);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 2);
    printf("  %s", out);
    assert_non_null(strstr(out, "textstr/manifest.json: \"text\" must be a whole number"));
    assert_int_equal((int)(strchr(out, '\n') - out) + 1, (int)strlen(out)); /* one line */
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
        cmocka_unit_test(test_measurements_of_another_capture_are_not_resumed_and_no_head_reads_as_zero),
        cmocka_unit_test(test_a_measurements_file_with_a_missing_head_is_measured_afresh),
        cmocka_unit_test(test_a_candidate_list_longer_than_2047_characters_is_used_whole),
        cmocka_unit_test(test_a_failed_measurements_write_exits_1_and_writes_no_strategy),
        cmocka_unit_test(test_every_manifest_field_is_checked_for_its_type_and_range),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (conf_tmpdir_remove(dir) != 0) rc = rc ? rc : 1;
    return rc;
}
