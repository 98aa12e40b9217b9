/* `stile plan`: the tile grid, sparsity, FLOPs and blocks per head of a problem (and the transposed
 * schedule's rows, what a backward pass gathers per key tile), as text or JSON. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

/* a fraction as "91.00%" */
static const char *pct(double f)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "%.2f%%", 100 * f);
    return buf;
}

int cmd_plan(int argc, char **argv)
{
    cli_opts o = {.cmd = "plan", .cmd_bit = CMD_PLAN};
    cli_parse(&o, argc, argv, "Plan a problem and show its grid, sparsity, FLOPs and the key tiles per head.");
    cli_log_init(&o);
    cli_check_problem(&o);
    stile_device *dev = cli_open_device(&o);
    stile_plan *plan = NULL;
    stile_status st = stile_plan_create(dev, &o.p, &plan);
    if (st != STILE_OK) { /* e.g. a head dim the backend does not take: 2 */
        stile_device_close(&dev);
        free(o.windows);
        return cli_exit_status(st);
    }
    int rc = 0;
    if (o.json) {
        size_t len = 0;
        stile_plan_json(plan, o.compact, NULL, 0, &len);
        char *buf = malloc(len + 1);
        if (buf && stile_plan_json(plan, o.compact, buf, len + 1, &len) == STILE_OK) printf("%s\n", buf);
        else rc = 1;
        free(buf);
    } else {
        stile_plan_info in;
        stile_problem p = {.struct_size = sizeof p};
        stile_plan_get_info(plan, &in);
        stile_plan_get_problem(plan, &p);
        char c[64], t[64], g[64];
        cli_triple(c, sizeof c, p.canvas);
        cli_triple(t, sizeof t, p.tile);
        cli_triple(g, sizeof g, in.grid);
        printf("canvas %s, tile %s -> grid %s = %lld tiles; %lld video tokens, %lld text (%lld valid)\n", c, t, g,
               (long long)in.tiles, (long long)in.video_tokens, (long long)p.text, (long long)in.text_valid);
        printf("batch %lld, heads %lld, head_dim %lld, dtype %s, order %s, device %s\n", (long long)p.batch, (long long)p.heads,
               (long long)p.head_dim, stile_dtype_name(p.dtype), p.order == STILE_ORDER_TILED ? "tiled" : "natural", in.device);
        if (p.key_tiles_k) { /* the tiles come with each execution: the figures are bounds */
            printf("caller-chosen key tiles: up to %lld per query tile, given at execution; the figures below are bounds "
                   "(every row %lld distinct tiles, the largest)\n", (long long)p.key_tiles_k, (long long)p.key_tiles_k);
            printf("sparsity >= %.2f%% (video x video pairs skipped)\n", 100 * in.sparsity);
            printf("attended pairs <= %lld of %lld; FLOPs computed <= %.4g (full attention %.4g)\n", (long long)in.attended_pairs,
                   (long long)in.full_pairs, in.flops, in.full_flops);
            goto done;
        }
        printf("sparsity %.2f%% (video x video pairs skipped), %lld distinct window(s)\n", 100 * in.sparsity,
               (long long)in.distinct_windows);
        printf("attended pairs %lld of %lld; FLOPs computed %.4g (full attention %.4g, %.2fx)\n", (long long)in.attended_pairs,
               (long long)in.full_pairs, in.flops, in.full_flops, in.full_flops / in.flops);
        printf("%-5s %-12s %-12s %-16s %-10s %s\n", "head", "window", "effective", "key tiles/query", "sparsity",
               "query tiles/key (backward)");
        for (int64_t h = 0; h < p.heads; h++) {
            stile_head_info hi;
            stile_plan_get_head(plan, h, &hi);
            char w[64], e[64];
            cli_triple(w, sizeof w, hi.window);
            cli_triple(e, sizeof e, hi.effective);
            printf("%-5lld %-12s %-12s %-16lld %-10s %lld..%lld\n", (long long)h, w, e, (long long)hi.key_tiles, pct(hi.sparsity),
                   (long long)hi.min_query_tiles, (long long)hi.max_query_tiles);
        }
    }
done:
    stile_plan_destroy(&plan);
    stile_device_close(&dev);
    free(o.windows);
    return rc;
}
