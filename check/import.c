/* The caller's stile_problem and stile_io in this header's layout. libstile_check is built with the
 * stile.h of its own release and takes exactly that layout, with the same sentences libstile uses
 * (a size of 0 is a program built before struct_size existed; a larger one a newer header). */
#include <string.h>

#include "check_internal.h"

static stile_status import(const void *in, size_t current, void *out, const char *type, const char *who)
{
    uint32_t size;
    memcpy(&size, in, sizeof size);
    if (size == 0)
        return check_fail(STILE_ERR_INVALID_ARGUMENT,
                          "%s: %s.struct_size is 0: set it to sizeof(%s) (a program built against stile 0.1's header, "
                          "which had no struct_size, lands here too: rebuild it)",
                          who, type, type);
    if (size > current)
        return check_fail(STILE_ERR_UNSUPPORTED,
                          "%s: %s.struct_size %u: built against a newer stile header than this libstile_check (%s) "
                          "knows, whose %s has %zu bytes",
                          who, type, (unsigned)size, STILE_VERSION_STRING, type, current);
    if (size != current)
        return check_fail(STILE_ERR_INVALID_ARGUMENT,
                          "%s: %s.struct_size %u matches no layout of %s this libstile_check (%s) knows "
                          "(current: %zu bytes); set it to sizeof(%s)",
                          who, type, (unsigned)size, type, STILE_VERSION_STRING, current, type);
    memcpy(out, in, size);
    return STILE_OK;
}

stile_status check_problem_import(const stile_problem *in, stile_problem *out, const char *who)
{
    if (!in) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: the problem is NULL", who);
    return import(in, sizeof *in, out, "stile_problem", who);
}

stile_status check_io_import(const stile_io *in, stile_io *out, const char *who)
{
    if (!in) return check_fail(STILE_ERR_NULL_ARGUMENT, "%s: io is NULL", who);
    return import(in, sizeof *in, out, "stile_io", who);
}
