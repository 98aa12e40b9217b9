/* The VSA steps (include/stile/stile_vsa.h) on the CPU against the fp64 oracle's (stile_oracle_vsa_*):
 * each step on its own, the whole forward (its chosen tiles checked as a top-k of the oracle's scores,
 * its output against the oracle's fine attention on those tiles plus the gated coarse output), the
 * checks of bad calls, and the same on CUDA/HIP devices (Vulkan's refusal) where one opens. Fresh seeds, printed
 * (STILE_TEST_SEED repeats one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stile/stile_check.h"
#include "stile/stile_vsa.h"
#include "test_util.h"

static uint64_t base_seed;

/* grid 3 x 2 x 3 of tiles 2 x 4 x 4 over 5 x 7 x 9: partial tiles on every axis */
static stile_problem problem(stile_dtype dt, stile_token_order order, int64_t k)
{
    return (stile_problem){.struct_size = sizeof(stile_problem), .batch = 2, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .heads = 2,
                           .head_dim = 24, .dtype = dt, .order = order, .key_tiles_k = k};
}

enum { TILES = 18, VIDEO = 5 * 7 * 9 };

typedef struct bufs {
    void *q, *k, *v, *gate, *o;
    float *qc, *kc, *vc, *oc, *scores;
    int32_t *kt;
    size_t xbytes, cbytes, sbytes, kbytes;
    stile_vsa_io io;
} bufs;

static void bufs_make(const stile_problem *p, uint64_t seed, bufs *b)
{
    const int64_t n = p->batch * VIDEO * p->heads * p->head_dim, bh = p->batch * p->heads;
    memset(b, 0, sizeof *b);
    b->xbytes = (size_t)n * stile_dtype_size(p->dtype);
    b->cbytes = (size_t)(bh * TILES * p->head_dim) * sizeof(float);
    b->sbytes = (size_t)(bh * TILES * TILES) * sizeof(float);
    b->kbytes = (size_t)(bh * TILES * p->key_tiles_k) * sizeof(int32_t);
    void **x[5] = {&b->q, &b->k, &b->v, &b->gate, &b->o};
    for (int i = 0; i < 5; i++) {
        *x[i] = malloc(b->xbytes);
        assert_non_null(*x[i]);
        stile_conf_fill_normal(*x[i], p->dtype, n, seed + (uint64_t)i);
    }
    float **c[5] = {&b->qc, &b->kc, &b->vc, &b->oc, &b->scores};
    for (int i = 0; i < 5; i++) {
        *c[i] = malloc(i < 4 ? b->cbytes : b->sbytes);
        assert_non_null(*c[i]);
        memset(*c[i], 0xff, i < 4 ? b->cbytes : b->sbytes); /* poisoned: NaN */
    }
    b->kt = malloc(b->kbytes);
    assert_non_null(b->kt);
    memset(b->kt, 0xff, b->kbytes);
    stile_vsa_io *io = &b->io;
    io->struct_size = sizeof *io;
    io->q = stile_tensor_at(b->q, b->xbytes, p->dtype);
    io->k = stile_tensor_at(b->k, b->xbytes, p->dtype);
    io->v = stile_tensor_at(b->v, b->xbytes, p->dtype);
    io->gate = stile_tensor_at(b->gate, b->xbytes, p->dtype);
    io->o = stile_tensor_at(b->o, b->xbytes, p->dtype);
    io->q_c = stile_tensor_at(b->qc, b->cbytes, STILE_DTYPE_F32);
    io->k_c = stile_tensor_at(b->kc, b->cbytes, STILE_DTYPE_F32);
    io->v_c = stile_tensor_at(b->vc, b->cbytes, STILE_DTYPE_F32);
    io->o_c = stile_tensor_at(b->oc, b->cbytes, STILE_DTYPE_F32);
    io->scores = stile_tensor_at(b->scores, b->sbytes, STILE_DTYPE_F32);
    io->key_tiles = stile_tensor_at(b->kt, b->kbytes, STILE_DTYPE_I32);
}

/* call(plan, io) on dev with every array of host through a buffer of the device (uploaded, then
 * downloaded back into host's arrays); fields host leaves unset stay unset. */
typedef stile_status (*vsa_call)(const stile_plan *plan, const stile_vsa_io *io);
static stile_status on_device(stile_device *dev, const stile_plan *plan, vsa_call call, const stile_vsa_io *host)
{
    stile_tensor *t[11];
    stile_vsa_io io = *host;
    stile_tensor *all[11] = {&io.q, &io.k, &io.v, &io.gate, &io.o, &io.q_c, &io.k_c, &io.v_c, &io.o_c, &io.scores, &io.key_tiles};
    stile_buffer *buf[11] = {0};
    for (int i = 0; i < 11; i++) {
        t[i] = all[i];
        if (!t[i]->data) continue;
        void *src = t[i]->data;
        assert_int_equal(stile_buffer_create(dev, t[i]->bytes, &buf[i]), STILE_OK);
        assert_int_equal(stile_buffer_upload(buf[i], 0, src, t[i]->bytes), STILE_OK);
        t[i]->data = stile_buffer_data(buf[i]);
    }
    const stile_status st = call(plan, &io);
    const stile_tensor *h[11] = {&host->q, &host->k, &host->v, &host->gate, &host->o, &host->q_c, &host->k_c, &host->v_c, &host->o_c,
                                 &host->scores, &host->key_tiles};
    for (int i = 0; i < 11; i++) {
        if (buf[i] && st == STILE_OK) assert_int_equal(stile_buffer_download(buf[i], 0, h[i]->data, h[i]->bytes), STILE_OK);
        stile_buffer_destroy(&buf[i]);
    }
    return st;
}

static void bufs_free(bufs *b)
{
    void *all[11] = {b->q, b->k, b->v, b->gate, b->o, b->qc, b->kc, b->vc, b->oc, b->scores, b->kt};
    for (int i = 0; i < 11; i++) free(all[i]);
}

static double *to_double(const float *x, size_t bytes)
{
    const size_t n = bytes / sizeof(float);
    double *d = malloc(n * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* NMSE of n floats against doubles, with no NaN among them. */
static double nmse_f(const float *got, const double *ref, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        assert_false(isnan(got[i]));
        e += (got[i] - ref[i]) * (got[i] - ref[i]);
        r += ref[i] * ref[i];
    }
    return r > 0 ? e / r : e;
}

/* NMSE of o (p's dtype, contiguous [B, S, H, D]) against doubles. */
static double nmse_o(const stile_problem *p, const void *o, const double *ref, size_t n)
{
    float *f = malloc(n * sizeof *f);
    assert_non_null(f);
    assert_int_equal(stile_convert(o, p->dtype, f, STILE_DTYPE_F32, n), STILE_OK);
    const double e = nmse_f(f, ref, n);
    free(f);
    return e;
}

static void each_step_against_the_oracle(stile_device *dev, const stile_problem *p, uint64_t seed)
{
    printf("  %s %s, seed %llu\n", stile_dtype_name(p->dtype), p->order == STILE_ORDER_TILED ? "tiled" : "natural",
           (unsigned long long)seed);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, p, &plan), STILE_OK);
    bufs b;
    bufs_make(p, seed, &b);
    const size_t nc = b.cbytes / sizeof(float), ns = b.sbytes / sizeof(float);
    /* pool */
    assert_int_equal(on_device(dev, plan, stile_vsa_pool, &b.io), STILE_OK);
    double *rq = malloc(nc * sizeof *rq), *rk = malloc(nc * sizeof *rk), *rv = malloc(nc * sizeof *rv);
    stile_io oio = {.struct_size = sizeof oio, .q = b.io.q, .k = b.io.k, .v = b.io.v};
    assert_int_equal(stile_oracle_vsa_pool(p, &oio, rq, rk, rv), STILE_OK);
    assert_true(nmse_f(b.qc, rq, nc) <= 1e-10 && nmse_f(b.kc, rk, nc) <= 1e-10 && nmse_f(b.vc, rv, nc) <= 1e-10);
    /* coarse, on the library's own tile means */
    assert_int_equal(on_device(dev, plan, stile_vsa_coarse, &b.io), STILE_OK);
    double *qd = to_double(b.qc, b.cbytes), *kd = to_double(b.kc, b.cbytes), *vd = to_double(b.vc, b.cbytes);
    double *roc = malloc(nc * sizeof *roc), *rsc = malloc(ns * sizeof *rsc);
    assert_int_equal(stile_oracle_vsa_coarse(p, qd, kd, vd, roc, rsc), STILE_OK);
    assert_true(nmse_f(b.oc, roc, nc) <= 1e-10);
    assert_true(nmse_f(b.scores, rsc, ns) <= 1e-10);
    /* select, on the library's own scores: exactly the oracle's top-k */
    assert_int_equal(on_device(dev, plan, stile_vsa_select, &b.io), STILE_OK);
    double *sd = to_double(b.scores, b.sbytes);
    assert_int_equal(stile_oracle_vsa_topk_check(p, sd, b.kt, 0.0), STILE_OK);
    /* combine, in place on o */
    const size_t no = b.xbytes / stile_dtype_size(p->dtype);
    double *ocd = to_double(b.oc, b.cbytes), *rcomb = malloc(no * sizeof *rcomb);
    assert_int_equal(stile_oracle_vsa_combine(p, &b.io.o, &b.io.gate, ocd, rcomb), STILE_OK);
    assert_int_equal(on_device(dev, plan, stile_vsa_combine, &b.io), STILE_OK);
    assert_true(nmse_o(p, b.o, rcomb, no) <= stile_nmse_threshold(p->dtype));
    double *all[11] = {rq, rk, rv, qd, kd, vd, roc, rsc, sd, ocd, rcomb};
    for (int i = 0; i < 11; i++) free(all[i]);
    bufs_free(&b);
    stile_plan_destroy(&plan);
}

static void steps_on(stile_device *dev, int64_t head_dim)
{
    const stile_dtype dts[3] = {STILE_DTYPE_F32, STILE_DTYPE_F16, STILE_DTYPE_BF16};
    for (int i = 0; i < 3; i++) {
        stile_problem p = problem(dts[i], STILE_ORDER_NATURAL, 4);
        p.head_dim = head_dim;
        each_step_against_the_oracle(dev, &p, base_seed + 10 * (uint64_t)i);
        p.order = STILE_ORDER_TILED;
        each_step_against_the_oracle(dev, &p, base_seed + 10 * (uint64_t)i + 5);
    }
}

static void test_each_step(void **state)
{
    (void)state;
    steps_on(conf_cpu, 24);
}

static void forward_against_the_oracle(stile_device *dev, const stile_problem *p, uint64_t seed, int give_intermediates)
{
    printf("  forward %s %s k %lld%s, seed %llu\n", stile_dtype_name(p->dtype), p->order == STILE_ORDER_TILED ? "tiled" : "natural",
           (long long)p->key_tiles_k, give_intermediates ? "" : " (intermediates held by the library)", (unsigned long long)seed);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(dev, p, &plan), STILE_OK);
    bufs b;
    bufs_make(p, seed, &b);
    stile_vsa_io io = b.io;
    if (!give_intermediates) {
        stile_tensor none = {0};
        io.q_c = io.k_c = io.v_c = io.o_c = io.scores = none;
    }
    assert_int_equal(on_device(dev, plan, stile_vsa_forward, &io), STILE_OK);
    if (!give_intermediates) { /* the chosen tiles again, from the steps, to know what the forward attended */
        assert_int_equal(on_device(dev, plan, stile_vsa_pool, &b.io), STILE_OK);
        assert_int_equal(on_device(dev, plan, stile_vsa_coarse, &b.io), STILE_OK);
        assert_int_equal(on_device(dev, plan, stile_vsa_select, &b.io), STILE_OK);
    }
    const size_t nc = b.cbytes / sizeof(float), ns = b.sbytes / sizeof(float), no = b.xbytes / stile_dtype_size(p->dtype);
    double *rq = malloc(nc * sizeof *rq), *rk = malloc(nc * sizeof *rk), *rv = malloc(nc * sizeof *rv);
    double *roc = malloc(nc * sizeof *roc), *rsc = malloc(ns * sizeof *rsc), *fine = malloc(no * sizeof *fine);
    double *ref = malloc(no * sizeof *ref);
    stile_io oio = {.struct_size = sizeof oio, .q = b.io.q, .k = b.io.k, .v = b.io.v, .key_tiles = b.io.key_tiles};
    assert_int_equal(stile_oracle_vsa_pool(p, &oio, rq, rk, rv), STILE_OK);
    assert_int_equal(stile_oracle_vsa_coarse(p, rq, rk, rv, roc, rsc), STILE_OK);
    /* the kept tiles are a top-k of the oracle's scores up to f32's rounding of them */
    assert_int_equal(stile_oracle_vsa_topk_check(p, rsc, b.kt, 1e-4), STILE_OK);
    /* o = the fine attention on those tiles + gate * the coarse output */
    assert_int_equal(stile_oracle(p, &oio, NULL, 0, fine, NULL), STILE_OK);
    void *fine_x = malloc(b.xbytes);
    assert_non_null(fine_x);
    float *f = malloc(no * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < no; i++) f[i] = (float)fine[i];
    assert_int_equal(stile_convert(f, STILE_DTYPE_F32, fine_x, p->dtype, no), STILE_OK); /* o holds the fine output in its dtype */
    stile_tensor fo = stile_tensor_at(fine_x, b.xbytes, p->dtype);
    assert_int_equal(stile_oracle_vsa_combine(p, &fo, &b.io.gate, roc, ref), STILE_OK);
    const double e = nmse_o(p, b.o, ref, no);
    printf("    NMSE %.3e (bound %.0e)\n", e, stile_nmse_threshold(p->dtype));
    assert_true(e <= stile_nmse_threshold(p->dtype));
    double *all[7] = {rq, rk, rv, roc, rsc, fine, ref};
    for (int i = 0; i < 7; i++) free(all[i]);
    free(fine_x);
    free(f);
    bufs_free(&b);
    stile_plan_destroy(&plan);
}

static void forward_on(stile_device *dev, int64_t head_dim)
{
    stile_problem p = problem(STILE_DTYPE_F32, STILE_ORDER_NATURAL, 5);
    p.head_dim = head_dim;
    forward_against_the_oracle(dev, &p, base_seed + 100, 1);
    p.dtype = STILE_DTYPE_BF16;
    p.order = STILE_ORDER_TILED;
    forward_against_the_oracle(dev, &p, base_seed + 110, 0);
    p.dtype = STILE_DTYPE_F16;
    p.key_tiles_k = TILES; /* every tile: the fine part is dense */
    forward_against_the_oracle(dev, &p, base_seed + 120, 1);
}

static void test_forward(void **state)
{
    (void)state;
    forward_on(conf_cpu, 24);
}

static void test_ties_go_to_the_lower_tile(void **state)
{
    (void)state;
    stile_problem p = problem(STILE_DTYPE_F32, STILE_ORDER_NATURAL, 3);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    bufs b;
    bufs_make(&p, base_seed + 200, &b);
    const size_t ns = b.sbytes / sizeof(float);
    for (size_t i = 0; i < ns; i++) b.scores[i] = (float)(i % 3); /* many equal scores per row, and -inf */
    b.scores[5] = -INFINITY;
    assert_int_equal(stile_vsa_select(plan, &b.io), STILE_OK);
    /* row 0: scores 0 1 2 0 1 -inf 0 1 2 0 1 2 ...: the 2s at tiles 2, 8, 11, 14, 17; the first three kept */
    assert_int_equal(b.kt[0], 2);
    assert_int_equal(b.kt[1], 8);
    assert_int_equal(b.kt[2], 11);
    double *sd = to_double(b.scores, b.sbytes);
    assert_int_equal(stile_oracle_vsa_topk_check(&p, sd, b.kt, 0.0), STILE_OK);
    b.kt[1] = 9; /* the check itself sees a wrong choice */
    assert_int_equal(stile_oracle_vsa_topk_check(&p, sd, b.kt, 0.0), STILE_ERR_INVALID_ARGUMENT);
    b.scores[7] = NAN;
    assert_int_equal(stile_vsa_select(plan, &b.io), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "NaN"));
    free(sd);
    bufs_free(&b);
    stile_plan_destroy(&plan);
}

static void test_bad_calls(void **state)
{
    (void)state;
    stile_problem p = problem(STILE_DTYPE_F32, STILE_ORDER_NATURAL, 4);
    stile_plan *plan = NULL;
    assert_int_equal(stile_plan_create(conf_cpu, &p, &plan), STILE_OK);
    bufs b;
    bufs_make(&p, base_seed + 300, &b);
    const float before = b.qc[0];
    assert_int_equal(stile_vsa_pool(NULL, &b.io), STILE_ERR_NULL_ARGUMENT);
    assert_int_equal(stile_vsa_pool(plan, NULL), STILE_ERR_NULL_ARGUMENT);
    stile_vsa_io io = b.io;
    io.struct_size = 8;
    assert_int_equal(stile_vsa_pool(plan, &io), STILE_ERR_INVALID_SIZE);
    io = b.io;
    io.k_c.data = NULL;
    assert_int_equal(stile_vsa_pool(plan, &io), STILE_ERR_NULL_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "io->k_c is required"));
    io = b.io;
    io.q_c.dtype = STILE_DTYPE_BF16;
    assert_int_equal(stile_vsa_pool(plan, &io), STILE_ERR_DTYPE_MISMATCH);
    io = b.io;
    io.v_c.bytes -= 4;
    assert_int_equal(stile_vsa_pool(plan, &io), STILE_ERR_OUT_OF_RANGE);
    io = b.io;
    io.k_c = io.q_c;
    assert_int_equal(stile_vsa_pool(plan, &io), STILE_ERR_ALIASING);
    io = b.io;
    io.key_tiles.dtype = STILE_DTYPE_F32;
    assert_int_equal(stile_vsa_select(plan, &io), STILE_ERR_DTYPE_MISMATCH);
    io = b.io;
    io.gate = io.o;
    assert_int_equal(stile_vsa_combine(plan, &io), STILE_ERR_ALIASING);
    io = b.io;
    io.gate.data = NULL;
    assert_int_equal(stile_vsa_forward(plan, &io), STILE_ERR_NULL_ARGUMENT);
    assert_true(b.qc[0] != b.qc[0] && before != before); /* nothing was written: still the NaN poison */
    stile_plan_destroy(&plan);
    /* a window plan, and text tokens */
    stile_problem w = problem(STILE_DTYPE_F32, STILE_ORDER_NATURAL, 0);
    w.window[0] = w.window[1] = w.window[2] = 1;
    assert_int_equal(stile_plan_create(conf_cpu, &w, &plan), STILE_OK);
    assert_int_equal(stile_vsa_pool(plan, &b.io), STILE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(stile_last_error(), "caller-chosen key tiles"));
    stile_plan_destroy(&plan);
    stile_problem t = problem(STILE_DTYPE_F32, STILE_ORDER_NATURAL, 4);
    t.text = 4;
    assert_int_equal(stile_plan_create(conf_cpu, &t, &plan), STILE_OK);
    assert_int_equal(stile_vsa_pool(plan, &b.io), STILE_ERR_UNSUPPORTED);
    assert_non_null(strstr(stile_last_error(), "video-only"));
    stile_plan_destroy(&plan);
    bufs_free(&b);
}

/* Each GPU device that opens: CUDA and HIP run every step and the forward against the oracle (head
 * dims 64 and 128); Vulkan answers STILE_ERR_UNSUPPORTED with its reason. */
static void test_gpu_devices(void **state)
{
    (void)state;
    const char *names[3] = {"vulkan:0", "cuda:0", "hip:0"};
    int opened = 0;
    for (int i = 0; i < 3; i++) {
        stile_device *dev = NULL;
        if (stile_device_open(names[i], NULL, &dev) != STILE_OK) continue;
        opened++;
        printf("  %s\n", names[i]);
        if (i == 0) {
            stile_problem p = problem(STILE_DTYPE_F32, STILE_ORDER_NATURAL, 4);
            p.head_dim = 64; /* what every backend takes */
            stile_plan *plan = NULL;
            assert_int_equal(stile_plan_create(dev, &p, &plan), STILE_OK);
            const stile_vsa_io io = {.struct_size = sizeof io}; /* refused before its tensors are read */
            assert_int_equal(stile_vsa_coarse(plan, &io), STILE_ERR_UNSUPPORTED);
            printf("  %s: %s\n", names[i], stile_last_error());
            assert_non_null(strstr(stile_last_error(), "backend has no VSA steps"));
            stile_plan_destroy(&plan);
        } else {
            for (int64_t d = 64; d <= 128; d += 64) {
                steps_on(dev, d);
                forward_on(dev, d);
            }
        }
        stile_device_close(&dev);
    }
    if (!opened) printf("  no GPU device here\n");
}

int main(void)
{
    const char *env = getenv("STILE_TEST_SEED");
    base_seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) * 1000003u;
    printf("base seed %llu (STILE_TEST_SEED repeats it)\n", (unsigned long long)base_seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_step),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_ties_go_to_the_lower_tile),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_gpu_devices),
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}
