"""libstile through ctypes: the library found and loaded, the structures of stile.h mirrored, every
function's prototype declared, failures turned into StileError, and the library's log lines routed to
Python's ``logging`` (logger "stile").

The structures follow include/stile/stile.h field by field; tests/test_capi.py compiles a C program
against that header and compares every size and offset, so a change there cannot pass unnoticed."""

import ctypes
import logging
import os
import pathlib
import threading

c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32

# ---- statuses, dtypes, orders, log levels (stile.h, explicit values) ----
OK = 0
ERR_NULL_ARGUMENT = 1
ERR_INVALID_SIZE = 2
ERR_INVALID_WINDOW = 3
ERR_INVALID_STRIDES = 4
ERR_OUT_OF_RANGE = 5
ERR_DTYPE_MISMATCH = 6
ERR_OVERFLOW = 7
ERR_ALIASING = 8
ERR_INVALID_ARGUMENT = 9
ERR_UNSUPPORTED = 10
ERR_UNKNOWN_DEVICE = 11
ERR_NO_DEVICE = 12
ERR_OUT_OF_MEMORY = 13
ERR_BACKEND = 14
ERR_IO = 15
ERR_FORMAT = 16
ERR_BUFFER_TOO_SMALL = 17
ERR_DEVICE_LOST = 18

DTYPE_F32 = 0
DTYPE_F16 = 1
DTYPE_BF16 = 2
DTYPE_I32 = 3  # index tensors (IO.key_tiles)
ORDER_NATURAL = 0
ORDER_TILED = 1
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 1, 2, 3, 4

API_VERSION = 3  # the STILE_API_VERSION these mirrors were written for


class Strides(ctypes.Structure):
    _fields_ = [("batch", c_int64), ("token", c_int64), ("head", c_int64), ("dim", c_int64)]


class Problem(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("batch", c_int64),
        ("canvas", c_int64 * 3),
        ("tile", c_int64 * 3),
        ("window", c_int64 * 3),
        ("head_windows", ctypes.POINTER(c_int64 * 3)),
        ("heads", c_int64),
        ("head_dim", c_int64),
        ("text", c_int64),
        ("text_padding", c_int64),
        ("dtype", ctypes.c_int),
        ("order", ctypes.c_int),
        ("scale", ctypes.c_double),
        ("q", Strides),
        ("k", Strides),
        ("v", Strides),
        ("o", Strides),
        ("key_tiles_k", c_int64),
    ]


class Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("bytes", ctypes.c_size_t),
        ("dtype", ctypes.c_int),
        ("handle", ctypes.c_uint64),
        ("offset", ctypes.c_uint64),
    ]


class ExecInfo(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char * 48), ("reserved", ctypes.c_uint8 * 80)]


class IO(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("q", Tensor),
        ("k", Tensor),
        ("v", Tensor),
        ("o", Tensor),
        ("lse", Tensor),
        ("stream", ctypes.c_void_p),
        ("info", ctypes.POINTER(ExecInfo)),
        ("key_tiles", Tensor),
        ("key_tile_errors", Tensor),
    ]


class GradIO(ctypes.Structure):
    # stile_grad_io: stile_io's size and tensors, then d_o and the three gradients, then its stream, info and key tiles
    _fields_ = IO._fields_[:6] + [(name, Tensor) for name in ("d_o", "d_q", "d_k", "d_v")] + IO._fields_[6:]


class VsaIO(ctypes.Structure):
    # stile_vsa_io (stile/stile_vsa.h)
    _fields_ = [("struct_size", c_uint32)] + [(name, Tensor) for name in (
        "q", "k", "v", "gate", "o", "q_c", "k_c", "v_c", "o_c", "scores", "key_tiles")] + [("stream", ctypes.c_void_p)]


LogFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class DeviceParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", ctypes.c_int),
        ("keep_blas_threads", ctypes.c_int),
        ("log", LogFn),
        ("log_user", ctypes.c_void_p),
        ("log_level", ctypes.c_int),
    ]


class DeviceInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 32),
        ("backend", ctypes.c_char * 16),
        ("description", ctypes.c_char * 192),
        ("card", ctypes.c_char * 96),
        ("driver", ctypes.c_char * 96),
        ("reserved", ctypes.c_uint8 * 64),
    ]


class BackendInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 16),
        ("built", ctypes.c_int),
        ("available", ctypes.c_int),
        ("devices", ctypes.c_int),
        ("status", ctypes.c_char * 256),
        ("module", ctypes.c_char * 256),
        ("reserved", ctypes.c_uint8 * 64),
    ]


class PlanInfo(ctypes.Structure):
    _fields_ = [
        ("grid", c_int64 * 3),
        ("tiles", c_int64),
        ("video_tokens", c_int64),
        ("tokens", c_int64),
        ("text_valid", c_int64),
        ("distinct_windows", c_int64),
        ("attended_pairs", c_int64),
        ("attended_video_pairs", c_int64),
        ("full_pairs", c_int64),
        ("flops", ctypes.c_double),
        ("full_flops", ctypes.c_double),
        ("sparsity", ctypes.c_double),
        ("device", ctypes.c_char * 32),
        ("path", ctypes.c_char * 48),
        ("reserved", ctypes.c_uint8 * 64),
    ]


# The structures tests/test_capi.py compares with the C header (name in C, mirror).
MIRRORS = {
    "stile_strides": Strides,
    "stile_problem": Problem,
    "stile_tensor": Tensor,
    "stile_exec_info": ExecInfo,
    "stile_io": IO,
    "stile_grad_io": GradIO,
    "stile_vsa_io": VsaIO,
    "stile_device_params": DeviceParams,
    "stile_device_info": DeviceInfo,
    "stile_backend_info": BackendInfo,
    "stile_plan_info": PlanInfo,
}


def _candidates():
    env = os.environ.get("STILE_LIBRARY")
    if env:
        return [env]
    bundled = pathlib.Path(__file__).resolve().parent / "_libs" / "libstile.so.1"
    out = [str(bundled)] if bundled.exists() else []
    return out + ["libstile.so.1"]


def _load():
    errors = []
    for name in _candidates():
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append(f"{name}: {e}")
    raise ImportError(
        "stile: libstile could not be loaded (" + "; ".join(errors) + "). Install the C library "
        "(meson install), set STILE_LIBRARY to a libstile.so, or install a wheel that carries it "
        "(python/README.md)."
    )


lib, library_path = _load()


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = ctypes.POINTER
vp = ctypes.c_void_p
st = ctypes.c_int  # stile_status
stile_version_string = _proto("stile_version_string", ctypes.c_char_p)
stile_build_commit = _proto("stile_build_commit", ctypes.c_char_p)
stile_status_string = _proto("stile_status_string", ctypes.c_char_p, st)
stile_last_error = _proto("stile_last_error", ctypes.c_char_p)
stile_log_set = _proto("stile_log_set", None, LogFn, vp, ctypes.c_int)
stile_problem_check = _proto("stile_problem_check", st, P(Problem))
stile_backend_count = _proto("stile_backend_count", ctypes.c_int)
stile_backend_get_info = _proto("stile_backend_get_info", st, ctypes.c_int, P(BackendInfo))
stile_device_open = _proto("stile_device_open", st, ctypes.c_char_p, P(DeviceParams), P(vp))
stile_device_close = _proto("stile_device_close", None, P(vp))
stile_device_get_info = _proto("stile_device_get_info", st, vp, P(DeviceInfo))
stile_plan_create = _proto("stile_plan_create", st, vp, P(Problem), P(vp))
stile_plan_destroy = _proto("stile_plan_destroy", None, P(vp))
stile_plan_get_info = _proto("stile_plan_get_info", st, vp, P(PlanInfo))
stile_plan_execute = _proto("stile_plan_execute", st, vp, P(IO))
stile_plan_backward = _proto("stile_plan_backward", st, vp, P(GradIO))
stile_vsa_forward = _proto("stile_vsa_forward", st, vp, P(VsaIO))
stile_plan_json = _proto("stile_plan_json", st, vp, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, P(ctypes.c_size_t))
stile_buffer_create = _proto("stile_buffer_create", st, vp, ctypes.c_size_t, P(vp))
stile_buffer_destroy = _proto("stile_buffer_destroy", None, P(vp))
stile_buffer_upload = _proto("stile_buffer_upload", st, vp, ctypes.c_size_t, vp, ctypes.c_size_t)
stile_buffer_download = _proto("stile_buffer_download", st, vp, ctypes.c_size_t, vp, ctypes.c_size_t)
stile_buffer_data = _proto("stile_buffer_data", vp, vp)
stile_strategy_create = _proto("stile_strategy_create", st, P(vp))
stile_strategy_load = _proto("stile_strategy_load", st, ctypes.c_char_p, P(vp))
stile_strategy_save = _proto("stile_strategy_save", st, vp, ctypes.c_char_p)
stile_strategy_json = _proto("stile_strategy_json", st, vp, ctypes.c_char_p, ctypes.c_size_t, P(ctypes.c_size_t))
stile_strategy_destroy = _proto("stile_strategy_destroy", None, P(vp))
stile_strategy_set = _proto("stile_strategy_set", st, vp, c_int64, c_int64, c_int64, P(c_int64 * 3))
stile_strategy_get = _proto("stile_strategy_get", st, vp, c_int64, c_int64, c_int64, P(c_int64 * 3))
stile_strategy_size = _proto("stile_strategy_size", c_int64, vp)

# The header refers to stile_api_<N>; a library without it provides another API than these mirrors.
try:
    ctypes.c_int.in_dll(lib, f"stile_api_{API_VERSION}")
except ValueError:
    raise ImportError(
        f"stile: {library_path} ({stile_version_string().decode()}) does not provide API version "
        f"{API_VERSION}, which this Python package was written for: use the library of the same release"
    ) from None


class StileError(RuntimeError):
    """A failed call into libstile: ``status`` (the stile_status number), ``status_name`` (its
    sentence) and the library's message for this thread (stile_last_error)."""

    def __init__(self, status, message, what=""):
        self.status = status
        self.status_name = stile_status_string(status).decode()
        self.message = message
        super().__init__(f"{what}{': ' if what else ''}{self.status_name}: {message}")


class StileValueError(StileError, ValueError):
    """The library refused an argument (a size, window, stride, dtype or alias fault)."""


ARG_STATUSES = frozenset({ERR_NULL_ARGUMENT, ERR_INVALID_SIZE, ERR_INVALID_WINDOW, ERR_INVALID_STRIDES, ERR_OUT_OF_RANGE,
                          ERR_DTYPE_MISMATCH, ERR_OVERFLOW, ERR_ALIASING, ERR_INVALID_ARGUMENT})


def check(status, what=""):
    """For a status other than OK raise StileValueError (an argument the library refused) or
    StileError, with this thread's last library message."""
    if status != OK:
        raise (StileValueError if status in ARG_STATUSES else StileError)(status, stile_last_error().decode(errors="replace"), what)


# ---- the library's log lines into logging ----
logger = logging.getLogger("stile")
logger.addHandler(logging.NullHandler())  # a library's logger: the application decides where messages go
_PY_LEVEL = {LOG_ERROR: logging.ERROR, LOG_WARN: logging.WARNING, LOG_INFO: logging.INFO, LOG_DEBUG: logging.DEBUG}
_log_lock = threading.Lock()


def _sink(user, level, message):
    try:
        logger.log(_PY_LEVEL.get(level, logging.ERROR), "%s", message.decode(errors="replace"))
    except Exception:  # never let a logging failure unwind through C
        pass


_sink_fn = LogFn(_sink)  # kept alive as long as the module


def set_log_level(level):
    """The most detailed library messages forwarded to logging: a logging level (logging.DEBUG, ...)
    or None to stop forwarding. Default: logging.WARNING."""
    with _log_lock:
        if level is None:
            stile_log_set(LogFn(), None, 0)
            return
        n = LOG_DEBUG if level <= logging.DEBUG else LOG_INFO if level <= logging.INFO else LOG_WARN if level <= logging.WARNING else LOG_ERROR
        stile_log_set(_sink_fn, None, n)


set_log_level(logging.WARNING)
