/* The mask probe: with q = 0 every score is 0, so attention is uniform over exactly the attended keys.
 * The expected key counts come per axis from the contract's window rule, so every row is checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mask_probe.h"

enum { CH_TEXT = 0, CH_PAD = 1, CH_AXES = 2 }; /* channel of valid text keys, of padding keys, first axis channel */

static const char axis_name[3] = {'t', 'h', 'w'};

int probe_init(probe *pr, const stile_problem *p, char *why, size_t why_size)
{
    memset(pr, 0, sizeof *pr);
    pr->p = *p;
    const int64_t D = p->head_dim;
    if (D < CH_AXES + 3) {
        snprintf(why, why_size, "the mask probe needs head_dim >= %d", CH_AXES + 3);
        return -1;
    }
    pr->video = p->canvas[0] * p->canvas[1] * p->canvas[2];
    pr->tokens = pr->video + p->text;
    pr->text_valid = p->text - p->text_padding;
    int64_t next = CH_AXES;
    for (int a = 0; a < 3; a++) {
        pr->n[a] = (p->canvas[a] + p->tile[a] - 1) / p->tile[a];
        pr->nchan[a] = pr->n[a] < (D - CH_AXES) / 3 ? pr->n[a] : (D - CH_AXES) / 3;
        pr->chan0[a] = next;
        next += pr->nchan[a];
    }
    pr->natural = malloc((size_t)(pr->video > 0 ? pr->video : 1) * sizeof *pr->natural);
    if (!pr->natural) {
        snprintf(why, why_size, "the mask probe ran out of memory");
        return -1;
    }
    if (p->order == STILE_ORDER_TILED) { /* tiles in raster order, a tile's own extent in raster order */
        int64_t pos = 0;
        for (int64_t a = 0; a < pr->n[0]; a++)
            for (int64_t b = 0; b < pr->n[1]; b++)
                for (int64_t c = 0; c < pr->n[2]; c++)
                    for (int64_t t = a * p->tile[0]; t < p->canvas[0] && t < (a + 1) * p->tile[0]; t++)
                        for (int64_t h = b * p->tile[1]; h < p->canvas[1] && h < (b + 1) * p->tile[1]; h++)
                            for (int64_t w = c * p->tile[2]; w < p->canvas[2] && w < (c + 1) * p->tile[2]; w++)
                                pr->natural[pos++] = (t * p->canvas[1] + h) * p->canvas[2] + w;
    } else {
        for (int64_t i = 0; i < pr->video; i++) pr->natural[i] = i;
    }
    return 0;
}

void probe_free(probe *pr)
{
    free(pr->natural);
    pr->natural = NULL;
}

/* Channels move with (batch, head), so a kernel that reads another head's or batch entry's v fails. */
static int64_t rotation(const probe *pr, int64_t b, int64_t h) { return (b * pr->p.heads + h) % pr->p.head_dim; }

static void coords(const probe *pr, int64_t token, int64_t c[3])
{
    const int64_t n = pr->natural[token], H = pr->p.canvas[1], W = pr->p.canvas[2];
    c[0] = n / (H * W);
    c[1] = (n / W) % H;
    c[2] = n % W;
}

/* 0 and 1 are exact in every dtype: write their bit patterns directly. */
static void put(void *base, stile_dtype dt, int64_t i, int one)
{
    if (dt == STILE_DTYPE_F32) ((float *)base)[i] = one ? 1.0f : 0.0f;
    else ((uint16_t *)base)[i] = !one ? 0 : dt == STILE_DTYPE_F16 ? 0x3C00 : 0x3F80;
}

void probe_fill(const probe *pr, void *q, void *v)
{
    const stile_problem *p = &pr->p;
    const stile_strides *sq = &p->q, *sv = &p->v;
    for (int64_t b = 0; b < p->batch; b++)
        for (int64_t j = 0; j < pr->tokens; j++) {
            int64_t hot[3] = {-1, -1, -1}; /* channels set to 1 for key j */
            if (j >= pr->video) {
                hot[0] = j - pr->video < pr->text_valid ? CH_TEXT : CH_PAD;
            } else {
                int64_t c[3];
                coords(pr, j, c);
                for (int a = 0; a < 3; a++) hot[a] = pr->chan0[a] + (c[a] / p->tile[a]) % pr->nchan[a];
            }
            for (int64_t h = 0; h < p->heads; h++) {
                const int64_t rot = rotation(pr, b, h);
                for (int64_t d = 0; d < p->head_dim; d++) {
                    put(q, p->dtype, b * sq->batch + j * sq->token + h * sq->head + d * sq->dim, 0);
                    const int64_t ch = (d - rot + p->head_dim) % p->head_dim; /* channel stored at element d */
                    put(v, p->dtype, b * sv->batch + j * sv->token + h * sv->head + d * sv->dim,
                        ch == hot[0] || ch == hot[1] || ch == hot[2]);
                }
            }
        }
}

/* The contract's window on one axis: key tiles [*s, *e) of query tile q. */
static void window_range(int64_t q, int64_t w, int64_t n, int64_t *s, int64_t *e)
{
    if (w >= n) {
        *s = 0;
        *e = n;
        return;
    }
    int64_t start = q - w / 2;
    if (start < 0) start = 0;
    if (start > n - w) start = n - w;
    *s = start;
    *e = start + w;
}

/* Tokens of key tiles [s, e) along axis a: the last tile of an axis may be partial. */
static int64_t tokens_of(const stile_problem *p, int a, int64_t s, int64_t e)
{
    const int64_t end = e * p->tile[a] < p->canvas[a] ? e * p->tile[a] : p->canvas[a];
    return end - s * p->tile[a];
}

/* Keys attended by a video query of batch entry b, head h in tile qc (coordinates) whose key tiles the
 * caller chose: the listed tiles, each once, and the valid text keys; per channel how many carry it. */
static int64_t expect_listed(const probe *pr, int64_t b, int64_t h, const int64_t qc[3], double *m)
{
    const stile_problem *p = &pr->p;
    const int64_t tiles = pr->n[0] * pr->n[1] * pr->n[2], k = p->key_tiles_k;
    const int32_t *row = pr->key_tiles + ((b * p->heads + h) * tiles + (qc[0] * pr->n[1] + qc[1]) * pr->n[2] + qc[2]) * k;
    int64_t n = pr->text_valid;
    memset(m, 0, (size_t)p->head_dim * sizeof *m);
    m[CH_TEXT] = (double)pr->text_valid;
    for (int64_t i = 0; i < k; i++) {
        int seen = row[i] < 0;
        for (int64_t j = 0; j < i && !seen; j++) seen = row[j] == row[i];
        if (seen) continue;
        const int64_t c[3] = {row[i] / (pr->n[1] * pr->n[2]), row[i] / pr->n[2] % pr->n[1], row[i] % pr->n[2]};
        int64_t size = 1;
        for (int a = 0; a < 3; a++) size *= tokens_of(p, a, c[a], c[a] + 1);
        for (int a = 0; a < 3; a++) m[pr->chan0[a] + c[a] % pr->nchan[a]] += (double)size;
        n += size;
    }
    return n;
}

/* Keys attended by query `token` of batch entry b, head h, and per channel how many of them carry it;
 * s and e: the window's key tiles per axis (the whole grid for text and listed tiles). */
static int64_t expect(const probe *pr, int64_t b, int64_t h, int64_t token, double *m, int64_t s[3], int64_t e[3])
{
    const stile_problem *p = &pr->p;
    const int64_t *win = p->head_windows ? p->head_windows[h] : p->window;
    int64_t cover[3];
    if (token < pr->video && p->key_tiles_k) {
        int64_t c[3];
        coords(pr, token, c);
        for (int a = 0; a < 3; a++) s[a] = 0, e[a] = pr->n[a], c[a] /= p->tile[a];
        return expect_listed(pr, b, h, c, m);
    }
    if (token < pr->video) {
        int64_t c[3];
        coords(pr, token, c);
        for (int a = 0; a < 3; a++) window_range(c[a] / p->tile[a], win[a], pr->n[a], &s[a], &e[a]);
    } else { /* text queries attend every video key */
        for (int a = 0; a < 3; a++) s[a] = 0, e[a] = pr->n[a];
    }
    for (int a = 0; a < 3; a++) cover[a] = tokens_of(p, a, s[a], e[a]);
    memset(m, 0, (size_t)p->head_dim * sizeof *m);
    m[CH_TEXT] = (double)pr->text_valid; /* valid text keys: everyone; padding keys: nobody */
    for (int a = 0; a < 3; a++) {
        const int64_t others = cover[(a + 1) % 3] * cover[(a + 2) % 3];
        for (int64_t k = s[a]; k < e[a]; k++) m[pr->chan0[a] + k % pr->nchan[a]] += (double)(tokens_of(p, a, k, k + 1) * others);
    }
    return cover[0] * cover[1] * cover[2] + pr->text_valid;
}

static const char *channel_name(const probe *pr, int64_t ch, char *buf, size_t size)
{
    if (ch == CH_TEXT) return "valid text keys";
    if (ch == CH_PAD) return "padding keys";
    for (int a = 0; a < 3; a++)
        if (ch >= pr->chan0[a] && ch < pr->chan0[a] + pr->nchan[a]) {
            snprintf(buf, size, "keys of %c tile %lld%s", axis_name[a], (long long)(ch - pr->chan0[a]),
                     pr->n[a] > pr->nchan[a] ? " (mod channels)" : "");
            return buf;
        }
    return "unused";
}

int64_t probe_check(const probe *pr, const void *o, const float *lse, stile_conf_result *res)
{
    const stile_problem *p = &pr->p;
    const stile_strides *so = &p->o;
    const int64_t D = p->head_dim, S = pr->tokens;
    /* o = m/n rounded once to the output dtype (half an ulp), with room for a reciprocal or two */
    const double u = p->dtype == STILE_DTYPE_F32 ? 0x1p-22 : p->dtype == STILE_DTYPE_F16 ? 0x1p-11 : 0x1p-8;
    const size_t es = stile_dtype_size(p->dtype);
    double *m = malloc((size_t)D * sizeof *m);
    if (!m) {
        snprintf(res->reason, sizeof res->reason, "the mask probe ran out of memory");
        return -1;
    }
    int64_t bad = 0;
    for (int64_t b = 0; b < p->batch; b++)
        for (int64_t h = 0; h < p->heads; h++) {
            const int64_t rot = rotation(pr, b, h);
            for (int64_t t = 0; t < S; t++) {
                int64_t s[3], e[3];
                const int64_t n = expect(pr, b, h, t, m, s, e);
                /* a row of no keys (an empty list, no valid text): o = 0 and lse = -inf exactly */
                const double l = lse[(b * p->heads + h) * S + t], ln = n ? log((double)n) : -INFINITY;
                const double lse_err = n ? fabs(l - ln) : l == ln ? 0 : INFINITY;
                const double lse_ratio = n ? lse_err / (0.4 * log1p(1.0 / (double)n)) : lse_err;
                int row_bad = !(lse_ratio <= 1), worst_ch = -1;
                double worst = 0, worst_got = 0;
                if (!isfinite(l) && n) res->check.nonfinite++;
                else if (lse_err > res->check.lse_max_abs_error) res->check.lse_max_abs_error = lse_err;
                if (!(lse_ratio <= res->probe_lse_ratio)) res->probe_lse_ratio = isnan(lse_ratio) ? INFINITY : lse_ratio;
                for (int64_t c = 0; c < D; c++) {
                    float ov;
                    const int64_t d = (c + rot) % D;
                    stile_convert((const char *)o + (size_t)(b * so->batch + t * so->token + h * so->head + d * so->dim) * es,
                                  p->dtype, &ov, STILE_DTYPE_F32, 1);
                    res->check.elements++;
                    if (!isfinite(ov)) res->check.nonfinite++;
                    const double got = n ? (double)ov * (double)n : (double)ov * 1e6, err = fabs(got - m[c]); /* n = 0: o must be 0 */
                    const double ratio = err / (1.5 * u * m[c] + 1e-3);
                    if (fabs((double)ov - m[c] / (double)n) > res->check.max_abs_error)
                        res->check.max_abs_error = fabs((double)ov - m[c] / (double)n);
                    if (!(ratio <= worst)) {
                        worst = isnan(ratio) ? INFINITY : ratio;
                        worst_ch = (int)c;
                        worst_got = got;
                    }
                }
                if (worst > res->probe_channel_ratio) res->probe_channel_ratio = worst;
                row_bad |= worst > 1;
                if (!row_bad) continue;
                if (bad++ == 0) {
                    char where[256], chn[64], msg[640];
                    if (t < pr->video) {
                        int64_t c[3];
                        coords(pr, t, c);
                        snprintf(where, sizeof where, "video (%lld,%lld,%lld), key tiles t%lld-%lld h%lld-%lld w%lld-%lld",
                                 (long long)c[0], (long long)c[1], (long long)c[2], (long long)s[0], (long long)e[0] - 1,
                                 (long long)s[1], (long long)e[1] - 1, (long long)s[2], (long long)e[2] - 1);
                    } else {
                        snprintf(where, sizeof where, "text %lld", (long long)(t - pr->video));
                    }
                    snprintf(msg, sizeof msg,
                             "row %lld (batch %lld, head %lld, %s): lse %.7g = ln(%.2f) for %lld keys; %s %.2f, want %.0f",
                             (long long)t, (long long)b, (long long)h, where, l, exp(l), (long long)n,
                             worst_ch >= 0 ? channel_name(pr, worst_ch, chn, sizeof chn) : "o", worst_got,
                             worst_ch >= 0 ? m[worst_ch] : 0.0);
                    snprintf(res->reason, sizeof res->reason, "%.255s", msg);
                }
            }
        }
    free(m);
    res->probe_bad_rows = bad;
    res->check.passed = bad == 0 && res->check.nonfinite == 0;
    return bad;
}
