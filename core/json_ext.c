/* The JSON part's door in libstile (core/json_ext.h): linked in, or libstile-json.so loaded at the
 * first call that needs it; and stile_plan_json, which asks it for the text. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_ext.h"
#include "module.h"
#include "stile_config.h"

#if STILE_BACKEND_MODULES
#define JSON_LINKED NULL
#else
extern const stile_module_info stile_module_json;
#define JSON_LINKED (&stile_module_json)
#endif

static pthread_once_t json_once = PTHREAD_ONCE_INIT;
static const stile_json_ext *json_ext;
static char json_reason[256];

static void json_init(void)
{
    stile_module_info mi = {0};
    char path[4096];
    if (stile_module_get("json", JSON_LINKED, 1, &mi, path, sizeof path, json_reason, sizeof json_reason) == 0) json_ext = mi.ext;
}

const stile_json_ext *stile_json(char *reason, size_t reason_size)
{
    pthread_once(&json_once, json_init);
    if (!json_ext) snprintf(reason, reason_size, "%s", json_reason);
    return json_ext;
}

stile_status stile_plan_json(const stile_plan *plan, int compact, char *buf, size_t size, size_t *length)
{
    if (!plan || !length) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_json: %s is NULL", plan ? "length" : "plan");
    if (!buf && size) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_plan_json: buf is NULL but size is %zu", size);
    char reason[256];
    const stile_json_ext *json = stile_json(reason, sizeof reason);
    if (!json) return stile_fail(STILE_ERR_UNSUPPORTED, "stile_plan_json: the JSON part of stile is %s", reason);
    char *text = json->plan_text(plan, compact);
    if (!text) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_plan_json: out of memory");
    return stile_text_out(text, buf, size, length);
}

stile_status stile_text_out(char *text, char *buf, size_t size, size_t *length)
{
    const size_t n = strlen(text);
    *length = n;
    stile_status rc = STILE_OK;
    if (n + 1 > size) rc = STILE_ERR_BUFFER_TOO_SMALL; /* not an error worth a log line: the caller asks for the size */
    else memcpy(buf, text, n + 1);
    free(text);
    return rc;
}
