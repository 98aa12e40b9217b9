/* stile_plan_backward on the CPU against the fp64 oracle's gradients (stile_oracle_backward, itself
 * checked against central differences in test_oracle.c): every dtype, both token orders, batch,
 * per-head windows, partial tiles, text with padding, strided layouts, tiles larger than one work
 * block; guard bands after every buffer, poisoned outputs, inputs unchanged; bitwise the same result
 * on one thread and on many; and the checks before anything is written. Seeds are printed. */
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

enum { GUARD = 64 };

/* Element i of an output as a double, decoded here (not through libstile's conversions). */
static double load(const void *base, stile_dtype dt, int64_t i)
{
    if (dt == STILE_DTYPE_F32) {
        float f;
        memcpy(&f, (const char *)base + (size_t)i * 4, 4);
        return f;
    }
    const uint16_t h = ((const uint16_t *)base)[i];
    if (dt == STILE_DTYPE_BF16) {
        const uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    const int e = (h >> 10) & 31, m = h & 1023;
    const double sign = (h & 0x8000) ? -1 : 1;
    if (e == 31) return m ? NAN : sign * INFINITY;
    return sign * (e ? ldexp(1024 + m, e - 25) : ldexp(m, -24));
}

/* A buffer of n elements of es bytes and a guard band of GUARD bytes of 0xA5 after it. */
static void *guarded(size_t bytes)
{
    unsigned char *b = malloc(bytes + GUARD);
    assert_non_null(b);
    memset(b + bytes, 0xA5, GUARD);
    return b;
}

static void guard_intact(const void *buf, size_t bytes, const char *what)
{
    const unsigned char *b = (const unsigned char *)buf + bytes;
    for (int i = 0; i < GUARD; i++)
        if (b[i] != 0xA5) fail_msg("%s: guard band byte %d overwritten", what, i);
}

typedef struct grads {
    void *g[3];  /* d_q, d_k, d_v */
} grads;

/* Run the forward and the backward of p on dev; the gradients (poisoned first) in out, which the
 * caller frees. Inputs seeded from seed. */
static void run_backward(stile_device *dev, const stile_problem *p, uint64_t seed, grads *out, void **inputs, size_t *bytes_out)
{
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, p, &plan), STILE_OK);
    stile_problem r = {.struct_size = sizeof r};
    assert_int_equal(stile_plan_get_problem(plan, &r), STILE_OK);
    const int64_t S = r.canvas[0] * r.canvas[1] * r.canvas[2] + r.text;
    const size_t es = stile_dtype_size(r.dtype), n = (size_t)(r.batch * S * r.heads * r.head_dim), bytes = n * es;
    const size_t lse_bytes = (size_t)(r.batch * r.heads * S) * sizeof(float);
    /* q, k, v, d_o seeded; o and lse from the forward */
    for (int i = 0; i < 4; i++) {
        inputs[i] = guarded(bytes);
        stile_conf_fill_normal(inputs[i], r.dtype, (int64_t)n, seed + (uint64_t)i);
    }
    void *o = guarded(bytes), *lse = guarded(lse_bytes);
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(inputs[0], bytes, r.dtype), .k = stile_tensor_at(inputs[1], bytes, r.dtype),
                   .v = stile_tensor_at(inputs[2], bytes, r.dtype), .o = stile_tensor_at(o, bytes, r.dtype),
                   .lse = stile_tensor_at(lse, lse_bytes, STILE_DTYPE_F32)};
    assert_int_equal(stile_plan_execute(plan, &io), STILE_OK);
    void *copy[4];
    for (int i = 0; i < 4; i++) {
        copy[i] = malloc(bytes);
        memcpy(copy[i], inputs[i], bytes);
    }
    for (int t = 0; t < 3; t++) {
        out->g[t] = guarded(bytes);
        memset(out->g[t], 0xFF, bytes); /* NaN in every dtype */
    }
    stile_exec_info info = {0};
    stile_grad_io g = {.struct_size = sizeof g, .q = io.q, .k = io.k, .v = io.v, .o = io.o, .lse = io.lse,
                       .d_o = stile_tensor_at(inputs[3], bytes, r.dtype), .d_q = stile_tensor_at(out->g[0], bytes, r.dtype),
                       .d_k = stile_tensor_at(out->g[1], bytes, r.dtype), .d_v = stile_tensor_at(out->g[2], bytes, r.dtype),
                       .info = &info};
    stile_status st = stile_plan_backward(plan, &g);
    if (st != STILE_OK) fail_msg("stile_plan_backward: %s (%s)", stile_status_string(st), conf_last_log());
    assert_string_equal(info.path, "cblas");
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(copy[i], inputs[i], bytes); /* inputs unchanged */
        guard_intact(inputs[i], bytes, "an input");
        free(copy[i]);
    }
    for (int t = 0; t < 3; t++) guard_intact(out->g[t], bytes, "a gradient");
    guard_intact(o, bytes, "o");
    free(o);
    free(lse);
    *bytes_out = bytes;
    stile_plan_destroy(&plan);
}

/* The gradients of p against the oracle's, NMSE within the dtype's bound each; no element left NaN. */
static void check_against_oracle(const stile_problem *p, uint64_t seed)
{
    grads gr;
    void *in[4];
    size_t bytes;
    run_backward(conf_cpu, p, seed, &gr, in, &bytes);
    const size_t es = stile_dtype_size(p->dtype), n = bytes / es;
    double *ref[3];
    for (int t = 0; t < 3; t++) {
        ref[t] = malloc(n * sizeof(double));
        assert_non_null(ref[t]);
    }
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(in[0], bytes, p->dtype), .k = stile_tensor_at(in[1], bytes, p->dtype),
                   .v = stile_tensor_at(in[2], bytes, p->dtype)};
    const stile_tensor d_o = stile_tensor_at(in[3], bytes, p->dtype);
    assert_int_equal(stile_oracle_backward(p, &io, &d_o, ref[0], ref[1], ref[2]), STILE_OK);
    static const char *nm[3] = {"dq", "dk", "dv"};
    const stile_strides *st[3] = {&p->q, &p->k, &p->v};
    const stile_strides zero = {0};
    for (int t = 0; t < 3; t++) {
        /* the oracle's [B, S, H, D] against the tensor's strides (all zero: the same layout) */
        const int64_t S = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text, H = p->heads, D = p->head_dim;
        stile_strides s = *st[t];
        if (memcmp(&s, &zero, sizeof s) == 0) s = (stile_strides){S * H * D, H * D, D, 1};
        double num = 0, den = 0;
        int64_t bad = 0;
        for (int64_t b = 0; b < (p->batch ? p->batch : 1); b++)
            for (int64_t i = 0; i < S; i++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t d = 0; d < D; d++) {
                        const double want = ref[t][((b * S + i) * H + h) * D + d];
                        const double got = load(gr.g[t], p->dtype, b * s.batch + i * s.token + h * s.head + d * s.dim);
                        if (!isfinite(got)) bad++;
                        num += (got - want) * (got - want);
                        den += want * want;
                    }
        const double nmse = num / den, bound = stile_nmse_threshold(p->dtype);
        printf("  seed %llu %s %s: NMSE %.3e (bound %.0e), %lld non-finite\n", (unsigned long long)seed,
               stile_dtype_name(p->dtype), nm[t], nmse, bound, (long long)bad);
        assert_int_equal(bad, 0);
        assert_true(nmse <= bound);
    }
    for (int t = 0; t < 3; t++) {
        free(ref[t]);
        free(gr.g[t]);
    }
    for (int i = 0; i < 4; i++) free(in[i]);
}

static const int64_t wins[2][3] = {{1, 1, 1}, {2, 3, 2}};

static void test_gradients_match_the_oracle_in_every_dtype_and_order(void **state)
{
    (void)state;
    /* grid 3 x 2 x 3 of tiles 2 x 4 x 4 over 5 x 7 x 9 (partial tiles on every axis), two heads with
     * their own windows, batch 2, five text tokens (two of them padding), a scale of our own */
    stile_problem p = {.struct_size = sizeof p, .batch = 2, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .head_windows = wins,
                       .heads = 2, .head_dim = 16, .text = 5, .text_padding = 2, .scale = 0.3};
    const stile_dtype dts[3] = {STILE_DTYPE_F32, STILE_DTYPE_F16, STILE_DTYPE_BF16};
    for (int i = 0; i < 3; i++) {
        p.dtype = dts[i];
        p.order = STILE_ORDER_NATURAL;
        check_against_oracle(&p, 8100 + (uint64_t)i * 10);
        p.order = STILE_ORDER_TILED;
        check_against_oracle(&p, 8105 + (uint64_t)i * 10);
    }
}

static void test_gradients_in_bhsd_layout_with_tiles_larger_than_a_block(void **state)
{
    (void)state;
    /* tiles of 8 x 8 x 8 = 512 rows: two blocks each in both passes; [B, H, S, D] tensors */
    stile_problem p = {.struct_size = sizeof p, .canvas = {8, 16, 16}, .tile = {8, 8, 8}, .window = {1, 1, 1}, .heads = 2, .head_dim = 64,
                       .text = 3};
    p.q = p.k = p.v = p.o = stile_strides_bhsd(&p);
    check_against_oracle(&p, 8200);
    /* every text token padding, and no text at all */
    stile_problem q = {.struct_size = sizeof q, .canvas = {2, 4, 6}, .tile = {1, 2, 3}, .window = {2, 1, 1}, .heads = 1, .head_dim = 8,
                       .text = 2, .text_padding = 2};
    check_against_oracle(&q, 8210);
    q.text = q.text_padding = 0;
    check_against_oracle(&q, 8220);
}

static void test_one_thread_and_many_give_bitwise_the_same_gradients(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .batch = 2, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .head_windows = wins,
                       .heads = 2, .head_dim = 32, .text = 5, .text_padding = 2};
    stile_device *one = NULL, *many = NULL;
    stile_device_params p1 = {.struct_size = sizeof p1, .threads = 1}, p4 = {.struct_size = sizeof p4, .threads = 4};
    assert_int_equal(stile_device_open("cpu:0", &p1, &one), STILE_OK);
    assert_int_equal(stile_device_open("cpu:0", &p4, &many), STILE_OK);
    grads a, b, c;
    void *ia[4], *ib[4], *ic[4];
    size_t bytes;
    run_backward(one, &p, 8300, &a, ia, &bytes);
    run_backward(many, &p, 8300, &b, ib, &bytes);
    run_backward(many, &p, 8300, &c, ic, &bytes);
    for (int t = 0; t < 3; t++) {
        assert_memory_equal(a.g[t], b.g[t], bytes);
        assert_memory_equal(b.g[t], c.g[t], bytes);
        free(a.g[t]);
        free(b.g[t]);
        free(c.g[t]);
    }
    for (int i = 0; i < 4; i++) {
        free(ia[i]);
        free(ib[i]);
        free(ic[i]);
    }
    stile_device_close(&one);
    stile_device_close(&many);
}

static void test_backward_checks_every_tensor_before_writing(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 2, 4}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 1, .head_dim = 4};
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    float buf[9][32];
    memset(buf, 0, sizeof buf);
    const size_t b = sizeof buf[0];
    stile_grad_io g = {.struct_size = sizeof g, .q = stile_tensor_at(buf[0], b, STILE_DTYPE_F32), .k = stile_tensor_at(buf[1], b, STILE_DTYPE_F32),
                       .v = stile_tensor_at(buf[2], b, STILE_DTYPE_F32), .o = stile_tensor_at(buf[3], b, STILE_DTYPE_F32),
                       .lse = stile_tensor_at(buf[4], 8 * sizeof(float), STILE_DTYPE_F32), .d_o = stile_tensor_at(buf[5], b, STILE_DTYPE_F32),
                       .d_q = stile_tensor_at(buf[6], b, STILE_DTYPE_F32), .d_k = stile_tensor_at(buf[7], b, STILE_DTYPE_F32),
                       .d_v = stile_tensor_at(buf[8], b, STILE_DTYPE_F32)};
    assert_int_equal(stile_plan_backward(plan, &g), STILE_OK);
    stile_plan_info in;
    assert_int_equal(stile_plan_get_info(plan, &in), STILE_OK);
    assert_true(stile_plan_backward_flops(plan) == 3.5 * in.flops); /* both passes recompute S and dP */
    assert_true(stile_plan_backward_flops(NULL) == 0);
    stile_grad_io bad = g;
    bad.lse = (stile_tensor){0};
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_NULL_ARGUMENT);
    assert_non_null(strstr(conf_last_log(), "needs the forward's LSE"));
    bad = g;
    bad.d_k = bad.q;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_ALIASING);
    assert_non_null(strstr(conf_last_log(), "io->d_k overlaps io->q"));
    bad = g;
    bad.d_v = bad.d_q;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_ALIASING);
    bad = g;
    bad.d_o.dtype = STILE_DTYPE_F16;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_DTYPE_MISMATCH);
    bad = g;
    bad.d_q.bytes = b - 4;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(conf_last_log(), "io->d_q"));
    bad = g;
    bad.lse.bytes = 4;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_OUT_OF_RANGE);
    bad = g;
    bad.struct_size = 0;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_INVALID_ARGUMENT);
    bad.struct_size = sizeof bad + 8;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_UNSUPPORTED);
    assert_int_equal(stile_plan_backward(NULL, &g), STILE_ERR_NULL_ARGUMENT);
    assert_int_equal(stile_plan_backward(plan, NULL), STILE_ERR_NULL_ARGUMENT);
    /* nothing was written by the refused calls: the gradients of the first call stay */
    float keep[3][32];
    memcpy(keep, buf[6], sizeof keep);
    bad = g;
    bad.d_o.data = NULL;
    assert_int_equal(stile_plan_backward(plan, &bad), STILE_ERR_NULL_ARGUMENT);
    assert_memory_equal(keep, buf[6], sizeof keep);
    stile_plan_destroy(&plan);
}

int main(void)
{
    conf_log_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_match_the_oracle_in_every_dtype_and_order),
        cmocka_unit_test(test_gradients_in_bhsd_layout_with_tiles_larger_than_a_block),
        cmocka_unit_test(test_one_thread_and_many_give_bitwise_the_same_gradients),
        cmocka_unit_test(test_backward_checks_every_tensor_before_writing),
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}
