/* Status strings, the log sink, and the version functions. */
#include <pthread.h>
#include <stdio.h>

#include "stile_commit.h"
#include "stile_internal.h"

/* The API version tags the header refers to (stile.h): one per API version this library provides.
 * A later API version adds its own and keeps the older ones while it only adds; one that takes
 * something away drops them. API 2 moved the oracle and checks to libstile_check, so a program
 * built for API 1 (which may call stile_oracle) no longer links or loads against this library. */
STILE_API const int stile_api_2 = 2;
const int stile_api_3 = 3; /* API 3 only added (caller-chosen key tiles): API 2's tag stays */

int stile_version(void) { return STILE_VERSION; }
const char *stile_version_string(void) { return STILE_VERSION_STRING; }
const char *stile_build_commit(void) { return STILE_COMMIT; }

const char *stile_status_string(stile_status status)
{
    switch (status) {
    case STILE_OK: return "success";
    case STILE_ERR_NULL_ARGUMENT: return "a required pointer is NULL";
    case STILE_ERR_INVALID_SIZE: return "invalid size (zero, negative or past its limit)";
    case STILE_ERR_INVALID_WINDOW: return "invalid window (zero or negative)";
    case STILE_ERR_INVALID_STRIDES: return "invalid strides (negative or overlapping)";
    case STILE_ERR_OUT_OF_RANGE: return "out of range (a tensor reaches past its buffer, or a bad index)";
    case STILE_ERR_DTYPE_MISMATCH: return "tensor dtype differs from the problem's";
    case STILE_ERR_OVERFLOW: return "sizes overflow the index arithmetic";
    case STILE_ERR_ALIASING: return "the output overlaps an input";
    case STILE_ERR_INVALID_ARGUMENT: return "invalid argument";
    case STILE_ERR_UNSUPPORTED: return "unsupported by this backend or build";
    case STILE_ERR_UNKNOWN_DEVICE: return "unknown device name";
    case STILE_ERR_NO_DEVICE: return "no such device on this machine";
    case STILE_ERR_OUT_OF_MEMORY: return "out of memory";
    case STILE_ERR_BACKEND: return "the backend's runtime failed";
    case STILE_ERR_IO: return "input/output error";
    case STILE_ERR_FORMAT: return "malformed input";
    case STILE_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case STILE_ERR_DEVICE_LOST: return "device lost";
    }
    return "unknown status";
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static stile_log_fn log_fn;
static void *log_user;
static stile_log_level log_max = STILE_LOG_ERROR;

void stile_log_set(stile_log_fn fn, void *user, stile_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user;
    log_max = max_level;
    pthread_mutex_unlock(&log_lock);
}

/* The device whose call this thread is in, if it has its own sink. */
static _Thread_local const stile_device *log_scope;

const stile_device *stile_log_enter(const stile_device *device)
{
    const stile_device *previous = log_scope;
    log_scope = device && device->log_fn ? device : previous;
    return previous;
}

void stile_log_leave(const stile_device *previous) { log_scope = previous; }

void stile_vlog(stile_log_level level, const char *fmt, va_list ap)
{
    stile_log_fn fn;
    void *user;
    stile_log_level max;
    const stile_device *d = log_scope;
    if (d) { /* a call on a device with a sink of its own */
        fn = d->log_fn;
        user = d->log_user;
        max = d->log_max;
    } else {
        pthread_mutex_lock(&log_lock);
        fn = log_fn;
        user = log_user;
        max = log_max;
        pthread_mutex_unlock(&log_lock);
    }
    if (!fn || level > max) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    fn(user, level, line);
}

void stile_log(stile_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stile_vlog(level, fmt, ap);
    va_end(ap);
}

/* The text of this thread's last failure: every stile_fail writes it, whatever the log sink. */
static _Thread_local char last_error[512];

const char *stile_last_error(void) { return last_error; }

stile_status stile_vfail(stile_status status, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(last_error, sizeof last_error, fmt, copy);
    va_end(copy);
    stile_vlog(STILE_LOG_ERROR, fmt, ap);
    return status;
}

stile_status stile_report_error(stile_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stile_vfail(status, fmt, ap);
    va_end(ap);
    return status;
}

