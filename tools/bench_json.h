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

#endif
