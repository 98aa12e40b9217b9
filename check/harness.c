/* The conformance harness (stile_check.h): seeded inputs, guard bands, poisoned outputs, determinism,
 * and the verdict of the oracle or the mask probe. */
#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_internal.h"
#include "conf_buffers.h"
#include "mask_probe.h"

const char *stile_conf_status_name(stile_conf_status s)
{
    switch (s) {
    case STILE_CONF_PASS: return "pass";
    case STILE_CONF_FAIL: return "fail";
    case STILE_CONF_UNSUPPORTED: return "unsupported";
    case STILE_CONF_MISTRUSTED: return "mistrusted";
    }
    return "?";
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void stile_conf_fill_normal_range(void *dst, stile_dtype dt, int64_t i0, int64_t i1, uint64_t seed)
{
    /* splitmix64 advances its state by a constant, so element i0 (even) starts from state seed + i0 * gamma:
     * any range continues the one stream that a fill from 0 would produce */
    uint64_t s = seed + (uint64_t)i0 * 0x9e3779b97f4a7c15u;
    float chunk[256];
    const size_t es = stile_dtype_size(dt);
    for (int64_t i = i0; i < i1; i += 256) {
        int64_t m = i1 - i < 256 ? i1 - i : 256;
        for (int64_t j = 0; j < m; j += 2) {
            double u1 = ((double)(splitmix(&s) >> 11) + 1.0) * 0x1.0p-53, u2 = (double)(splitmix(&s) >> 11) * 0x1.0p-53;
            double r = sqrt(-2.0 * log(u1));
            chunk[j] = (float)(r * cos(2 * M_PI * u2));
            if (j + 1 < m) chunk[j + 1] = (float)(r * sin(2 * M_PI * u2));
        }
        stile_convert(chunk, STILE_DTYPE_F32, (char *)dst + (size_t)i * es, dt, (size_t)m);
    }
}

typedef struct fill_job {
    void *dst;
    stile_dtype dt;
    int64_t i0, i1;
    uint64_t seed;
} fill_job;

static void *fill_worker(void *arg)
{
    fill_job *j = arg;
    stile_conf_fill_normal_range(j->dst, j->dt, j->i0, j->i1, j->seed);
    return NULL;
}

void stile_conf_fill_normal(void *dst, stile_dtype dt, int64_t n, uint64_t seed)
{
    enum { MAX_THREADS = 32 };
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const int nt = n < ((int64_t)1 << 20) ? 1 : cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    pthread_t th[MAX_THREADS];
    int created[MAX_THREADS] = {0};
    fill_job jobs[MAX_THREADS];
    const int64_t per = ((n / nt + 255) / 256) * 256; /* block starts stay multiples of 256, so even */
    for (int t = 0; t < nt && (int64_t)t * per < n; t++) {
        const int64_t i0 = (int64_t)t * per, i1 = i0 + per < n ? i0 + per : n;
        jobs[t] = (fill_job){dst, dt, i0, i1, seed};
        created[t] = i1 < n && pthread_create(&th[t], NULL, fill_worker, &jobs[t]) == 0;
        if (!created[t]) fill_worker(&jobs[t]); /* the last block, or no thread to be had: here */
    }
    for (int t = 0; t < nt; t++)
        if (created[t]) pthread_join(th[t], NULL);
}

int64_t *stile_conf_sample_rows(int64_t tokens, int64_t want, uint64_t seed, int64_t *nrows)
{
    *nrows = 0;
    if (want <= 0 || want >= tokens || tokens <= 4096) return NULL;
    int64_t *rows = malloc((size_t)want * sizeof *rows);
    if (!rows) return NULL;
    uint64_t s = seed ^ 0x5851f42d4c957f2du;
    int64_t off = (int64_t)(splitmix(&s) % (uint64_t)(tokens / want));
    for (int64_t i = 0; i < want; i++) rows[i] = (i * tokens) / want + (i == 0 ? 0 : off);
    rows[want - 1] = tokens - 1;
    *nrows = want;
    return rows;
}

/* Output mostly exact zeros, or (nearly) constant while the reference varies: the check cannot be trusted. */
static int degenerate(const stile_problem *p, const stile_io *io, const int64_t *rows, int64_t nrows, const double *ref,
                      char *why, size_t why_size)
{
    const stile_strides *so = &p->o;
    int64_t zeros = 0, n = 0;
    double omin = INFINITY, omax = -INFINITY, rmin = INFINITY, rmax = -INFINITY;
    for (int64_t b = 0; b < p->batch; b++)
        for (int64_t ri = 0; ri < nrows; ri++) {
            int64_t t = rows ? rows[ri] : ri;
            for (int64_t h = 0; h < p->heads; h++)
                for (int64_t d = 0; d < p->head_dim; d++) {
                    float o;
                    stile_convert((const char *)io->o.data + (size_t)(b * so->batch + t * so->token + h * so->head + d * so->dim) *
                                                                stile_dtype_size(p->dtype),
                                  p->dtype, &o, STILE_DTYPE_F32, 1);
                    double r = ref[((b * nrows + ri) * p->heads + h) * p->head_dim + d];
                    zeros += o == 0.0f;
                    n++;
                    omin = fmin(omin, o); omax = fmax(omax, o);
                    rmin = fmin(rmin, r); rmax = fmax(rmax, r);
                }
        }
    if (2 * zeros > n) {
        snprintf(why, why_size, "%lld of %lld output elements are exactly 0", (long long)zeros, (long long)n);
        return 1;
    }
    if (omax - omin < 1e-3 * (rmax - rmin)) {
        snprintf(why, why_size, "output is constant (range %.3g) where the oracle's ranges %.3g", omax - omin, rmax - rmin);
        return 1;
    }
    return 0;
}

/* One case through the harness: checked against the oracle (sample_rows as in stile_conf_run) or the probe. */
static stile_conf_result run_case(stile_device *dev, const stile_problem *p_in, stile_conf_layout layout, uint64_t seed, int64_t sample_rows,
                            int use_probe)
{
    stile_conf_result res = {.status = STILE_CONF_FAIL, .seed = seed, .probe = use_probe};
    stile_plan *plan = NULL;
    res.api = stile_plan_create(dev, p_in, &plan);
    if (res.api == STILE_ERR_UNSUPPORTED) {
        res.status = STILE_CONF_UNSUPPORTED;
        res.unsupported = 1;
        snprintf(res.reason, sizeof res.reason, "%s", stile_last_error()[0] ? stile_last_error() : "unsupported");
        return res;
    }
    if (res.api != STILE_OK) {
        snprintf(res.reason, sizeof res.reason, "plan: %s (%s)", stile_status_string(res.api), stile_last_error());
        return res;
    }
    stile_plan_info pinfo;
    if (stile_plan_get_info(plan, &pinfo) == STILE_OK) snprintf(res.path, sizeof res.path, "%s", pinfo.path);
    /* Batch, tokens and strides by the contract, worked out here rather than taken from the plan: a
     * wrong default in the library must show up, not be followed by the harness too. */
    stile_problem p = *p_in;
    conf_contract_problem(&p);
    const int64_t S = p.canvas[0] * p.canvas[1] * p.canvas[2] + p.text, ext[4] = {p.batch, S, p.heads, p.head_dim};
    const size_t es = stile_dtype_size(p.dtype);
    const stile_strides *st[4] = {&p.q, &p.k, &p.v, &p.o};
    const int packed = layout == STILE_CONF_PACKED_QKV;
    const int nin = packed ? 1 : 3;
    /* STILE_CONF_UNALIGNED: q, k, v and o start 4 bytes past the buffers' (aligned) starts, so no tensor is
     * 16-byte aligned: paths that need it must fall back, and those bytes must stay untouched. (4, not
     * one 16-bit element: the Vulkan backend binds 16-bit o from 4-byte boundaries and says so.) */
    const size_t lead = layout == STILE_CONF_UNALIGNED ? 4 : 0;
    size_t span[4];
    conf_mirror m[5] = {{0}}; /* q (or packed qkv), k, v, o, lse */
    conf_mirror kt = {0}, ke = {0}; /* caller-chosen key tiles and their error count (key_tiles_k) */
    unsigned char *back = NULL, *o1 = NULL, *l1 = NULL;
    double *ref = NULL, *ref_lse = NULL;
    probe pr = {0};
    if (use_probe) sample_rows = 0;
    int64_t nrows = 0, *rows = stile_conf_sample_rows(S, sample_rows, seed, &nrows);
    const int64_t nr = rows ? nrows : S;
    const size_t lse_bytes = (size_t)(p.batch * p.heads * S) * sizeof(float);
    const size_t hd = (size_t)(p.heads * p.head_dim) * es;
    for (int i = 0; i < 4; i++) span[i] = (size_t)conf_span_of(st[i], ext) * es;
    int ok = 1;
    for (int i = 0; i < nin && ok; i++) {
        ok = conf_mirror_init(dev, &m[i], lead + (packed ? span[0] + 2 * hd : span[i]));
        if (ok) stile_conf_fill_normal(m[i].host, p.dtype, (int64_t)(m[i].bytes / es), seed + (uint64_t)i);
        ok = ok && conf_up(&m[i]);
    }
    ok = ok && conf_mirror_init(dev, &m[3], lead + span[3]) && conf_mirror_init(dev, &m[4], lse_bytes);
    if (ok && p.key_tiles_k) {
        ok = conf_mirror_init(dev, &kt, conf_key_tiles_bytes(&p)) && conf_mirror_init(dev, &ke, sizeof(int32_t));
        if (ok) {
            conf_key_tiles_fill(&p, seed + 3, (int32_t *)kt.host);
            memset(ke.host, 0, sizeof(int32_t));
        }
        ok = ok && conf_up(&kt) && conf_up(&ke);
    }
    size_t most = 0;
    for (int i = 0; i < 5; i++) most = m[i].bytes > most ? m[i].bytes : most;
    if (kt.bytes > most) most = kt.bytes; /* the key tiles come back through it too (ke's 4 bytes are less) */
    back = malloc(most + STILE_CONF_GUARD_BYTES);
    o1 = malloc(span[3]);
    l1 = malloc(lse_bytes);
    if (!use_probe) {
        ref = malloc((size_t)(p.batch * nr * p.heads * p.head_dim) * sizeof *ref);
        ref_lse = malloc((size_t)(p.batch * p.heads * nr) * sizeof *ref_lse);
    }
    if (!ok || !back || !o1 || !l1 || (!use_probe && (!ref || !ref_lse)) || (sample_rows > 0 && S > 4096 && !rows)) {
        snprintf(res.reason, sizeof res.reason, "the harness ran out of memory");
        goto done;
    }
    if (use_probe) { /* q = 0 and v's channels over the seeded inputs (k stays seeded) */
        if (probe_init(&pr, &p, res.reason, sizeof res.reason) != 0) goto done;
        pr.key_tiles = (const int32_t *)kt.host;
        probe_fill(&pr, m[0].host + lead, packed ? m[0].host + lead + 2 * hd : m[2].host + lead);
        if (!conf_up(&m[0]) || (!packed && !conf_up(&m[2]))) {
            snprintf(res.reason, sizeof res.reason, "upload failed (%s)", stile_last_error());
            goto done;
        }
    }
    stile_io io = conf_device_io(m, packed, lead, hd, span, lse_bytes, p.dtype);
    stile_exec_info xi;
    memset(&xi, 0, sizeof xi);
    io.info = &xi; /* what each execution ran: the first one's path is the result's */
    if (p.key_tiles_k) {
        io.key_tiles = stile_tensor_at(stile_buffer_data(kt.dev), kt.bytes, STILE_DTYPE_I32);
        io.key_tile_errors = stile_tensor_at(stile_buffer_data(ke.dev), ke.bytes, STILE_DTYPE_I32);
    }
    const int runs = use_probe ? 1 : 2; /* determinism is the oracle cases' business; a probe run can be big */
    for (int run = 0; run < runs; run++) {
        /* poisoned output (NaN in every dtype) before each run; the first run is timed */
        if (!conf_poison(&m[3]) || !conf_poison(&m[4])) {
            snprintf(res.reason, sizeof res.reason, "upload failed (%s)", stile_last_error());
            goto done;
        }
        double t0 = conf_now_ms();
        res.api = stile_plan_execute(plan, &io);
        if (run == 0) res.ms = conf_now_ms() - t0;
        if (res.api != STILE_OK) {
            snprintf(res.reason, sizeof res.reason, "execute: %s (%s)", stile_status_string(res.api), stile_last_error());
            goto done;
        }
        if (run == 0 && xi.path[0]) snprintf(res.path, sizeof res.path, "%s", xi.path);
        if (!conf_down(&m[3], m[3].host) || !conf_down(&m[4], m[4].host)) {
            snprintf(res.reason, sizeof res.reason, "download failed (%s)", stile_last_error());
            goto done;
        }
        if (run == 0) {
            memcpy(o1, m[3].host + lead, span[3]);
            memcpy(l1, m[4].host, lse_bytes);
        }
    }
    res.deterministic = use_probe || (memcmp(o1, m[3].host + lead, span[3]) == 0 && memcmp(l1, m[4].host, lse_bytes) == 0);
    res.guard_ok = conf_guard_intact(m[3].host, lead + span[3]) && conf_guard_intact(m[4].host, lse_bytes);
    for (size_t c = 0; c < lead; c++) res.guard_ok &= m[3].host[c] == 0xff; /* nothing written before o */
    for (int i = 0; i < nin; i++) { /* inputs unchanged, their guards too */
        res.guard_ok &= conf_down(&m[i], back) && memcmp(back, m[i].host, m[i].bytes + STILE_CONF_GUARD_BYTES) == 0;
    }
    if (p.key_tiles_k) { /* the key tiles unchanged, and no entry counted as out of range */
        res.guard_ok &= conf_down(&kt, back) && memcmp(back, kt.host, kt.bytes + STILE_CONF_GUARD_BYTES) == 0;
        res.guard_ok &= conf_down(&ke, back) && memcmp(back, ke.host, ke.bytes + STILE_CONF_GUARD_BYTES) == 0;
    }
    /* every element of o's buffer that no index reaches must still be poison */
    res.gaps_ok = conf_gaps_poisoned(m[3].host + lead, span[3], &p.o, ext, es) == 1;
    /* the oracle reads the host copies */
    unsigned char *hq = m[0].host + lead;
    stile_io host = {.struct_size = sizeof host, .q = stile_tensor_at(hq, span[0], p.dtype),
                     .k = stile_tensor_at(packed ? hq + hd : m[1].host + lead, span[1], p.dtype),
                     .v = stile_tensor_at(packed ? hq + 2 * hd : m[2].host + lead, span[2], p.dtype),
                     .o = stile_tensor_at(m[3].host + lead, span[3], p.dtype),
                     .lse = stile_tensor_at(m[4].host, lse_bytes, STILE_DTYPE_F32),
                     .key_tiles = stile_tensor_at(kt.host, kt.bytes, STILE_DTYPE_I32)};
    res.rows_checked = nr;
    if (use_probe) {
        if (probe_check(&pr, m[3].host + lead, (const float *)m[4].host, &res) < 0) goto done;
        if (res.check.passed && res.guard_ok && res.gaps_ok) res.status = STILE_CONF_PASS;
        else if (res.check.passed) /* the probe's reason names the first bad row; otherwise say what broke */
            snprintf(res.reason, sizeof res.reason, "%s", !res.guard_ok ? "a guard band or an input changed" : "o written outside the tensor");
        goto done;
    }
    if (stile_oracle(p_in, &host, rows, nrows, ref, ref_lse) != STILE_OK ||
        stile_check_output(p_in, &host, rows, nrows, ref, ref_lse, &res.check) != STILE_OK) {
        snprintf(res.reason, sizeof res.reason, "the oracle could not run (%s)", stile_last_error());
        goto done;
    }
    char why[200];
    if (degenerate(&p, &host, rows, nrows, ref, why, sizeof why)) {
        res.status = STILE_CONF_MISTRUSTED;
        snprintf(res.reason, sizeof res.reason, "%s", why);
    } else if (!res.check.passed || !res.guard_ok || !res.gaps_ok || !res.deterministic) {
        snprintf(res.reason, sizeof res.reason, "%s%s%s%s%s", res.check.nonfinite ? "NaN/Inf in the output; " : "",
                 res.check.nmse > res.check.threshold ? "NMSE over the bound; " : "",
                 res.check.passed || res.check.nmse > res.check.threshold || res.check.nonfinite ? "" : "LSE off; ",
                 !res.guard_ok ? "a guard band or an input changed; " : !res.gaps_ok ? "o written outside the tensor; " : "",
                 !res.deterministic ? "two runs differ bitwise" : "");
    } else {
        res.status = STILE_CONF_PASS;
    }
done:
    probe_free(&pr);
    for (int i = 0; i < 5; i++) conf_mirror_free(&m[i]);
    conf_mirror_free(&kt);
    conf_mirror_free(&ke);
    free(back); free(o1); free(l1); free(ref); free(ref_lse); free(rows);
    stile_plan_destroy(&plan);
    return res;
}

stile_conf_result stile_conf_run(stile_device *dev, const stile_problem *p, stile_conf_layout layout, uint64_t seed, int64_t sample_rows)
{
    return run_case(dev, p, layout, seed, sample_rows, 0);
}

stile_conf_result stile_conf_run_probe(stile_device *dev, const stile_problem *p, stile_conf_layout layout, uint64_t seed)
{
    return run_case(dev, p, layout, seed, 0, 1);
}

int stile_conf_unsupported_expected(const stile_conf_case *c, const char *backend)
{
    const size_t n = strlen(backend);
    for (const char *s = c->unsupported_on; s && *s; s += strcspn(s, ","), s += *s == ',') {
        if (strncmp(s, backend, n) == 0 && (s[n] == ',' || s[n] == 0)) return 1;
    }
    return 0;
}

stile_conf_result stile_conf_run_variant(stile_device *dev, const stile_conf_variant *v, uint64_t seed)
{
    stile_conf_result r = v->backward ? stile_conf_run_backward(dev, &v->p, v->c->layout, seed)
                          : v->probe  ? stile_conf_run_probe(dev, &v->p, v->c->layout, seed)
                                      : stile_conf_run(dev, &v->p, v->c->layout, seed, v->c->sample_rows);
    r.backward = v->backward;
    stile_device_info info;
    if (stile_device_get_info(dev, &info) != STILE_OK) info.backend[0] = 0;
    const stile_conf_case pending = {.unsupported_on = STILE_CONF_BACKWARD_PENDING};
    if (r.status == STILE_CONF_UNSUPPORTED && !stile_conf_unsupported_expected(v->c, info.backend) &&
        !(v->backward && stile_conf_unsupported_expected(&pending, info.backend))) {
        /* a backend that refuses what the table expects of it fails, or one that supports nothing would pass */
        char why[sizeof r.reason];
        snprintf(why, sizeof why, "%s", r.reason);
        snprintf(r.reason, sizeof r.reason, "unsupported, and the case table expects %s to run it: %.180s", info.backend, why);
        r.status = STILE_CONF_FAIL;
    }
    return r;
}

void stile_conf_summary(const stile_conf_result *r, char *buf, size_t size)
{
    if (r->unsupported)
        snprintf(buf, size, "not run");
    else if (r->probe)
        snprintf(buf, size, "probe: %lld bad rows, lse %.2g, channels %.2g of bound", (long long)r->probe_bad_rows,
                 r->probe_lse_ratio, r->probe_channel_ratio);
    else
        snprintf(buf, size, "%sNMSE %.2e (bound %.0e)", r->backward ? "gradients: worst " : "", r->check.nmse, r->check.threshold);
}
