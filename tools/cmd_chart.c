/* `stile chart`: an SVG chart (and optionally a Markdown table) from stile-bench/2 result files:
 * time per workload per implementation, and speedup over the fastest dense attention of the same
 * workload, with the cards in the title. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_json.h"
#include "cli.h"

typedef struct entry {
    const char *workload, *impl, *kind, *dtype, *card, *when;
    double ms, spread, tflops;
    char label[96]; /* the workload's name, or for "custom" its canvas, window and head dim */
    char impl_label[96]; /* the implementation, with the kernel path when the record names one */
} entry;

static void workload_label(entry *e, const json_t *shape)
{
    if (strcmp(e->workload, "custom") != 0) {
        snprintf(e->label, sizeof e->label, "%s", e->workload);
    } else {
        const json_t *cv = json_object_get(shape, "canvas"), *w = json_array_get(json_object_get(shape, "windows"), 0);
        size_t nw = json_array_size(json_object_get(shape, "windows"));
        snprintf(e->label, sizeof e->label, "custom %lldx%lldx%lld w%lldx%lldx%lld%s d%lld",
                 (long long)json_integer_value(json_array_get(cv, 0)), (long long)json_integer_value(json_array_get(cv, 1)),
                 (long long)json_integer_value(json_array_get(cv, 2)), (long long)json_integer_value(json_array_get(w, 0)),
                 (long long)json_integer_value(json_array_get(w, 1)), (long long)json_integer_value(json_array_get(w, 2)),
                 nw > 1 ? ",..." : "", (long long)json_integer_value(json_object_get(shape, "head_dim")));
    }
}

/* XML-escape into a static buffer (labels come from files). */
static const char *esc(const char *in)
{
    static char out[4][512];
    static int k;
    char *o = out[k = (k + 1) % 4];
    size_t n = 0;
    for (; *in && n < sizeof out[0] - 7; in++) {
        const char *r = *in == '<' ? "&lt;" : *in == '>' ? "&gt;" : *in == '&' ? "&amp;" : *in == '"' ? "&quot;" : NULL;
        if (r) { memcpy(o + n, r, strlen(r)); n += strlen(r); }
        else o[n++] = *in;
    }
    o[n] = 0;
    return o;
}

static double dense_ref(const entry *e, int n, const char *workload)
{
    double best = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].workload, workload) == 0 && strcmp(e[i].kind, "dense") == 0 && (best == 0 || e[i].ms < best)) best = e[i].ms;
    return best;
}

int cmd_chart(int argc, char **argv)
{
    cli_opts o = {.cmd = "chart", .cmd_bit = CMD_CHART};
    cli_parse(&o, argc, argv,
              "usage: stile chart FILE.json... --out chart.svg [--markdown table.md] [--title TEXT]\n"
              "Chart stile-bench/2 result files (stile bench --json, bench/peers): time per workload per\n"
              "implementation (log scale) and speedup over the fastest dense attention of each workload.");
    if (o.npos == 0) cli_usage_error(&o, "no result files given (stile chart FILE.json... --out chart.svg)");
    if (!o.out_path) cli_usage_error(&o, "--out FILE is required");
    json_t **files = calloc((size_t)o.npos, sizeof *files);
    cli_buf plans = {0}; /* kind "plan" results: a table of their own */
    entry *e = NULL;
    int ne = 0, cap = 0, rc = 2;
    char cards[512] = "";
    if (!files) return 1;
    for (int f = 0; f < o.npos; f++) {
        char err[512];
        if (!(files[f] = bench_load(o.pos[f], err, sizeof err))) {
            fprintf(stderr, "stile chart: %s\n", err);
            goto done;
        }
        const char *card = json_string_value(json_object_get(json_object_get(files[f], "who"), "card"));
        if (!strstr(cards, card)) snprintf(cards + strlen(cards), sizeof cards - strlen(cards), "%s%s", cards[0] ? " + " : "", card);
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(files[f], "results"), i, r) {
            const char *kind = json_string_value(json_object_get(r, "kind"));
            if (strcmp(kind, "plan") == 0) {
                json_t *shape = json_object_get(r, "shape");
                json_t *cv = json_object_get(shape, "canvas");
                cli_bufprintf(&plans, "| %s | %s | %lldx%lldx%lld + %lld text | %lld | %zu | %s | %.4f |\n", json_string_value(json_object_get(r, "workload")),
                    json_string_value(json_object_get(r, "implementation")), (long long)json_integer_value(json_array_get(cv, 0)),
                    (long long)json_integer_value(json_array_get(cv, 1)), (long long)json_integer_value(json_array_get(cv, 2)),
                    (long long)json_integer_value(json_object_get(shape, "text")),
                    (long long)json_integer_value(json_object_get(shape, "heads")), json_array_size(json_object_get(shape, "windows")),
                    card, json_number_value(json_object_get(r, "ms_median")));
                continue;
            }
            if (ne == cap) {
                cap = cap ? 2 * cap : 32;
                entry *t = realloc(e, (size_t)cap * sizeof *e);
                if (!t) { rc = 1; goto done; }
                e = t;
            }
            const char *when = json_string_value(json_object_get(files[f], "when"));
            e[ne++] = (entry){json_string_value(json_object_get(r, "workload")), json_string_value(json_object_get(r, "implementation")),
                              kind, json_string_value(json_object_get(r, "dtype")), card, when ? when : "?",
                              json_number_value(json_object_get(r, "ms_median")), json_number_value(json_object_get(r, "spread")),
                              json_number_value(json_object_get(r, "tflops")), "", ""};
            workload_label(&e[ne - 1], json_object_get(r, "shape"));
            const char *path = json_string_value(json_object_get(r, "path"));
            snprintf(e[ne - 1].impl_label, sizeof e[ne - 1].impl_label, "%.60s%s%.30s", e[ne - 1].impl ? e[ne - 1].impl : "?",
                     path ? " " : "", path ? path : "");
        }
    }
    for (int i = 0; i < ne; i++) { /* once e stops moving */
        e[i].workload = e[i].label;
        e[i].impl = e[i].impl_label;
    }
    if (ne == 0) {
        fprintf(stderr, "stile chart: the files hold no timed results (only planning times)\n");
        goto done;
    }
    /* workloads in first-seen order */
    const char *wl[64];
    int nw = 0;
    for (int i = 0; i < ne; i++) {
        int seen = 0;
        for (int j = 0; j < nw; j++) seen |= strcmp(wl[j], e[i].workload) == 0;
        if (!seen && nw < 64) wl[nw++] = e[i].workload;
    }
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < ne; i++) { lo = fmin(lo, e[i].ms); hi = fmax(hi, e[i].ms); }
    double l0 = floor(log10(lo)), l1 = ceil(log10(hi));
    if (l1 <= l0) l1 = l0 + 1;

    const int label_w = 300, bar_w = 520, row_h = 20, right_w = 200, width = label_w + bar_w + right_w + 40;
    int height = 90 + nw * 30 + ne * row_h + 40;
    static const char *palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
    const char *impls[8];
    int ni = 0;
    cli_buf svg = {0};
    cli_bufprintf(&svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", width, height);
    cli_bufprintf(&svg, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    cli_bufprintf(&svg, "<text x=\"20\" y=\"28\" font-size=\"16\" font-weight=\"bold\">%s</text>\n",
        esc(o.title ? o.title : "Sliding Tile Attention: time per workload"));
    cli_bufprintf(&svg, "<text x=\"20\" y=\"48\">on %s; bars: median ms (log scale); right: speedup over the fastest dense attention</text>\n", esc(cards));
    int y = 80;
    for (double d = l0; d <= l1; d += 1) { /* decade grid */
        double x = label_w + (d - l0) / (l1 - l0) * bar_w;
        cli_bufprintf(&svg, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, y - 10, x, height - 30);
        cli_bufprintf(&svg, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">%g ms</text>\n", x, height - 14, pow(10, d));
    }
    for (int w = 0; w < nw; w++) {
        cli_bufprintf(&svg, "<text x=\"20\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y + 14, esc(wl[w]));
        y += 24;
        double dense = dense_ref(e, ne, wl[w]);
        for (int i = 0; i < ne; i++) {
            if (strcmp(e[i].workload, wl[w]) != 0) continue;
            int c = 0;
            while (c < ni && strcmp(impls[c], e[i].impl) != 0) c++;
            if (c == ni && ni < 8) impls[ni++] = e[i].impl;
            double len = (log10(e[i].ms) - l0) / (l1 - l0) * bar_w;
            cli_bufprintf(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s %s (%s)</text>\n", label_w - 8, y + 13, esc(e[i].impl),
                esc(e[i].kind), esc(e[i].dtype));
            cli_bufprintf(&svg, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" opacity=\"%s\"/>\n", label_w, y + 2,
                len > 1 ? len : 1, row_h - 5, palette[c % 8], strcmp(e[i].kind, "dense") == 0 ? "0.45" : "1");
            cli_bufprintf(&svg, "<text x=\"%.1f\" y=\"%d\">%.3g ms</text>\n", label_w + (len > 1 ? len : 1) + 4, y + 13, e[i].ms);
            if (dense > 0)
                cli_bufprintf(&svg, "<text x=\"%d\" y=\"%d\">%.3gx</text>\n", label_w + bar_w + 90, y + 13, dense / e[i].ms);
            y += row_h;
        }
        y += 6;
    }
    cli_bufprintf(&svg, "</svg>\n");

    cli_buf md = {0};
    if (o.markdown_path) {
        cli_bufprintf(&md, "| workload | implementation | kind | dtype | card | run (UTC) | median ms | spread | TFLOPS | speedup over fastest dense |\n");
        cli_bufprintf(&md, "|---|---|---|---|---|---|---|---|---|---|\n");
        for (int w = 0; w < nw; w++) {
            double dense = dense_ref(e, ne, wl[w]);
            for (int i = 0; i < ne; i++)
                if (strcmp(e[i].workload, wl[w]) == 0) {
                    cli_bufprintf(&md, "| %s | %s | %s | %s | %s | %s | %.3f | %.1f%% | %.3f | ", e[i].workload, e[i].impl, e[i].kind, e[i].dtype,
                        e[i].card, e[i].when, e[i].ms, 100 * e[i].spread, e[i].tflops);
                    if (dense > 0) cli_bufprintf(&md, "%.3gx |\n", dense / e[i].ms);
                    else cli_bufprintf(&md, "- |\n");
                }
        }
        if (plans.len) {
            cli_bufprintf(&md, "\nPlanning time:\n\n| workload | implementation | canvas | heads | distinct windows | card | median ms |\n");
            cli_bufprintf(&md, "|---|---|---|---|---|---|---|\n%s", plans.s);
        }
    }
    rc = 1;
    if (svg.oom || md.oom || plans.oom) fprintf(stderr, "stile chart: out of memory\n");
    else {
        stile_out_set *outs = cli_outputs(&o); /* --out and --markdown appear together or not at all */
        if (cli_stage_text(&o, outs, "--out", o.out_path, svg.s) == 0 &&
            (!o.markdown_path || cli_stage_text(&o, outs, "--markdown", o.markdown_path, md.s) == 0) && cli_commit(&o, &outs) == 0) {
            printf("wrote %s%s%s\n", o.out_path, o.markdown_path ? " and " : "", o.markdown_path ? o.markdown_path : "");
            rc = 0;
        }
        stile_out_set_destroy(&outs);
    }
    free(svg.s);
    free(md.s);
done:
    free(plans.s);
    for (int f = 0; f < o.npos; f++) json_decref(files[f]);
    free(files);
    free(e);
    return rc;
}
