/* The `stile` command line: shared option parsing and helpers for the subcommands. */
#ifndef STILE_CLI_H
#define STILE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "stile/stile_check.h" /* the oracle, seeded inputs and sampled rows (libstile_check) */
#include "file_out.h"    /* output files all or nothing, compiled in from core/ */
#include "stile/stile.h"

enum { CMD_INFO = 1, CMD_PLAN = 2, CMD_RUN = 4, CMD_BENCH = 8, CMD_CONFORMANCE = 16, CMD_CHART = 32, CMD_CALIBRATE = 64 };

typedef struct cli_opts {
    const char *cmd;   /* "plan" */
    unsigned cmd_bit;  /* CMD_PLAN */
    stile_problem p;   /* head_windows points at windows when several were given */
    int64_t (*windows)[3];
    int nwindows;
    int64_t kt_window[3]; /* --sparsity window:TxHxW: the key-tile lists are this window's tiles */
    int have_canvas, have_tile, have_heads;
    const char *device;
    int threads;
    uint64_t seed;
    int json;              /* plan: print JSON */
    const char *json_path; /* bench: write the record here */
    int compact;
    int check;
    int64_t check_rows;
    const char *q_path, *k_path, *v_path, *out_path, *lse_path;
    int repeat, warmup;
    int plan_only;
    int gemm_ref;
    int backward;
    int vsa;               /* bench: also time stile_vsa_forward */
    int no_full;
    int ranks;             /* bench: over this many ranks (0: one device) */
    int dist_modes;        /* bench --ranks: 1 halo, 2 heads, 3 (or 0) both */
    int dist_axis;         /* bench --ranks: stile_dist_axis */
    int list_workloads;
    const char *workloads;     /* bench: comma-separated names, or "all" */
    const char *name;          /* bench: the name recorded for a problem given by options (NULL: "custom") */
    const char *compare_path;  /* bench: a stile-bench/2 file to print ratios against */
    const char *markdown_path; /* conformance, chart: write a Markdown report/table */
    const char *case_filter;   /* conformance: only cases whose label contains this */
    const char *case_skip;     /* conformance: leave out cases whose label contains this */
    int shard_index, shard_count; /* conformance: cases i with i % shard_count == shard_index (count 0: all) */
    const char *title;         /* chart */
    const char *candidates;    /* calibrate: "wt,wh,ww;..." */
    int64_t skip_steps;        /* calibrate: steps before this stay full */
    double max_rel_l2;         /* calibrate: budget (0: lowest-distance rule) */
    int npos;                  /* chart: input files; calibrate: the capture directory */
    char **pos;
    int argc;
    char **argv;
} cli_opts;

/* Print "stile CMD: message" on stderr and exit 2 (bad usage). */
void cli_usage_error(const cli_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* How cli_parse and cli_usage_error leave (bad usage: 2, after --help: 0): exit, unless a harness (the
 * fuzzer, tests/fuzz/fuzz_cli.c) puts a function there that jumps back instead. It must not return. */
extern void (*cli_exit)(int status);
/* Parse argv (after the subcommand) for o->cmd; exits 2 on bad arguments, 0 after --help. */
void cli_parse(cli_opts *o, int argc, char **argv, const char *summary);
/* The exit status of a library status: 0 for STILE_OK; 2 for what the command line asked wrongly
 * (a bad value or combination, a malformed input, a device name that is unknown or a backend not
 * built, a problem the backend does not support); 1 for what failed at run time (no such device
 * found now, memory, the backend, I/O). */
int cli_exit_status(stile_status st);
/* Check the problem, open the device; on failure exit with cli_exit_status (the log said why). */
void cli_check_problem(const cli_opts *o);
stile_device *cli_open_device(const cli_opts *o);
/* Install the log sink that prints library errors as "stile CMD: ..." lines. */
void cli_log_init(const cli_opts *o);

/* The backward pass's buffers on dev for a forward's device io fwd (its LSE set): dO standard normal
 * from seed + 3 (also copied to host_do when not NULL), dQ, dK and dV poisoned (NaN in every dtype),
 * each of bytes; g[0..3] = dO, dQ, dK, dV (free them with stile_buffer_destroy, also on failure) and
 * gio naming them with info. The status of the first call that failed (STILE_ERR_OUT_OF_MEMORY
 * without host memory for the staging). */
/* --sparsity topk:K or window:TxHxW (window[0] > 0: the window's tiles, shuffled): p's key tiles
 * (key_tiles_k distinct ones per row, seeded; tools/topk_tiles.c) as a
 * malloc'd host array of *bytes, and *flops the exact FLOPs the forward computes with them (the plan's
 * figure is a bound); NULL on out of memory. */
int32_t *cli_topk_tiles(const stile_problem *p, const int64_t window[3], uint64_t seed, size_t *bytes, double *flops);
stile_status cli_grad_buffers(stile_device *dev, const stile_problem *p, uint64_t seed, size_t bytes, const stile_io *fwd,
                              stile_exec_info *info, stile_buffer *g[4], stile_grad_io *gio, void *host_do);

double cli_now(void);
double cli_median(double *v, int n);
void cli_triple(char *buf, size_t n, const int64_t v[3]);

int cmd_info(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_conformance(int argc, char **argv);
int cmd_chart(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

/* A growing string; oom is set (and the text left as it was) when memory runs out. */
typedef struct cli_buf {
    char *s;
    size_t len, cap;
    int oom;
} cli_buf;
void cli_bufprintf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write text to path on its own, all or nothing (core/file_out.h: a file is replaced by rename, a
 * FIFO or device written through); 0 or -1 with a line on stderr. */
int cli_write_file(const cli_opts *o, const char *what, const char *path, const char *text);
/* A command's outputs all or nothing: cli_outputs makes a set (exit 1 without memory), each output
 * is staged into it, and cli_commit makes them all appear or, on any failure, none where possible.
 * cli_commit destroys the set; destroying it uncommitted (stile_out_set_destroy) removes what was
 * staged. Both return 0, or -1 with a line on stderr. */
stile_out_set *cli_outputs(const cli_opts *o);
int cli_stage_text(const cli_opts *o, stile_out_set *set, const char *what, const char *path, const char *text);
int cli_commit(const cli_opts *o, stile_out_set **set);
/* Today's UTC date-time (ISO 8601) and the command line as one string. */
void cli_date(char *buf, size_t n);
void cli_command(const cli_opts *o, char *buf, size_t n);

/* `stile bench --ranks N` (cmd_bench_ranks.c): problem p (recorded as name) over o->ranks CUDA devices,
 * forked from this process, which must not have touched a GPU; the exit status. */
int cmd_bench_ranks(const cli_opts *o, const stile_problem *p, const char *name);

#endif
