/* The fp64 oracle against brute-force dense attention with an explicit, hand-written boolean mask. */
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

/* Dense attention over explicit mask[i][j] (1 = attend), [S, D] f32 inputs, one head. */
static void dense_masked(int S, int D, const float *q, const float *k, const float *v, const char *mask, double scale,
                         double *o, double *lse)
{
    for (int i = 0; i < S; i++) {
        double mx = -INFINITY, sum = 0, s[64];
        for (int j = 0; j < S; j++) {
            s[j] = -INFINITY;
            if (!mask[i * S + j]) continue;
            double d = 0;
            for (int c = 0; c < D; c++) d += (double)q[i * D + c] * k[j * D + c];
            s[j] = d * scale;
            mx = fmax(mx, s[j]);
        }
        for (int c = 0; c < D; c++) o[i * D + c] = 0;
        for (int j = 0; j < S; j++) {
            if (!mask[i * S + j]) continue;
            double e = exp(s[j] - mx);
            sum += e;
            for (int c = 0; c < D; c++) o[i * D + c] += e * v[j * D + c];
        }
        for (int c = 0; c < D; c++) o[i * D + c] /= sum;
        lse[i] = mx + log(sum);
    }
}

static void compare(const stile_problem *p, int S, const char *mask, uint64_t seed)
{
    const int D = (int)p->head_dim;
    float *q = malloc(sizeof(float) * S * D), *k = malloc(sizeof(float) * S * D), *v = malloc(sizeof(float) * S * D);
    stile_conf_fill_normal(q, STILE_DTYPE_F32, S * D, seed);
    stile_conf_fill_normal(k, STILE_DTYPE_F32, S * D, seed + 1);
    stile_conf_fill_normal(v, STILE_DTYPE_F32, S * D, seed + 2);
    double *want = malloc(sizeof(double) * S * D), *want_lse = malloc(sizeof(double) * S);
    double *got = malloc(sizeof(double) * S * D), *got_lse = malloc(sizeof(double) * S);
    dense_masked(S, D, q, k, v, mask, 1.0 / sqrt(D), want, want_lse);
    size_t bytes = sizeof(float) * S * D;
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, bytes, STILE_DTYPE_F32), .k = stile_tensor_at(k, bytes, STILE_DTYPE_F32), .v = stile_tensor_at(v, bytes, STILE_DTYPE_F32)};
    assert_int_equal(stile_oracle(p, &io, NULL, 0, got, got_lse), STILE_OK);
    double err = 0;
    for (int i = 0; i < S * D; i++) err = fmax(err, fabs(got[i] - want[i]));
    for (int i = 0; i < S; i++) err = fmax(err, fabs(got_lse[i] - want_lse[i]));
    printf("  seed %llu: max |oracle - dense masked| = %.3e\n", (unsigned long long)seed, err);
    assert_true(err < 1e-12);
    /* a subset of rows gives the same rows */
    int64_t rows[3] = {S - 1, 0, S / 2};
    double *part = malloc(sizeof(double) * 3 * D);
    assert_int_equal(stile_oracle(p, &io, rows, 3, part, NULL), STILE_OK);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < D; c++) assert_true(part[r * D + c] == got[rows[r] * D + c]);
    free(q); free(k); free(v); free(want); free(want_lse); free(got); free(got_lse); free(part);
}

static void test_oracle_equals_dense_attention_with_a_hand_written_1d_mask_and_text(void **state)
{
    (void)state;
    /* 6 video tokens in tiles of 2 (tiles A A B B C C), window 2 tiles: tile A -> {A,B}, B -> {A,B}
     * (start clamp(1-1, 0, 1) = 0), C -> {B,C}. Then 2 text tokens, the last one padding. */
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 1, 6}, .tile = {1, 1, 2}, .window = {1, 1, 2}, .heads = 1, .head_dim = 8, .text = 2,
                       .text_padding = 1};
    static const char mask[8 * 8] = {
        /*       A A B B C C t p */
        /* A */ 1, 1, 1, 1, 0, 0, 1, 0,
        /* A */ 1, 1, 1, 1, 0, 0, 1, 0,
        /* B */ 1, 1, 1, 1, 0, 0, 1, 0,
        /* B */ 1, 1, 1, 1, 0, 0, 1, 0,
        /* C */ 0, 0, 1, 1, 1, 1, 1, 0,
        /* C */ 0, 0, 1, 1, 1, 1, 1, 0,
        /* t */ 1, 1, 1, 1, 1, 1, 1, 0,
        /* p */ 1, 1, 1, 1, 1, 1, 1, 0,
    };
    compare(&p, 8, mask, 101);
}

static void test_oracle_equals_dense_attention_with_a_hand_written_2d_partial_tile_mask(void **state)
{
    (void)state;
    /* canvas 1x3x3, tile 1x2x2: tiles P (0,0)-(1,1) 4 tokens, Q column w=2 rows 0-1, R row h=2 cols 0-1,
     * S the corner (2,2). Window 1x1x1: each token attends its own tile only. Token raster order:
     * 0:P 1:P 2:Q / 3:P 4:P 5:Q / 6:R 7:R 8:S. */
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 3, 3}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 4};
    static const char tile_of[9] = {'P', 'P', 'Q', 'P', 'P', 'Q', 'R', 'R', 'S'};
    char mask[81];
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 9; j++) mask[i * 9 + j] = tile_of[i] == tile_of[j];
    compare(&p, 9, mask, 202);
}

static void test_oracle_in_tiled_order_matches_natural_order_permuted(void **state)
{
    (void)state;
    /* canvas 1x3x3, tile 1x2x2: tiled order lists P's tokens (0,1,3,4), then Q (2,5), R (6,7), S (8). */
    static const int natural_of_tiled[9] = {0, 1, 3, 4, 2, 5, 6, 7, 8};
    const int S = 9, D = 4;
    stile_problem nat = {.struct_size = sizeof nat, .canvas = {1, 3, 3}, .tile = {1, 2, 2}, .window = {1, 2, 1}, .heads = 1, .head_dim = D};
    stile_problem til = nat;
    til.order = STILE_ORDER_TILED;
    float q[36], k[36], v[36], qt[36], kt[36], vt[36];
    stile_conf_fill_normal(q, STILE_DTYPE_F32, 36, 303);
    stile_conf_fill_normal(k, STILE_DTYPE_F32, 36, 304);
    stile_conf_fill_normal(v, STILE_DTYPE_F32, 36, 305);
    for (int t = 0; t < S; t++)
        for (int c = 0; c < D; c++) {
            qt[t * D + c] = q[natural_of_tiled[t] * D + c];
            kt[t * D + c] = k[natural_of_tiled[t] * D + c];
            vt[t * D + c] = v[natural_of_tiled[t] * D + c];
        }
    double on[36], ot[36];
    stile_io a = {.struct_size = sizeof a, .q = stile_tensor_at(q, sizeof q, 0), .k = stile_tensor_at(k, sizeof k, 0), .v = stile_tensor_at(v, sizeof v, 0)};
    stile_io b = {.struct_size = sizeof b, .q = stile_tensor_at(qt, sizeof qt, 0), .k = stile_tensor_at(kt, sizeof kt, 0), .v = stile_tensor_at(vt, sizeof vt, 0)};
    assert_int_equal(stile_oracle(&nat, &a, NULL, 0, on, NULL), STILE_OK);
    assert_int_equal(stile_oracle(&til, &b, NULL, 0, ot, NULL), STILE_OK);
    for (int t = 0; t < S; t++)
        for (int c = 0; c < D; c++) assert_true(fabs(ot[t * D + c] - on[natural_of_tiled[t] * D + c]) < 1e-14);
}

static void test_oracle_refuses_bad_rows_and_missing_inputs(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 3, 3}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 4};
    float q[36] = {0};
    double o[36];
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, sizeof q, 0), .k = stile_tensor_at(q, sizeof q, 0), .v = stile_tensor_at(NULL, sizeof q, 0)};
    assert_int_equal(stile_oracle(&p, &io, NULL, 0, o, NULL), STILE_ERR_NULL_ARGUMENT);
    io.v.data = q;
    int64_t bad = 9;
    assert_int_equal(stile_oracle(&p, &io, &bad, 1, o, NULL), STILE_ERR_OUT_OF_RANGE);
    io.v.bytes = 8;
    assert_int_equal(stile_oracle(&p, &io, NULL, 0, o, NULL), STILE_ERR_OUT_OF_RANGE);
}

static void test_check_output_refuses_an_lse_buffer_too_small_or_not_f32(void **state)
{
    (void)state;
    /* 9 tokens, 1 head: the lse needs 9 floats; the check must not read past a shorter buffer. */
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 3, 3}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 4};
    float x[36], o[36], *lse = malloc(8 * sizeof *lse); /* one float short, on the heap so ASan sees an overrun */
    double ref[36], ref_lse[9];
    stile_conf_fill_normal(x, STILE_DTYPE_F32, 36, 404);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(x, sizeof x, 0), .k = stile_tensor_at(x, sizeof x, 0), .v = stile_tensor_at(x, sizeof x, 0), .o = stile_tensor_at(o, sizeof o, 0),
                   .lse = stile_tensor_at(lse, 8 * sizeof *lse, STILE_DTYPE_F32)};
    assert_int_equal(stile_oracle(&p, &io, NULL, 0, ref, ref_lse), STILE_OK);
    memcpy(o, x, sizeof o);
    for (int i = 0; i < 8; i++) lse[i] = (float)ref_lse[i];
    stile_check c;
    assert_int_equal(stile_check_output(&p, &io, NULL, 0, ref, ref_lse, &c), STILE_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(conf_last_log(), "io->lse.bytes"));
    io.lse.bytes = 9 * sizeof *lse;
    io.lse.dtype = STILE_DTYPE_F16;
    assert_int_equal(stile_check_output(&p, &io, NULL, 0, ref, ref_lse, &c), STILE_ERR_DTYPE_MISMATCH);
    assert_non_null(strstr(conf_last_log(), "io->lse.dtype"));
    /* without a reference the lse is not read, so neither fault matters */
    io.lse.bytes = 0;
    assert_int_equal(stile_check_output(&p, &io, NULL, 0, ref, NULL, &c), STILE_OK);
    free(lse);
}

static void test_oracle_and_check_refuse_tensors_not_aligned_to_their_elements(void **state)
{
    (void)state;
    /* The rule of stile_plan_execute holds for the oracle side too: f32 data at an odd address is
     * refused (a misaligned float load is undefined), not read. */
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 3, 3}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 4};
    char *raw = malloc(4 * 37 * sizeof(float) + 1), *lraw = malloc(10 * sizeof(float));
    float *x = (float *)(void *)raw, *o = x + 37, *lse = (float *)(void *)lraw;
    double ref[36], ref_lse[9];
    stile_conf_fill_normal(x, STILE_DTYPE_F32, 36, 405);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(x, 36 * sizeof(float), 0), .k = stile_tensor_at(x, 36 * sizeof(float), 0), .v = stile_tensor_at(x, 36 * sizeof(float), 0),
                   .o = stile_tensor_at(o, 36 * sizeof(float), 0), .lse = stile_tensor_at(lse, 9 * sizeof(float), STILE_DTYPE_F32)};
    assert_int_equal(stile_oracle(&p, &io, NULL, 0, ref, ref_lse), STILE_OK);
    io.k.data = raw + 1;
    assert_int_equal(stile_oracle(&p, &io, NULL, 0, ref, ref_lse), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "io->k.data"));
    io.k.data = x;
    memcpy(o, x, 36 * sizeof(float));
    for (int i = 0; i < 9; i++) lse[i] = (float)ref_lse[i];
    stile_check c;
    assert_int_equal(stile_check_output(&p, &io, NULL, 0, ref, ref_lse, &c), STILE_OK);
    io.o.data = (char *)o + 2;
    assert_int_equal(stile_check_output(&p, &io, NULL, 0, ref, ref_lse, &c), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "io->o.data"));
    io.o.data = o;
    io.lse.data = lraw + 2;
    assert_int_equal(stile_check_output(&p, &io, NULL, 0, ref, ref_lse, &c), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "io->lse.data"));
    free(raw);
    free(lraw);
}

/* ---- the oracle's gradients (check/oracle_grad.c) against central differences of the oracle ---- */

/* L = sum of d_o * o over everything, with o from the forward oracle. */
static double loss(const stile_problem *p, const stile_io *io, const float *go, double *o, int64_t n)
{
    assert_int_equal(stile_oracle(p, io, NULL, 0, o, NULL), STILE_OK);
    double l = 0;
    for (int64_t i = 0; i < n; i++) l += (double)go[i] * o[i];
    return l;
}

/* Every element of dQ, dK and dV of a problem with batch, per-head windows, partial tiles and text
 * (a padded token among them) against (L(x + e) - L(x - e)) / (x+ - x-), the perturbation as stored
 * in f32 (so the quotient is exact up to the difference's truncation, O(e^2)). */
static void fd_compare(const stile_problem *p, uint64_t seed)
{
    const int64_t B = p->batch, H = p->heads, D = p->head_dim;
    const int64_t S = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text, n = B * S * H * D;
    float *x[3], *go = malloc(sizeof(float) * (size_t)n);
    double *o = malloc(sizeof(double) * (size_t)n), *grad[3];
    for (int t = 0; t < 3; t++) {
        x[t] = malloc(sizeof(float) * (size_t)n);
        grad[t] = malloc(sizeof(double) * (size_t)n);
        stile_conf_fill_normal(x[t], STILE_DTYPE_F32, n, seed + (uint64_t)t);
    }
    stile_conf_fill_normal(go, STILE_DTYPE_F32, n, seed + 3);
    const size_t bytes = sizeof(float) * (size_t)n;
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(x[0], bytes, STILE_DTYPE_F32),
                   .k = stile_tensor_at(x[1], bytes, STILE_DTYPE_F32), .v = stile_tensor_at(x[2], bytes, STILE_DTYPE_F32)};
    const stile_tensor d_o = stile_tensor_at(go, bytes, STILE_DTYPE_F32);
    assert_int_equal(stile_oracle_backward(p, &io, &d_o, grad[0], grad[1], grad[2]), STILE_OK);
    static const char *nm[3] = {"dq", "dk", "dv"};
    for (int t = 0; t < 3; t++) {
        double worst = 0, gmax = 0;
        int64_t zeros = 0;
        for (int64_t i = 0; i < n; i++) {
            const float keep = x[t][i];
            x[t][i] = keep + 1e-3f;
            const double hi = x[t][i], lp = loss(p, &io, go, o, n);
            x[t][i] = keep - 1e-3f;
            const double lo = x[t][i], lm = loss(p, &io, go, o, n);
            x[t][i] = keep;
            const double fd = (lp - lm) / (hi - lo);
            worst = fmax(worst, fabs(fd - grad[t][i]));
            gmax = fmax(gmax, fabs(grad[t][i]));
            zeros += grad[t][i] == 0;
        }
        printf("  seed %llu %s: max |analytic - central difference| = %.3e (largest gradient %.3f, %lld exact zeros)\n",
               (unsigned long long)seed, nm[t], worst, gmax, (long long)zeros);
        assert_true(worst < 2e-6 * (1 + gmax));
        assert_true(gmax > 0.1); /* the comparison is not between zeros */
    }
    /* one gradient alone is the same as with the others */
    double *only = malloc(sizeof(double) * (size_t)n);
    assert_int_equal(stile_oracle_backward(p, &io, &d_o, NULL, only, NULL), STILE_OK);
    assert_memory_equal(only, grad[1], sizeof(double) * (size_t)n);
    free(only);
    for (int t = 0; t < 3; t++) {
        free(x[t]);
        free(grad[t]);
    }
    free(go);
    free(o);
}

static void test_oracle_gradients_match_central_differences(void **state)
{
    (void)state;
    /* grid 2 x 2 x 2 of tiles 1 x 2 x 3 over 2 x 3 x 4 (partial tiles on two axes), two heads with
     * their own windows, batch 2, three text tokens (the last one padding), a scale of our own */
    static const int64_t wins[2][3] = {{1, 1, 1}, {2, 1, 2}};
    stile_problem p = {.struct_size = sizeof p, .batch = 2, .canvas = {2, 3, 4}, .tile = {1, 2, 3}, .head_windows = wins,
                       .heads = 2, .head_dim = 4, .text = 3, .text_padding = 1, .scale = 0.7};
    fd_compare(&p, 7100);
    p.order = STILE_ORDER_TILED;
    fd_compare(&p, 7200);
}

static void test_oracle_backward_refuses_bad_arguments(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 1, 4}, .tile = {1, 1, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 2};
    float q[8] = {0}, go[8] = {0};
    double g[8];
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, sizeof q, STILE_DTYPE_F32), .k = stile_tensor_at(q, sizeof q, STILE_DTYPE_F32),
                   .v = stile_tensor_at(q, sizeof q, STILE_DTYPE_F32)};
    stile_tensor d_o = stile_tensor_at(go, sizeof go, STILE_DTYPE_F32);
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, g, NULL, NULL), STILE_OK);
    assert_int_equal(stile_oracle_backward(&p, &io, NULL, g, NULL, NULL), STILE_ERR_NULL_ARGUMENT);
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, NULL, NULL, NULL), STILE_ERR_NULL_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "nothing to compute"));
    d_o.bytes = sizeof go - 4;
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, g, NULL, NULL), STILE_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(conf_last_log(), "d_o is smaller"));
    d_o = stile_tensor_at(go, sizeof go, STILE_DTYPE_F16);
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, g, NULL, NULL), STILE_ERR_DTYPE_MISMATCH);
    d_o = stile_tensor_at(NULL, sizeof go, STILE_DTYPE_F32);
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, g, NULL, NULL), STILE_ERR_NULL_ARGUMENT);
    io.k.data = NULL;
    d_o = stile_tensor_at(go, sizeof go, STILE_DTYPE_F32);
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, g, NULL, NULL), STILE_ERR_NULL_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "io->k.data"));
}

static void test_check_gradients_sees_one_wrong_element_and_refuses_bad_arguments(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {2, 3, 4}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 2, .head_dim = 4, .text = 2};
    enum { N = (2 * 3 * 4 + 2) * 2 * 4 };
    float x[4][N], g[3][N];
    double ref[3][N];
    for (int t = 0; t < 4; t++) stile_conf_fill_normal(x[t], STILE_DTYPE_F32, N, 7300 + (uint64_t)t);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(x[0], sizeof x[0], STILE_DTYPE_F32),
                   .k = stile_tensor_at(x[1], sizeof x[1], STILE_DTYPE_F32), .v = stile_tensor_at(x[2], sizeof x[2], STILE_DTYPE_F32)};
    const stile_tensor d_o = stile_tensor_at(x[3], sizeof x[3], STILE_DTYPE_F32);
    assert_int_equal(stile_oracle_backward(&p, &io, &d_o, ref[0], ref[1], ref[2]), STILE_OK);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < N; i++) g[t][i] = (float)ref[t][i];
    stile_grad_io gio = {.struct_size = sizeof gio, .d_q = stile_tensor_at(g[0], sizeof g[0], STILE_DTYPE_F32),
                         .d_k = stile_tensor_at(g[1], sizeof g[1], STILE_DTYPE_F32), .d_v = stile_tensor_at(g[2], sizeof g[2], STILE_DTYPE_F32)};
    stile_check c;
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_OK);
    assert_true(c.passed);
    assert_int_equal(c.elements, 3 * N);
    assert_true(c.nmse < 1e-13);
    /* one key's gradient off by a little more than f32 noise: seen in dK alone */
    const float keep = g[1][17];
    g[1][17] += 0.01f;
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_OK);
    assert_false(c.passed);
    assert_true(c.nmse > 1e-10);
    g[1][17] = NAN;
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_OK);
    assert_false(c.passed);
    assert_int_equal(c.nonfinite, 1);
    g[1][17] = keep;
    /* bad arguments: a status and a message, nothing passed */
    assert_int_equal(stile_check_gradients(&p, NULL, ref[0], ref[1], ref[2], &c), STILE_ERR_NULL_ARGUMENT);
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], NULL, ref[2], &c), STILE_ERR_NULL_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "ref_d_k"));
    gio.d_v.bytes -= 4;
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_ERR_OUT_OF_RANGE);
    assert_false(c.passed);
    gio.d_v = stile_tensor_at(g[2], sizeof g[2], STILE_DTYPE_F16);
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_ERR_DTYPE_MISMATCH);
    gio.d_v = stile_tensor_at(g[2], sizeof g[2], STILE_DTYPE_F32);
    gio.d_q.handle = 1;
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "buffer handle"));
    gio.d_q.handle = 0;
    gio.struct_size = 8;
    assert_int_equal(stile_check_gradients(&p, &gio, ref[0], ref[1], ref[2], &c), STILE_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    conf_log_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_equals_dense_attention_with_a_hand_written_1d_mask_and_text),
        cmocka_unit_test(test_oracle_equals_dense_attention_with_a_hand_written_2d_partial_tile_mask),
        cmocka_unit_test(test_oracle_in_tiled_order_matches_natural_order_permuted),
        cmocka_unit_test(test_oracle_refuses_bad_rows_and_missing_inputs),
        cmocka_unit_test(test_check_output_refuses_an_lse_buffer_too_small_or_not_f32),
        cmocka_unit_test(test_oracle_and_check_refuse_tensors_not_aligned_to_their_elements),
        cmocka_unit_test(test_oracle_gradients_match_central_differences),
        cmocka_unit_test(test_oracle_backward_refuses_bad_arguments),
        cmocka_unit_test(test_check_gradients_sees_one_wrong_element_and_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
