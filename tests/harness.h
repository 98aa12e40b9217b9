/* Test harness: seeded inputs, guard bands, poisoned outputs, and the check of a backend's run
 * against the fp64 oracle. Shared by every backend's tests (and later the conformance suite). */
#ifndef STILE_TEST_HARNESS_H
#define STILE_TEST_HARNESS_H

#include <stdint.h>

#include "stile/stile.h"

/* Guard band after every tensor: must hold GUARD_BYTE after the run. */
#define GUARD_BYTES 256
#define GUARD_BYTE 0xA5

typedef struct harness_result {
    stile_status status;   /* of plan_create / execute */
    stile_check check;     /* against the oracle */
    int guard_ok;          /* every guard band intact, inputs unchanged */
    int gaps_ok;           /* elements of o outside the tensor (stride gaps) still poisoned */
    int lse_checked;
} harness_result;

/* Fill n elements with seeded standard normal values. */
void harness_fill(void *dst, stile_dtype dt, int64_t n, uint64_t seed);

/* Plan p on dev, run with seeded inputs (seed, seed+1, seed+2 for q, k, v) and lse, check everything.
 * Prints the case, seed and figures; returns the figures. */
harness_result harness_run(stile_device *dev, const stile_problem *p, uint64_t seed, const char *label);

/* 1 if the run passed every check. */
int harness_passed(const harness_result *r);

/* Silence library logs unless STILE_TEST_VERBOSE is set; records the last error line. */
void harness_log_init(void);
const char *harness_last_log(void);

#endif
