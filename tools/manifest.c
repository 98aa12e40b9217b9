/* `stile calibrate`'s capture manifest (manifest.h): every field checked for its JSON type and range,
 * and named in the message when it is wrong; a status and a message, never an exit. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

enum { MAX_NAME = 4096, MAX_FILE = 64 << 20 };

typedef struct ctx {
    char *msg;
    size_t n;
    const char *path; /* prefix of messages, or NULL */
} ctx;

static stile_status fail(const ctx *c, stile_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static stile_status fail(const ctx *c, stile_status st, const char *fmt, ...)
{
    if (!c->msg || !c->n) return st;
    int k = c->path ? snprintf(c->msg, c->n, "%s: ", c->path) : 0;
    if (k < 0 || (size_t)k >= c->n) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg + k, c->n - (size_t)k, fmt, ap);
    va_end(ap);
    return st;
}

uint64_t manifest_fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* What a JSON value is, for "must be X, not Y". */
static const char *kind(const json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "a whole number";
    case JSON_REAL: return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* A whole number within lo..hi at `x` (NULL: missing; then def, or a fault if required). */
static stile_status whole(const ctx *c, const char *name, const json_t *x, int required, int64_t def, int64_t lo, int64_t hi,
                          int64_t *out)
{
    if (!x && !required) {
        *out = def;
        return STILE_OK;
    }
    if (!x) return fail(c, STILE_ERR_FORMAT, "\"%s\" is missing: a whole number within %lld..%lld", name, (long long)lo, (long long)hi);
    if (!json_is_integer(x))
        return fail(c, STILE_ERR_FORMAT, "\"%s\" must be a whole number within %lld..%lld, not %s", name, (long long)lo, (long long)hi,
                    kind(x));
    const json_int_t v = json_integer_value(x);
    if (v < lo || v > hi)
        return fail(c, STILE_ERR_FORMAT, "\"%s\" is %lld: must be within %lld..%lld", name, (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return STILE_OK;
}

static stile_status triple(const ctx *c, const char *name, const char *axes, const json_t *x, int64_t out[3])
{
    if (!x || !json_is_array(x) || json_array_size(x) != 3)
        return fail(c, STILE_ERR_FORMAT, "\"%s\" must be [%s]: three whole numbers >= 1, not %s", name, axes,
                    !x ? "missing" : json_is_array(x) ? "an array of another length" : kind(x));
    for (size_t i = 0; i < 3; i++) {
        char item[32];
        snprintf(item, sizeof item, "%s[%zu]", name, i);
        stile_status st = whole(c, item, json_array_get(x, i), 1, 0, 1, STILE_MAX_TOKENS, &out[i]);
        if (st != STILE_OK) return st;
    }
    return STILE_OK;
}

/* A file name: a non-empty string without NUL characters, joined to dir. */
static stile_status file_name(const ctx *c, const char *dir, int i, const char *field, const json_t *x, char **out)
{
    if (!x || !json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > MAX_NAME ||
        strlen(json_string_value(x)) != json_string_length(x))
        return fail(c, STILE_ERR_FORMAT, "\"samples[%d].%s\" must be a file name (a string of 1..%d characters, no NUL), not %s", i, field,
                    MAX_NAME, !x ? "missing" : json_is_string(x) ? "this string" : kind(x));
    const char *name = json_string_value(x);
    const size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    if (!(*out = malloc(n))) return fail(c, STILE_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(*out, n, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    return STILE_OK;
}

static int known(const char *key, const char *const *keys)
{
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0) return 1;
    return 0;
}

static stile_status from_json(const ctx *c, const json_t *m, const char *dir, manifest *out)
{
    static const char *const top[] = {"canvas", "tile", "heads", "head_dim", "text", "text_padding", "samples", NULL};
    static const char *const per[] = {"step", "layer", "q", "k", "v", NULL};
    if (!json_is_object(m)) return fail(c, STILE_ERR_FORMAT, "the manifest must be a JSON object, not %s", kind(m));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)m, key, val)
        if (!known(key, top))
            return fail(c, STILE_ERR_FORMAT, "unknown field \"%.64s\" (the fields: canvas, tile, heads, head_dim, text, text_padding, samples)",
                        key);
    stile_problem *p = &out->p;
    p->struct_size = sizeof *p;
    stile_status st;
    if ((st = triple(c, "canvas", "T, H, W", json_object_get(m, "canvas"), p->canvas)) != STILE_OK ||
        (st = triple(c, "tile", "t, h, w", json_object_get(m, "tile"), p->tile)) != STILE_OK ||
        (st = whole(c, "heads", json_object_get(m, "heads"), 1, 0, 1, STILE_MAX_HEADS, &p->heads)) != STILE_OK ||
        (st = whole(c, "head_dim", json_object_get(m, "head_dim"), 1, 0, 1, STILE_MAX_HEAD_DIM, &p->head_dim)) != STILE_OK ||
        (st = whole(c, "text", json_object_get(m, "text"), 0, 0, 0, STILE_MAX_TOKENS, &p->text)) != STILE_OK ||
        (st = whole(c, "text_padding", json_object_get(m, "text_padding"), 0, 0, 0, p->text, &p->text_padding)) != STILE_OK)
        return st;
    memcpy(p->window, p->canvas, sizeof p->window);
    if ((st = stile_problem_check(p)) != STILE_OK)
        return fail(c, st, "canvas %lldx%lldx%lld, tile %lldx%lldx%lld, %lld text tokens, %lld heads of %lld: %s", (long long)p->canvas[0],
                    (long long)p->canvas[1], (long long)p->canvas[2], (long long)p->tile[0], (long long)p->tile[1],
                    (long long)p->tile[2], (long long)p->text, (long long)p->heads, (long long)p->head_dim, stile_status_string(st));

    const json_t *ss = json_object_get(m, "samples");
    if (!ss || !json_is_array(ss) || json_array_size(ss) == 0 || json_array_size(ss) > MANIFEST_MAX_SAMPLES)
        return fail(c, STILE_ERR_FORMAT, "\"samples\" must be an array of 1..%d samples, not %s", MANIFEST_MAX_SAMPLES,
                    !ss ? "missing" : json_is_array(ss) ? (json_array_size(ss) ? "a longer one" : "an empty one") : kind(ss));
    out->s = calloc(json_array_size(ss), sizeof *out->s);
    if (!out->s) return fail(c, STILE_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < json_array_size(ss); i++) {
        const json_t *e = json_array_get(ss, i);
        manifest_sample *s = &out->s[i];
        out->nsamples = (int)i + 1; /* so that manifest_free frees what this one got */
        char name[48];
        if (!json_is_object(e)) return fail(c, STILE_ERR_FORMAT, "samples[%zu] must be an object, not %s", i, kind(e));
        json_object_foreach((json_t *)e, key, val)
            if (!known(key, per))
                return fail(c, STILE_ERR_FORMAT, "samples[%zu]: unknown field \"%.64s\" (the fields: step, layer, q, k, v)", i, key);
        snprintf(name, sizeof name, "samples[%zu].step", i);
        if ((st = whole(c, name, json_object_get(e, "step"), 1, 0, 0, INT64_MAX, &s->step)) != STILE_OK) return st;
        snprintf(name, sizeof name, "samples[%zu].layer", i);
        if ((st = whole(c, name, json_object_get(e, "layer"), 1, 0, 0, INT64_MAX, &s->layer)) != STILE_OK) return st;
        if ((st = file_name(c, dir, (int)i, "q", json_object_get(e, "q"), &s->q)) != STILE_OK ||
            (st = file_name(c, dir, (int)i, "k", json_object_get(e, "k"), &s->k)) != STILE_OK ||
            (st = file_name(c, dir, (int)i, "v", json_object_get(e, "v"), &s->v)) != STILE_OK)
            return st;
    }
    return STILE_OK;
}

void manifest_free(manifest *m)
{
    if (!m) return;
    for (int i = 0; m->s && i < m->nsamples; i++) {
        free(m->s[i].q);
        free(m->s[i].k);
        free(m->s[i].v);
    }
    free(m->s);
    memset(m, 0, sizeof *m);
}

static stile_status parse(const ctx *c, const char *text, size_t len, const char *dir, manifest *out)
{
    memset(out, 0, sizeof *out);
    if (!text) return fail(c, STILE_ERR_NULL_ARGUMENT, "no manifest text");
    json_error_t je;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!m) {
        /* "PATH:LINE:COLUMN: ..." like a compiler's message */
        if (c->msg && c->n) snprintf(c->msg, c->n, "%s%s%d:%d: malformed JSON: %s", c->path ? c->path : "", c->path ? ":" : "", je.line,
                                     je.column, je.text);
        return STILE_ERR_FORMAT;
    }
    stile_status st = from_json(c, m, dir, out);
    json_decref(m);
    if (st != STILE_OK) manifest_free(out);
    return st;
}

stile_status manifest_parse(const char *text, size_t len, const char *dir, manifest *out, char *msg, size_t msg_size)
{
    const ctx c = {msg, msg_size, NULL};
    if (!out) return fail(&c, STILE_ERR_NULL_ARGUMENT, "no manifest to fill");
    return parse(&c, text, len, dir, out);
}

stile_status manifest_load(const char *dir, manifest *out, char *msg, size_t msg_size)
{
    if (!dir || !out) {
        if (msg && msg_size) snprintf(msg, msg_size, "manifest_load: %s is NULL", dir ? "out" : "dir");
        return STILE_ERR_NULL_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    const size_t plen = strlen(dir) + sizeof "/manifest.json";
    char *path = malloc(plen);
    if (!path) {
        if (msg && msg_size) snprintf(msg, msg_size, "out of memory");
        return STILE_ERR_OUT_OF_MEMORY;
    }
    snprintf(path, plen, "%s/manifest.json", dir);
    const ctx c = {msg, msg_size, path};
    stile_status st = STILE_OK;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        st = errno == ENOENT ? fail(&c, STILE_ERR_IO, "no such file (a capture directory holds manifest.json and .npy files)")
                             : fail(&c, STILE_ERR_IO, "%s", strerror(errno));
        goto done;
    }
    for (size_t cap = 0; !feof(f) && !ferror(f) && len <= MAX_FILE;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *t = realloc(text, cap);
            if (!t) {
                st = fail(&c, STILE_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
            text = t;
        }
        len += fread(text + len, 1, cap - len, f);
    }
    if (ferror(f)) st = fail(&c, STILE_ERR_IO, "%s", strerror(errno ? errno : EIO));
    else if (len > MAX_FILE) st = fail(&c, STILE_ERR_FORMAT, "larger than %d MiB: not a manifest", MAX_FILE >> 20);
    else if ((st = parse(&c, text ? text : "", len, dir, out)) == STILE_OK) out->digest = manifest_fnv(MANIFEST_FNV_START, text, len);
done:
    if (f) fclose(f);
    free(text);
    free(path);
    return st;
}
