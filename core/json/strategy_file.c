/* FastVideo strategy files ({"STEP_LAYER_HEAD": [wt, wh, ww], ...}) read and written with jansson,
 * for the strategy's calls in core/strategy.c. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_ext.h"

/* "STEP_LAYER_HEAD" with three non-negative decimal numbers and nothing else. A leading zero is
 * refused ("00_0_0" would be a second spelling of "0_0_0", and the last of the two would win). */
static int parse_key(const char *k, int64_t v[3])
{
    const char *c = k;
    for (int i = 0; i < 3; i++) {
        if (*c < '0' || *c > '9') return 0;
        if (c[0] == '0' && c[1] >= '0' && c[1] <= '9') return 0;
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

stile_status stile_json_strategy_parse(const char *path, stile_window_entry **entries, int64_t *count)
{
    *entries = NULL;
    *count = 0;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return stile_fail(STILE_ERR_IO, "%s: %s", path, strerror(errno));
        fclose(f);
        return stile_fail(STILE_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column, je.text);
    }
    stile_status st = STILE_OK;
    stile_window_entry *e = NULL;
    if (!json_is_object(root)) {
        st = stile_fail(STILE_ERR_FORMAT, "%s: expected an object of \"STEP_LAYER_HEAD\": [wt, wh, ww]", path);
        goto done;
    }
    const size_t n = json_object_size(root);
    e = malloc((n ? n : 1) * sizeof *e);
    if (!e) {
        st = stile_fail(STILE_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu entries", path, n);
        goto done;
    }
    int64_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        int64_t idx[3];
        if (!parse_key(key, idx)) {
            st = stile_fail(STILE_ERR_FORMAT, "%s: key \"%s\" is not STEP_LAYER_HEAD (decimal numbers without leading zeros)",
                            path, key);
            goto done;
        }
        if (!json_is_array(val) || json_array_size(val) != 3) {
            st = stile_fail(STILE_ERR_FORMAT, "%s: \"%s\" must be [wt, wh, ww]", path, key);
            goto done;
        }
        stile_window_entry *x = &e[i++];
        x->step = idx[0];
        x->layer = idx[1];
        x->head = idx[2];
        for (int a = 0; a < 3; a++) {
            json_t *w = json_array_get(val, (size_t)a);
            if (!json_is_integer(w) || json_integer_value(w) <= 0) {
                st = stile_fail(STILE_ERR_FORMAT, "%s: \"%s\"[%d] must be a whole number >= 1", path, key, a);
                goto done;
            }
            x->window[a] = json_integer_value(w);
        }
    }
    *count = i;
done:
    json_decref(root);
    if (st != STILE_OK) free(e);
    else *entries = e;
    return st;
}

char *stile_json_strategy_text(const stile_window_entry *sorted, int64_t n)
{
    json_t *root = json_object();
    int ok = root != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        char key[80];
        snprintf(key, sizeof key, "%lld_%lld_%lld", (long long)sorted[i].step, (long long)sorted[i].layer, (long long)sorted[i].head);
        ok = json_object_set_new(root, key, json_pack("[I,I,I]", (json_int_t)sorted[i].window[0], (json_int_t)sorted[i].window[1],
                                                      (json_int_t)sorted[i].window[2])) == 0;
    }
    char *text = ok ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    return text;
}
