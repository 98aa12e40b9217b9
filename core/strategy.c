/* Window strategies per (step, layer, head) in FastVideo's JSON format, and the plans made from them,
 * cached per (device, step, layer) so that switching plans per step costs nothing after the first. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_out.h"
#include "json_ext.h"

typedef stile_window_entry entry;

typedef struct cached_plan {
    stile_device *device;
    int64_t step, layer;
    stile_problem base; /* head_windows cleared: compared field by field */
    stile_plan *plan;
} cached_plan;

struct stile_strategy {
    entry *e;
    int64_t n, cap;
    int64_t *slot;   /* open addressing over (step, layer, head): index into e plus 1, 0 empty */
    int64_t nslots;  /* a power of two, kept >= 2 n */
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
    free((*s)->slot);
    pthread_mutex_destroy(&(*s)->lock);
    free(*s);
    *s = NULL;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    return x ^ (x >> 33);
}

static uint64_t key_hash(int64_t step, int64_t layer, int64_t head)
{
    return mix((uint64_t)step ^ mix((uint64_t)layer ^ mix((uint64_t)head)));
}

/* The slot of (step, layer, head): where it is, or the empty slot where it would go. Lookups are
 * O(1) expected, so loading or setting n entries costs O(n), not O(n^2). */
static int64_t *find_slot(const stile_strategy *s, int64_t step, int64_t layer, int64_t head)
{
    const uint64_t mask = (uint64_t)s->nslots - 1;
    for (uint64_t i = key_hash(step, layer, head) & mask;; i = (i + 1) & mask) {
        int64_t *slot = &s->slot[i];
        if (*slot == 0) return slot;
        const entry *e = &s->e[*slot - 1];
        if (e->step == step && e->layer == layer && e->head == head) return slot;
    }
}

static entry *find(const stile_strategy *s, int64_t step, int64_t layer, int64_t head)
{
    if (s->nslots == 0) return NULL;
    const int64_t *slot = find_slot(s, step, layer, head);
    return *slot ? &s->e[*slot - 1] : NULL;
}

/* Room for one more entry: the array grown by doubling, the table rebuilt at half full. */
static stile_status reserve_one(stile_strategy *s)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        entry *t = realloc(s->e, (size_t)cap * sizeof *t);
        if (!t) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory growing a strategy");
        s->e = t;
        s->cap = cap;
    }
    if (2 * (s->n + 1) > s->nslots) {
        int64_t nslots = s->nslots ? 2 * s->nslots : 128;
        int64_t *slot = calloc((size_t)nslots, sizeof *slot);
        if (!slot) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory growing a strategy");
        free(s->slot);
        s->slot = slot;
        s->nslots = nslots;
        for (int64_t i = 0; i < s->n; i++) *find_slot(s, s->e[i].step, s->e[i].layer, s->e[i].head) = i + 1;
    }
    return STILE_OK;
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
        stile_status st = reserve_one(s);
        if (st != STILE_OK) return st;
        *find_slot(s, step, layer, head) = s->n + 1;
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

stile_status stile_strategy_load(const char *path, stile_strategy **out)
{
    if (out) *out = NULL;
    if (!path || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_load: %s is NULL", path ? "out" : "path");
    char reason[256];
    const stile_json_ext *json = stile_json(reason, sizeof reason);
    if (!json) return stile_fail(STILE_ERR_UNSUPPORTED, "stile_strategy_load: %s: the JSON part of stile is %s", path, reason);
    stile_window_entry *e = NULL;
    int64_t n = 0;
    stile_status st = json->strategy_parse(path, &e, &n);
    stile_strategy *s = NULL;
    if (st == STILE_OK) st = stile_strategy_create(&s);
    for (int64_t i = 0; st == STILE_OK && i < n; i++) {
        if (find(s, e[i].step, e[i].layer, e[i].head)) { /* cannot happen with the key spelling; never let the last win */
            st = stile_fail(STILE_ERR_FORMAT, "%s: step %lld, layer %lld, head %lld repeats", path, (long long)e[i].step,
                            (long long)e[i].layer, (long long)e[i].head);
            break;
        }
        st = stile_strategy_set(s, e[i].step, e[i].layer, e[i].head, e[i].window);
    }
    free(e);
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

/* The strategy as JSON text (keys sorted by step, layer, head), malloc'd; NULL with *st set when the
 * JSON part is unavailable or memory runs out (what: the caller, for the message). */
static char *strategy_text(const stile_strategy *s, const char *what, stile_status *st)
{
    char reason[256];
    const stile_json_ext *json = stile_json(reason, sizeof reason);
    if (!json) {
        *st = stile_fail(STILE_ERR_UNSUPPORTED, "%s: the JSON part of stile is %s", what, reason);
        return NULL;
    }
    entry *sorted = malloc((size_t)(s->n ? s->n : 1) * sizeof *sorted);
    char *text = NULL;
    if (sorted) {
        if (s->n) memcpy(sorted, s->e, (size_t)s->n * sizeof *sorted); /* an empty strategy's e is NULL */
        qsort(sorted, (size_t)s->n, sizeof *sorted, cmp_entry);
        text = json->strategy_text(sorted, s->n);
        free(sorted);
    }
    if (!text) *st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    return text;
}

stile_status stile_strategy_json(const stile_strategy *s, char *buf, size_t size, size_t *length)
{
    if (!s || !length) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_json: %s is NULL", s ? "length" : "strategy");
    if (!buf && size) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_json: buf is NULL but size is %zu", size);
    stile_status st = STILE_OK;
    char *text = strategy_text(s, "stile_strategy_json", &st);
    return text ? stile_text_out(text, buf, size, length) : st;
}

stile_status stile_strategy_save(const stile_strategy *s, const char *path)
{
    if (!s || !path) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_save: %s is NULL", s ? "path" : "strategy");
    stile_status st = STILE_OK;
    char *text = strategy_text(s, "stile_strategy_save", &st);
    if (!text) return st;
    char err[512];
    const stile_out_piece piece = {text, strlen(text)};
    st = stile_out_write(path, &piece, 1, err, sizeof err);
    free(text);
    return st == STILE_OK ? STILE_OK : stile_fail(st, "%s", err);
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

stile_status stile_strategy_plan(stile_strategy *s, stile_device *device, const stile_problem *base_in, int64_t step,
                                 int64_t layer, const stile_plan **out)
{
    if (out) *out = NULL;
    if (!s || !device || !base_in || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_strategy_plan: an argument is NULL");
    stile_problem base_cur; /* the caller's layout in the current one: read only this */
    stile_status ist = stile_problem_import(base_in, &base_cur, "stile_strategy_plan");
    if (ist != STILE_OK) return ist;
    const stile_problem *base = &base_cur;
    pthread_mutex_lock(&s->lock);
    stile_status st = STILE_OK;
    for (int64_t i = 0; i < s->nplans; i++) {
        cached_plan *c = &s->plans[i];
        if (c->device == device && c->step == step && c->layer == layer && same_base(&c->base, base)) {
            *out = c->plan;
            goto done;
        }
    }
    if (base->heads <= 0 || base->heads > STILE_MAX_HEADS) {
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
