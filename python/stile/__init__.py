"""stile: Sliding Tile Attention (3D block-sparse attention for video transformers) from Python.

    import stile
    o = stile.attention(q, k, v, canvas=(30, 48, 80), tile=(6, 8, 8), window=(3, 3, 3), text=256)

q, k and v are torch tensors (CPU or CUDA; computed on the tensor's device and the current CUDA stream),
NumPy arrays, or any DLPack object (CuPy, JAX); they are read in place through their strides. The
C library does the work (libstile; docs/contract.md states what is computed); plans are cached per
(device, problem), so a diffusion loop plans once. Library messages go to logging.getLogger("stile").
"""

import sys as _sys

from . import _capi
from ._attention import fast as _fast
from ._attention import needs_grad as _needs_grad
from ._attention import normalize_windows
from ._attention import run as _run
from ._capi import StileError, StileValueError, set_log_level
from ._runtime import Device, clear_plan_cache
from ._runtime import stats as _stats
from .strategy import Strategy, calibrate
from ._vsa import vsa

__version__ = "0.2.0"
__all__ = ["attention", "vsa", "devices", "Device", "StileError", "StileValueError", "Strategy", "calibrate", "library_version",
           "clear_plan_cache", "plan_cache_stats", "set_log_level", "fastvideo"]


def library_version():
    """The C library's version and the commit it was built from: "0.2.0 (abc1234)"."""
    return f"{_capi.stile_version_string().decode()} ({_capi.stile_build_commit().decode()})"


def devices():
    """Every device the C library finds: a list of dicts with name ("cpu:0", "cuda:0"), backend,
    description, card and driver; and backends that are not usable here as entries with
    "unavailable" set to the library's reason."""
    import ctypes

    found = []
    for i in range(_capi.stile_backend_count()):
        bi = _capi.BackendInfo()
        if _capi.stile_backend_get_info(i, ctypes.byref(bi)) != _capi.OK:
            continue
        name = bi.name.decode()
        if not bi.built:
            continue
        if not bi.available or bi.devices == 0:
            found.append({"name": name, "backend": name, "unavailable": bi.status.decode(errors="replace")})
            continue
        for d in range(bi.devices):
            try:
                dev = Device(f"{name}:{d}")
            except StileError as e:
                found.append({"name": f"{name}:{d}", "backend": name, "unavailable": str(e)})
                continue
            found.append(dict(dev.info))
            dev.close()
    return found


def plan_cache_stats():
    """{"plans_created": N, "plan_cache_hits": M} since the process started."""
    return dict(_stats)


def attention(q, k, v, *, canvas, tile, window=None, text=0, text_padding=0, scale=None, order="natural", out=None,
              return_lse=False, device=None, layout="bshd", key_tiles=None):
    """Sliding tile attention of q, k, v.

    q, k, v: [B, S, H, D] (layout="bshd", the default) or [B, H, S, D] (layout="bhsd"), float32,
        float16 or bfloat16, S = T*H*W video tokens (canvas) followed by `text` text tokens. Any
        strides; the same kind, dtype and device for all three.
    canvas, tile: (T, H, W) video tokens and tile size in tokens. window: (t, h, w) in tiles for every
        head, or one (t, h, w) per head. key_tiles (instead of window): the key tiles each query tile
        attends, chosen by the caller (e.g. VSA's top-k): a contiguous int32 array [B, H, tiles, k] on
        q's device, -1 for unused entries, repeats counted once, any order (docs/contract.md,
        "Caller-chosen key tiles"); an index outside 0..tiles-1 raises StileError (on a GPU stream it
        is skipped: see the contract); under torch.compile and autograd too (the gradients take the
        same tiles). text_padding: how many of the last text tokens are padding
        (never attended as keys). scale: softmax scale (default 1/sqrt(D)). order: "natural" (raster
        order, what models hold) or "tiled" (tile by tile).
    out: optional array to write (q's shape, dtype and device); else a new one of q's kind.
    return_lse: also return the log-sum-exp, float32 [B, H, S].
    device: None runs where the tensors are; a GPU device name ("vulkan:0", "cuda:0") for host
        arrays stages them through that device's buffers (copies).

    Returns out, or (out, lse). Raises TypeError/ValueError naming the argument for arrays stile
    cannot take, StileValueError for a problem the library refuses, StileError otherwise.
    Under torch.compile the call is the custom op torch.ops.stile.attention (no graph break).
    Autograd: torch tensors that require grad get dq, dk and dv from the library's backward pass
    (stile_plan_backward: deterministic; every backend has one) through the same
    op; the gradient with respect to the returned lse is not computed (a nonzero one raises).
    """
    sig = None
    torch = _sys.modules.get("torch")
    if key_tiles is not None and not (torch is not None and isinstance(q, torch.Tensor) and
                                      (torch.compiler.is_compiling() or _needs_grad(torch, q, k, v))):
        # eager, without the fast path (the lists change from call to call)
        o, lse = _run(q, k, v, canvas=canvas, tile=tile, window=window, text=text, text_padding=text_padding, scale=scale,
                      order=order, out=out, return_lse=return_lse, device=device, layout=layout, key_tiles=key_tiles)
        return (o, lse) if return_lse else o
    if torch is not None:
        if isinstance(q, torch.Tensor) and (torch.compiler.is_compiling() or _needs_grad(torch, q, k, v)):
            from . import _torch_op

            if device is not None:
                raise ValueError(f"device={device!r}: under torch.compile or autograd stile runs where the tensors are "
                                 "(leave device unset)")
            if key_tiles is not None and window is not None:
                raise ValueError("window: not with key_tiles (the caller's key tiles replace the windows)")
            windows = normalize_windows(window) if key_tiles is None else None
            o, lse = _torch_op.call(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse,
                                    key_tiles)
            if out is not None:
                out.copy_(o)
                o = out
            return (o, lse) if return_lse else o
        if device is None:  # a call like an earlier one: its plan and stile_io reused (stile/_prepared.py)
            done, sig = _fast(torch, q, k, v, canvas, tile, window, text, text_padding, scale, order, out, return_lse, layout)
            if done is not None:
                return done if return_lse else done[0]
        if "stile._torch_op" not in _sys.modules:  # torch came after stile: register the op now, before any compile
            from . import _torch_op  # noqa: F401
    o, lse = _run(q, k, v, canvas=canvas, tile=tile, window=window, text=text, text_padding=text_padding, scale=scale,
                  order=order, out=out, return_lse=return_lse, device=device, layout=layout, sig=sig)
    return (o, lse) if return_lse else o


def _register_torch_op_if_loaded():
    import sys

    if "torch" in sys.modules:
        from . import _torch_op  # noqa: F401  (registers torch.ops.stile.attention)


_register_torch_op_if_loaded()
from . import fastvideo  # noqa: E402
