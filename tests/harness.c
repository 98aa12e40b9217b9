/* Test harness (see harness.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char last_log[512];

static void sink(void *user, stile_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    snprintf(last_log, sizeof last_log, "%s", msg);
    if (getenv("STILE_TEST_VERBOSE")) fprintf(stderr, "  log: %s\n", msg);
}

void harness_log_init(void) { stile_log_set(sink, NULL, STILE_LOG_ERROR); }
const char *harness_last_log(void) { return last_log; }

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void harness_fill(void *dst, stile_dtype dt, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        double u1 = ((double)(splitmix(&s) >> 11) + 1.0) * 0x1.0p-53, u2 = (double)(splitmix(&s) >> 11) * 0x1.0p-53;
        float f = (float)(sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2));
        stile_convert(&f, STILE_DTYPE_F32, (char *)dst + (size_t)i * stile_dtype_size(dt), dt, 1);
    }
}

/* Elements a tensor with these strides spans (max offset + 1). */
static int64_t span_of(const stile_strides *s, const int64_t ext[4])
{
    return s->batch * (ext[0] - 1) + s->token * (ext[1] - 1) + s->head * (ext[2] - 1) + s->dim * (ext[3] - 1) + 1;
}

static int guard_intact(const unsigned char *buf, size_t bytes)
{
    for (size_t i = 0; i < GUARD_BYTES; i++)
        if (buf[bytes + i] != GUARD_BYTE) return 0;
    return 1;
}

int harness_passed(const harness_result *r)
{
    return r->status == STILE_OK && r->check.passed && r->guard_ok && r->gaps_ok && r->lse_checked;
}

harness_result harness_run(stile_device *dev, const stile_problem *p, uint64_t seed, const char *label)
{
    harness_result res = {.status = STILE_OK};
    stile_plan *plan = NULL;
    res.status = stile_plan_create(dev, p, &plan);
    if (res.status != STILE_OK) {
        printf("  [%s] plan_create: %s (%s)\n", label, stile_status_string(res.status), harness_last_log());
        return res;
    }
    stile_problem rp;
    stile_plan_get_problem(plan, &rp); /* strides resolved, batch >= 1 */
    stile_plan_info info;
    stile_plan_get_info(plan, &info);
    const int64_t S = info.tokens, ext[4] = {rp.batch, S, rp.heads, rp.head_dim};
    const size_t es = stile_dtype_size(rp.dtype);
    const stile_strides *st[4] = {&rp.q, &rp.k, &rp.v, &rp.o};
    unsigned char *buf[4], *copy[3];
    size_t bytes[4];
    for (int i = 0; i < 4; i++) {
        bytes[i] = (size_t)span_of(st[i], ext) * es;
        buf[i] = malloc(bytes[i] + GUARD_BYTES);
        memset(buf[i] + bytes[i], GUARD_BYTE, GUARD_BYTES);
    }
    for (int i = 0; i < 3; i++) {
        harness_fill(buf[i], rp.dtype, (int64_t)(bytes[i] / es), seed + (uint64_t)i);
        copy[i] = malloc(bytes[i]);
        memcpy(copy[i], buf[i], bytes[i]);
    }
    memset(buf[3], 0xff, bytes[3]); /* poison: NaN in every dtype */
    const size_t lse_bytes = (size_t)(rp.batch * rp.heads * S) * sizeof(float);
    unsigned char *lse = malloc(lse_bytes + GUARD_BYTES);
    memset(lse, 0xff, lse_bytes);
    memset(lse + lse_bytes, GUARD_BYTE, GUARD_BYTES);

    stile_io io = {.q = {buf[0], bytes[0], rp.dtype}, .k = {buf[1], bytes[1], rp.dtype}, .v = {buf[2], bytes[2], rp.dtype},
                   .o = {buf[3], bytes[3], rp.dtype}, .lse = {lse, lse_bytes, STILE_DTYPE_F32}};
    res.status = stile_plan_execute(plan, &io);
    if (res.status == STILE_OK) {
        double *ref = malloc((size_t)(rp.batch * S * rp.heads * rp.head_dim) * sizeof *ref);
        double *ref_lse = malloc((size_t)(rp.batch * rp.heads * S) * sizeof *ref_lse);
        if (stile_oracle(p, &io, NULL, 0, ref, ref_lse) == STILE_OK &&
            stile_check_output(p, &io, NULL, 0, ref, ref_lse, &res.check) == STILE_OK)
            res.lse_checked = 1;
        free(ref);
        free(ref_lse);
        res.guard_ok = guard_intact(lse, lse_bytes);
        for (int i = 0; i < 4; i++) res.guard_ok &= guard_intact(buf[i], bytes[i]);
        for (int i = 0; i < 3; i++) res.guard_ok &= memcmp(copy[i], buf[i], bytes[i]) == 0;
        /* Every element of o's buffer that no index reaches must still be poison. */
        unsigned char *reached = calloc(bytes[3] / es, 1);
        for (int64_t b = 0; b < ext[0]; b++)
            for (int64_t t = 0; t < ext[1]; t++)
                for (int64_t h = 0; h < ext[2]; h++)
                    for (int64_t d = 0; d < ext[3]; d++) reached[b * rp.o.batch + t * rp.o.token + h * rp.o.head + d * rp.o.dim] = 1;
        res.gaps_ok = 1;
        for (size_t e = 0; e < bytes[3] / es; e++)
            for (size_t c = 0; !reached[e] && c < es; c++) res.gaps_ok &= buf[3][e * es + c] == 0xff;
        free(reached);
    }
    printf("  [%s] seed %llu: %s NMSE %.3e (bound %.0e) max|err| %.3e lse %.3e nonfinite %lld guards %s gaps %s\n", label,
           (unsigned long long)seed, stile_dtype_name(rp.dtype), res.check.nmse, res.check.threshold, res.check.max_abs_error,
           res.check.lse_max_abs_error, (long long)res.check.nonfinite, res.guard_ok ? "ok" : "BROKEN",
           res.gaps_ok ? "ok" : "WRITTEN");
    for (int i = 0; i < 4; i++) free(buf[i]);
    for (int i = 0; i < 3; i++) free(copy[i]);
    free(lse);
    stile_plan_destroy(&plan);
    return res;
}
