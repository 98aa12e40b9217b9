/* The conformance harness's backward cases (stile_conf_run_backward): the forward with its LSE, then
 * stile_plan_backward twice on poisoned gradients, against the fp64 oracle's gradients
 * (stile_oracle_backward) with the forward's NMSE bound per gradient; guard bands after every buffer,
 * every input unchanged, stride gaps still poisoned, and the two runs bitwise the same. The oracle's
 * gradients cost tokens^2 per head, so only cases small enough to check every row take this path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_buffers.h"
#include "oracle_problem.h"

stile_conf_result stile_conf_run_backward(stile_device *dev, const stile_problem *p_in, stile_conf_layout layout, uint64_t seed)
{
    stile_conf_result res = {.status = STILE_CONF_FAIL, .seed = seed};
    stile_plan *plan = NULL;
    res.api = stile_plan_create(dev, p_in, &plan);
    if (res.api != STILE_OK) {
        res.status = res.api == STILE_ERR_UNSUPPORTED ? STILE_CONF_UNSUPPORTED : STILE_CONF_FAIL;
        res.unsupported = res.api == STILE_ERR_UNSUPPORTED;
        snprintf(res.reason, sizeof res.reason, "plan: %s (%s)", stile_status_string(res.api), stile_last_error());
        return res;
    }
    if (stile_plan_backward_flops(plan) == 0) { /* no backward pass here: say so before any forward work */
        const stile_grad_io none = {.struct_size = sizeof none};
        res.api = stile_plan_backward(plan, &none);
        res.status = res.api == STILE_ERR_UNSUPPORTED ? STILE_CONF_UNSUPPORTED : STILE_CONF_FAIL;
        res.unsupported = res.api == STILE_ERR_UNSUPPORTED;
        snprintf(res.reason, sizeof res.reason, "backward: %s (%s)", stile_status_string(res.api), stile_last_error());
        stile_plan_destroy(&plan);
        return res;
    }
    stile_problem p = *p_in;
    conf_contract_problem(&p);
    const int64_t S = p.canvas[0] * p.canvas[1] * p.canvas[2] + p.text, ext[4] = {p.batch, S, p.heads, p.head_dim};
    const size_t es = stile_dtype_size(p.dtype), hd = (size_t)(p.heads * p.head_dim) * es, n = (size_t)(p.batch * S * p.heads * p.head_dim);
    const stile_strides *st[4] = {&p.q, &p.k, &p.v, &p.o};
    const int packed = layout == STILE_CONF_PACKED_QKV, nin = packed ? 1 : 3;
    const size_t lead = layout == STILE_CONF_UNALIGNED ? 4 : 0; /* as the forward harness: no tensor 16-byte aligned */
    const size_t lse_bytes = (size_t)(p.batch * p.heads * S) * sizeof(float);
    size_t span[4];
    for (int i = 0; i < 4; i++) span[i] = (size_t)conf_span_of(st[i], ext) * es;
    /* q (or packed qkv), k, v, o, lse, d_o: inputs of the backward; d_q, d_k, d_v: its outputs; the
     * caller-chosen key tiles (key_tiles_k), an input of both passes */
    conf_mirror m[10] = {{0}};
    unsigned char *back = NULL, *first[3] = {0};
    double *ref[3] = {0};
    int ok = 1;
    for (int i = 0; i < nin && ok; i++) {
        ok = conf_mirror_init(dev, &m[i], lead + (packed ? span[0] + 2 * hd : span[i]));
        if (ok) stile_conf_fill_normal(m[i].host, p.dtype, (int64_t)(m[i].bytes / es), seed + (uint64_t)i);
        ok = ok && conf_up(&m[i]);
    }
    ok = ok && conf_mirror_init(dev, &m[3], lead + span[3]) && conf_mirror_init(dev, &m[4], lse_bytes) &&
         conf_mirror_init(dev, &m[5], lead + span[3]);
    /* o and lse poisoned, guards set: every byte the forward leaves is known */
    ok = ok && conf_poison(&m[3]) && conf_poison(&m[4]);
    if (ok) stile_conf_fill_normal(m[5].host, p.dtype, (int64_t)(m[5].bytes / es), seed + 3);
    ok = ok && conf_up(&m[5]);
    for (int t = 0; t < 3 && ok; t++) ok = conf_mirror_init(dev, &m[6 + t], lead + span[t]) && (first[t] = malloc(span[t])) != NULL;
    if (ok && p.key_tiles_k) {
        ok = conf_mirror_init(dev, &m[9], conf_key_tiles_bytes(&p));
        if (ok) conf_key_tiles_fill(&p, seed + 4, (int32_t *)m[9].host);
        ok = ok && conf_up(&m[9]);
    }
    size_t most = 0;
    for (int i = 0; i < 10; i++) most = m[i].bytes > most ? m[i].bytes : most;
    back = malloc(most + STILE_CONF_GUARD_BYTES);
    for (int t = 0; t < 3; t++) ref[t] = malloc(n * sizeof(double));
    if (!ok || !back || !ref[0] || !ref[1] || !ref[2]) {
        snprintf(res.reason, sizeof res.reason, "the harness ran out of memory");
        goto done;
    }
    stile_io io = conf_device_io(m, packed, lead, hd, span, lse_bytes, p.dtype);
    if (p.key_tiles_k) io.key_tiles = stile_tensor_at(stile_buffer_data(m[9].dev), m[9].bytes, STILE_DTYPE_I32);
    if ((res.api = stile_plan_execute(plan, &io)) != STILE_OK) {
        snprintf(res.reason, sizeof res.reason, "the forward: %s (%s)", stile_status_string(res.api), stile_last_error());
        goto done;
    }
    if (!conf_down(&m[3], m[3].host) || !conf_down(&m[4], m[4].host)) {
        snprintf(res.reason, sizeof res.reason, "download failed (%s)", stile_last_error());
        goto done;
    }
    stile_exec_info xi;
    memset(&xi, 0, sizeof xi);
    stile_grad_io g = {.struct_size = sizeof g, .q = io.q, .k = io.k, .v = io.v, .o = io.o, .lse = io.lse,
                       .d_o = stile_tensor_at((char *)stile_buffer_data(m[5].dev) + lead, span[3], p.dtype), .info = &xi,
                       .key_tiles = io.key_tiles};
    stile_tensor *out[3] = {&g.d_q, &g.d_k, &g.d_v};
    for (int t = 0; t < 3; t++) *out[t] = stile_tensor_at((char *)stile_buffer_data(m[6 + t].dev) + lead, span[t], p.dtype);
    for (int run = 0; run < 2; run++) {
        for (int t = 0; t < 3; t++) { /* poisoned gradients (NaN in every dtype) before each run */
            if (!conf_poison(&m[6 + t])) {
                snprintf(res.reason, sizeof res.reason, "upload failed (%s)", stile_last_error());
                goto done;
            }
        }
        const double t0 = conf_now_ms();
        res.api = stile_plan_backward(plan, &g);
        if (run == 0) res.ms = conf_now_ms() - t0;
        if (res.api != STILE_OK) {
            res.status = res.api == STILE_ERR_UNSUPPORTED ? STILE_CONF_UNSUPPORTED : STILE_CONF_FAIL;
            res.unsupported = res.api == STILE_ERR_UNSUPPORTED;
            snprintf(res.reason, sizeof res.reason, "backward: %s (%s)", stile_status_string(res.api), stile_last_error());
            goto done;
        }
        if (run == 0 && xi.path[0]) snprintf(res.path, sizeof res.path, "%s", xi.path);
        for (int t = 0; t < 3; t++) {
            if (!conf_down(&m[6 + t], m[6 + t].host)) {
                snprintf(res.reason, sizeof res.reason, "download failed (%s)", stile_last_error());
                goto done;
            }
            if (run == 0) memcpy(first[t], m[6 + t].host + lead, span[t]);
        }
    }
    res.deterministic = 1;
    res.guard_ok = 1;
    res.gaps_ok = 1;
    for (int t = 0; t < 3; t++) {
        res.deterministic &= memcmp(first[t], m[6 + t].host + lead, span[t]) == 0;
        res.guard_ok &= conf_guard_intact(m[6 + t].host, lead + span[t]);
        for (size_t c = 0; c < lead; c++) res.guard_ok &= m[6 + t].host[c] == 0xff; /* nothing written before a gradient */
        res.gaps_ok &= conf_gaps_poisoned(m[6 + t].host + lead, span[t], st[t], ext, es) == 1;
    }
    for (int i = 0; i < 10; i++) /* the backward's inputs unchanged, their guards too (o and lse as the forward left them) */
        if ((i < nin || (i >= 3 && i < 6) || i == 9) && m[i].host) res.guard_ok &= conf_down(&m[i], back) && memcmp(back, m[i].host, m[i].bytes + STILE_CONF_GUARD_BYTES) == 0;
    /* the oracle's gradients from the host copies of q, k, v and d_o */
    unsigned char *hq = m[0].host + lead;
    stile_io host = {.struct_size = sizeof host, .q = stile_tensor_at(hq, span[0], p.dtype),
                     .k = stile_tensor_at(packed ? hq + hd : m[1].host + lead, span[1], p.dtype),
                     .v = stile_tensor_at(packed ? hq + 2 * hd : m[2].host + lead, span[2], p.dtype),
                     .key_tiles = stile_tensor_at(m[9].host, m[9].bytes, STILE_DTYPE_I32)};
    const stile_tensor d_o = stile_tensor_at(m[5].host + lead, span[3], p.dtype);
    if (stile_oracle_backward(p_in, &host, &d_o, ref[0], ref[1], ref[2]) != STILE_OK) {
        snprintf(res.reason, sizeof res.reason, "the oracle could not run (%s)", stile_last_error());
        goto done;
    }
    const stile_grad_io got = {.struct_size = sizeof got, .d_q = stile_tensor_at(m[6].host + lead, span[0], p.dtype),
                               .d_k = stile_tensor_at(m[7].host + lead, span[1], p.dtype),
                               .d_v = stile_tensor_at(m[8].host + lead, span[2], p.dtype)};
    if (stile_check_gradients(&p, &got, ref[0], ref[1], ref[2], &res.check) != STILE_OK) {
        snprintf(res.reason, sizeof res.reason, "the gradient check could not run (%s)", stile_last_error());
        goto done;
    }
    res.rows_checked = S;
    if (!res.check.passed || !res.guard_ok || !res.gaps_ok || !res.deterministic)
        snprintf(res.reason, sizeof res.reason, "%s%s%s%s", res.check.nonfinite ? "NaN/Inf in a gradient; " : "",
                 res.check.nmse > res.check.threshold ? "a gradient's NMSE over the bound; " : "",
                 !res.guard_ok ? "a guard band or an input changed; " : !res.gaps_ok ? "a gradient written outside its tensor; " : "",
                 !res.deterministic ? "two runs differ bitwise" : "");
    else
        res.status = STILE_CONF_PASS;
done:
    for (int i = 0; i < 10; i++) conf_mirror_free(&m[i]);
    for (int t = 0; t < 3; t++) {
        free(first[t]);
        free(ref[t]);
    }
    free(back);
    stile_plan_destroy(&plan);
    return res;
}
