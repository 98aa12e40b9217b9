/* What the unit tests share beside libstile_check's harness (stile/stile_check.h): captured log
 * lines, the CPU device of a cmocka group, scratch directories, and a printed result line. */
#ifndef STILE_TEST_UTIL_H
#define STILE_TEST_UTIL_H

#include <stddef.h>

#include "stile/stile_check.h"

/* Capture library log lines (printing them too if STILE_TEST_VERBOSE is set). */
void conf_log_init(void);
const char *conf_last_log(void);

/* cmocka group setup/teardown for unit tests on the CPU: logs captured, conf_cpu open for the group. */
extern stile_device *conf_cpu;
int conf_group_open_cpu(void **state);
int conf_group_close_cpu(void **state);

/* A fresh directory /tmp/stile-WHAT-XXXXXX for a test's files (0 on success), and its removal with
 * everything in it (0 on success). */
int conf_tmpdir(char *dir, size_t size, const char *what);
int conf_tmpdir_remove(const char *dir);

/* Print the result line of a harness run, return 1 if it passed. */
int conf_report(const stile_conf_result *r, const char *label);

#endif
