/* libFuzzer harness: any bytes as a FastVideo strategy file through stile_strategy_load; what loads
 * must save and load back to the same windows, and plan on the CPU for a small problem. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stile/stile.h"

static void quiet(void *user, stile_log_level level, const char *msg) { (void)user, (void)level, (void)msg; }

static char dir[64], in_path[96], out_path[96];

static void cleanup(void)
{
    unlink(in_path);
    unlink(out_path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static stile_device *cpu;
    if (!cpu) {
        stile_log_set(quiet, NULL, STILE_LOG_ERROR);
        stile_device_params dp = {.struct_size = sizeof dp, .threads = 1};
        /* memory-backed when there is one: a save (temporary, rename) costs milliseconds on a disk */
        snprintf(dir, sizeof dir, "%s/stile-fuzz-strategy-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (stile_device_open("cpu", &dp, &cpu) != STILE_OK || !mkdtemp(dir)) abort();
        snprintf(in_path, sizeof in_path, "%s/in.json", dir);
        snprintf(out_path, sizeof out_path, "%s/out.json", dir);
        atexit(cleanup);
    }
    FILE *f = fopen(in_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    stile_strategy *s = NULL;
    stile_status st = stile_strategy_load(in_path, &s);
    if ((st == STILE_OK) != (s != NULL)) abort();
    if (!s) return 0;
    stile_strategy *back = NULL;
    if (stile_strategy_save(s, out_path) != STILE_OK || stile_strategy_load(out_path, &back) != STILE_OK) abort();
    if (stile_strategy_size(back) != stile_strategy_size(s)) abort();
    /* every head of (step 0, layer 0) that the file names reads back the same, and plans */
    int64_t w[3], wb[3];
    for (int64_t h = 0; h < 4; h++) {
        stile_status a = stile_strategy_get(s, 0, 0, h, w), b = stile_strategy_get(back, 0, 0, h, wb);
        if (a != b || (a == STILE_OK && memcmp(w, wb, sizeof w) != 0)) abort();
    }
    stile_problem base = {.struct_size = sizeof base, .canvas = {4, 8, 8}, .tile = {2, 4, 4}, .heads = 4, .head_dim = 8};
    const stile_plan *plan = NULL;
    st = stile_strategy_plan(s, cpu, &base, 0, 0, &plan);
    if ((st == STILE_OK) != (plan != NULL)) abort();
    stile_strategy_destroy(&s);
    stile_strategy_destroy(&back);
    return 0;
}
