/* Benchmark records (schema stile-bench/2, docs/bench-schema.md): build, load with validation, compare. */
#ifndef STILE_BENCH_JSON_H
#define STILE_BENCH_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "stile/stile.h"

/* {canvas, tile, windows, heads, head_dim, batch, text, text_padding, order} of a problem. */
json_t *bench_shape_json(const stile_problem *p);

/* Load a stile-bench/2 file and check its structure; NULL with one line in err (path included). */
json_t *bench_load(const char *path, char *err, size_t err_size);

/* Print, for every result of this run, its time ratio to each result in base of the same workload. */
void bench_compare(const json_t *results, const json_t *base);

/* `stile bench`'s record (cmd_bench.c; who from di, when, commit, command, results and, when not NULL,
 * reference, which it takes) written to o->json_path; 0, or 1 after a failed write. */
struct cli_opts;
int bench_write_record(const struct cli_opts *o, const stile_device_info *di, json_t *results, json_t *reference);

#endif
