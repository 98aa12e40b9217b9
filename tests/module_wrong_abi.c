/* A backend module from another build, as tests/test_modules.sh needs one: its ABI number is not
 * the library's, so the loader must refuse it before calling anything in it. */
#include <stdint.h>

__attribute__((visibility("default"))) extern const uint32_t stile_module_abi;
const uint32_t stile_module_abi = 999;

__attribute__((visibility("default"))) int stile_module_load(void);
int stile_module_load(void) { return 1; }
