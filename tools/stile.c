/* `stile`: the command-line tool: info, plan, run, bench. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cmds[] = {
    {"info", cmd_info, "version, backends built, devices found"},
    {"plan", cmd_plan, "grid, sparsity, FLOPs and key tiles per head of a problem (--json)"},
    {"run", cmd_run, "run a problem on a device (random or .npy inputs), --check against the oracle"},
    {"bench", cmd_bench, "time STA and full attention on one device or named workloads (--json, --compare)"},
    {"conformance", cmd_conformance, "run the conformance cases on every device against the fp64 oracle"},
    {"chart", cmd_chart, "SVG chart and Markdown table from benchmark result files"},
    {"calibrate", cmd_calibrate, "pick a window per (step, layer, head) from captured q/k/v (FastVideo format)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: stile <command> [options]   (stile <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\nexample: stile plan --canvas 30x48x80 --tile 6x8x8 --window 3x3x3 --heads 24 --text 256\n");
    fprintf(f, "\nexit status: 0 done; 1 a failure at run time (no such device found here, out of memory, the backend's\n"
               "runtime, writing a file, a failed --check); 2 bad usage or a bad value (an option, a malformed input\n"
               "file, an unknown device or a backend not built, a problem the backend does not support, e.g. a head dim).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("stile %s (commit %s)\n", stile_version_string(), stile_build_commit());
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "stile: unknown command '%s' (commands: info, plan, run, bench, conformance, chart, calibrate; see stile --help)\n", argv[1]);
    return 2;
}
