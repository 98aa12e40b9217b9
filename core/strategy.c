/* Window strategies per (step, layer, head) in FastVideo's JSON format, and the plans made from them,
 * cached per (device, step, layer) so that switching plans per step costs nothing after the first. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stile_internal.h"

typedef struct entry {
    int64_t step, layer, head, window[3];
} entry;

typedef struct cached_plan {
    stile_device *device;
    int64_t step, layer;
    stile_problem base; /* head_windows cleared: compared field by field */
    stile_plan *plan;
} cached_plan;

struct stile_strategy {
    entry *e;
    int64_t n, cap;
    cached_plan *plans;
    int64_t nplans, plans_cap;
    pthread_mutex_t lock;
};

stile_status stile_strategy_create(stile_strategy **out)
{
    if (!out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a strategy");
    pthread_mutex_init(&(*out)->lock, NULL);
    return STILE_OK;
}

void stile_strategy_destroy(stile_strategy **s)
{
    if (!s || !*s) return;
    for (int64_t i = 0; i < (*s)->nplans; i++) stile_plan_destroy(&(*s)->plans[i].plan);
    free((*s)->plans);
    free((*s)->e);
    pthread_mutex_destroy(&(*s)->lock);
    free(*s);
    *s = NULL;
}

static entry *find(const stile_strategy *s, int64_t step, int64_t layer, int64_t head)
{
    for (int64_t i = 0; i < s->n; i++)
        if (s->e[i].step == step && s->e[i].layer == layer && s->e[i].head == head) return &s->e[i];
    return NULL;
}

stile_status stile_strategy_set(stile_strategy *s, int64_t step, int64_t layer, int64_t head, const int64_t window[3])
{
    if (!s || !window) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_set: %s is NULL", s ? "window" : "strategy");
    if (step < 0 || layer < 0 || head < 0)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "strategy entry %lld_%lld_%lld: indices must be >= 0", (long long)step,
                          (long long)layer, (long long)head);
    for (int i = 0; i < 3; i++)
        if (window[i] <= 0)
            return stile_fail(STILE_ERR_INVALID_WINDOW, "strategy entry %lld_%lld_%lld: window[%d]=%lld: must be >= 1",
                              (long long)step, (long long)layer, (long long)head, i, (long long)window[i]);
    entry *e = find(s, step, layer, head);
    if (!e) {
        if (s->n == s->cap) {
            int64_t cap = s->cap ? 2 * s->cap : 64;
            entry *t = realloc(s->e, (size_t)cap * sizeof *t);
            if (!t) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory growing a strategy");
            s->e = t;
            s->cap = cap;
        }
        e = &s->e[s->n++];
        *e = (entry){step, layer, head, {0, 0, 0}};
    }
    memcpy(e->window, window, sizeof e->window);
    return STILE_OK;
}

stile_status stile_strategy_get(const stile_strategy *s, int64_t step, int64_t layer, int64_t head, int64_t window[3])
{
    if (!s || !window) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_get: %s is NULL", s ? "window" : "strategy");
    const entry *e = find(s, step, layer, head);
    if (!e) return STILE_ERR_OUT_OF_RANGE; /* a lookup, not a fault: no log line */
    memcpy(window, e->window, sizeof e->window);
    return STILE_OK;
}

int64_t stile_strategy_size(const stile_strategy *s) { return s ? s->n : 0; }

/* "STEP_LAYER_HEAD" with three non-negative decimal numbers and nothing else. */
static int parse_key(const char *k, int64_t v[3])
{
    const char *c = k;
    for (int i = 0; i < 3; i++) {
        if (*c < '0' || *c > '9') return 0;
        int64_t x = 0;
        while (*c >= '0' && *c <= '9') {
            if (x > (INT64_MAX - 9) / 10) return 0;
            x = x * 10 + (*c++ - '0');
        }
        v[i] = x;
        if (i < 2 && *c++ != '_') return 0;
    }
    return *c == 0;
}

stile_status stile_strategy_load(const char *path, stile_strategy **out)
{
    if (out) *out = NULL;
    if (!path || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_load: %s is NULL", path ? "out" : "path");
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return stile_fail(STILE_ERR_IO, "%s: %s", path, strerror(errno));
        fclose(f);
        return stile_fail(STILE_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column, je.text);
    }
    stile_status st = STILE_OK;
    stile_strategy *s = NULL;
    if (!json_is_object(root)) {
        st = stile_fail(STILE_ERR_FORMAT, "%s: expected an object of \"STEP_LAYER_HEAD\": [wt, wh, ww]", path);
        goto done;
    }
    if ((st = stile_strategy_create(&s)) != STILE_OK) goto done;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        int64_t idx[3], w[3];
        if (!parse_key(key, idx)) {
            st = stile_fail(STILE_ERR_FORMAT, "%s: key \"%s\" is not STEP_LAYER_HEAD", path, key);
            goto done;
        }
        if (!json_is_array(val) || json_array_size(val) != 3) {
            st = stile_fail(STILE_ERR_FORMAT, "%s: \"%s\" must be [wt, wh, ww]", path, key);
            goto done;
        }
        for (int i = 0; i < 3; i++) {
            json_t *x = json_array_get(val, (size_t)i);
            if (!json_is_integer(x) || json_integer_value(x) <= 0) {
                st = stile_fail(STILE_ERR_FORMAT, "%s: \"%s\"[%d] must be a whole number >= 1", path, key, i);
                goto done;
            }
            w[i] = json_integer_value(x);
        }
        if ((st = stile_strategy_set(s, idx[0], idx[1], idx[2], w)) != STILE_OK) goto done;
    }
done:
    json_decref(root);
    if (st != STILE_OK) stile_strategy_destroy(&s);
    *out = s;
    return st;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->head > y->head) - (x->head < y->head);
}

stile_status stile_strategy_save(const stile_strategy *s, const char *path)
{
    if (!s || !path) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_save: %s is NULL", s ? "path" : "strategy");
    entry *sorted = malloc((size_t)(s->n ? s->n : 1) * sizeof *sorted);
    if (!sorted) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory saving a strategy");
    memcpy(sorted, s->e, (size_t)s->n * sizeof *sorted);
    qsort(sorted, (size_t)s->n, sizeof *sorted, cmp_entry);
    json_t *root = json_object();
    for (int64_t i = 0; i < s->n; i++) {
        char key[80];
        snprintf(key, sizeof key, "%lld_%lld_%lld", (long long)sorted[i].step, (long long)sorted[i].layer, (long long)sorted[i].head);
        json_object_set_new(root, key, json_pack("[I,I,I]", (json_int_t)sorted[i].window[0], (json_int_t)sorted[i].window[1],
                                                 (json_int_t)sorted[i].window[2]));
    }
    free(sorted);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int rc = json_dump_file(root, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return stile_fail(STILE_ERR_IO, "%s: %s", path, strerror(e ? e : EIO));
    }
    return STILE_OK;
}

static int same_strides(const stile_strides *a, const stile_strides *b)
{
    return a->batch == b->batch && a->token == b->token && a->head == b->head && a->dim == b->dim;
}

/* Everything but the windows, field by field (a struct compare would read padding). */
static int same_base(const stile_problem *a, const stile_problem *b)
{
    for (int i = 0; i < 3; i++)
        if (a->canvas[i] != b->canvas[i] || a->tile[i] != b->tile[i]) return 0;
    return a->batch == b->batch && a->heads == b->heads && a->head_dim == b->head_dim && a->text == b->text &&
           a->text_padding == b->text_padding && a->dtype == b->dtype && a->order == b->order && a->scale == b->scale &&
           same_strides(&a->q, &b->q) && same_strides(&a->k, &b->k) && same_strides(&a->v, &b->v) && same_strides(&a->o, &b->o);
}

stile_status stile_strategy_plan(stile_strategy *s, stile_device *device, const stile_problem *base, int64_t step, int64_t layer,
                                 const stile_plan **out)
{
    if (out) *out = NULL;
    if (!s || !device || !base || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_plan: an argument is NULL");
    pthread_mutex_lock(&s->lock);
    stile_status st = STILE_OK;
    for (int64_t i = 0; i < s->nplans; i++) {
        cached_plan *c = &s->plans[i];
        if (c->device == device && c->step == step && c->layer == layer && same_base(&c->base, base)) {
            *out = c->plan;
            goto done;
        }
    }
    if (base->heads <= 0 || base->heads > (1 << 20)) {
        st = stile_fail(STILE_ERR_INVALID_SIZE, "stile_strategy_plan: heads=%lld", (long long)base->heads);
        goto done;
    }
    int64_t (*w)[3] = malloc((size_t)base->heads * sizeof *w);
    if (!w) {
        st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for head windows");
        goto done;
    }
    for (int64_t h = 0; h < base->heads; h++)
        if (stile_strategy_get(s, step, layer, h, w[h]) != STILE_OK)
            for (int i = 0; i < 3; i++) w[h][i] = base->canvas[i] > 0 ? base->canvas[i] : 1; /* no entry: full attention */
    stile_problem p = *base;
    p.head_windows = (const int64_t(*)[3])w;
    stile_plan *plan = NULL;
    st = stile_plan_create(device, &p, &plan);
    free(w);
    if (st != STILE_OK) goto done;
    if (s->nplans == s->plans_cap) {
        int64_t cap = s->plans_cap ? 2 * s->plans_cap : 16;
        cached_plan *t = realloc(s->plans, (size_t)cap * sizeof *t);
        if (!t) {
            stile_plan_destroy(&plan);
            st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory caching a plan");
            goto done;
        }
        s->plans = t;
        s->plans_cap = cap;
    }
    s->plans[s->nplans++] = (cached_plan){device, step, layer, *base, plan};
    *out = plan;
done:
    pthread_mutex_unlock(&s->lock);
    return st;
}
