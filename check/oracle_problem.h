/* The oracle's own reading of a problem and of f16/bf16 bits (core/oracle_problem.c), used by the
 * oracle and the output check only: never by the planner or a backend. */
#ifndef STILE_ORACLE_PROBLEM_H
#define STILE_ORACLE_PROBLEM_H

#include "check_internal.h"

/* A problem with its defaults filled in from the contract, independently of stile_resolve. */
typedef struct oracle_problem {
    int64_t batch, heads, head_dim;
    int64_t canvas[3], tile[3], grid[3];
    int64_t video, text, text_valid, tokens;
    double scale;
    stile_dtype dtype;
    stile_token_order order;
    stile_strides strides[4]; /* q, k, v, o; all-zero strides read as contiguous [B, S, H, D] */
    int64_t span[4];          /* elements each tensor reaches: its largest offset + 1 */
    int64_t (*windows)[3];    /* one per head, owned (zeros when key_tiles_k is set) */
    int64_t key_tiles_k;      /* > 0: each (batch, head, query tile) attends the key tiles the caller lists */
} oracle_problem;

/* Validate p with stile_problem_check (the library's messages), then read it afresh into op.
 * who names the caller in log lines. Free op with stile_oracle_problem_free. */
stile_status stile_oracle_problem_read(const stile_problem *p, const char *who, oracle_problem *op);
void stile_oracle_problem_free(oracle_problem *op);

/* Bytes of one element of dtype dt (0 if unknown). */
size_t stile_oracle_dtype_bytes(stile_dtype dt);

/* IEEE binary16 and bfloat16 bits as the exact double they encode (NaN: a quiet NaN of the same sign). */
double stile_oracle_f16(uint16_t bits);
double stile_oracle_bf16(uint16_t bits);
/* The checks on a tensor the output checks read (who: the caller's name; name: the tensor's): host
 * memory (no buffer handle), data set, op's dtype, aligned to its elements, at least span elements. */
stile_status stile_check_host_tensor(const oracle_problem *op, const stile_tensor *t, int64_t span, const char *who, const char *name);
/* Element i of a tensor of dtype dt as a double. */
double stile_oracle_load(const void *base, stile_dtype dt, int64_t i);
/* Batch entry b, head h of a tensor of op's dtype and strides s as a [tokens, head_dim] matrix m. */
void stile_oracle_load_head(const void *data, const oracle_problem *op, const stile_strides *s, int64_t b, int64_t h, double *m);

#endif
