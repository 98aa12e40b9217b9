/* `stile info`: version, backends built, where their code is (linked in or a module), devices found. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv)
{
    cli_opts o = {.cmd = "info", .cmd_bit = CMD_INFO};
    cli_parse(&o, argc, argv, "Print the library version, the backends this build has and the devices they find.");
    cli_log_init(&o);
    printf("stile %s (commit %s)\n", stile_version_string(), stile_build_commit());
    printf("%-8s %-6s %-8s %s\n", "backend", "built", "devices", "status");
    for (int i = 0; i < stile_backend_count(); i++) {
        stile_backend_info bi;
        if (stile_backend_get_info(i, &bi) != STILE_OK) return 1;
        printf("%-8s %-6s %-8d %s\n", bi.name, bi.built ? "yes" : "no", bi.devices, bi.status);
        if (bi.available && bi.module[0]) printf("  module     %s\n", bi.module);
        for (int d = 0; d < bi.devices; d++) {
            char name[32];
            snprintf(name, sizeof name, "%s:%d", bi.name, d);
            stile_device *dev = NULL;
            if (stile_device_open(name, NULL, &dev) != STILE_OK) continue;
            stile_device_info di;
            stile_device_get_info(dev, &di);
            printf("  %-10s %s\n", di.name, di.description);
            stile_device_close(&dev);
        }
    }
    return 0;
}
