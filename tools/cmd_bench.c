/* `stile bench`: times STA and full attention on one backend (ms, effective TFLOPS over computed
 * FLOPs, speedup), for one problem or named workloads, with the planning time and, on CPU devices,
 * a CBLAS sgemm 2048^3 reference; writes schema stile-bench/2 (docs/bench-schema.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_json.h"
#include "cli.h"
#include "stile/stile_vsa.h"
#include "stile_config.h"
#include "workloads.h"
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

int bench_write_record(const cli_opts *o, const stile_device_info *di, json_t *results, json_t *reference)
{
    char date[32], command[2048];
    cli_date(date, sizeof date);
    cli_command(o, command, sizeof command);
    json_t *who = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "implementation", "stile", "version", stile_version_string(), "backend",
                            di->backend, "device", di->name, "card", di->card, "driver", di->driver, "description", di->description);
    json_t *rec = json_pack("{s:s,s:o,s:s,s:s,s:s,s:O}", "schema", "stile-bench/2", "who", who, "when", date, "commit",
                            stile_build_commit(), "command", command, "results", results);
    if (reference) json_object_set_new(rec, "reference", reference);
    char *text = json_dumps(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(rec);
    int rc = 0;
    if (!text || cli_write_file(o, "--json", o->json_path, text) != 0) rc = 1;
    else printf("wrote %s\n", o->json_path);
    free(text);
    return rc;
}

/* GFLOPS of cblas_sgemm on 2048^3 with the BLAS's own threading: the CPU's attainable f32 GEMM rate. */
static double gemm_reference(void)
{
#if STILE_HAVE_CPU
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    stile_conf_fill_normal(a, STILE_DTYPE_F32, (int64_t)n * n, 7);
    stile_conf_fill_normal(b, STILE_DTYPE_F32, (int64_t)n * n, 8);
    double runs[5];
    for (int r = 0; r < 6; r++) {
        double t0 = cli_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r) runs[r - 1] = cli_now() - t0; /* the first run is warm-up */
    }
    free(a); free(b); free(c);
    return 2.0 * n * n * n / cli_median(runs, 5) * 1e-9;
#else
    return 0;
#endif
}

/* A call timed on a plan: stile_plan_execute, stile_plan_backward or stile_vsa_forward with its io. */
typedef stile_status (*plan_call)(const stile_plan *plan, const void *io);
static stile_status call_execute(const stile_plan *plan, const void *io) { return stile_plan_execute(plan, io); }
static stile_status call_backward(const stile_plan *plan, const void *io) { return stile_plan_backward(plan, io); }
static stile_status call_vsa(const stile_plan *plan, const void *io) { return stile_vsa_forward(plan, io); }

/* o->warmup untimed calls, then o->repeat timed ones into t (t->ms: the caller frees it). */
static stile_status time_calls(const cli_opts *o, plan_call call, const stile_plan *plan, const void *io, timing *t)
{
    stile_status st = STILE_OK;
    for (int i = 0; i < o->warmup && st == STILE_OK; i++) st = call(plan, io);
    t->n = o->repeat;
    if (st == STILE_OK && !(t->ms = calloc((size_t)t->n, sizeof *t->ms))) st = STILE_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < t->n && st == STILE_OK; i++) {
        const double t0 = cli_now();
        st = call(plan, io);
        t->ms[i] = (cli_now() - t0) * 1e3;
    }
    if (st == STILE_OK) timing_finish(t);
    return st;
}

static int time_variant(const cli_opts *o, stile_device *dev, const stile_problem *p, const stile_io *io, timing *t,
                        stile_plan_info *info)
{
    stile_plan *plan = NULL;
    if (stile_plan_create(dev, p, &plan) != STILE_OK) return -1;
    stile_plan_get_info(plan, info);
    const stile_status st = time_calls(o, call_execute, plan, io, t);
    stile_plan_destroy(&plan);
    return st == STILE_OK ? 0 : -1;
}

static stile_status time_planning(stile_device *dev, const stile_problem *p, int runs, timing *t)
{
    t->n = runs;
    t->ms = calloc((size_t)runs, sizeof *t->ms);
    if (!t->ms) return STILE_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < runs; i++) {
        stile_plan *plan = NULL;
        double t0 = cli_now();
        stile_status st = stile_plan_create(dev, p, &plan);
        t->ms[i] = (cli_now() - t0) * 1e3;
        stile_plan_destroy(&plan);
        if (st != STILE_OK) return st;
    }
    timing_finish(t);
    return STILE_OK;
}

static json_t *result_json(const char *workload, const char *impl, const char *kind, const stile_problem *p, const cli_opts *o,
                           const timing *t, const stile_plan_info *in)
{
    json_t *runs = json_array();
    for (int i = 0; i < t->n; i++) json_array_append_new(runs, json_real(t->ms[i]));
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:o,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "workload", workload, "implementation", impl,
                          "kind", kind, "dtype", stile_dtype_name(p->dtype), "shape", bench_shape_json(p), "warmup", o->warmup,
                          "runs_ms", runs, "ms_median", t->median, "ms_min", t->min, "ms_max", t->max, "spread",
                          t->median > 0 ? (t->max - t->min) / t->median : 0.0, "flops", in->flops, "tflops",
                          in->flops / t->median * 1e-9, "sparsity", in->sparsity);
    if (in->path[0]) json_object_set_new(r, "path", json_string(in->path));
    return r;
}

/* --backward: the forward once more, keeping its LSE, then stile_plan_backward timed as the forward
 * is, with a seeded dO; a result of kind "sta-backward" whose FLOPs are the ones the backend says it
 * computes (stile_plan_backward_flops: recomputed scores included), or 2.5x the forward's; for caller-chosen
 * key tiles that figure (the plan's bound) scaled by the forward's FLOPs on the tiles it ran, fwd_flops. */
static int time_backward(const cli_opts *o, stile_device *dev, const stile_problem *p, const stile_io *dio, size_t bytes,
                         const char *name, const char *impl, double fwd_ms, double fwd_flops, double ref_gflops, json_t *results)
{
    const int64_t B = p->batch ? p->batch : 1, S = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text;
    const size_t lse_bytes = (size_t)(B * p->heads * S) * sizeof(float);
    stile_buffer *lse = NULL, *g[4] = {0}; /* d_o, d_q, d_k, d_v */
    stile_plan *plan = NULL;
    timing t = {0};
    stile_exec_info info = {0};
    stile_grad_io gio;
    stile_status st;
    if ((st = stile_buffer_create(dev, lse_bytes, &lse)) != STILE_OK || (st = stile_plan_create(dev, p, &plan)) != STILE_OK) goto done;
    stile_io fio = *dio;
    fio.lse = stile_tensor_at(stile_buffer_data(lse), lse_bytes, STILE_DTYPE_F32);
    if ((st = stile_plan_execute(plan, &fio)) != STILE_OK ||
        (st = cli_grad_buffers(dev, p, o->seed, bytes, &fio, &info, g, &gio, NULL)) != STILE_OK)
        goto done;
    if ((st = time_calls(o, call_backward, plan, &gio, &t)) != STILE_OK) goto done;
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    const double ran = p->key_tiles_k && in.flops > 0 ? fwd_flops / in.flops : 1.0; /* the tiles run / the bound */
    const double computed = stile_plan_backward_flops(plan) * ran, fl = computed > 0 ? computed : 2.5 * in.flops * ran;
    printf("[%s] backward: median %10.3f ms  %.2fx the forward  %7.3f TFLOPS on %s FLOPs  path %s\n", name, t.median,
           t.median / fwd_ms, fl / t.median * 1e-9, computed > 0 ? "computed" : "2.5x the forward's", info.path);
    in.flops = fl;
    snprintf(in.path, sizeof in.path, "%s", info.path);
    json_t *r = result_json(name, impl, "sta-backward", p, o, &t, &in);
    json_object_set_new(r, "ratio_to_forward", json_real(t.median / fwd_ms));
    if (ref_gflops > 0) {
        printf("[%s] backward runs at %.3f of CBLAS sgemm 2048^3 (computed FLOPs)\n", name, fl / t.median * 1e-6 / ref_gflops);
        json_object_set_new(r, "ratio_to_reference", json_real(fl / t.median * 1e-6 / ref_gflops));
    }
    json_array_append_new(results, r);
done:
    if (st != STILE_OK) fprintf(stderr, "stile bench: [%s] backward: %s (%s)\n", name, stile_status_string(st), stile_last_error());
    stile_plan_destroy(&plan);
    stile_buffer_destroy(&lse);
    for (int i = 0; i < 4; i++) stile_buffer_destroy(&g[i]);
    free(t.ms);
    return st == STILE_OK ? 0 : cli_exit_status(st);
}

/* --vsa: VSA's whole forward (stile_vsa_forward) on the same q, k, v with a seeded gate, timed as the
 * forward is; a result of kind "vsa-forward" whose FLOPs are the fine attention's bound (k whole tiles
 * per query tile, the plan's figure) plus the coarse attention's (4 * head_dim * tiles^2 per head). */
static int time_vsa(const cli_opts *o, stile_device *dev, const stile_problem *p, const stile_io *dio, size_t bytes, const char *name,
                    const char *impl, double fine_ms, json_t *results)
{
    stile_buffer *gate = NULL;
    stile_plan *plan = NULL;
    timing t = {0};
    void *host = malloc(bytes);
    stile_status st = host ? STILE_OK : STILE_ERR_OUT_OF_MEMORY;
    if (st == STILE_OK) {
        stile_conf_fill_normal(host, p->dtype, (int64_t)(bytes / stile_dtype_size(p->dtype)), o->seed + 5);
        if ((st = stile_buffer_create(dev, bytes, &gate)) == STILE_OK) st = stile_buffer_upload(gate, 0, host, bytes);
    }
    if (st == STILE_OK) st = stile_plan_create(dev, p, &plan);
    const stile_vsa_io io = {.struct_size = sizeof io, .q = dio->q, .k = dio->k, .v = dio->v, .o = dio->o,
                             .gate = stile_tensor_at(gate ? stile_buffer_data(gate) : NULL, bytes, p->dtype)};
    if (st == STILE_OK) st = time_calls(o, call_vsa, plan, &io, &t);
    if (st == STILE_OK) {
        stile_plan_info in;
        stile_plan_get_info(plan, &in);
        in.flops += 4.0 * (double)p->head_dim * (double)in.tiles * (double)in.tiles * (double)(p->batch ? p->batch : 1) * (double)p->heads;
        printf("[%s] VSA forward: median %10.3f ms  %.2fx the fine attention alone  %7.3f TFLOPS on bound FLOPs\n", name, t.median,
               t.median / fine_ms, in.flops / t.median * 1e-9);
        json_t *r = result_json(name, impl, "vsa-forward", p, o, &t, &in);
        json_object_set_new(r, "ratio_to_fine", json_real(t.median / fine_ms));
        json_array_append_new(results, r);
    } else {
        fprintf(stderr, "stile bench: [%s] VSA forward: %s (%s)\n", name, stile_status_string(st), stile_last_error());
    }
    stile_plan_destroy(&plan);
    stile_buffer_destroy(&gate);
    free(host);
    free(t.ms);
    return st == STILE_OK ? 0 : cli_exit_status(st);
}

/* The workload named by the len bytes at name ("all": NULL and *all set), or NULL. */
static const workload *find_named(const char *name, size_t len, int *all)
{
    *all = len == 3 && strncmp(name, "all", 3) == 0;
    for (int i = 0; i < nworkloads && !*all; i++)
        if (strlen(workloads[i].name) == len && strncmp(workloads[i].name, name, len) == 0) return &workloads[i];
    return NULL;
}

/* The named workloads to run (*sel malloc'd, 0 when --workload is not given): every name of a list
 * of any length is used, and an empty list, an empty entry or an unknown name is a usage error
 * (found before anything is allocated). */
static int select_problems(const cli_opts *o, const workload ***sel)
{
    *sel = NULL;
    if (!o->workloads) return 0;
    char known[512] = "";
    for (int i = 0; i < nworkloads; i++) snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", workloads[i].name);
    if (!*o->workloads) cli_usage_error(o, "--workload: the workload list is empty (known: %s, all)", known);
    int names = 0, n = 0, all;
    for (const char *c = o->workloads;; c++, names++) {
        const size_t len = strcspn(c, ",");
        if (len == 0) cli_usage_error(o, "--workload %s: entry %d is empty", o->workloads, names + 1);
        if (!find_named(c, len, &all) && !all)
            cli_usage_error(o, "--workload %.*s: unknown workload (known: %s, all)", (int)len, c, known);
        c += len;
        if (!*c) break;
    }
    const workload **list = malloc((size_t)(names + 1) * (size_t)nworkloads * sizeof *list); /* each name may be "all" */
    if (!list) cli_usage_error(o, "out of memory");
    for (const char *c = o->workloads;; c++) {
        const size_t len = strcspn(c, ",");
        const workload *w = find_named(c, len, &all);
        if (all)
            for (int k = 0; k < nworkloads; k++) list[n++] = &workloads[k];
        else
            list[n++] = w;
        c += len;
        if (!*c) break;
    }
    *sel = list;
    return n;
}

static int list_workloads(const cli_opts *o)
{
    stile_device *dev = cli_open_device(o);
    json_t *arr = json_array();
    for (int i = 0; i < nworkloads; i++) {
        stile_problem p = workload_problem(&workloads[i]);
        stile_plan *plan = NULL;
        if (stile_plan_create(dev, &p, &plan) != STILE_OK) {
            json_decref(arr);
            stile_device_close(&dev);
            return 1;
        }
        stile_plan_info in;
        stile_plan_get_info(plan, &in);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:f,s:f,s:f,s:I}", "name", workloads[i].name, "about", workloads[i].about,
                                             "dtype", stile_dtype_name(p.dtype), "shape", bench_shape_json(&p), "sta_flops",
                                             in.flops, "dense_flops", in.full_flops, "sparsity", in.sparsity, "tokens",
                                             (json_int_t)in.tokens));
        stile_plan_destroy(&plan);
    }
    char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(arr);
    stile_device_close(&dev);
    if (!text) return 1;
    printf("%s\n", text);
    free(text);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    cli_opts o = {.cmd = "bench", .cmd_bit = CMD_BENCH};
    cli_parse(&o, argc, argv,
              "Time STA and full attention (the same problem with every window covering the grid) on one\n"
              "backend: median ms over --repeat runs after --warmup, effective TFLOPS over the FLOPs each\n"
              "computes, the speedup, and the planning time. On CPU devices also CBLAS sgemm 2048^3.\n"
              "--backward adds the backward pass (stile_plan_backward) of the STA problem.\n"
              "Either describe one problem (--canvas, --tile, --window, ...) or name --workload(s).");
    cli_log_init(&o);
    if (o.list_workloads) return list_workloads(&o);

    json_t *base = NULL;
    char err[512];
    if (o.compare_path && !(base = bench_load(o.compare_path, err, sizeof err))) cli_usage_error(&o, "--compare %s", err);

    const workload **sel = NULL;
    int nsel = select_problems(&o, &sel);
    int nprob = nsel ? nsel : 1;
    if (!nsel) cli_check_problem(&o);

    if (o.ranks) { /* one problem over several devices: before this process opens any */
        if (nsel > 1) cli_usage_error(&o, "--ranks: one problem at a time (%d workloads named)", nsel);
        stile_problem p = nsel ? workload_problem(sel[0]) : o.p;
        if (nsel && o.p.dtype != STILE_DTYPE_F32) p.dtype = o.p.dtype;
        const int rc = cmd_bench_ranks(&o, &p, nsel ? sel[0]->name : o.name ? o.name : "custom");
        free(o.windows);
        free(sel);
        return rc;
    }
    double ref_gflops = 0;
    int want_ref = o.gemm_ref && STILE_HAVE_CPU && !o.plan_only && (strncmp(o.device, "cpu", 3) == 0 || strcmp(o.device, "auto") == 0);
    if (want_ref) ref_gflops = gemm_reference(); /* before the device opens: OpenBLAS keeps its own threads */

    stile_device *dev = cli_open_device(&o);
    stile_device_info di;
    stile_device_get_info(dev, &di);
    if (strcmp(di.backend, "cpu") != 0) ref_gflops = 0;
    printf("device %s: %s\n", di.name, di.description);
    if (ref_gflops > 0) printf("CBLAS sgemm 2048^3: %.1f GFLOPS\n", ref_gflops);

    char impl[48];
    snprintf(impl, sizeof impl, "stile/%s", di.backend);
    json_t *results = json_array();
    int rc = 0;
    for (int w = 0; w < nprob && rc == 0; w++) {
        const char *name = nsel ? sel[w]->name : o.name ? o.name : "custom";
        stile_problem p = nsel ? workload_problem(sel[w]) : o.p;
        if (nsel && o.p.dtype != STILE_DTYPE_F32) p.dtype = o.p.dtype; /* --dtype overrides a workload's */
        const int64_t B = p.batch ? p.batch : 1, S = p.canvas[0] * p.canvas[1] * p.canvas[2] + p.text, H = p.heads, D = p.head_dim;
        const size_t n = (size_t)(B * S * H * D), bytes = n * stile_dtype_size(p.dtype);
        timing tp = {0}, ts = {0}, tf = {0};
        stile_plan_info is = {0}, inf = {0};
        void *q = NULL, *k = NULL, *v = NULL, *out = NULL;
        stile_buffer *buf[4] = {0}, *kt = NULL; /* q, k, v, o where the device computes; --sparsity topk:K's key tiles */
        double kt_flops = 0;
        size_t kt_bytes = 0;
        int32_t *kt_host = NULL;
        int64_t nrows = 0, *rows = NULL;
        rc = 1;
        stile_status pst = time_planning(dev, &p, o.plan_only ? 200 : 20, &tp);
        if (pst != STILE_OK) { /* e.g. a head dim the backend does not take: 2 */
            rc = cli_exit_status(pst);
            goto next;
        }
        printf("[%s] planning: median %.4f ms (min %.4f, max %.4f) over %d plans\n", name, tp.median, tp.min, tp.max, tp.n);
        if (o.plan_only) {
            json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:o,s:f,s:f,s:f,s:i}", "workload", name, "implementation", impl, "kind", "plan",
                                  "dtype", stile_dtype_name(p.dtype), "shape", bench_shape_json(&p), "ms_median", tp.median, "ms_min",
                                  tp.min, "ms_max", tp.max, "plans", tp.n);
            json_array_append_new(results, r);
            rc = 0;
            goto next;
        }
        q = malloc(bytes); k = malloc(bytes); v = malloc(bytes); out = malloc(bytes);
        if (!q || !k || !v || !out) {
            fprintf(stderr, "stile bench: [%s] out of memory for %zu-byte tensors\n", name, bytes);
            goto next;
        }
        stile_conf_fill_normal(q, p.dtype, (int64_t)n, o.seed);
        stile_conf_fill_normal(k, p.dtype, (int64_t)n, o.seed + 1);
        stile_conf_fill_normal(v, p.dtype, (int64_t)n, o.seed + 2);
        void *host[4] = {q, k, v, out};
        memset(out, 0xff, bytes);
        for (int i = 0; i < 4; i++)
            if (stile_buffer_create(dev, bytes, &buf[i]) != STILE_OK || stile_buffer_upload(buf[i], 0, host[i], bytes) != STILE_OK)
                goto next;
        stile_io dio = {.struct_size = sizeof dio, .q = stile_tensor_at(stile_buffer_data(buf[0]), bytes, p.dtype), .k = stile_tensor_at(stile_buffer_data(buf[1]), bytes, p.dtype),
                        .v = stile_tensor_at(stile_buffer_data(buf[2]), bytes, p.dtype), .o = stile_tensor_at(stile_buffer_data(buf[3]), bytes, p.dtype)};
        stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, bytes, p.dtype), .k = stile_tensor_at(k, bytes, p.dtype), .v = stile_tensor_at(v, bytes, p.dtype), .o = stile_tensor_at(out, bytes, p.dtype)};
        if (p.key_tiles_k) {
            kt_host = cli_topk_tiles(&p, o.kt_window, o.seed + 3, &kt_bytes, &kt_flops);
            if (!kt_host || stile_buffer_create(dev, kt_bytes, &kt) != STILE_OK || stile_buffer_upload(kt, 0, kt_host, kt_bytes) != STILE_OK) {
                fprintf(stderr, "stile bench: [%s] key tiles: %s\n", name, kt_host ? stile_last_error() : "out of memory");
                goto next;
            }
            dio.key_tiles = stile_tensor_at(stile_buffer_data(kt), kt_bytes, STILE_DTYPE_I32);
            io.key_tiles = stile_tensor_at(kt_host, kt_bytes, STILE_DTYPE_I32); /* the oracle's (--check) */
        }
        if (!o.no_full) {
            stile_problem full = p;
            full.head_windows = NULL;
            full.key_tiles_k = 0;
            memcpy(full.window, p.canvas, sizeof full.window); /* >= the grid on every axis: dense */
            stile_io fio = dio;
            fio.key_tiles = (stile_tensor){0};
            if (time_variant(&o, dev, &full, &fio, &tf, &inf) != 0) goto next;
            printf("[%s] full: median %10.3f ms  %7.3f TFLOPS\n", name, tf.median, inf.flops / tf.median * 1e-9);
            json_array_append_new(results, result_json(name, impl, "dense", &full, &o, &tf, &inf));
        }
        if (stile_buffer_upload(buf[3], 0, out, bytes) != STILE_OK) goto next; /* poisoned again */
        if (time_variant(&o, dev, &p, &dio, &ts, &is) != 0) goto next;
        if (stile_buffer_download(buf[3], 0, out, bytes) != STILE_OK) goto next;
        if (p.key_tiles_k) { /* the plan's figures are bounds; these are the tiles it ran */
            is.flops = kt_flops;
            if (is.full_flops > 0) is.sparsity = 1 - kt_flops / is.full_flops;
        }
        printf("[%s] STA : median %10.3f ms  %7.3f TFLOPS  sparsity %.2f%%  path %s\n", name, ts.median, is.flops / ts.median * 1e-9,
               100 * is.sparsity, is.path);
        json_t *r = result_json(name, impl, "sta", &p, &o, &ts, &is);
        json_object_set_new(r, "plan_ms_median", json_real(tp.median));
        if (!o.no_full) {
            printf("[%s] STA speedup over full attention: %.3fx (FLOP ratio %.3fx; speedup / FLOP ratio %.3f)\n", name,
                   tf.median / ts.median, inf.flops / is.flops, (tf.median / ts.median) / (inf.flops / is.flops));
            json_object_set_new(r, "speedup_over_dense", json_real(tf.median / ts.median));
            json_object_set_new(r, "flop_ratio", json_real(inf.flops / is.flops));
        }
        if (ref_gflops > 0) {
            printf("[%s] STA runs at %.3f of CBLAS sgemm 2048^3\n", name, is.flops / ts.median * 1e-6 / ref_gflops);
            json_object_set_new(r, "ratio_to_reference", json_real(is.flops / ts.median * 1e-6 / ref_gflops));
        }
        rc = 0;
        if (o.check) {
            rows = stile_conf_sample_rows(S, o.check_rows, o.seed, &nrows);
            int64_t nr = rows ? nrows : S;
            double *ref = malloc((size_t)(B * nr * H * D) * sizeof *ref);
            stile_check chk = {0};
            if (!ref || stile_oracle(&p, &io, rows, nrows, ref, NULL) != STILE_OK ||
                stile_check_output(&p, &io, rows, nrows, ref, NULL, &chk) != STILE_OK) {
                fprintf(stderr, "stile bench: [%s] the oracle check could not run\n", name);
                rc = 1;
            } else {
                printf("[%s] check against the fp64 oracle (%lld of %lld query rows): NMSE %.3e (bound %.0e), max abs error %.3e: %s\n",
                       name, (long long)nr, (long long)S, chk.nmse, chk.threshold, chk.max_abs_error, chk.passed ? "PASS" : "FAIL");
                json_object_set_new(r, "check", json_pack("{s:I,s:f,s:f,s:b}", "rows", (json_int_t)nr, "nmse", chk.nmse,
                                                          "max_abs_error", chk.max_abs_error, "passed", chk.passed));
                rc = chk.passed ? 0 : 1;
            }
            free(ref);
        }
        json_array_append_new(results, r);
        if (rc == 0 && o.backward) rc = time_backward(&o, dev, &p, &dio, bytes, name, impl, ts.median, is.flops, ref_gflops, results);
        if (rc == 0 && o.vsa) rc = time_vsa(&o, dev, &p, &dio, bytes, name, impl, ts.median, results);
    next:
        for (int i = 0; i < 4; i++) stile_buffer_destroy(&buf[i]);
        stile_buffer_destroy(&kt);
        free(kt_host);
        free(tp.ms); free(ts.ms); free(tf.ms); free(rows);
        free(q); free(k); free(v); free(out);
    }

    if (rc == 0 && base) bench_compare(results, base);
    if (rc == 0 && o.json_path) {
        json_t *ref = ref_gflops > 0 ? json_pack("{s:s,s:f}", "name", "cblas_sgemm f32 2048^3, BLAS threading", "gflops", ref_gflops) : NULL;
        rc = bench_write_record(&o, &di, results, ref);
    }
    json_decref(results);
    json_decref(base);
    stile_device_close(&dev);
    free(o.windows);
    free(sel);
    return rc;
}
