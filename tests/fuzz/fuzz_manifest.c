/* libFuzzer harness: any bytes as a calibration capture manifest (tools/manifest.c). What parses
 * must be a problem the library accepts, with every sample naming its three files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

static void quiet(void *user, stile_log_level level, const char *msg) { (void)user, (void)level, (void)msg; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stile_log_set(quiet, NULL, STILE_LOG_ERROR);
    manifest m;
    char msg[512];
    msg[0] = 0;
    stile_status st = manifest_parse((const char *)data, size, "capture", &m, msg, sizeof msg);
    if (st != STILE_OK) {
        if (!msg[0] || m.nsamples != 0 || m.s) abort(); /* refused: said why, kept nothing */
        return 0;
    }
    if (stile_problem_check(&m.p) != STILE_OK || m.nsamples < 1 || m.nsamples > MANIFEST_MAX_SAMPLES) abort();
    for (int i = 0; i < m.nsamples; i++)
        if (!m.s[i].q || !m.s[i].k || !m.s[i].v || strncmp(m.s[i].q, "capture/", 8) != 0 || m.s[i].step < 0 || m.s[i].layer < 0)
            abort();
    manifest_free(&m);
    return 0;
}
