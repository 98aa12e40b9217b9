/* VSA's steps in double precision from docs/contract.md ("VSA steps"), for checking the library's
 * (include/stile/stile_vsa.h): the oracle's own problem reading, token geometry and dtype loads, and
 * nothing of libstile's VSA code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_geom.h"

/* The raster tile of natural video token n. */
static int64_t tile_of(const oracle_geom *g, int64_t n)
{
    const int64_t t = n / (g->canvas[1] * g->canvas[2]), h = n / g->canvas[2] % g->canvas[1], w = n % g->canvas[2];
    return ((t / g->tile[0]) * g->n[1] + h / g->tile[1]) * g->n[2] + w / g->tile[2];
}

/* op and the geometry of p's tokens (no key tiles read). */
static stile_status open_problem(const stile_problem *p, const char *who, oracle_problem *op, oracle_geom *g)
{
    stile_status rc = stile_oracle_problem_read(p, who, op);
    if (rc != STILE_OK) return rc;
    if (!op->key_tiles_k || op->text) {
        stile_oracle_problem_free(op);
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: VSA takes a video-only problem of caller-chosen key tiles", who);
    }
    const int64_t k = op->key_tiles_k;
    op->key_tiles_k = 0; /* the geometry of tokens only */
    rc = oracle_geom_init(op, NULL, who, g);
    op->key_tiles_k = k;
    if (rc != STILE_OK) {
        oracle_geom_free(g);
        stile_oracle_problem_free(op);
    }
    return rc;
}

static void close_problem(oracle_problem *op, oracle_geom *g)
{
    oracle_geom_free(g);
    stile_oracle_problem_free(op);
}

stile_status stile_oracle_vsa_pool(const stile_problem *p, const stile_io *io_in, double *q_c, double *k_c, double *v_c)
{
    static const char who[] = "stile_oracle_vsa_pool";
    if (!io_in) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: io is NULL", who);
    stile_io io;
    stile_status rc = check_io_import(io_in, &io, who);
    oracle_problem op;
    oracle_geom g;
    if (rc != STILE_OK || (rc = open_problem(p, who, &op, &g)) != STILE_OK) return rc;
    if ((rc = oracle_inputs_check(&io, &op, who)) != STILE_OK) {
        close_problem(&op, &g);
        return rc;
    }
    const int64_t B = op.batch, H = op.heads, D = op.head_dim, T = op.grid[0] * op.grid[1] * op.grid[2];
    int64_t *count = calloc((size_t)T, sizeof *count);
    if (!count) {
        close_problem(&op, &g);
        return check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    }
    for (int64_t i = 0; i < op.video; i++) count[tile_of(&g, g.natural[i])]++;
    const stile_tensor *in[3] = {&io.q, &io.k, &io.v};
    double *out[3] = {q_c, k_c, v_c};
    for (int x = 0; x < 3; x++) {
        if (!out[x]) continue;
        memset(out[x], 0, (size_t)(B * H * T * D) * sizeof(double));
        const stile_strides *s = &op.strides[x];
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < op.video; i++) {
                    double *dst = out[x] + ((b * H + h) * T + tile_of(&g, g.natural[i])) * D;
                    for (int64_t d = 0; d < D; d++)
                        dst[d] += stile_oracle_load(in[x]->data, op.dtype, b * s->batch + i * s->token + h * s->head + d * s->dim);
                }
        for (int64_t r = 0; r < B * H * T; r++)
            for (int64_t d = 0; d < D; d++) out[x][r * D + d] /= (double)count[r % T];
    }
    free(count);
    close_problem(&op, &g);
    return STILE_OK;
}

stile_status stile_oracle_vsa_coarse(const stile_problem *p, const double *q_c, const double *k_c, const double *v_c, double *o_c,
                                     double *scores)
{
    static const char who[] = "stile_oracle_vsa_coarse";
    if (!q_c || !k_c || !v_c || !o_c) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: an input or o_c is NULL", who);
    oracle_problem op;
    oracle_geom g;
    stile_status rc = open_problem(p, who, &op, &g);
    if (rc != STILE_OK) return rc;
    const int64_t BH = op.batch * op.heads, D = op.head_dim, T = op.grid[0] * op.grid[1] * op.grid[2];
    double *s = malloc((size_t)T * sizeof *s);
    if (!s) {
        close_problem(&op, &g);
        return check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    }
    for (int64_t bh = 0; bh < BH; bh++)
        for (int64_t i = 0; i < T; i++) {
            const double *q = q_c + (bh * T + i) * D;
            double mx = -INFINITY, sum = 0.0;
            for (int64_t j = 0; j < T; j++) {
                const double *k = k_c + (bh * T + j) * D;
                double dot = 0.0;
                for (int64_t d = 0; d < D; d++) dot += q[d] * k[d];
                s[j] = dot * op.scale;
                if (scores) scores[(bh * T + i) * T + j] = s[j];
                mx = fmax(mx, s[j]);
            }
            double *o = o_c + (bh * T + i) * D;
            memset(o, 0, (size_t)D * sizeof *o);
            for (int64_t j = 0; j < T; j++) {
                const double w = exp(s[j] - mx);
                sum += w;
                for (int64_t d = 0; d < D; d++) o[d] += w * v_c[(bh * T + j) * D + d];
            }
            for (int64_t d = 0; d < D; d++) o[d] /= sum;
        }
    free(s);
    close_problem(&op, &g);
    return STILE_OK;
}

stile_status stile_oracle_vsa_topk_check(const stile_problem *p, const double *scores, const int32_t *key_tiles, double tol)
{
    static const char who[] = "stile_oracle_vsa_topk_check";
    if (!scores || !key_tiles) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: scores or key_tiles is NULL", who);
    oracle_problem op;
    oracle_geom g;
    stile_status rc = open_problem(p, who, &op, &g);
    if (rc != STILE_OK) return rc;
    const int64_t rows = op.batch * op.heads * op.grid[0] * op.grid[1] * op.grid[2], T = rows / (op.batch * op.heads);
    const int64_t k = op.key_tiles_k;
    unsigned char *chosen = malloc((size_t)T);
    if (!chosen) {
        close_problem(&op, &g);
        return check_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    }
    for (int64_t r = 0; r < rows && rc == STILE_OK; r++) {
        const double *s = scores + r * T;
        const int32_t *kt = key_tiles + r * k;
        memset(chosen, 0, (size_t)T);
        for (int64_t i = 0; i < k && rc == STILE_OK; i++) {
            if (kt[i] < 0 || kt[i] >= T || chosen[kt[i]])
                rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: row %lld entry %lld = %d: not a new tile of 0..%lld", who, (long long)r,
                                (long long)i, kt[i], (long long)T - 1);
            else chosen[kt[i]] = 1;
            /* largest first, ties to the lower tile (exact only when tol is 0) */
            if (rc == STILE_OK && i > 0 && tol == 0.0 &&
                !(s[kt[i - 1]] > s[kt[i]] || (s[kt[i - 1]] == s[kt[i]] && kt[i - 1] < kt[i])))
                rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: row %lld: entries %lld and %lld (tiles %d, %d) out of order", who,
                                (long long)r, (long long)i - 1, (long long)i, kt[i - 1], kt[i]);
        }
        double low = INFINITY; /* the smallest kept score against the largest left out */
        int32_t low_tile = -1;
        for (int64_t i = 0; i < k && rc == STILE_OK; i++)
            if (s[kt[i]] < low || (s[kt[i]] == low && kt[i] > low_tile)) low = s[kt[i]], low_tile = kt[i];
        for (int64_t j = 0; j < T && rc == STILE_OK; j++) {
            if (chosen[j]) continue;
            const int better = s[j] > low + tol || (tol == 0.0 && s[j] == low && j < low_tile);
            if (better)
                rc = check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: row %lld keeps tile %d (score %.17g) but leaves tile %lld (%.17g)", who,
                                (long long)r, low_tile, low, (long long)j, s[j]);
        }
    }
    free(chosen);
    close_problem(&op, &g);
    return rc;
}

stile_status stile_oracle_vsa_combine(const stile_problem *p, const stile_tensor *o, const stile_tensor *gate, const double *o_c,
                                      double *out)
{
    static const char who[] = "stile_oracle_vsa_combine";
    if (!o || !gate || !o_c || !out || !o->data || !gate->data)
        return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: o, gate, o_c or out is NULL", who);
    oracle_problem op;
    oracle_geom g;
    stile_status rc = open_problem(p, who, &op, &g);
    if (rc != STILE_OK) return rc;
    if (o->dtype != op.dtype || gate->dtype != op.dtype || o->bytes / stile_oracle_dtype_bytes(op.dtype) < (size_t)op.span[3] ||
        gate->bytes / stile_oracle_dtype_bytes(op.dtype) < (size_t)op.span[3]) {
        close_problem(&op, &g);
        return check_fail(STILE_ERR_INVALID_ARGUMENT, "%s: o and gate must be of the problem's dtype, over its o strides", who);
    }
    const int64_t B = op.batch, H = op.heads, D = op.head_dim, T = op.grid[0] * op.grid[1] * op.grid[2];
    const stile_strides *s = &op.strides[3];
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < op.video; i++)
            for (int64_t h = 0; h < H; h++) {
                const double *c = o_c + ((b * H + h) * T + tile_of(&g, g.natural[i])) * D;
                for (int64_t d = 0; d < D; d++) {
                    const int64_t e = b * s->batch + i * s->token + h * s->head + d * s->dim;
                    out[((b * op.video + i) * H + h) * D + d] =
                        stile_oracle_load(o->data, op.dtype, e) + stile_oracle_load(gate->data, op.dtype, e) * c[d];
                }
            }
    close_problem(&op, &g);
    return STILE_OK;
}
