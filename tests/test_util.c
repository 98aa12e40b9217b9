/* Helpers of the unit tests (test_util.h). */
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

static char last_log[512];

static void sink(void *user, stile_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    snprintf(last_log, sizeof last_log, "%s", msg);
    if (getenv("STILE_TEST_VERBOSE")) fprintf(stderr, "  log: %s\n", msg);
}

void conf_log_init(void) { stile_log_set(sink, NULL, STILE_LOG_ERROR); }
const char *conf_last_log(void) { return last_log; }

stile_device *conf_cpu;

int conf_group_open_cpu(void **state)
{
    (void)state;
    conf_log_init();
    return stile_device_open("cpu", NULL, &conf_cpu) == STILE_OK ? 0 : -1;
}

int conf_group_close_cpu(void **state)
{
    (void)state;
    stile_device_close(&conf_cpu);
    return 0;
}

int conf_tmpdir(char *dir, size_t size, const char *what)
{
    if (snprintf(dir, size, "/tmp/stile-%s-XXXXXX", what) >= (int)size) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

int conf_tmpdir_remove(const char *dir)
{
    char cmd[512];
    if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd) return -1;
    return system(cmd) == 0 ? 0 : -1;
}


int conf_report(const stile_conf_result *r, const char *label)
{
    if (r->unsupported) { /* nothing ran: no figures to show */
        printf("  [%s] %s: %s\n", label, stile_conf_status_name(r->status), r->reason);
        return r->status == STILE_CONF_PASS;
    }
    if (r->probe) {
        char sum[160];
        stile_conf_summary(r, sum, sizeof sum);
        printf("  [%s] seed %llu: %s; %s; rows %lld nonfinite %lld guards %s gaps %s %.0f ms%s%s\n", label,
               (unsigned long long)r->seed, stile_conf_status_name(r->status), sum, (long long)r->rows_checked,
               (long long)r->check.nonfinite, r->guard_ok ? "ok" : "BROKEN", r->gaps_ok ? "ok" : "WRITTEN", r->ms,
               r->reason[0] ? ": " : "", r->reason);
        return r->status == STILE_CONF_PASS;
    }
    printf("  [%s] seed %llu: %s; NMSE %.3e (bound %.0e) max|err| %.3e lse %.3e nonfinite %lld rows %lld guards %s gaps %s "
           "deterministic %s%s%s\n",
           label, (unsigned long long)r->seed, stile_conf_status_name(r->status), r->check.nmse, r->check.threshold,
           r->check.max_abs_error, r->check.lse_max_abs_error, (long long)r->check.nonfinite, (long long)r->rows_checked,
           r->guard_ok ? "ok" : "BROKEN", r->gaps_ok ? "ok" : "WRITTEN", r->deterministic ? "yes" : "NO",
           r->reason[0] ? ": " : "", r->reason);
    return r->status == STILE_CONF_PASS;
}
