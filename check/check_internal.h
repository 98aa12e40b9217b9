/* What the files of libstile_check share: the public header, and failures reported the way libstile
 * reports its own (stile_report_error: a status, stile_last_error() and the log sink). The library
 * reaches libstile through its public API only. */
#ifndef STILE_CHECK_INTERNAL_H
#define STILE_CHECK_INTERNAL_H

#include "stile/stile_check.h"

#define check_fail stile_report_error

/* Index of q, k, v and o in oracle_problem's per-tensor arrays. */
enum { ORACLE_Q = 0, ORACLE_K = 1, ORACLE_V = 2, ORACLE_O = 3 };

/* The caller's problem or io in this header's layout (copied to *out), or a status and a sentence
 * for a struct_size this library does not take: it is built with libstile's header of the same
 * release, and takes exactly that layout (libstile's own entry points say the same). */
stile_status check_problem_import(const stile_problem *in, stile_problem *out, const char *who);
stile_status check_io_import(const stile_io *in, stile_io *out, const char *who);

#endif
