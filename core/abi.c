/* Input structures that can grow: each begins with struct_size, which the caller sets to the
 * sizeof of the header it was built with. Every entry point copies the caller's structure into the
 * library's current layout here before reading a field: a layout this library knows is taken (the
 * fields it lacks read as zero, their defaults), anything else is refused with a status and a
 * sentence, never read past what the caller said it holds. */
#include <stddef.h>
#include <string.h>

#include "stile_internal.h"

/* The layouts this library takes for one structure: the current one, and older ones as they appear. */
typedef struct layout_sizes {
    const char *type;
    size_t current;
    size_t previous; /* the layout before the last fields were appended (API 2), or 0 */
} layout_sizes;

static stile_status import(const void *in, const layout_sizes *l, void *out, const char *what)
{
    uint32_t size;
    memcpy(&size, in, sizeof size);
    if (size == 0)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT,
                          "%s: %s.struct_size is 0: set it to sizeof(%s) (a program built against stile 0.1's header, "
                          "which had no struct_size, lands here too: rebuild it)",
                          what, l->type, l->type);
    if (size > l->current)
        return stile_fail(STILE_ERR_UNSUPPORTED,
                          "%s: %s.struct_size %u: built against a newer stile header than this library (%s) knows, "
                          "whose %s has %zu bytes",
                          what, l->type, (unsigned)size, STILE_VERSION_STRING, l->type, l->current);
    if (size != l->current && (size != l->previous || !l->previous))
        return stile_fail(STILE_ERR_INVALID_ARGUMENT,
                          "%s: %s.struct_size %u matches no layout of %s this library (%s) knows (current: %zu bytes); "
                          "set it to sizeof(%s)",
                          what, l->type, (unsigned)size, l->type, STILE_VERSION_STRING, l->current, l->type);
    memset(out, 0, l->current); /* fields an older layout lacks read as zero: their defaults */
    memcpy(out, in, size);
    memcpy(out, &(uint32_t){(uint32_t)l->current}, sizeof(uint32_t));
    return STILE_OK;
}

stile_status stile_problem_import(const stile_problem *in, stile_problem *out, const char *what)
{
    static const layout_sizes l = {"stile_problem", sizeof(stile_problem), offsetof(stile_problem, key_tiles_k)};
    if (!in) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: the problem is NULL", what);
    return import(in, &l, out, what);
}

stile_status stile_device_params_import(const stile_device_params *in, stile_device_params *out)
{
    static const layout_sizes l = {"stile_device_params", sizeof(stile_device_params), 0};
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    if (!in) return STILE_OK;
    return import(in, &l, out, "device params");
}

stile_status stile_grad_io_import(const stile_grad_io *in, stile_grad_io *out, const char *what)
{
    static const layout_sizes l = {"stile_grad_io", sizeof(stile_grad_io), offsetof(stile_grad_io, key_tiles)};
    if (!in) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: io is NULL", what);
    return import(in, &l, out, what);
}

stile_status stile_io_import(const stile_io *in, stile_io *out, const char *what)
{
    static const layout_sizes l = {"stile_io", sizeof(stile_io), offsetof(stile_io, key_tiles)};
    if (!in) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: io is NULL", what);
    return import(in, &l, out, what);
}
