/* libFuzzer harness: the `stile` option parser (tools/cli.c) on any argument vector of any
 * subcommand, then the library's check of the problem it built. Bad usage leaves through cli_exit,
 * which here jumps back instead of exiting; nothing may crash, leak or read out of bounds. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static jmp_buf back;
static int left_with;

static void jump_back(int status)
{
    left_with = status;
    longjmp(back, 1);
}

static void quiet(void *user, stile_log_level level, const char *msg) { (void)user, (void)level, (void)msg; }

static const struct {
    const char *name;
    unsigned bit;
} cmds[] = {{"info", CMD_INFO}, {"plan", CMD_PLAN}, {"run", CMD_RUN}, {"bench", CMD_BENCH},
            {"conformance", CMD_CONFORMANCE}, {"chart", CMD_CHART}, {"calibrate", CMD_CALIBRATE}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX_ARGS = 64 };
    if (size < 1) return 0;
    cli_exit = jump_back;
    stile_log_set(quiet, NULL, STILE_LOG_ERROR);
    /* the first byte picks the subcommand; the rest, split at NUL bytes, is argv */
    char *buf = malloc(size); /* size - 1 bytes of arguments and a final NUL */
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *a = buf; a < buf + size - 1 && argc < MAX_ARGS; a += strlen(a) + 1) argv[argc++] = a;
    argv[argc] = NULL;
    static cli_opts o; /* static: it must keep its value across the longjmp */
    memset(&o, 0, sizeof o);
    const int c = data[0] % (int)(sizeof cmds / sizeof cmds[0]);
    o.cmd = cmds[c].name;
    o.cmd_bit = cmds[c].bit;
    if (setjmp(back) == 0) {
        cli_parse(&o, argc, argv, "fuzzing");
        if (o.cmd_bit & (CMD_PLAN | CMD_RUN | CMD_BENCH) && !o.workloads && !o.list_workloads)
            (void)stile_problem_check(&o.p); /* what the parser let through, the library must judge cleanly */
    } else if (left_with != 0 && left_with != 2) {
        abort(); /* the parser leaves with 2 (bad usage) or 0 (--help) only */
    }
    free(o.windows);
    free(buf);
    return 0;
}
