/* The conformance suite on every device this build finds: each backend joins by being built, with
 * no test code of its own. A device that fails or mistrusts any case, or refuses one the table does
 * not expect it to refuse, fails its test; with no device at all the binary exits 77 (skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static const char *skip; /* STILE_CONFORMANCE_SKIP: leave out cases whose label contains it */

static void test_device_passes_the_conformance_cases(void **state)
{
    const char *name = *state;
    stile_device *dev = NULL;
    assert_int_equal(stile_device_open(name, NULL, &dev), STILE_OK);
    int n = 0, count[4] = {0}, considered = 0, ran = 0;
    stile_conf_variant *v = stile_conf_expand(&n);
    assert_non_null(v);
    for (int i = 0; i < n; i++) {
        if (skip && strstr(v[i].label, skip)) continue;
        stile_conf_result r = stile_conf_run_variant(dev, &v[i], 1000 + 10 * (uint64_t)i);
        conf_report(&r, v[i].label);
        count[r.status]++;
        considered++;
        ran += !r.unsupported;
    }
    printf("  %s: %d cases, %d run: %d pass, %d fail (unexpectedly unsupported included), %d mistrusted; "
           "%d unsupported as the table expects\n",
           name, considered, ran, count[STILE_CONF_PASS], count[STILE_CONF_FAIL], count[STILE_CONF_MISTRUSTED], count[STILE_CONF_UNSUPPORTED]);
    free(v);
    stile_device_close(&dev);
    assert_int_equal(count[STILE_CONF_FAIL], 0);
    assert_int_equal(count[STILE_CONF_MISTRUSTED], 0);
    assert_true(count[STILE_CONF_PASS] > 0);
}

/* test_conformance [BACKEND]: every device of every backend, or of the one named; with no device
 * to test, exit 77 (skipped) and say why. */
int main(int argc, char **argv)
{
    conf_log_init();
    const char *only = argc > 1 ? argv[1] : NULL;
    skip = getenv("STILE_CONFORMANCE_SKIP");
    if (skip && !*skip) skip = NULL;
    if (skip) printf("# leaving out cases whose label contains '%s'\n", skip);
    char why[512] = "";
    struct CMUnitTest tests[64];
    char names[64][40];
    size_t n = 0;
    for (int b = 0; b < stile_backend_count(); b++) {
        stile_backend_info bi;
        if (stile_backend_get_info(b, &bi) != STILE_OK) return 1;
        if (only && strcmp(bi.name, only) != 0) continue;
        if (!bi.built || bi.devices == 0) {
            printf("# %s: %s\n", bi.name, bi.built ? bi.status : "not built");
            snprintf(why + strlen(why), sizeof why - strlen(why), "%s%s: %s", why[0] ? "; " : "", bi.name,
                     bi.built ? bi.status : "not built");
            continue;
        }
        for (int d = 0; d < bi.devices && n < 64; d++, n++) {
            snprintf(names[n], sizeof names[n], "%s:%d", bi.name, d);
            tests[n] = (struct CMUnitTest){names[n], test_device_passes_the_conformance_cases, NULL, NULL, names[n]};
        }
    }
    if (n == 0) {
        printf("skipped: no device to test (%s)\n", why[0] ? why : "no such backend");
        return 77;
    }
    return _cmocka_run_group_tests("conformance", tests, n, NULL, NULL);
}
