/* The JSON part of the library: FastVideo strategy files and stile_plan_json, the only users of
 * jansson. It lives in the module libstile-json.so (core/json/, loaded like a backend module:
 * core/module.h), so libstile itself needs no JSON library; a build without modules links it in. */
#ifndef STILE_JSON_EXT_H
#define STILE_JSON_EXT_H

#include "stile_internal.h"

/* One (step, layer, head) entry of a window strategy. */
typedef struct stile_window_entry {
    int64_t step, layer, head, window[3];
} stile_window_entry;

typedef struct stile_json_ext {
    /* Read a strategy file into entries (malloc'd, the caller frees), keys checked and windows >= 1;
     * a status with the message logged (file, line, column, key) otherwise. */
    stile_status (*strategy_parse)(const char *path, stile_window_entry **entries, int64_t *n);
    /* The entries (already sorted) as a strategy file's text, malloc'd; NULL when memory runs out. */
    char *(*strategy_text)(const stile_window_entry *sorted, int64_t n);
    /* stile_plan_json's text, malloc'd; NULL when memory runs out. */
    char *(*plan_text)(const stile_plan *plan, int compact);
} stile_json_ext;

/* The module's implementations (core/json/), gathered into its table by json_module.c. */
stile_status stile_json_strategy_parse(const char *path, stile_window_entry **entries, int64_t *n);
char *stile_json_strategy_text(const stile_window_entry *sorted, int64_t n);
char *stile_json_plan_text(const stile_plan *plan, int compact);

/* Hand a malloc'd text to a caller's buffer, snprintf style: *length its length, STILE_OK with the
 * text and its NUL in buf, or STILE_ERR_BUFFER_TOO_SMALL (no log line: the caller asks for the size).
 * text is freed. */
stile_status stile_text_out(char *text, char *buf, size_t size, size_t *length);

/* The JSON part, linked in or its module loaded at the first call; NULL with the reason when its
 * module cannot load (jansson missing, another build's module). */
const stile_json_ext *stile_json(char *reason, size_t reason_size);

#endif /* STILE_JSON_EXT_H */
