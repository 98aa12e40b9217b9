/* `stile run`: seeded random or .npy q/k/v through a backend, .npy out, optional check against the oracle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "npy.h"

stile_status cli_grad_buffers(stile_device *dev, const stile_problem *p, uint64_t seed, size_t bytes, const stile_io *fwd,
                              stile_exec_info *info, stile_buffer *g[4], stile_grad_io *gio, void *host_do)
{
    unsigned char *host = malloc(bytes);
    stile_status st = host ? STILE_OK : STILE_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < 4 && st == STILE_OK; i++) {
        if (i == 0) stile_conf_fill_normal(host, p->dtype, (int64_t)(bytes / stile_dtype_size(p->dtype)), seed + 3);
        else memset(host, 0xff, bytes);
        if ((st = stile_buffer_create(dev, bytes, &g[i])) == STILE_OK) st = stile_buffer_upload(g[i], 0, host, bytes);
        if (i == 0 && host_do) memcpy(host_do, host, bytes);
    }
    free(host);
    *gio = (stile_grad_io){.struct_size = sizeof *gio, .q = fwd->q, .k = fwd->k, .v = fwd->v, .o = fwd->o, .lse = fwd->lse,
                           .info = info, .key_tiles = fwd->key_tiles};
    stile_tensor *t[4] = {&gio->d_o, &gio->d_q, &gio->d_k, &gio->d_v};
    for (int i = 0; i < 4 && st == STILE_OK; i++) *t[i] = stile_tensor_at(stile_buffer_data(g[i]), bytes, p->dtype);
    return st;
}

/* --backward: stile_plan_backward after the forward in dio (its LSE kept), with a seeded dO (seed + 3)
 * and poisoned gradients; with --check, every gradient against the oracle's. fwd_flops: the forward's on
 * the tiles it ran (for caller-chosen key tiles the plan's figures are bounds). Returns the exit status. */
static int run_backward(const cli_opts *o, stile_device *dev, const stile_plan *plan, const stile_io *dio, const stile_io *host,
                        size_t bytes, int64_t S, double fwd_ms, double fwd_flops)
{
    const stile_problem *p = &o->p;
    const size_t n = bytes / stile_dtype_size(p->dtype);
    int rc = 1;
    void *d_o = malloc(bytes), *grad[3] = {malloc(bytes), malloc(bytes), malloc(bytes)};
    double *ref[3] = {0};
    stile_buffer *buf[4] = {0}; /* d_o, d_q, d_k, d_v */
    stile_exec_info xi;
    memset(&xi, 0, sizeof xi);
    stile_grad_io g;
    if (!d_o || !grad[0] || !grad[1] || !grad[2]) {
        fprintf(stderr, "stile run: out of memory for the gradients\n");
        goto done;
    }
    stile_status st = cli_grad_buffers(dev, p, o->seed, bytes, dio, &xi, buf, &g, d_o);
    if (st != STILE_OK) {
        fprintf(stderr, "stile run: the gradients' buffers: %s (%s)\n", stile_status_string(st), stile_last_error());
        goto done;
    }
    printf("backward: dO standard normal, seed %llu\n", (unsigned long long)o->seed + 3);
    const double t0 = cli_now();
    st = stile_plan_backward(plan, &g);
    const double ms = (cli_now() - t0) * 1e3;
    if (st != STILE_OK) { /* the library's message is in the log */
        rc = cli_exit_status(st);
        goto done;
    }
    stile_plan_info pin;
    stile_plan_get_info(plan, &pin);
    const double fl = stile_plan_backward_flops(plan) * (p->key_tiles_k && pin.flops > 0 ? fwd_flops / pin.flops : 1.0);
    printf("backward on %s: %.3f ms (%.2fx the forward), %.3f TFLOPS on %.4g computed FLOPs\n", xi.path[0] ? xi.path : "the device",
           ms, ms / fwd_ms, fl / ms * 1e-9, fl);
    for (int i = 0; i < 3; i++)
        if (stile_buffer_download(buf[1 + i], 0, grad[i], bytes) != STILE_OK) {
            fprintf(stderr, "stile run: %s\n", stile_last_error());
            goto done;
        }
    rc = 0;
    if (!o->check) goto done;
    for (int i = 0; i < 3; i++)
        if (!(ref[i] = malloc(n * sizeof(double)))) {
            fprintf(stderr, "stile run: out of memory for the oracle's gradients\n");
            rc = 1;
            goto done;
        }
    const stile_tensor hd_o = stile_tensor_at(d_o, bytes, p->dtype);
    const stile_grad_io got = {.struct_size = sizeof got, .d_q = stile_tensor_at(grad[0], bytes, p->dtype),
                               .d_k = stile_tensor_at(grad[1], bytes, p->dtype), .d_v = stile_tensor_at(grad[2], bytes, p->dtype)};
    stile_check c;
    if (stile_oracle_backward(p, host, &hd_o, ref[0], ref[1], ref[2]) != STILE_OK ||
        stile_check_gradients(p, &got, ref[0], ref[1], ref[2], &c) != STILE_OK) {
        fprintf(stderr, "stile run: the oracle's gradient check could not run (%s)\n", stile_last_error());
        rc = 1;
        goto done;
    }
    printf("check of dQ, dK, dV against the fp64 oracle's gradients (all %lld rows): worst NMSE %.3e (bound %.0e), "
           "max abs error %.3e, %lld NaN/Inf: %s\n",
           (long long)S, c.nmse, c.threshold, c.max_abs_error, (long long)c.nonfinite, c.passed ? "PASS" : "FAIL");
    rc = c.passed ? 0 : 1;
done:
    for (int i = 0; i < 4; i++) stile_buffer_destroy(&buf[i]);
    for (int i = 0; i < 3; i++) {
        free(grad[i]);
        free(ref[i]);
    }
    free(d_o);
    return rc;
}

static void *load_input(const cli_opts *o, const char *path, const char *name, int64_t B, int64_t S, int64_t H, int64_t D)
{
    npy_array a;
    char err[512];
    if (npy_read(path, &a, err, sizeof err) != STILE_OK) {
        fprintf(stderr, "stile run: --%s %s\n", name, err);
        exit(2);
    }
    if (a.dtype != o->p.dtype)
        cli_usage_error(o, "--%s %s holds %s but --dtype is %s", name, path, stile_dtype_name(a.dtype), stile_dtype_name(o->p.dtype));
    int ok = (a.ndim == 4 && a.shape[0] == B && a.shape[1] == S && a.shape[2] == H && a.shape[3] == D) ||
             (a.ndim == 3 && B == 1 && a.shape[0] == S && a.shape[1] == H && a.shape[2] == D);
    if (!ok) {
        char shp[128] = "";
        for (int i = 0; i < a.ndim; i++) snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", i ? "," : "", (long long)a.shape[i]);
        npy_free(&a);
        cli_usage_error(o, "--%s %s has shape (%s), expected [B,S,H,D] = (%lld,%lld,%lld,%lld)", name, path, shp, (long long)B,
                        (long long)S, (long long)H, (long long)D);
    }
    return a.data; /* ownership passes to the caller */
}

int cmd_run(int argc, char **argv)
{
    cli_opts o = {.cmd = "run", .cmd_bit = CMD_RUN};
    cli_parse(&o, argc, argv,
              "Run one problem on a device with seeded random or .npy inputs; optionally write the output and\n"
              "check it against the fp64 oracle (exit status 1 if the check fails).\n"
              ".npy tensors are C-order [B,S,H,D] (S = video tokens in --order, then text); f32 is '<f4', f16 '<f2',\n"
              "bf16 is '<u2' holding the bf16 bit pattern (e.g. torch: t.view(torch.int16).numpy().view('<u2')).");
    cli_log_init(&o);
    cli_check_problem(&o);
    stile_problem *p = &o.p;
    const int64_t B = p->batch ? p->batch : 1, S = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text, H = p->heads,
                  D = p->head_dim;
    const size_t n = (size_t)(B * S * H * D), es = stile_dtype_size(p->dtype), bytes = n * es;
    const size_t lse_bytes = (size_t)(B * H * S) * sizeof(float);
    stile_device *dev = cli_open_device(&o); /* first: a bad device name costs no input generation */
    void *q, *k, *v;
    if (o.q_path) {
        q = load_input(&o, o.q_path, "q", B, S, H, D);
        k = load_input(&o, o.k_path, "k", B, S, H, D);
        v = load_input(&o, o.v_path, "v", B, S, H, D);
    } else {
        q = malloc(bytes);
        k = malloc(bytes);
        v = malloc(bytes);
        if (!q || !k || !v) {
            fprintf(stderr, "stile run: out of memory for %zu-byte inputs\n", bytes);
            exit(1); /* a run-time failure, not bad usage */
        }
        stile_conf_fill_normal(q, p->dtype, (int64_t)n, o.seed);
        stile_conf_fill_normal(k, p->dtype, (int64_t)n, o.seed + 1);
        stile_conf_fill_normal(v, p->dtype, (int64_t)n, o.seed + 2);
        printf("inputs: standard normal, seeds q=%llu k=%llu v=%llu\n", (unsigned long long)o.seed,
               (unsigned long long)o.seed + 1, (unsigned long long)o.seed + 2);
    }
    void *out = malloc(bytes);
    const int want_lse = o.lse_path || o.check || o.backward;
    float *lse = want_lse ? malloc(lse_bytes) : NULL;
    if (!out || (want_lse && !lse)) {
        fprintf(stderr, "stile run: out of memory for the output\n");
        exit(1);
    }
    memset(out, 0xff, bytes); /* NaN in every dtype: an element the backend skips fails the check */
    if (lse) memset(lse, 0xff, lse_bytes);

    int rc = 1;
    stile_plan *plan = NULL;
    stile_buffer *buf[6] = {0}; /* q, k, v, o, lse where the device computes; --sparsity topk:K's key tiles */
    size_t kt_bytes = 0;
    double kt_flops = 0;
    int32_t *kt = p->key_tiles_k ? cli_topk_tiles(p, o.kt_window, o.seed + 3, &kt_bytes, &kt_flops) : NULL;
    if (p->key_tiles_k && !kt) {
        fprintf(stderr, "stile run: out of memory for the key tiles\n");
        exit(1);
    }
    void *host[6] = {q, k, v, out, lse, kt};
    const size_t size[6] = {bytes, bytes, bytes, bytes, lse_bytes, kt_bytes};
    stile_status pst = stile_plan_create(dev, p, &plan);
    if (pst != STILE_OK) { /* e.g. a head dim the backend does not take: 2 */
        rc = cli_exit_status(pst);
        goto done;
    }
    for (int i = 0; i < 6; i++)
        if (host[i] && (stile_buffer_create(dev, size[i], &buf[i]) != STILE_OK ||
                        stile_buffer_upload(buf[i], 0, host[i], size[i]) != STILE_OK))
            goto done;
    stile_io dio = {.struct_size = sizeof dio, .q = stile_tensor_at(stile_buffer_data(buf[0]), bytes, p->dtype), .k = stile_tensor_at(stile_buffer_data(buf[1]), bytes, p->dtype),
                    .v = stile_tensor_at(stile_buffer_data(buf[2]), bytes, p->dtype), .o = stile_tensor_at(stile_buffer_data(buf[3]), bytes, p->dtype),
                    .lse = stile_tensor_at(stile_buffer_data(buf[4]), lse ? lse_bytes : 0, STILE_DTYPE_F32),
                    .key_tiles = stile_tensor_at(stile_buffer_data(buf[5]), kt_bytes, STILE_DTYPE_I32)};
    double t0 = cli_now();
    if (stile_plan_execute(plan, &dio) != STILE_OK) goto done;
    double ms = (cli_now() - t0) * 1e3;
    if (stile_buffer_download(buf[3], 0, out, bytes) != STILE_OK || (lse && stile_buffer_download(buf[4], 0, lse, lse_bytes) != STILE_OK))
        goto done;
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(q, bytes, p->dtype), .k = stile_tensor_at(k, bytes, p->dtype), .v = stile_tensor_at(v, bytes, p->dtype), .o = stile_tensor_at(out, bytes, p->dtype),
                   .lse = stile_tensor_at(lse, lse ? lse_bytes : 0, STILE_DTYPE_F32), .key_tiles = stile_tensor_at(kt, kt_bytes, STILE_DTYPE_I32)};
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    if (kt) { /* the plan's figures are bounds; these are the tiles it ran */
        in.flops = kt_flops;
        if (in.full_flops > 0) in.sparsity = 1 - kt_flops / in.full_flops;
    }
    printf("ran on %s: %.3f ms, %.3f TFLOPS on %.4g computed FLOPs, sparsity %.2f%%\n", in.device, ms, in.flops / ms * 1e-9,
           in.flops, 100 * in.sparsity);
    char err[512];
    const int64_t shape[4] = {B, S, H, D}, lshape[3] = {B, H, S};
    /* --out and --lse appear together or not at all */
    stile_out_set *outs = cli_outputs(&o);
    if (o.out_path && npy_stage(outs, o.out_path, p->dtype, 4, shape, out, err, sizeof err) != STILE_OK) {
        fprintf(stderr, "stile run: --out %s\n", err);
        stile_out_set_destroy(&outs);
        goto done;
    }
    if (o.lse_path && npy_stage(outs, o.lse_path, STILE_DTYPE_F32, 3, lshape, lse, err, sizeof err) != STILE_OK) {
        fprintf(stderr, "stile run: --lse %s\n", err);
        stile_out_set_destroy(&outs);
        goto done;
    }
    if (cli_commit(&o, &outs) != 0) goto done;
    rc = 0;
    if (o.check) {
        int64_t nrows = 0, *rows = stile_conf_sample_rows(S, o.check_rows, o.seed, &nrows);
        int64_t nr = rows ? nrows : S;
        double *ref = malloc((size_t)(B * nr * H * D) * sizeof *ref), *ref_lse = malloc((size_t)(B * H * nr) * sizeof *ref_lse);
        stile_check c;
        if (!ref || !ref_lse || stile_oracle(p, &io, rows, nrows, ref, ref_lse) != STILE_OK ||
            stile_check_output(p, &io, rows, nrows, ref, ref_lse, &c) != STILE_OK) {
            fprintf(stderr, "stile run: the oracle check could not run\n");
            rc = 1;
        } else {
            printf("check against the fp64 oracle (%lld of %lld query rows): NMSE %.3e (bound %.0e), max abs error %.3e, "
                   "LSE max abs error %.3e, %lld NaN/Inf: %s\n",
                   (long long)nr, (long long)S, c.nmse, c.threshold, c.max_abs_error, c.lse_max_abs_error,
                   (long long)c.nonfinite, c.passed ? "PASS" : "FAIL");
            rc = c.passed ? 0 : 1;
        }
        free(ref);
        free(ref_lse);
        free(rows);
    }
    if (o.backward) {
        const int brc = run_backward(&o, dev, plan, &dio, &io, bytes, S, ms, in.flops);
        rc = rc ? rc : brc;
    }
done:
    for (int i = 0; i < 6; i++) stile_buffer_destroy(&buf[i]);
    stile_plan_destroy(&plan);
    stile_device_close(&dev);
    free(q); free(k); free(v); free(out); free(lse); free(kt);
    free(o.windows);
    return rc;
}
