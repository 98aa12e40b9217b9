/* `stile calibrate DIR`: pick a window per (step, layer, head) from captured q/k/v by the relative L2
 * distance of each candidate's output to full attention, and write a FastVideo strategy file and a
 * report. The capture format is in docs/calibration.md. Measurements are kept beside the output as
 * they are made (OUT.measurements.json), so an interrupted run resumes where it stopped. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "manifest.h"
#include "npy.h"

/* What the measurements of a run belong to: the manifest's bytes, the capture directory (its real
 * path), every tensor file (size and modification time), the candidates and the problem. A
 * measurements file with another fingerprint is from another capture and is not resumed from. */
static void capture_fingerprint(const manifest *m, const char *dir, const char *candidates, char out[17])
{
    uint64_t h = manifest_fnv(MANIFEST_FNV_START, &m->digest, sizeof m->digest);
    char *real = realpath(dir, NULL);
    const char *d = real ? real : dir;
    h = manifest_fnv(h, d, strlen(d) + 1);
    free(real);
    h = manifest_fnv(h, candidates, strlen(candidates) + 1);
    const int64_t shape[10] = {m->p.canvas[0], m->p.canvas[1], m->p.canvas[2], m->p.tile[0], m->p.tile[1], m->p.tile[2],
                               m->p.heads, m->p.head_dim, m->p.text, m->p.text_padding};
    h = manifest_fnv(h, shape, sizeof shape);
    for (int i = 0; i < m->nsamples; i++) {
        const char *f[3] = {m->s[i].q, m->s[i].k, m->s[i].v};
        for (int t = 0; t < 3; t++) {
            struct stat st;
            int64_t id[3] = {-1, -1, -1};
            if (stat(f[t], &st) == 0) {
                id[0] = (int64_t)st.st_size;
                id[1] = (int64_t)st.st_mtim.tv_sec;
                id[2] = (int64_t)st.st_mtim.tv_nsec;
            }
            h = manifest_fnv(h, id, sizeof id);
        }
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The measurements of a run to resume from: NULL unless the file holds this capture's fingerprint
 * and, per sample measured, nc rows of H finite distances >= 0 (a missing head never reads as 0). */
static json_t *load_measurements(const char *path, const char *fingerprint, int nsamples, int nc, int64_t H)
{
    json_t *m = json_load_file(path, 0, NULL);
    if (!m) return NULL;
    const char *fp = json_string_value(json_object_get(m, "capture"));
    json_t *ss = json_object_get(m, "samples");
    const char *why = !fp || strcmp(fp, fingerprint) != 0 ? "from another capture, other candidates or an older stile"
                      : !json_is_object(ss)             ? "malformed"
                                                        : NULL;
    const char *key;
    json_t *rows;
    if (!why)
        json_object_foreach(ss, key, rows) {
            char *end;
            long i = strtol(key, &end, 10);
            int ok = *key >= '0' && *key <= '9' && !*end && i < nsamples && json_is_array(rows) && json_array_size(rows) == (size_t)nc;
            for (size_t c = 0; ok && c < (size_t)nc; c++) {
                json_t *row = json_array_get(rows, c);
                ok = json_is_array(row) && json_array_size(row) == (size_t)H;
                for (size_t h = 0; ok && h < (size_t)H; h++) {
                    json_t *x = json_array_get(row, h);
                    ok = json_is_number(x) && isfinite(json_number_value(x)) && json_number_value(x) >= 0;
                }
            }
            if (!ok) {
                why = "malformed";
                break;
            }
        }
    if (why) {
        fprintf(stderr, "stile calibrate: note: %s is %s: measuring afresh\n", path, why);
        json_decref(m);
        return NULL;
    }
    return m;
}

static int64_t (*parse_candidates(const cli_opts *o, const char *text, const int64_t grid[3], int *n))[3]
{
    int cap = 1;
    for (const char *c = text; *c; c++) cap += *c == ';';
    int64_t (*w)[3] = calloc((size_t)cap, sizeof *w);
    char *buf = strdup(text); /* any length: once a 2,048-byte copy cut "1,1,12" to "1,1,1" */
    if (!w || !buf) cli_usage_error(o, "out of memory");
    *n = 0;
    for (char *t = buf, *next; t; t = next) {
        next = strchr(t, ';');
        if (next) *next++ = 0;
        if (!*t) {
            if (!next && *n) break; /* one trailing ';' */
            free(w), free(buf);
            cli_usage_error(o, "--candidates: window %d is empty (e.g. \"3,3,3;5,3,3;1,6,10\")", *n + 1);
        }
        char *end;
        const char *entry = t;
        for (int i = 0; i < 3; i++) {
            errno = 0;
            w[*n][i] = (*t >= '0' && *t <= '9') ? strtoll(t, &end, 10) : (end = t, 0);
            if (end == t || errno || (i < 2 && *end != ',') || (i == 2 && *end)) {
                char shown[64];
                const int cut = snprintf(shown, sizeof shown, "%s", entry) >= (int)sizeof shown;
                free(w), free(buf);
                cli_usage_error(o, "--candidates: \"%s%s\" is not wt,wh,ww", shown, cut ? "..." : "");
            }
            t = end + 1;
        }
        for (int i = 0; i < 3; i++)
            if (w[*n][i] < 1 || w[*n][i] > grid[i]) {
                const int64_t x[3] = {w[*n][0], w[*n][1], w[*n][2]};
                free(w), free(buf);
                cli_usage_error(o, "--candidates: %lld,%lld,%lld: window[%d]=%lld is outside the grid's 1..%lld tiles", (long long)x[0],
                                (long long)x[1], (long long)x[2], i, (long long)x[i], (long long)grid[i]);
            }
        (*n)++;
    }
    free(buf);
    if (*n == 0) {
        free(w);
        cli_usage_error(o, "--candidates: no window given (e.g. \"3,3,3;5,3,3;1,6,10\")");
    }
    return w;
}

/* q, k, v of one sample, checked against the manifest: dtype shared, shape [B, S, H, D] or [S, H, D]. */
static void *load_tensor(const cli_opts *o, const char *path, const stile_problem *p, int64_t tokens, stile_dtype *dt, int64_t *batch)
{
    npy_array a;
    char err[600];
    if (npy_read(path, &a, err, sizeof err) != STILE_OK) cli_usage_error(o, "%s", err);
    int64_t b = a.ndim == 4 ? a.shape[0] : 1;
    const int64_t *sh = a.ndim == 4 ? a.shape + 1 : a.shape;
    if ((a.ndim != 3 && a.ndim != 4) || sh[0] != tokens || sh[1] != p->heads || sh[2] != p->head_dim)
        cli_usage_error(o, "%s: shape disagrees with the manifest: expected [B, %lld, %lld, %lld]", path, (long long)tokens, (long long)p->heads,
            (long long)p->head_dim);
    if (*batch && b != *batch) cli_usage_error(o, "%s: batch %lld differs from the sample's other tensors", path, (long long)b);
    if (*batch && a.dtype != *dt) cli_usage_error(o, "%s: dtype %s differs from the sample's other tensors", path, stile_dtype_name(a.dtype));
    *batch = b;
    *dt = a.dtype;
    return a.data;
}

/* Per head: ||x - ref|| / ||ref|| over batch, tokens and dims; x and ref as f32 [B, S, H, D]. */
static void rel_l2(const float *x, const float *ref, const stile_problem *p, int64_t tokens, double *out)
{
    for (int64_t h = 0; h < p->heads; h++) {
        double num = 0, den = 0;
        for (int64_t b = 0; b < p->batch; b++)
            for (int64_t t = 0; t < tokens; t++) {
                const int64_t base = ((b * tokens + t) * p->heads + h) * p->head_dim;
                for (int64_t d = 0; d < p->head_dim; d++) {
                    double e = (double)x[base + d] - ref[base + d];
                    num += e * e;
                    den += (double)ref[base + d] * ref[base + d];
                }
            }
        out[h] = den > 0 ? sqrt(num / den) : sqrt(num);
    }
}

/* Run problem p (with windows) on dev; output as f32. */
static stile_status run(stile_device *dev, const stile_problem *p, stile_buffer *const in[3], stile_buffer *ob, size_t bytes, float *out)
{
    stile_plan *plan = NULL;
    stile_status st = stile_plan_create(dev, p, &plan);
    if (st != STILE_OK) return st;
    stile_io io = {.struct_size = sizeof io, .q = stile_tensor_at(stile_buffer_data(in[0]), bytes, p->dtype), .k = stile_tensor_at(stile_buffer_data(in[1]), bytes, p->dtype),
                   .v = stile_tensor_at(stile_buffer_data(in[2]), bytes, p->dtype), .o = stile_tensor_at(stile_buffer_data(ob), bytes, p->dtype)};
    st = stile_plan_execute(plan, &io);
    stile_plan_destroy(&plan);
    if (st != STILE_OK) return st;
    void *raw = malloc(bytes);
    if (!raw) return STILE_ERR_OUT_OF_MEMORY;
    if ((st = stile_buffer_download(ob, 0, raw, bytes)) == STILE_OK)
        st = stile_convert(raw, p->dtype, out, STILE_DTYPE_F32, bytes / stile_dtype_size(p->dtype));
    free(raw);
    return st;
}

static int64_t key_tiles(const int64_t w[3], const int64_t grid[3])
{
    return (w[0] < grid[0] ? w[0] : grid[0]) * (w[1] < grid[1] ? w[1] : grid[1]) * (w[2] < grid[2] ? w[2] : grid[2]);
}

int cmd_calibrate(int argc, char **argv)
{
    cli_opts o = {.cmd = "calibrate", .cmd_bit = CMD_CALIBRATE};
    cli_parse(&o, argc, argv,
              "usage: stile calibrate DIR --candidates \"3,3,3;5,3,3;1,6,10\" --out strategy.json [--skip-steps N]\n"
              "       [--max-rel-l2 E] [--device D] [--markdown report.md]\n"
              "Pick a window per (step, layer, head) from the q/k/v captured in DIR (docs/calibration.md): for each\n"
              "sample and head, the relative L2 distance of each candidate's output to full attention, averaged over\n"
              "the samples of a (step, layer). Default: the candidate with the lowest distance (FastVideo's rule;\n"
              "distances within the output dtype's rounding noise - f32 1e-6, f16 1e-3, bf16 8e-3 - are ties, which\n"
              "the sparser wins); with --max-rel-l2, the sparsest within that budget (none: full). Steps\n"
              "before --skip-steps stay full. Writes FastVideo's format; resumes from OUT.measurements.json.");
    if (o.npos != 1) cli_usage_error(&o, "give exactly one capture directory (stile calibrate DIR ...)");
    if (!o.out_path) cli_usage_error(&o, "--out FILE is required (the strategy to write)");
    if (!o.candidates) cli_usage_error(&o, "--candidates is required, e.g. \"3,3,3;5,3,3;1,6,10\"");
    manifest cap;
    char merr[1024];
    stile_status mst = manifest_load(o.pos[0], &cap, merr, sizeof merr);
    if (mst != STILE_OK) { /* one line: the library's log is not on yet */
        fprintf(stderr, "stile calibrate: %s\n", merr);
        return mst == STILE_ERR_OUT_OF_MEMORY ? 1 : 2;
    }
    cli_log_init(&o);
    stile_problem p = cap.p;
    int64_t grid[3];
    for (int i = 0; i < 3; i++) grid[i] = (p.canvas[i] + p.tile[i] - 1) / p.tile[i];
    int nc = 0;
    int64_t (*cand)[3] = parse_candidates(&o, o.candidates, grid, &nc);
    const int64_t tokens = p.canvas[0] * p.canvas[1] * p.canvas[2] + p.text, H = p.heads;

    /* resume: the measurements of samples already done, if made on this capture with these candidates */
    char fingerprint[17];
    capture_fingerprint(&cap, o.pos[0], o.candidates, fingerprint);
    const size_t mlen = strlen(o.out_path) + sizeof ".measurements.json";
    char *mpath = malloc(mlen);
    if (!mpath) cli_usage_error(&o, "out of memory");
    snprintf(mpath, mlen, "%s.measurements.json", o.out_path);
    json_t *meas = load_measurements(mpath, fingerprint, cap.nsamples, nc, H);
    if (!meas) meas = json_pack("{s:s,s:s,s:{}}", "capture", fingerprint, "candidates", o.candidates, "samples");
    else printf("resuming: %zu sample(s) already measured in %s\n", json_object_size(json_object_get(meas, "samples")), mpath);

    int rc = 0;
    stile_strategy *strat = NULL;
    cli_buf rep = {0};
    int64_t *hist = NULL;
    double *mean = NULL;
    char *done = NULL;
    stile_device *dev = cli_open_device(&o);
    const int tty = isatty(STDERR_FILENO);
    double cand_seconds = 0;
    int64_t cand_runs = 0;
    for (int i = 0; i < cap.nsamples; i++) {
        char key[32];
        snprintf(key, sizeof key, "%d", i);
        if (json_object_get(json_object_get(meas, "samples"), key)) continue;
        if (tty) fprintf(stderr, "\r\033[K[%d/%d] step %lld layer %lld", i + 1, cap.nsamples, (long long)cap.s[i].step,
                         (long long)cap.s[i].layer);
        stile_dtype dt = STILE_DTYPE_F32;
        int64_t batch = 0;
        void *host[3] = {load_tensor(&o, cap.s[i].q, &p, tokens, &dt, &batch), load_tensor(&o, cap.s[i].k, &p, tokens, &dt, &batch),
                         load_tensor(&o, cap.s[i].v, &p, tokens, &dt, &batch)};
        p.dtype = dt;
        p.batch = batch;
        const size_t n = (size_t)(batch * tokens * H * p.head_dim), bytes = n * stile_dtype_size(dt);
        stile_buffer *in[3] = {0}, *ob = NULL;
        float *full = malloc(n * sizeof *full), *out = malloc(n * sizeof *out);
        double *dist = malloc((size_t)H * sizeof *dist);
        int ok = full && out && dist && stile_buffer_create(dev, bytes, &ob) == STILE_OK;
        for (int t = 0; t < 3 && ok; t++)
            ok = stile_buffer_create(dev, bytes, &in[t]) == STILE_OK && stile_buffer_upload(in[t], 0, host[t], bytes) == STILE_OK;
        stile_problem fp = p;
        memcpy(fp.window, grid, sizeof fp.window);
        stile_status rst = ok ? run(dev, &fp, in, ob, bytes, full) : STILE_ERR_OUT_OF_MEMORY;
        ok = rst == STILE_OK;
        json_t *rows = json_array();
        for (int c = 0; c < nc && ok; c++) {
            stile_problem cp = p;
            memcpy(cp.window, cand[c], sizeof cp.window);
            double t0 = cli_now();
            ok = (rst = run(dev, &cp, in, ob, bytes, out)) == STILE_OK;
            cand_seconds += cli_now() - t0;
            cand_runs++;
            if (!ok) break;
            rel_l2(out, full, &p, tokens, dist);
            json_t *row = json_array();
            for (int64_t h = 0; h < H; h++) json_array_append_new(row, json_real(dist[h]));
            json_array_append_new(rows, row);
        }
        for (int t = 0; t < 3; t++) {
            stile_buffer_destroy(&in[t]);
            free(host[t]);
        }
        stile_buffer_destroy(&ob);
        free(full); free(out); free(dist);
        if (!ok) {
            json_decref(rows);
            fprintf(stderr, "%sstile calibrate: sample %d (step %lld, layer %lld) failed to run\n", tty ? "\n" : "", i,
                    (long long)cap.s[i].step, (long long)cap.s[i].layer);
            rc = cli_exit_status(rst); /* e.g. a head dim the backend does not take: 2 */
            goto cleanup;
        }
        json_object_set_new(json_object_get(meas, "samples"), key, rows);
        json_object_set_new(meas, "dtype", json_string(stile_dtype_name(dt)));
        char *text = json_dumps(meas, JSON_COMPACT);
        const int written = text && cli_write_file(&o, "measurements", mpath, text) == 0;
        free(text);
        if (!written) {
            rc = 1;
            goto cleanup;
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    stile_device_close(&dev);

    /* mean distance per (step, layer, candidate, head), then the choice */
    if (stile_strategy_create(&strat) != STILE_OK) {
        rc = 1;
        goto cleanup;
    }
    hist = calloc((size_t)nc + 1, sizeof *hist); /* last: full */
    double flops_full = 0, flops_chosen = 0;
    cli_bufprintf(&rep, "# stile calibration report\n\ncapture `%s`, %d sample(s), candidates `%s`, rule: %s\n\n", o.pos[0],
                  cap.nsamples, o.candidates, o.max_rel_l2 > 0 ? "sparsest within --max-rel-l2" : "lowest distance");
    cli_bufprintf(&rep, "| step | layer | head | window | mean rel L2 | key tiles |\n|---|---|---|---|---|---|\n");
    mean = calloc((size_t)nc * (size_t)H, sizeof *mean);
    done = calloc((size_t)cap.nsamples, 1);
    if (!hist || !mean || !done) {
        fprintf(stderr, "stile calibrate: out of memory\n");
        rc = 1;
        goto cleanup;
    }
    const int64_t all_tiles = grid[0] * grid[1] * grid[2];
    /* Distances closer than the output dtype's rounding noise are ties, which the sparser wins: two
     * windows that both hold all the attention mass differ only by summation order. */
    const char *mdt = json_string_value(json_object_get(meas, "dtype"));
    const double tie = !mdt || strcmp(mdt, "f32") == 0 ? 1e-6 : strcmp(mdt, "f16") == 0 ? 1e-3 : 8e-3;
    for (int i = 0; i < cap.nsamples; i++) {
        if (done[i]) continue;
        memset(mean, 0, (size_t)nc * (size_t)H * sizeof *mean);
        int cnt = 0;
        for (int j = i; j < cap.nsamples; j++) {
            if (cap.s[j].step != cap.s[i].step || cap.s[j].layer != cap.s[i].layer) continue;
            char key[32];
            snprintf(key, sizeof key, "%d", j);
            json_t *rows = json_object_get(json_object_get(meas, "samples"), key);
            for (int c = 0; c < nc; c++)
                for (int64_t h = 0; h < H; h++) mean[c * H + h] += json_number_value(json_array_get(json_array_get(rows, (size_t)c), (size_t)h));
            done[j] = 1;
            cnt++;
        }
        for (int64_t h = 0; h < H; h++) {
            int best = -1; /* -1: full attention */
            for (int c = 0; c < nc; c++) {
                const double d = mean[c * H + h] / cnt;
                if (o.max_rel_l2 > 0 && d > o.max_rel_l2) continue;
                if (best < 0) { best = c; continue; }
                const double bd = mean[best * H + h] / cnt;
                const int64_t kt = key_tiles(cand[c], grid), bt = key_tiles(cand[best], grid);
                if (o.max_rel_l2 > 0 ? (kt < bt || (kt == bt && d < bd)) : (d < bd - tie || (fabs(d - bd) <= tie && kt < bt)))
                    best = c;
            }
            if (cap.s[i].step < o.skip_steps) best = -1;
            const int64_t *w = best >= 0 ? cand[best] : grid;
            stile_strategy_set(strat, cap.s[i].step, cap.s[i].layer, h, w);
            hist[best >= 0 ? best : nc]++;
            flops_full += (double)all_tiles;
            flops_chosen += (double)key_tiles(w, grid);
            cli_bufprintf(&rep, "| %lld | %lld | %lld | %lldx%lldx%lld%s | %.3e | %lld |\n", (long long)cap.s[i].step,
                          (long long)cap.s[i].layer, (long long)h, (long long)w[0], (long long)w[1], (long long)w[2],
                          best < 0 ? " (full)" : "", best >= 0 ? mean[best * H + h] / cnt : 0.0, (long long)key_tiles(w, grid));
        }
    }
    cli_bufprintf(&rep, "\nSparsity per (step, layer), video keys skipped:\n\n| step | layer | sparsity |\n|---|---|---|\n");
    memset(done, 0, (size_t)cap.nsamples);
    for (int i = 0; i < cap.nsamples; i++) {
        int64_t w[3], kt = 0;
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= cap.s[j].step == cap.s[i].step && cap.s[j].layer == cap.s[i].layer;
        if (seen) continue;
        for (int64_t h = 0; h < H; h++)
            if (stile_strategy_get(strat, cap.s[i].step, cap.s[i].layer, h, w) == STILE_OK) kt += key_tiles(w, grid);
        cli_bufprintf(&rep, "| %lld | %lld | %.2f%% |\n", (long long)cap.s[i].step, (long long)cap.s[i].layer,
                      100.0 * (1.0 - (double)kt / ((double)H * (double)all_tiles)));
    }
    cli_bufprintf(&rep, "\nChosen windows:\n\n| window | heads |\n|---|---|\n");
    for (int c = 0; c <= nc; c++) {
        if (c < nc) cli_bufprintf(&rep, "| %lldx%lldx%lld | %lld |\n", (long long)cand[c][0], (long long)cand[c][1], (long long)cand[c][2], (long long)hist[c]);
        else cli_bufprintf(&rep, "| full | %lld |\n", (long long)hist[c]);
    }
    cli_bufprintf(&rep, "\nVideo key tiles attended: %.1f%% of full attention (expected video-attention FLOP saving %.2fx).\n",
                  100 * flops_chosen / flops_full, flops_full / flops_chosen);
    cli_bufprintf(&rep, "Time per (sample, candidate) run on the device, all heads: %.3f s (%lld runs); per (layer, head, candidate): %.4f s.\n",
                  cand_runs ? cand_seconds / (double)cand_runs : 0.0, (long long)cand_runs,
                  cand_runs ? cand_seconds / (double)cand_runs / (double)H : 0.0);
    /* the strategy and the report appear together or not at all */
    size_t slen = 0;
    char *stext = NULL;
    stile_out_set *outs = cli_outputs(&o);
    if (rep.oom || stile_strategy_json(strat, NULL, 0, &slen) != STILE_ERR_BUFFER_TOO_SMALL || !(stext = malloc(slen + 1)) ||
        stile_strategy_json(strat, stext, slen + 1, &slen) != STILE_OK) {
        fprintf(stderr, "stile calibrate: out of memory for the outputs\n");
        rc = 1;
    } else if (cli_stage_text(&o, outs, "--out", o.out_path, stext) != 0 ||
               (o.markdown_path && cli_stage_text(&o, outs, "--markdown", o.markdown_path, rep.s) != 0) || cli_commit(&o, &outs) != 0) {
        rc = 1;
    }
    stile_out_set_destroy(&outs);
    free(stext);
    if (rc == 0) {
        printf("%s", rep.s + strlen("# stile calibration report\n\n"));
        printf("wrote %s (%lld entries)%s%s\n", o.out_path, (long long)stile_strategy_size(strat), o.markdown_path ? " and " : "",
               o.markdown_path ? o.markdown_path : "");
    }
cleanup:
    stile_device_close(&dev);
    stile_strategy_destroy(&strat);
    free(rep.s); free(hist); free(mean); free(done); free(cand); free(mpath);
    manifest_free(&cap);
    json_decref(meas);
    return rc;
}
