/* The oracle's own reading of a problem and its own decoding of f16/bf16, written from the contract
 * (docs/contract.md, stile.h) apart from core/problem.c and core/convert.c: a wrong default or a
 * wrong rounding there would otherwise be shared by the backends and the oracle, and pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_problem.h"

size_t stile_oracle_dtype_bytes(stile_dtype dt)
{
    return dt == STILE_DTYPE_F32 ? 4 : dt == STILE_DTYPE_F16 || dt == STILE_DTYPE_BF16 ? 2 : 0;
}

/* Both formats by their fields: sign, biased exponent, fraction; the value sums those exactly. */
double stile_oracle_f16(uint16_t bits)
{
    const double sign = bits & 0x8000u ? -1.0 : 1.0;
    const int exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
    if (exponent == 0x1f) return fraction ? copysign(NAN, sign) : sign * INFINITY;
    if (exponent == 0) return sign * ldexp(fraction, -24);       /* 0.fraction x 2^-14 */
    return sign * ldexp(1024 + fraction, exponent - 15 - 10);    /* 1.fraction x 2^(e-15) */
}

double stile_oracle_bf16(uint16_t bits)
{
    const double sign = bits & 0x8000u ? -1.0 : 1.0;
    const int exponent = (bits >> 7) & 0xff, fraction = bits & 0x7f;
    if (exponent == 0xff) return fraction ? copysign(NAN, sign) : sign * INFINITY;
    if (exponent == 0) return sign * ldexp(fraction, -126 - 7);  /* 0.fraction x 2^-126 */
    return sign * ldexp(128 + fraction, exponent - 127 - 7);     /* 1.fraction x 2^(e-127) */
}

double stile_oracle_load(const void *base, stile_dtype dt, int64_t i)
{
    switch (dt) {
    case STILE_DTYPE_F32: {
        float f;
        memcpy(&f, (const char *)base + (size_t)i * 4, 4);
        return f;
    }
    case STILE_DTYPE_F16: return stile_oracle_f16(((const uint16_t *)base)[i]);
    case STILE_DTYPE_BF16: return stile_oracle_bf16(((const uint16_t *)base)[i]);
    case STILE_DTYPE_I32: break; /* never a value tensor */
    }
    return NAN;
}

void stile_oracle_load_head(const void *data, const oracle_problem *op, const stile_strides *s, int64_t b, int64_t h, double *m)
{
    const int64_t T = op->tokens, D = op->head_dim;
    for (int64_t j = 0; j < T; j++)
        for (int64_t d = 0; d < D; d++)
            m[j * D + d] = stile_oracle_load(data, op->dtype, b * s->batch + j * s->token + h * s->head + d * s->dim);
}

void stile_oracle_problem_free(oracle_problem *op)
{
    if (!op) return;
    free(op->windows);
    op->windows = NULL;
}

stile_status stile_oracle_problem_read(const stile_problem *in, const char *who, oracle_problem *op)
{
    memset(op, 0, sizeof *op);
    stile_status rc = stile_problem_check(in); /* rejects what is invalid, with the library's messages */
    if (rc != STILE_OK) return rc;
    stile_problem cur; /* the caller's layout in the current one: read only this */
    if ((rc = check_problem_import(in, &cur, who)) != STILE_OK) return rc;
    const stile_problem *p = &cur;
    op->batch = p->batch ? p->batch : 1;
    op->heads = p->heads;
    op->head_dim = p->head_dim;
    op->video = 1;
    for (int a = 0; a < 3; a++) {
        op->canvas[a] = p->canvas[a];
        op->tile[a] = p->tile[a];
        op->grid[a] = (p->canvas[a] + p->tile[a] - 1) / p->tile[a];
        op->video *= p->canvas[a];
    }
    op->text = p->text;
    op->text_valid = p->text - p->text_padding;
    op->tokens = op->video + p->text;
    op->scale = p->scale != 0 ? p->scale : 1.0 / sqrt((double)p->head_dim);
    op->dtype = p->dtype;
    op->order = p->order;
    op->key_tiles_k = p->key_tiles_k;
    const stile_strides *given[4] = {&p->q, &p->k, &p->v, &p->o};
    const int64_t H = op->heads, D = op->head_dim, S = op->tokens;
    for (int i = 0; i < 4; i++) {
        stile_strides s = *given[i];
        if (s.batch == 0 && s.token == 0 && s.head == 0 && s.dim == 0) /* the contract's [B, S, H, D] */
            s = (stile_strides){.batch = S * H * D, .token = H * D, .head = D, .dim = 1};
        op->strides[i] = s;
        op->span[i] = s.batch * (op->batch - 1) + s.token * (S - 1) + s.head * (H - 1) + s.dim * (D - 1) + 1;
    }
    op->windows = malloc((size_t)H * sizeof *op->windows);
    if (!op->windows) return check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld head windows", who, (long long)H);
    for (int64_t h = 0; h < H; h++)
        for (int a = 0; a < 3; a++) op->windows[h][a] = p->head_windows ? p->head_windows[h][a] : p->window[a];
    return STILE_OK;
}
