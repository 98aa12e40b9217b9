/* Option parsing and helpers shared by the `stile` subcommands. Every option is spelled the same in
 * every subcommand that takes it; a bad argument gives one line on stderr and exit status 2. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum {
    O_DEVICE, O_CANVAS, O_TILE, O_WINDOW, O_HEADS, O_HEAD_DIM, O_BATCH, O_TEXT, O_TEXT_PADDING, O_DTYPE, O_ORDER,
    O_SCALE, O_THREADS, O_SEED, O_JSON, O_COMPACT, O_CHECK, O_CHECK_ROWS, O_Q, O_K, O_V, O_OUT, O_LSE, O_REPEAT,
    O_WARMUP, O_PLAN_ONLY, O_NO_GEMM_REF, O_BACKWARD, O_VSA, O_NO_FULL, O_NAME, O_WORKLOAD, O_LIST_WORKLOADS, O_COMPARE, O_MARKDOWN, O_CASE, O_SKIP, O_SHARD, O_TITLE, O_CANDIDATES, O_SKIP_STEPS, O_MAX_REL_L2,
    O_SPARSITY, O_RANKS, O_DIST, O_AXIS, O_HELP
};

typedef struct opt_def {
    int id;
    const char *name;
    const char *arg; /* NULL: a flag */
    unsigned cmds;
    const char *help;
} opt_def;

#define PROB (CMD_PLAN | CMD_RUN | CMD_BENCH)
static const opt_def opts[] = {
    {O_DEVICE, "device", "D", CMD_PLAN | CMD_RUN | CMD_BENCH, "device: auto (default), cpu, cpu:0, vulkan:N, cuda:N, hip:N"},
    {O_DEVICE, "device", "D[,D...]", CMD_CONFORMANCE, "devices to test (default: every device found)"},
    {O_DEVICE, "device", "D", CMD_CALIBRATE, "device to calibrate on (default: auto)"},
    {O_CANDIDATES, "candidates", "\"W,W,W;...\"", CMD_CALIBRATE, "candidate windows in tiles (required)"},
    {O_SKIP_STEPS, "skip-steps", "N", CMD_CALIBRATE, "steps before N stay full attention (default 0)"},
    {O_MAX_REL_L2, "max-rel-l2", "E", CMD_CALIBRATE, "pick the sparsest candidate within this distance to full"},
    {O_OUT, "out", "FILE", CMD_CALIBRATE, "the strategy to write, FastVideo format (required)"},
    {O_MARKDOWN, "markdown", "FILE", CMD_CALIBRATE, "also write the report as Markdown"},
    {O_WORKLOAD, "workload", "NAME[,NAME...]", CMD_BENCH, "named workloads instead of --canvas/--tile/...; 'all' for every one"},
    {O_LIST_WORKLOADS, "list-workloads", NULL, CMD_BENCH, "print the named workloads as JSON (with their FLOPs) and exit"},
    {O_COMPARE, "compare", "FILE", CMD_BENCH, "print time ratios against the results in FILE (schema stile-bench/2)"},
    {O_NO_FULL, "no-full", NULL, CMD_BENCH, "skip timing full attention"},
    {O_NAME, "name", "NAME", CMD_BENCH, "the workload name to record for a problem given by --canvas/--tile/... (default: custom)"},
    {O_CANVAS, "canvas", "TxHxW", PROB, "video tokens per axis (required), e.g. 30x48x80"},
    {O_TILE, "tile", "txhxw", PROB, "tile in tokens (required), e.g. 6x8x8"},
    {O_WINDOW, "window", "WxWxW[,...]", PROB, "window in tiles (required): one for all heads, or one per head"},
    {O_SPARSITY, "sparsity", "topk:K|window:TxHxW", CMD_PLAN | CMD_RUN | CMD_BENCH, "instead of --window: key tiles per query tile chosen at execution: K seeded distinct ones, or the window's own tiles in a seeded order"},
    {O_HEADS, "heads", "N", PROB, "attention heads (default 1, or the number of windows given)"},
    {O_HEAD_DIM, "head-dim", "D", PROB, "head dimension (default 128)"},
    {O_BATCH, "batch", "B", PROB, "batch size (default 1)"},
    {O_TEXT, "text", "N", PROB, "text tokens after the video tokens (default 0)"},
    {O_TEXT_PADDING, "text-padding", "N", PROB, "how many of the text tokens are padding (default 0)"},
    {O_DTYPE, "dtype", "T", PROB, "f32 (default), f16 or bf16"},
    {O_ORDER, "order", "O", PROB, "token order of the tensors: natural (default) or tiled"},
    {O_SCALE, "scale", "S", PROB, "softmax scale (default 1/sqrt(head-dim))"},
    {O_THREADS, "threads", "N", CMD_RUN | CMD_BENCH, "CPU worker threads (default: all processors)"},
    {O_SEED, "seed", "N", CMD_RUN | CMD_BENCH | CMD_CONFORMANCE, "seed of the random inputs (default 1)"},
    {O_JSON, "json", NULL, CMD_PLAN, "print the plan as JSON instead of text"},
    {O_JSON, "json", "FILE", CMD_BENCH, "also write the results (schema stile-bench/2, docs/bench-schema.md) to FILE"},
    {O_JSON, "json", "FILE", CMD_CONFORMANCE, "write the report (schema stile-conformance/1) to FILE"},
    {O_MARKDOWN, "markdown", "FILE", CMD_CONFORMANCE, "write the report as a Markdown table to FILE"},
    {O_CASE, "case", "TEXT", CMD_CONFORMANCE, "only the cases whose label contains TEXT"},
    {O_SKIP, "skip", "TEXT", CMD_CONFORMANCE, "leave out the cases whose label contains TEXT (e.g. 'sampled')"},
    {O_SHARD, "shard", "I/N", CMD_CONFORMANCE, "only every N-th case of the table, starting at case I (0 <= I < N): N runs cover all"},
    {O_OUT, "out", "FILE", CMD_CHART, "the SVG chart to write (required)"},
    {O_MARKDOWN, "markdown", "FILE", CMD_CHART, "also write a Markdown table of the numbers"},
    {O_TITLE, "title", "TEXT", CMD_CHART, "chart title (default: the cards in the files)"},
    {O_COMPACT, "compact", NULL, CMD_PLAN, "with --json: leave out the key tiles of every query tile"},
    {O_CHECK, "check", NULL, CMD_RUN | CMD_BENCH, "compare the output with the fp64 oracle; exit 1 if it fails"},
    {O_CHECK_ROWS, "check-rows", "N", CMD_RUN | CMD_BENCH, "query rows the oracle checks (default 256; up to 4096 tokens: all)"},
    {O_Q, "q", "FILE", CMD_RUN, "q as .npy [B,S,H,D] (with --k and --v; default: seeded random)"},
    {O_K, "k", "FILE", CMD_RUN, "k as .npy"},
    {O_V, "v", "FILE", CMD_RUN, "v as .npy"},
    {O_OUT, "out", "FILE", CMD_RUN, "write the output as .npy [B,S,H,D]"},
    {O_LSE, "lse", "FILE", CMD_RUN, "write the log-sum-exp as .npy [B,H,S] f32"},
    {O_REPEAT, "repeat", "N", CMD_BENCH, "timed runs per variant (default 3)"},
    {O_RANKS, "ranks", "N", CMD_BENCH, "the problem over N ranks (distributed plans, docs/distributed.md): one process per CUDA device cuda:0..N-1 over NCCL, forked here; times the halo and head modes beside one device in the same run"},
    {O_DIST, "dist", "halo|heads|both", CMD_BENCH, "with --ranks: the modes to time (default both)"},
    {O_AXIS, "axis", "t|h|w|auto", CMD_BENCH, "with --ranks: the grid axis of the slabs (default auto)"},
    {O_WARMUP, "warmup", "N", CMD_BENCH, "untimed runs first (default 1)"},
    {O_PLAN_ONLY, "plan-only", NULL, CMD_BENCH, "time planning only (median of 200 plans)"},
    {O_NO_GEMM_REF, "no-gemm-ref", NULL, CMD_BENCH, "skip the CBLAS sgemm 2048^3 reference (CPU devices)"},
    {O_BACKWARD, "backward", NULL, CMD_BENCH, "also time the backward pass (stile_plan_backward) of the STA problem"},
    {O_VSA, "vsa", NULL, CMD_BENCH, "with --sparsity topk:K: also time VSA's whole forward (stile_vsa_forward: tile means, coarse attention, top-K, fine attention, gated sum)"},
    {O_BACKWARD, "backward", NULL, CMD_RUN, "then the backward pass (stile_plan_backward, seeded dO); with --check, dQ, dK and dV against the oracle's (every row: small problems)"},
    {O_HELP, "help", NULL, CMD_INFO | PROB | CMD_CONFORMANCE | CMD_CHART | CMD_CALIBRATE, "show this help"},
};
#define NOPTS ((int)(sizeof opts / sizeof opts[0]))

void cli_usage_error(const cli_opts *o, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "stile %s: ", o->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    cli_exit(2);
    abort(); /* cli_exit does not return */
}

void (*cli_exit)(int status) = exit;

static void print_help(const cli_opts *o, const char *summary)
{
    printf("usage: stile %s [options]\n%s\n\noptions:\n", o->cmd, summary);
    for (int i = 0; i < NOPTS; i++) {
        if (!(opts[i].cmds & o->cmd_bit)) continue;
        char left[40];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        printf("  %-24s %s\n", left, opts[i].help);
    }
}

/* A decimal whole number at s (an optional '-', then digits; no spaces or '+', which strtoll would
 * take): 1 with the value and its end, or 0 (also when it overflows). */
static int whole_number(const char *s, long long *v, char **end)
{
    if (!isdigit((unsigned char)s[s[0] == '-'])) return 0;
    errno = 0;
    *v = strtoll(s, end, 10);
    return errno == 0;
}

static int64_t parse_int(const cli_opts *o, const char *name, const char *s, int64_t lo, int64_t hi)
{
    char *end;
    long long v;
    if (!whole_number(s, &v, &end) || *end) cli_usage_error(o, "--%s %s: not a whole number", name, s);
    if (v < lo || v > hi) cli_usage_error(o, "--%s %s: must be within %lld..%lld", name, s, (long long)lo, (long long)hi);
    return v;
}

/* A decimal number: digits with an optional fraction and exponent, nothing else (strtod also takes
 * hex, "inf", "nan" and leading spaces: "--scale 0x10" was 16). */
static double parse_decimal(const cli_opts *o, const char *name, const char *s)
{
    const char *c = s;
    int digits = 0;
    if (*c == '+' || *c == '-') c++;
    for (; isdigit((unsigned char)*c); c++) digits++;
    if (*c == '.')
        for (c++; isdigit((unsigned char)*c); c++) digits++;
    if (digits && (*c == 'e' || *c == 'E')) {
        c += c[1] == '+' || c[1] == '-' ? 2 : 1;
        if (!isdigit((unsigned char)*c)) digits = 0;
        while (isdigit((unsigned char)*c)) c++;
    }
    if (!digits || *c) cli_usage_error(o, "--%s %s: not a decimal number", name, s);
    errno = 0;
    const double v = strtod(s, NULL);
    if (errno == ERANGE || !isfinite(v)) cli_usage_error(o, "--%s %s: out of the range of a double", name, s);
    return v;
}

/* "AxBxC": exactly three whole numbers (checked further by the library, which names the bad field). */
static void parse_triple(const cli_opts *o, const char *name, const char *s, int64_t out[3])
{
    const char *c = s;
    for (int i = 0; i < 3; i++) {
        char *end;
        long long v;
        if (!whole_number(c, &v, &end) || *end != (i < 2 ? 'x' : '\0'))
            cli_usage_error(o, "--%s %s: expected three whole numbers like 6x8x8", name, s);
        out[i] = v;
        c = end + 1;
    }
}

static void parse_windows(cli_opts *o, const char *s)
{
    int n = 1;
    for (const char *c = s; *c; c++) n += *c == ',';
    free(o->windows);
    o->windows = calloc((size_t)n, sizeof *o->windows);
    if (!o->windows) cli_usage_error(o, "out of memory");
    const char *c = s;
    for (int i = 0; i < n; i++) {
        char part[64];
        size_t len = strcspn(c, ",");
        if (len == 0 || len >= sizeof part) cli_usage_error(o, "--window %s: entry %d is empty or too long", s, i + 1);
        memcpy(part, c, len);
        part[len] = 0;
        parse_triple(o, "window", part, o->windows[i]);
        c += len + 1;
    }
    o->nwindows = n;
}

void cli_parse(cli_opts *o, int argc, char **argv, const char *summary)
{
    o->argc = argc;
    o->argv = argv;
    o->device = "auto";
    o->seed = 1;
    o->check_rows = 256;
    o->repeat = 3;
    o->warmup = 1;
    o->gemm_ref = 1;
    o->p.struct_size = sizeof o->p;
    o->p.head_dim = 128;
    const char *text_padding = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0) a = "--out"; /* the one short option: -o FILE, wherever --out is taken */
        if (strncmp(a, "--", 2) != 0) {
            if (o->cmd_bit == CMD_CHART || o->cmd_bit == CMD_CALIBRATE) {
                if (!o->pos) o->pos = argv + i; /* positional files are collected in place below */
                argv[o->pos - argv + o->npos++] = argv[i];
                continue;
            }
            cli_usage_error(o, "unexpected argument '%s' (options start with --; see stile %s --help)", a, o->cmd);
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const opt_def *d = NULL;
        for (int k = 0; k < NOPTS && !d; k++)
            if ((opts[k].cmds & o->cmd_bit) && strlen(opts[k].name) == len && strncmp(opts[k].name, a + 2, len) == 0) d = &opts[k];
        if (!d) cli_usage_error(o, "unknown option '%.*s' (see stile %s --help)", (int)len + 2, a, o->cmd);
        const char *v = NULL;
        if (d->arg) {
            if (eq) v = eq + 1;
            else if (i + 1 < argc) v = argv[++i];
            else cli_usage_error(o, "--%s needs a value (%s)", d->name, d->arg);
        } else if (eq) {
            cli_usage_error(o, "--%s takes no value", d->name);
        }
        switch (d->id) {
        case O_DEVICE: o->device = v; break;
        case O_CANVAS: parse_triple(o, "canvas", v, o->p.canvas); o->have_canvas = 1; break;
        case O_TILE: parse_triple(o, "tile", v, o->p.tile); o->have_tile = 1; break;
        case O_WINDOW: parse_windows(o, v); break;
        case O_HEADS: o->p.heads = parse_int(o, "heads", v, 1, STILE_MAX_HEADS); o->have_heads = 1; break;
        case O_HEAD_DIM: o->p.head_dim = parse_int(o, "head-dim", v, 1, STILE_MAX_HEAD_DIM); break;
        case O_BATCH: o->p.batch = parse_int(o, "batch", v, 1, STILE_MAX_BATCH); break;
        case O_TEXT: o->p.text = parse_int(o, "text", v, 0, STILE_MAX_TOKENS); break;
        case O_TEXT_PADDING: text_padding = v; break;
        case O_DTYPE:
            if (strcmp(v, "f32") == 0) o->p.dtype = STILE_DTYPE_F32;
            else if (strcmp(v, "f16") == 0) o->p.dtype = STILE_DTYPE_F16;
            else if (strcmp(v, "bf16") == 0) o->p.dtype = STILE_DTYPE_BF16;
            else cli_usage_error(o, "--dtype %s: must be f32, f16 or bf16", v);
            break;
        case O_ORDER:
            if (strcmp(v, "natural") == 0) o->p.order = STILE_ORDER_NATURAL;
            else if (strcmp(v, "tiled") == 0) o->p.order = STILE_ORDER_TILED;
            else cli_usage_error(o, "--order %s: must be natural or tiled", v);
            break;
        case O_SCALE:
            o->p.scale = parse_decimal(o, "scale", v);
            if (!(o->p.scale >= STILE_MIN_SCALE && o->p.scale <= STILE_MAX_SCALE))
                cli_usage_error(o, "--scale %s: must be within %g..%g", v, STILE_MIN_SCALE, STILE_MAX_SCALE);
            break;
        case O_THREADS: o->threads = (int)parse_int(o, "threads", v, 1, 1024); break;
        case O_SEED: o->seed = (uint64_t)parse_int(o, "seed", v, 0, INT64_MAX); break;
        case O_JSON: if (v) o->json_path = v; else o->json = 1; break;
        case O_COMPACT: o->compact = 1; break;
        case O_CHECK: o->check = 1; break;
        case O_CHECK_ROWS: o->check_rows = parse_int(o, "check-rows", v, 1, INT64_C(1) << 30); break;
        case O_Q: o->q_path = v; break;
        case O_K: o->k_path = v; break;
        case O_V: o->v_path = v; break;
        case O_OUT: o->out_path = v; break;
        case O_LSE: o->lse_path = v; break;
        case O_REPEAT: o->repeat = (int)parse_int(o, "repeat", v, 1, 1000); break;
        case O_WARMUP: o->warmup = (int)parse_int(o, "warmup", v, 0, 1000); break;
        case O_PLAN_ONLY: o->plan_only = 1; break;
        case O_NO_GEMM_REF: o->gemm_ref = 0; break;
        case O_BACKWARD: o->backward = 1; break;
        case O_VSA: o->vsa = 1; break;
        case O_SPARSITY:
            if (strncmp(v, "window:", 7) == 0) { /* the window's own tiles, as caller-chosen lists */
                parse_triple(o, "sparsity window", v + 7, o->kt_window);
                const int64_t k = o->kt_window[0] * o->kt_window[1] * o->kt_window[2];
                if (k > INT32_MAX) cli_usage_error(o, "--sparsity %s: the window holds too many tiles", v);
                o->p.key_tiles_k = k;
                break;
            }
            if (strncmp(v, "topk:", 5) != 0)
                cli_usage_error(o, "--sparsity %s: must be topk:K (K key tiles per query tile) or window:TxHxW", v);
            o->p.key_tiles_k = parse_int(o, "sparsity topk", v + 5, 1, INT32_MAX);
            o->kt_window[0] = o->kt_window[1] = o->kt_window[2] = 0;
            break;
        case O_NO_FULL: o->no_full = 1; break;
        case O_RANKS: o->ranks = (int)parse_int(o, "ranks", v, 1, 64); break;
        case O_DIST:
            if (strcmp(v, "halo") && strcmp(v, "heads") && strcmp(v, "both")) cli_usage_error(o, "--dist %s: must be halo, heads or both", v);
            o->dist_modes = v[0] == 'b' ? 3 : v[1] == 'a' ? 1 : 2;
            break;
        case O_AXIS:
            if (strcmp(v, "t") && strcmp(v, "h") && strcmp(v, "w") && strcmp(v, "auto")) cli_usage_error(o, "--axis %s: must be t, h, w or auto", v);
            o->dist_axis = v[0] == 't' ? 1 : v[0] == 'h' ? 2 : v[0] == 'w' ? 3 : 0;
            break;
        case O_NAME:
            if (!*v || strlen(v) > 64) cli_usage_error(o, "--name %s: must be 1 to 64 characters", *v ? "(too long)" : "''");
            o->name = v;
            break;
        case O_WORKLOAD: o->workloads = v; break;
        case O_LIST_WORKLOADS: o->list_workloads = 1; break;
        case O_COMPARE: o->compare_path = v; break;
        case O_MARKDOWN: o->markdown_path = v; break;
        case O_CASE: o->case_filter = v; break;
        case O_SKIP: o->case_skip = v; break;
        case O_SHARD: {
            const char *slash = strchr(v, '/');
            char first[24];
            if (!slash || slash == v || (size_t)(slash - v) >= sizeof first) cli_usage_error(o, "--shard %s: expected I/N, e.g. 0/4", v);
            memcpy(first, v, (size_t)(slash - v));
            first[slash - v] = 0;
            o->shard_count = (int)parse_int(o, "shard (N)", slash + 1, 1, 1000000);
            o->shard_index = (int)parse_int(o, "shard (I)", first, 0, o->shard_count - 1);
            break;
        }
        case O_TITLE: o->title = v; break;
        case O_CANDIDATES: o->candidates = v; break;
        case O_SKIP_STEPS: o->skip_steps = parse_int(o, "skip-steps", v, 0, INT32_MAX); break;
        case O_MAX_REL_L2:
            o->max_rel_l2 = parse_decimal(o, "max-rel-l2", v);
            if (!(o->max_rel_l2 > 0)) cli_usage_error(o, "--max-rel-l2 %s: must be a positive number", v);
            break;
        case O_HELP: print_help(o, summary); cli_exit(0); abort();
        }
    }
    if (text_padding) o->p.text_padding = parse_int(o, "text-padding", text_padding, 0, o->p.text);
    if (o->name && o->workloads) cli_usage_error(o, "--name names a problem given by --canvas/--tile/...: not with --workload");
    /* Output paths that cannot take a file are refused before the work that makes the outputs. */
    const char *outs[4][2] = {{"--out", o->out_path}, {"--lse", o->lse_path}, {"--markdown", o->markdown_path}, {"--json", o->json_path}};
    for (int i = 0; i < 4; i++) {
        char err[1024];
        if (outs[i][1] && stile_out_check(outs[i][1], err, sizeof err) != STILE_OK) cli_usage_error(o, "%s %s", outs[i][0], err);
    }
    if (!(o->cmd_bit & PROB) || o->workloads || o->list_workloads) return;
    if (!o->have_canvas) cli_usage_error(o, "--canvas is required (e.g. --canvas 30x48x80)");
    if (!o->have_tile) cli_usage_error(o, "--tile is required (e.g. --tile 6x8x8)");
    if (o->vsa && (!o->p.key_tiles_k || o->kt_window[0]))
        cli_usage_error(o, "--vsa needs --sparsity topk:K (K: the tiles VSA keeps per query tile)");
    if (o->p.key_tiles_k) { /* --sparsity topk:K or window:TxHxW: no windows */
        if (o->nwindows) cli_usage_error(o, "--sparsity chooses the key tiles: not with --window");
        for (int a = 0; a < 3 && o->kt_window[0]; a++) {
            const int64_t n = o->p.tile[a] > 0 ? (o->p.canvas[a] + o->p.tile[a] - 1) / o->p.tile[a] : 0;
            if (o->kt_window[a] < 1 || o->kt_window[a] > n)
                cli_usage_error(o, "--sparsity window:%lldx%lldx%lld: each extent must be 1 to the tile grid's (%lld on axis %d)",
                                (long long)o->kt_window[0], (long long)o->kt_window[1], (long long)o->kt_window[2], (long long)n, a);
        }
        if (!o->have_heads) o->p.heads = 1;
    } else if (!o->nwindows) {
        cli_usage_error(o, "--window is required (e.g. --window 3x3x3), or --sparsity topk:K");
    } else if (!o->have_heads) {
        o->p.heads = o->nwindows;
    }
    if (o->nwindows == 1) {
        memcpy(o->p.window, o->windows[0], sizeof o->p.window);
    } else if (o->nwindows > 1) {
        if (o->nwindows != o->p.heads)
            cli_usage_error(o, "--window lists %d windows for %lld heads: give one, or one per head", o->nwindows,
                            (long long)o->p.heads);
        o->p.head_windows = (const int64_t(*)[3])o->windows;
    }
    if ((o->q_path || o->k_path || o->v_path) && !(o->q_path && o->k_path && o->v_path))
        cli_usage_error(o, "--q, --k and --v go together");
}

static void log_sink(void *user, stile_log_level level, const char *msg)
{
    const cli_opts *o = user;
    fprintf(stderr, "stile %s: %s%s\n", o->cmd, level == STILE_LOG_ERROR ? "" : "note: ", msg);
}

void cli_log_init(const cli_opts *o) { stile_log_set(log_sink, (void *)o, getenv("STILE_DEBUG") ? STILE_LOG_DEBUG : STILE_LOG_ERROR); }

int cli_exit_status(stile_status st)
{
    switch (st) {
    case STILE_OK: return 0;
    case STILE_ERR_INVALID_SIZE:
    case STILE_ERR_INVALID_WINDOW:
    case STILE_ERR_INVALID_STRIDES:
    case STILE_ERR_OUT_OF_RANGE:
    case STILE_ERR_DTYPE_MISMATCH:
    case STILE_ERR_OVERFLOW:
    case STILE_ERR_ALIASING:
    case STILE_ERR_INVALID_ARGUMENT:
    case STILE_ERR_UNSUPPORTED:
    case STILE_ERR_UNKNOWN_DEVICE:
    case STILE_ERR_FORMAT: return 2;
    default: return 1; /* no such device now, memory, the backend's runtime, I/O, a lost device, a bug */
    }
}

void cli_check_problem(const cli_opts *o)
{
    stile_status st = stile_problem_check(&o->p);
    if (st != STILE_OK) exit(cli_exit_status(st)); /* the log line said why */
}

stile_device *cli_open_device(const cli_opts *o)
{
    stile_device_params dp = {.struct_size = sizeof dp, .threads = o->threads};
    stile_device *dev = NULL;
    stile_status st = stile_device_open(o->device, &dp, &dev);
    if (st != STILE_OK) {
        free(o->windows);
        exit(cli_exit_status(st)); /* unknown or not built: 2; not found here: 1 */
    }
    return dev;
}

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void cli_triple(char *buf, size_t n, const int64_t v[3])
{
    snprintf(buf, n, "%lldx%lldx%lld", (long long)v[0], (long long)v[1], (long long)v[2]);
}

int cli_write_file(const cli_opts *o, const char *what, const char *path, const char *text)
{
    char err[1024];
    const stile_out_piece piece = {text, strlen(text)};
    if (stile_out_write(path, &piece, 1, err, sizeof err) == STILE_OK) return 0;
    fprintf(stderr, "stile %s: %s %s\n", o->cmd, what, err);
    return -1;
}

int cli_stage_text(const cli_opts *o, stile_out_set *set, const char *what, const char *path, const char *text)
{
    char err[1024];
    const stile_out_piece piece = {text, strlen(text)};
    if (stile_out_stage(set, path, &piece, 1, err, sizeof err) == STILE_OK) return 0;
    fprintf(stderr, "stile %s: %s %s\n", o->cmd, what, err);
    return -1;
}

int cli_commit(const cli_opts *o, stile_out_set **set)
{
    char err[1024];
    stile_status st = stile_out_commit(*set, err, sizeof err);
    stile_out_set_destroy(set);
    if (st == STILE_OK) return 0;
    fprintf(stderr, "stile %s: %s\n", o->cmd, err);
    return -1;
}

stile_out_set *cli_outputs(const cli_opts *o)
{
    stile_out_set *set = NULL;
    if (stile_out_set_create(&set) != STILE_OK) {
        fprintf(stderr, "stile %s: out of memory\n", o->cmd);
        exit(1);
    }
    return set;
}

void cli_date(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cli_command(const cli_opts *o, char *buf, size_t n)
{
    snprintf(buf, n, "stile %s", o->cmd);
    for (int i = 0; i < o->argc; i++) snprintf(buf + strlen(buf), n - strlen(buf), " %s", o->argv[i]);
}

void cli_bufprintf(cli_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (!b->oom && b->len + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + (size_t)need + 1 > cap) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) b->oom = 1;
        else {
            b->s = t;
            b->cap = cap;
        }
    }
    if (!b->oom) b->len += (size_t)vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap2);
    va_end(ap2);
}
