/* The JSON module's descriptor (libstile-json.so, or linked in without modules): its table for
 * core/json_ext.h. */
#include "json_ext.h"
#include "module.h"

static const stile_json_ext json_ext = {
    .strategy_parse = stile_json_strategy_parse,
    .strategy_text = stile_json_strategy_text,
    .plan_text = stile_json_plan_text,
};

const stile_module_info stile_module_json = {"json", NULL, &json_ext};
