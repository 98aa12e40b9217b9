/* The plan as JSON (stile_plan_json): problem, grid, exact accounting, per-head windows and (unless
 * compact) schedules, written with jansson. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json_ext.h"

static json_t *triple(const int64_t v[3])
{
    return json_pack("[I,I,I]", (json_int_t)v[0], (json_int_t)v[1], (json_int_t)v[2]);
}

static json_t *plan_to_json(const stile_plan *plan, int compact)
{
    const stile_problem *p = &plan->r.p;
    const stile_plan_info *in = &plan->info;
    json_t *root = json_object();
    json_object_set_new(root, "stile_version", json_string(STILE_VERSION_STRING));
    json_object_set_new(root, "device", json_string(in->device));
    if (in->path[0]) json_object_set_new(root, "path", json_string(in->path));
    json_t *prob = json_object();
    json_object_set_new(prob, "batch", json_integer(p->batch));
    json_object_set_new(prob, "canvas", triple(p->canvas));
    json_object_set_new(prob, "tile", triple(p->tile));
    json_object_set_new(prob, "heads", json_integer(p->heads));
    json_object_set_new(prob, "head_dim", json_integer(p->head_dim));
    json_object_set_new(prob, "text", json_integer(p->text));
    json_object_set_new(prob, "text_padding", json_integer(p->text_padding));
    json_object_set_new(prob, "dtype", json_string(stile_dtype_name(p->dtype)));
    json_object_set_new(prob, "order", json_string(p->order == STILE_ORDER_TILED ? "tiled" : "natural"));
    json_object_set_new(prob, "scale", json_real(p->scale));
    if (p->key_tiles_k) json_object_set_new(prob, "key_tiles_k", json_integer(p->key_tiles_k)); /* tiles chosen at execute time */
    json_object_set_new(root, "problem", prob);
    json_object_set_new(root, "grid", triple(in->grid));
    json_object_set_new(root, "tiles", json_integer(in->tiles));
    json_object_set_new(root, "video_tokens", json_integer(in->video_tokens));
    json_object_set_new(root, "tokens", json_integer(in->tokens));
    json_object_set_new(root, "text_valid", json_integer(in->text_valid));
    json_object_set_new(root, "attended_pairs", json_integer(in->attended_pairs));
    json_object_set_new(root, "attended_video_pairs", json_integer(in->attended_video_pairs));
    json_object_set_new(root, "full_pairs", json_integer(in->full_pairs));
    json_object_set_new(root, "flops", json_real(in->flops));
    json_object_set_new(root, "full_flops", json_real(in->full_flops));
    json_object_set_new(root, "sparsity", json_real(in->sparsity));
    /* Text blocks, in token positions: every video query tile also attends the valid text keys;
     * text queries attend all video keys and the valid text keys. */
    json_object_set_new(root, "text_blocks",
                        json_pack("{s:[I,I],s:[I,I],s:s}", "query_tokens", (json_int_t)in->video_tokens, (json_int_t)in->tokens,
                                  "key_tokens", (json_int_t)in->video_tokens, (json_int_t)(in->video_tokens + in->text_valid),
                                  "rule", "video queries: window + text keys; text queries: all video + text keys"));
    json_t *heads = json_array();
    for (int64_t h = 0; h < p->heads; h++) {
        stile_head_info hi;
        stile_plan_get_head(plan, h, &hi);
        json_array_append_new(heads, json_pack("{s:o,s:o,s:I,s:f,s:I}", "window", triple(hi.window), "effective",
                                               triple(hi.effective), "key_tiles", (json_int_t)hi.key_tiles, "sparsity",
                                               hi.sparsity, "schedule", (json_int_t)hi.schedule));
    }
    json_object_set_new(root, "heads", heads);
    json_t *scheds = json_array();
    for (int64_t i = 0; i < plan->nschedules; i++) {
        const stile_schedule *s = &plan->schedules[i];
        json_t *js = json_pack("{s:o,s:I,s:I,s:[I,I]}", "window", triple(s->window), "key_tiles_per_query", (json_int_t)s->per_query,
                               "video_pairs", (json_int_t)s->video_pairs, "query_tiles_per_key", (json_int_t)s->min_per_key,
                               (json_int_t)s->max_per_key);
        if (!compact) {
            json_t *rows = json_array();
            for (int64_t q = 0; q < plan->r.tiles; q++) {
                json_t *row = json_array();
                for (int32_t k = s->row_start[q]; k < s->row_start[q + 1]; k++) json_array_append_new(row, json_integer(s->key_tiles[k]));
                json_array_append_new(rows, row);
            }
            json_object_set_new(js, "key_tiles", rows);
            json_t *cols = json_array(); /* the transposed schedule: the query tiles of each key tile */
            for (int64_t k = 0; k < plan->r.tiles; k++) {
                json_t *col = json_array();
                for (int32_t q = s->query_start[k]; q < s->query_start[k + 1]; q++) json_array_append_new(col, json_integer(s->query_tiles[q]));
                json_array_append_new(cols, col);
            }
            json_object_set_new(js, "query_tiles", cols);
        }
        json_array_append_new(scheds, js);
    }
    json_object_set_new(root, "schedules", scheds);
    return root;
}

char *stile_json_plan_text(const stile_plan *plan, int compact)
{
    json_t *root = plan_to_json(plan, compact);
    char *text = root ? json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}
