/* Benchmark records (see bench_json.h). */
#include <stdio.h>
#include <string.h>

#include "bench_json.h"

static json_t *triple(const int64_t v[3]) { return json_pack("[I,I,I]", (json_int_t)v[0], (json_int_t)v[1], (json_int_t)v[2]); }

json_t *bench_shape_json(const stile_problem *p)
{
    json_t *wins = json_array();
    for (int64_t h = 0; h < (p->head_windows ? p->heads : 1); h++)
        json_array_append_new(wins, triple(p->head_windows ? p->head_windows[h] : p->window));
    return json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:s}", "canvas", triple(p->canvas), "tile", triple(p->tile), "windows", wins,
                     "heads", (json_int_t)p->heads, "head_dim", (json_int_t)p->head_dim, "batch",
                     (json_int_t)(p->batch ? p->batch : 1), "text", (json_int_t)p->text, "text_padding", (json_int_t)p->text_padding,
                     "order", p->order == STILE_ORDER_TILED ? "tiled" : "natural");
}

json_t *bench_load(const char *path, char *err, size_t n)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (je.line < 0) snprintf(err, n, "%s: %s", path, je.text);
        else snprintf(err, n, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column, je.text);
        return NULL;
    }
    const char *schema = json_string_value(json_object_get(root, "schema"));
    json_t *who = json_object_get(root, "who"), *results = json_object_get(root, "results");
    if (!schema || strcmp(schema, "stile-bench/2") != 0) {
        snprintf(err, n, "%s: schema is %s%s%s, expected \"stile-bench/2\"", path, schema ? "\"" : "", schema ? schema : "missing",
                 schema ? "\"" : "");
        goto bad;
    }
    if (!json_is_object(who) || !json_is_string(json_object_get(who, "card")) || !json_is_string(json_object_get(who, "implementation"))) {
        snprintf(err, n, "%s: \"who\" must be an object with string \"implementation\" and \"card\"", path);
        goto bad;
    }
    if (!json_is_array(results) || json_array_size(results) == 0) {
        snprintf(err, n, "%s: \"results\" must be a non-empty array", path);
        goto bad;
    }
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        static const char *strs[] = {"workload", "implementation", "kind", "dtype"};
        for (size_t k = 0; k < 4; k++)
            if (!json_is_string(json_object_get(r, strs[k]))) {
                snprintf(err, n, "%s: results[%zu] lacks string \"%s\"", path, i, strs[k]);
                goto bad;
            }
        json_t *ms = json_object_get(r, "ms_median");
        if (!json_is_number(ms) || json_number_value(ms) <= 0) {
            snprintf(err, n, "%s: results[%zu].ms_median must be a positive number", path, i);
            goto bad;
        }
    }
    return root;
bad:
    json_decref(root);
    return NULL;
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

void bench_compare(const json_t *results, const json_t *base)
{
    const json_t *bres = json_object_get(base, "results");
    printf("compared with %s on %s (ratio = their ms / our ms; > 1: we are faster)\n",
           str(json_object_get(base, "who"), "implementation"), str(json_object_get(base, "who"), "card"));
    size_t i, j;
    json_t *r, *b;
    json_array_foreach(results, i, r) {
        if (!json_is_number(json_object_get(r, "ms_median"))) continue;
        int any = 0;
        json_array_foreach(bres, j, b) {
            if (strcmp(str(r, "workload"), str(b, "workload")) != 0 || strcmp(str(r, "dtype"), str(b, "dtype")) != 0) continue;
            double ours = json_number_value(json_object_get(r, "ms_median")), theirs = json_number_value(json_object_get(b, "ms_median"));
            printf("  %-14s %-16s %-5s %10.3f ms | %-18s %-5s %10.3f ms | ratio %.3f\n", str(r, "workload"), str(r, "implementation"),
                   str(r, "kind"), ours, str(b, "implementation"), str(b, "kind"), theirs, theirs / ours);
            any = 1;
        }
        if (!any) printf("  %-14s %-16s %-5s: no result of this workload and dtype in the base\n", str(r, "workload"),
                         str(r, "implementation"), str(r, "kind"));
    }
}
