/* `stile bench`: times STA and full attention on the same backend (ms, effective TFLOPS over computed
 * FLOPs, speedup), the planning time, and on CPU devices a CBLAS sgemm 2048^3 reference. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stile_config.h"
#if STILE_HAVE_CPU
#include <cblas.h>
#endif

typedef struct timing {
    double *ms;
    int n;
    double median, min, max;
} timing;

static void timing_finish(timing *t)
{
    double *sorted = malloc((size_t)t->n * sizeof *sorted);
    if (!sorted) return;
    memcpy(sorted, t->ms, (size_t)t->n * sizeof *sorted);
    t->median = cli_median(sorted, t->n);
    t->min = sorted[0];
    t->max = sorted[t->n - 1];
    free(sorted);
}

static json_t *timing_json(const timing *t)
{
    json_t *runs = json_array();
    for (int i = 0; i < t->n; i++) json_array_append_new(runs, json_real(t->ms[i]));
    return json_pack("{s:f,s:f,s:f,s:o}", "ms_median", t->median, "ms_min", t->min, "ms_max", t->max, "runs_ms", runs);
}

/* GFLOPS of cblas_sgemm on 2048^3 with the BLAS's own threading: the CPU's attainable f32 GEMM rate. */
static double gemm_reference(void)
{
#if STILE_HAVE_CPU
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    conf_fill_normal(a, STILE_DTYPE_F32, (int64_t)n * n, 7);
    conf_fill_normal(b, STILE_DTYPE_F32, (int64_t)n * n, 8);
    double best[5];
    for (int r = 0; r < 6; r++) {
        double t0 = cli_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r) best[r - 1] = cli_now() - t0; /* the first run is warm-up */
    }
    free(a); free(b); free(c);
    return 2.0 * n * n * n / cli_median(best, 5) * 1e-9;
#else
    return 0;
#endif
}

static int time_variant(const cli_opts *o, stile_device *dev, const stile_problem *p, const stile_io *io, timing *t,
                        stile_plan_info *info)
{
    stile_plan *plan = NULL;
    if (stile_plan_create(dev, p, &plan) != STILE_OK) return -1;
    stile_plan_get_info(plan, info);
    for (int i = 0; i < o->warmup; i++)
        if (stile_plan_execute(plan, io) != STILE_OK) goto fail;
    t->n = o->repeat;
    t->ms = calloc((size_t)t->n, sizeof *t->ms);
    if (!t->ms) goto fail;
    for (int i = 0; i < t->n; i++) {
        double t0 = cli_now();
        if (stile_plan_execute(plan, io) != STILE_OK) goto fail;
        t->ms[i] = (cli_now() - t0) * 1e3;
    }
    timing_finish(t);
    stile_plan_destroy(&plan);
    return 0;
fail:
    stile_plan_destroy(&plan);
    return -1;
}

static int time_planning(stile_device *dev, const stile_problem *p, int runs, timing *t)
{
    t->n = runs;
    t->ms = calloc((size_t)runs, sizeof *t->ms);
    if (!t->ms) return -1;
    for (int i = 0; i < runs; i++) {
        stile_plan *plan = NULL;
        double t0 = cli_now();
        stile_status st = stile_plan_create(dev, p, &plan);
        t->ms[i] = (cli_now() - t0) * 1e3;
        stile_plan_destroy(&plan);
        if (st != STILE_OK) return -1;
    }
    timing_finish(t);
    return 0;
}

static json_t *triple_json(const int64_t v[3]) { return json_pack("[I,I,I]", (json_int_t)v[0], (json_int_t)v[1], (json_int_t)v[2]); }

static int write_record(const char *path, json_t *rec)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (json_dump_file(rec, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        fprintf(stderr, "stile bench: --json %s: %s\n", path, strerror(e ? e : EIO));
        return -1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    cli_opts o = {.cmd = "bench", .cmd_bit = CMD_BENCH};
    cli_parse(&o, argc, argv,
              "Time STA and full attention (the same problem with every window covering the grid) on one\n"
              "backend: median ms over --repeat runs after --warmup, effective TFLOPS over the FLOPs each\n"
              "computes, the speedup, and the planning time. On CPU devices also CBLAS sgemm 2048^3.");
    cli_log_init(&o);
    cli_check_problem(&o);
    const stile_problem *p = &o.p;
    const int64_t B = p->batch ? p->batch : 1, S = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text, H = p->heads,
                  D = p->head_dim;
    const size_t n = (size_t)(B * S * H * D), bytes = n * stile_dtype_size(p->dtype);

    double ref_gflops = 0;
    int want_ref = o.gemm_ref && STILE_HAVE_CPU && !o.plan_only &&
                   (strncmp(o.device, "cpu", 3) == 0 || strcmp(o.device, "auto") == 0);
    if (want_ref) ref_gflops = gemm_reference(); /* before the device opens: OpenBLAS keeps its own threads */

    stile_device *dev = cli_open_device(&o);
    stile_device_info di;
    stile_device_get_info(dev, &di);
    if (strcmp(di.backend, "cpu") != 0) ref_gflops = 0;

    int rc = 1;
    void *q = NULL, *k = NULL, *v = NULL, *out = NULL;
    timing tp = {0}, ts = {0}, tf = {0};
    stile_plan_info is = {0}, inf = {0};
    stile_check chk = {0};
    int64_t nrows = 0, *rows = NULL;
    if (time_planning(dev, p, o.plan_only ? 200 : 20, &tp) != 0) goto done;
    printf("device %s: %s\n", di.name, di.description);
    printf("planning: median %.4f ms (min %.4f, max %.4f) over %d plans\n", tp.median, tp.min, tp.max, tp.n);

    stile_problem full = *p;
    full.head_windows = NULL;
    memcpy(full.window, p->canvas, sizeof full.window); /* >= the grid on every axis: dense */
    if (!o.plan_only) {
        q = malloc(bytes); k = malloc(bytes); v = malloc(bytes); out = malloc(bytes);
        if (!q || !k || !v || !out) {
            fprintf(stderr, "stile bench: out of memory for %zu-byte tensors\n", bytes);
            goto done;
        }
        conf_fill_normal(q, p->dtype, (int64_t)n, o.seed);
        conf_fill_normal(k, p->dtype, (int64_t)n, o.seed + 1);
        conf_fill_normal(v, p->dtype, (int64_t)n, o.seed + 2);
        stile_io io = {.q = {q, bytes, p->dtype}, .k = {k, bytes, p->dtype}, .v = {v, bytes, p->dtype}, .o = {out, bytes, p->dtype}};
        if (time_variant(&o, dev, &full, &io, &tf, &inf) != 0) goto done;
        memset(out, 0xff, bytes);
        if (time_variant(&o, dev, p, &io, &ts, &is) != 0) goto done;
        printf("STA : median %10.3f ms  %7.3f TFLOPS  sparsity %.2f%%\n", ts.median, is.flops / ts.median * 1e-9, 100 * is.sparsity);
        printf("full: median %10.3f ms  %7.3f TFLOPS\n", tf.median, inf.flops / tf.median * 1e-9);
        printf("STA speedup over full attention: %.3fx (FLOP ratio %.3fx; speedup / FLOP ratio %.3f)\n", tf.median / ts.median,
               inf.flops / is.flops, (tf.median / ts.median) / (inf.flops / is.flops));
        if (ref_gflops > 0)
            printf("CBLAS sgemm 2048^3: %.1f GFLOPS; STA runs at %.3f of it\n", ref_gflops,
                   is.flops / ts.median * 1e-6 / ref_gflops);
        if (o.check) {
            rows = conf_sample_rows(S, o.check_rows, o.seed, &nrows);
            int64_t nr = rows ? nrows : S;
            double *ref = malloc((size_t)(B * nr * H * D) * sizeof *ref);
            if (!ref || stile_oracle(p, &io, rows, nrows, ref, NULL) != STILE_OK ||
                stile_check_output(p, &io, rows, nrows, ref, NULL, &chk) != STILE_OK) {
                free(ref);
                fprintf(stderr, "stile bench: the oracle check could not run\n");
                goto done;
            }
            free(ref);
            printf("check against the fp64 oracle (%lld of %lld query rows): NMSE %.3e (bound %.0e), max abs error %.3e: %s\n",
                   (long long)nr, (long long)S, chk.nmse, chk.threshold, chk.max_abs_error, chk.passed ? "PASS" : "FAIL");
            nrows = nr;
        }
    }

    if (o.json_path) {
        char date[32], command[2048] = "stile bench";
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        for (int i = 0; i < o.argc; i++)
            snprintf(command + strlen(command), sizeof command - strlen(command), " %s", o.argv[i]);
        json_t *wins = json_array();
        for (int64_t h = 0; h < (p->head_windows ? H : 1); h++)
            json_array_append_new(wins, triple_json(p->head_windows ? p->head_windows[h] : p->window));
        json_t *wl = json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:s,s:s}", "canvas", triple_json(p->canvas), "tile",
                               triple_json(p->tile), "windows", wins, "heads", (json_int_t)H, "head_dim", (json_int_t)D, "batch",
                               (json_int_t)B, "text", (json_int_t)p->text, "text_padding", (json_int_t)p->text_padding, "dtype",
                               stile_dtype_name(p->dtype), "order", p->order == STILE_ORDER_TILED ? "tiled" : "natural");
        json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o}", "schema", "stile-bench/1", "stile_version",
                                stile_version_string(), "commit", stile_build_commit(), "date", date, "command", command,
                                "backend", di.backend, "device", di.name, "device_description", di.description, "workload", wl,
                                "plan", timing_json(&tp));
        if (!o.plan_only) {
            json_t *sta = timing_json(&ts), *fl = timing_json(&tf);
            json_object_set_new(sta, "flops", json_real(is.flops));
            json_object_set_new(sta, "tflops", json_real(is.flops / ts.median * 1e-9));
            json_object_set_new(sta, "sparsity", json_real(is.sparsity));
            json_object_set_new(fl, "flops", json_real(inf.flops));
            json_object_set_new(fl, "tflops", json_real(inf.flops / tf.median * 1e-9));
            json_object_set_new(rec, "sta", sta);
            json_object_set_new(rec, "full", fl);
            json_object_set_new(rec, "speedup", json_real(tf.median / ts.median));
            json_object_set_new(rec, "flop_ratio", json_real(inf.flops / is.flops));
            if (ref_gflops > 0)
                json_object_set_new(rec, "reference",
                                    json_pack("{s:s,s:f,s:f}", "name", "cblas_sgemm f32 2048^3, BLAS threading", "gflops",
                                              ref_gflops, "sta_ratio", is.flops / ts.median * 1e-6 / ref_gflops));
            if (o.check)
                json_object_set_new(rec, "check",
                                    json_pack("{s:I,s:f,s:f,s:b}", "rows", (json_int_t)nrows, "nmse", chk.nmse, "max_abs_error",
                                              chk.max_abs_error, "passed", chk.passed));
        }
        int w = write_record(o.json_path, rec);
        json_decref(rec);
        if (w != 0) goto done;
        printf("wrote %s\n", o.json_path);
    }
    rc = (o.check && !o.plan_only && !chk.passed) ? 1 : 0;
done:
    free(tp.ms); free(ts.ms); free(tf.ms); free(rows);
    free(q); free(k); free(v); free(out);
    stile_device_close(&dev);
    free(o.windows);
    return rc;
}
