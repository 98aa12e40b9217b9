/* `stile conformance`: every case of the conformance table on every device found (or named), with a
 * report per case (pass, fail, unsupported with the reason, mistrusted) and counts per status. A case
 * a backend refuses fails unless the table marks it as expected for that backend. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct dev_report {
    char name[32];
    stile_device_info info;
    int count[4];
    int ran;              /* cases the backend ran (not refused) */
    json_t *cases;
    json_t *paths;        /* cases run per kernel path: {"mma.sync": 12, ...} */
} dev_report;

static int collect_devices(const cli_opts *o, char names[][32], int max)
{
    int n = 0;
    if (o->device && strcmp(o->device, "auto") != 0) {
        /* every name of the list, or a usage error: never a silently shortened list or name */
        for (const char *c = o->device;; c++) {
            const size_t len = strcspn(c, ",");
            if (len == 0) cli_usage_error(o, "--device %s: entry %d is empty", o->device, n + 1);
            if (len > 31) cli_usage_error(o, "--device %s: entry %d is longer than 31 characters", o->device, n + 1);
            if (n == max) cli_usage_error(o, "--device %s: more than %d devices", o->device, max);
            snprintf(names[n++], 32, "%.*s", (int)len, c);
            c += len;
            if (!*c) return n;
        }
    }
    for (int b = 0; b < stile_backend_count(); b++) {
        stile_backend_info bi;
        if (stile_backend_get_info(b, &bi) != STILE_OK || !bi.built) continue;
        for (int d = 0; d < bi.devices && n < max; d++) snprintf(names[n++], 32, "%s:%d", bi.name, d);
    }
    return n;
}

static char *markdown(const dev_report *r, int nd, const char *date, const char *command)
{
    cli_buf b = {0};
    cli_bufprintf(&b, "# stile conformance report\n\n%s, stile %s (commit %s)\n\n`%s`\n\n", date, stile_version_string(),
                  stile_build_commit(), command);
    for (int d = 0; d < nd; d++) {
        cli_bufprintf(&b, "## %s: %s\n\n%d pass, %d fail, %d unsupported, %d mistrusted\n\n", r[d].name, r[d].info.description,
                      r[d].count[STILE_CONF_PASS], r[d].count[STILE_CONF_FAIL], r[d].count[STILE_CONF_UNSUPPORTED], r[d].count[STILE_CONF_MISTRUSTED]);
        cli_bufprintf(&b, "| case | status | path | check | figures | max abs err | rows | deterministic | ms | note |\n"
                          "|---|---|---|---|---|---|---|---|---|---|\n");
        size_t i;
        json_t *c;
        json_array_foreach(r[d].cases, i, c) {
            cli_bufprintf(&b, "| %s | %s | %s | %s | %s | %.2e | %lld | %s | %.2f | %s |\n", json_string_value(json_object_get(c, "case")),
                          json_string_value(json_object_get(c, "status")), json_string_value(json_object_get(c, "path")),
                          json_string_value(json_object_get(c, "check")),
                          json_string_value(json_object_get(c, "figures")), json_real_value(json_object_get(c, "max_abs_error")),
                          (long long)json_integer_value(json_object_get(c, "rows_checked")),
                          json_is_true(json_object_get(c, "deterministic")) ? "yes" : "no",
                          json_real_value(json_object_get(c, "ms")), json_string_value(json_object_get(c, "reason")));
        }
        cli_bufprintf(&b, "\n");
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static int selected(const cli_opts *o, int index, const char *label)
{
    return (!o->case_filter || strstr(label, o->case_filter)) && (!o->case_skip || !strstr(label, o->case_skip)) &&
           (o->shard_count == 0 || index % o->shard_count == o->shard_index);
}

int cmd_conformance(int argc, char **argv)
{
    cli_opts o = {.cmd = "conformance", .cmd_bit = CMD_CONFORMANCE};
    cli_parse(&o, argc, argv,
              "Run the conformance cases (check/cases.c) on every device found, or the ones named, against the fp64\n"
              "oracle: NMSE per dtype, max error, NaN/Inf, guard bands, poisoned outputs, run-to-run determinism.\n"
              "Exit status 1 if any case fails or is mistrusted (output mostly zeros or constant).");
    char names[32][32];
    int nd = collect_devices(&o, names, 32);
    if (nd == 0) {
        fprintf(stderr, "stile conformance: no device found (see stile info)\n");
        return 1;
    }
    int nv = 0;
    stile_conf_variant *v = stile_conf_expand(&nv);
    if (!v) return 1;
    int sel = 0;
    for (int i = 0; i < nv; i++) sel += selected(&o, i, v[i].label);
    if (sel == 0) cli_usage_error(&o, "no case is left by --case/--skip/--shard");

    dev_report *rep = calloc((size_t)nd, sizeof *rep);
    if (!rep) return 1;
    const int tty = isatty(STDERR_FILENO);
    int rc = 0;
    for (int d = 0; d < nd; d++) {
        stile_device *dev = NULL;
        stile_status st = stile_device_open(names[d], NULL, &dev);
        if (st != STILE_OK) {
            fprintf(stderr, "stile conformance: %s: %s (%s)\n", names[d], stile_status_string(st), stile_last_error());
            rc = cli_exit_status(st); /* unknown or not built: 2; not found here: 1 */
            break;
        }
        snprintf(rep[d].name, sizeof rep[d].name, "%.31s", names[d]);
        stile_device_get_info(dev, &rep[d].info);
        rep[d].cases = json_array();
        rep[d].paths = json_object();
        printf("%s: %s\n", names[d], rep[d].info.description);
        int done = 0;
        for (int i = 0; i < nv; i++) {
            if (!selected(&o, i, v[i].label)) continue;
            if (tty) fprintf(stderr, "\r\033[K[%d/%d] %s: %s", ++done, sel, names[d], v[i].label);
            stile_conf_result r = stile_conf_run_variant(dev, &v[i], o.seed * 1000 + 10 * (uint64_t)i);
            rep[d].count[r.status]++;
            rep[d].ran += !r.unsupported;
            if (tty) fprintf(stderr, "\r\033[K");
            char figures[160];
            stile_conf_summary(&r, figures, sizeof figures);
            printf("  %-11s %-60s %s%s%s\n", stile_conf_status_name(r.status), v[i].label, figures, r.reason[0] ? "  " : "", r.reason);
            json_array_append_new(
                rep[d].cases,
                json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:f,s:f,s:f,s:f,s:I,s:I,s:b,s:b,s:b,s:f,s:I}", "case", v[i].label, "name",
                          v[i].c->name, "dtype", stile_dtype_name(v[i].p.dtype), "head_dim", (int)v[i].p.head_dim, "status",
                          stile_conf_status_name(r.status), "reason", r.reason, "nmse", r.check.nmse, "threshold", r.check.threshold,
                          "max_abs_error", r.check.max_abs_error, "lse_max_abs_error", r.check.lse_max_abs_error, "nonfinite",
                          (json_int_t)r.check.nonfinite, "rows_checked", (json_int_t)r.rows_checked, "deterministic",
                          r.deterministic, "guard_ok", r.guard_ok, "gaps_ok", r.gaps_ok, "ms", r.ms, "seed", (json_int_t)r.seed));
            /* what was checked, and for a mask probe its own figures (nmse and threshold stay 0 there) */
            json_t *rec = json_array_get(rep[d].cases, json_array_size(rep[d].cases) - 1);
            json_object_set_new(rec, "check", json_string(r.probe ? "mask probe" : r.backward ? "backward oracle" : "oracle"));
            json_object_set_new(rec, "figures", json_string(figures));
            json_object_set_new(rec, "path", json_string(r.path));
            if (!r.unsupported && r.path[0]) {
                json_t *n = json_object_get(rep[d].paths, r.path);
                json_object_set_new(rep[d].paths, r.path, json_integer(n ? json_integer_value(n) + 1 : 1));
            }
            if (r.probe) {
                json_object_set_new(rec, "probe_bad_rows", json_integer((json_int_t)r.probe_bad_rows));
                json_object_set_new(rec, "probe_lse_ratio", json_real(r.probe_lse_ratio));
                json_object_set_new(rec, "probe_channel_ratio", json_real(r.probe_channel_ratio));
            }
        }
        stile_device_close(&dev);
        printf("%s: %d cases, %d run: %d pass, %d fail, %d mistrusted; %d unsupported as the table expects\n", names[d], sel,
               rep[d].ran, rep[d].count[STILE_CONF_PASS], rep[d].count[STILE_CONF_FAIL], rep[d].count[STILE_CONF_MISTRUSTED],
               rep[d].count[STILE_CONF_UNSUPPORTED]);
        const char *pname;
        json_t *pn;
        printf("%s: cases run per kernel path:", names[d]);
        json_object_foreach(rep[d].paths, pname, pn) printf(" %s %lld;", pname, (long long)json_integer_value(pn));
        printf("\n");
        if (rep[d].count[STILE_CONF_FAIL] || rep[d].count[STILE_CONF_MISTRUSTED]) rc = 1;
    }
    int ran = 0;
    while (ran < nd && rep[ran].cases) ran++;
    char date[32], command[2048];
    cli_date(date, sizeof date);
    cli_command(&o, command, sizeof command);
    stile_out_set *outs = cli_outputs(&o); /* --json and --markdown appear together or not at all */
    int staged = 1;
    if (o.json_path && ran) {
        json_t *devs = json_array();
        for (int d = 0; d < ran; d++)
            json_array_append_new(devs, json_pack("{s:s,s:s,s:s,s:s,s:{s:i,s:i,s:i,s:i},s:O}", "device", rep[d].name, "description",
                                              rep[d].info.description, "card", rep[d].info.card, "driver", rep[d].info.driver,
                                              "counts", "pass", rep[d].count[STILE_CONF_PASS], "fail", rep[d].count[STILE_CONF_FAIL],
                                              "unsupported", rep[d].count[STILE_CONF_UNSUPPORTED], "mistrusted",
                                              rep[d].count[STILE_CONF_MISTRUSTED], "cases", rep[d].cases));
        for (int d = 0; d < ran; d++) json_object_set(json_array_get(devs, d), "paths", rep[d].paths);
        json_t *root = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "schema", "stile-conformance/1", "stile_version", stile_version_string(),
                                 "commit", stile_build_commit(), "date", date, "command", command, "devices", devs);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!text) fprintf(stderr, "stile conformance: out of memory for --json\n");
        staged = text && cli_stage_text(&o, outs, "--json", o.json_path, text) == 0;
        free(text);
    }
    if (staged && o.markdown_path && ran) {
        char *md = markdown(rep, ran, date, command);
        if (!md) fprintf(stderr, "stile conformance: out of memory for --markdown\n");
        staged = md && cli_stage_text(&o, outs, "--markdown", o.markdown_path, md) == 0;
        free(md);
    }
    if (!staged || cli_commit(&o, &outs) != 0) rc = rc ? rc : 1;
    stile_out_set_destroy(&outs);
    for (int d = 0; d < nd; d++) {
        json_decref(rep[d].cases);
        json_decref(rep[d].paths);
    }
    free(rep);
    free(v);
    return rc;
}
