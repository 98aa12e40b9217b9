"""stile.attention: the STA forward on whatever arrays the caller holds, without copies."""

import ctypes
import numbers
import operator
import sys

from . import _capi as C
from . import _prepared as P
from . import _runtime as R
from ._tensors import view, dtype_name


StileValueError = C.StileValueError
_check = C.check


def _int(x, name):
    """x as an int (int, NumPy or torch integer scalar), or TypeError naming name."""
    if isinstance(x, bool):
        raise TypeError(f"{name}: expected an integer, got {x!r}")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {x!r}") from None


def _triple(x, name):
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name}: expected three integers (t, h, w), got {x!r}")
    try:
        t = tuple(int(a) for a in x)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected three integers (t, h, w), got {x!r}") from None
    if len(t) != 3 or any(int(a) != a for a in x):
        raise ValueError(f"{name}: expected three integers (t, h, w), got {x!r}")
    return t


def normalize_windows(window, heads=None):
    """One (t, h, w) for every head, or a tuple of per-head triples."""
    try:
        if isinstance(window, (str, bytes)):
            raise TypeError
        first = window[0]
    except (TypeError, IndexError, KeyError):
        raise TypeError(f"window: expected (t, h, w) or one (t, h, w) per head, got {window!r}") from None
    if isinstance(first, numbers.Number) or (hasattr(first, "__index__") and not hasattr(first, "__len__")):
        return _triple(window, "window")
    ws = tuple(_triple(w, f"window[{i}]") for i, w in enumerate(window))
    if heads is not None and len(ws) != heads:
        raise ValueError(f"window: {len(ws)} per-head windows for {heads} heads")
    return ws


_ORDERS = {"natural": C.ORDER_NATURAL, "tiled": C.ORDER_TILED}
_LAYOUTS = ("bshd", "bhsd")


def check_order_layout(order, layout):
    """ValueError naming order= or layout= for a value stile does not know."""
    if order not in _ORDERS:
        raise ValueError(f"order={order!r}: 'natural' or 'tiled'")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout={layout!r}: 'bshd' ([B, S, H, D]) or 'bhsd' ([B, H, S, D])")


def _like_q(name, x, qv):
    """x has q's shape, dtype and device, or an error naming name."""
    if x.shape != qv.shape:
        raise ValueError(f"{name}: shape {x.shape} differs from q's {qv.shape}")
    if x.dtype != qv.dtype:
        raise TypeError(f"{name}: dtype {dtype_name(x.dtype)} differs from q's {dtype_name(qv.dtype)}")
    if x.device != qv.device:
        raise ValueError(f"{name}: on {x.device[0]}:{x.device[1]}, q on {qv.device[0]}:{qv.device[1]}")


def _device_name(v, device):
    """The stile device for arrays at v.device, or the caller's choice checked against it."""
    kind, idx = v.device
    own = "cpu" if kind == "cpu" else f"cuda:{idx}" if kind == "cuda" else f"hip:{idx}"
    if device is None:
        return own, False
    name = str(device)
    if name.startswith("torch") or hasattr(device, "type"):  # a torch.device
        t = getattr(device, "type", None)
        name = "cpu" if t == "cpu" else f"cuda:{device.index or 0}" if t == "cuda" else name
    base = name.split(":")[0]
    if kind == "cpu" and base == "cpu":
        return name, False
    if kind == "cpu" and base in ("vulkan", "cuda", "hip", "auto"):
        return name, True  # host arrays staged through the device's buffers
    if kind != "cpu" and (name == own or (base == own.split(":")[0] and ":" not in name and idx == 0)):
        return own, False
    raise ValueError(f"device={device!r}: the tensors are in {'host' if kind == 'cpu' else kind + ':' + str(idx)} memory; "
                     f"stile runs on the device that holds them ({own}), or stages host arrays through a GPU device")


def _alloc_like(v, shape, dtype_code, name):
    """A new array of the same kind and device as v (torch, NumPy, or v's module's empty)."""
    if v.kind == "torch":
        import torch

        tdt = {C.DTYPE_F32: torch.float32, C.DTYPE_F16: torch.float16, C.DTYPE_BF16: torch.bfloat16}[dtype_code]
        return torch.empty(shape, dtype=tdt, device=v.obj.device)
    if v.kind == "numpy" or (v.kind == "dlpack" and v.device[0] == "cpu" and dtype_code != C.DTYPE_BF16):
        import numpy as np

        return np.empty(shape, dtype={C.DTYPE_F32: np.float32, C.DTYPE_F16: np.float16}.get(dtype_code) or _np_bf16())
    root = type(v.obj).__module__.split(".")[0]
    mod = sys.modules.get(root) if root not in ("jax", "jaxlib") else None  # JAX arrays are immutable
    empty = getattr(mod, "empty", None)
    if empty is not None and dtype_code in (C.DTYPE_F32, C.DTYPE_F16):
        try:
            return empty(shape, dtype=dtype_name(dtype_code))
        except Exception:
            pass
    raise TypeError(f"{name}: cannot allocate a {type(v.obj).__qualname__} for the result; pass {name}= (any writable array "
                    "with __dlpack__ on the same device)")


def _np_bf16():
    try:
        import ml_dtypes

        return ml_dtypes.bfloat16
    except ImportError:
        raise TypeError("out: bfloat16 NumPy arrays need ml_dtypes (pip install ml-dtypes)") from None


def _stream_of(v):
    """torch GPU tensors: torch's current stream (P.stream_handle); others NULL, the default stream,
    and the call returns when the work is done."""
    if v.kind == "torch" and v.device[0] != "cpu":
        import torch

        return P.stream_handle(torch, v.device[1], v.device[0] == "cuda")
    return None


def _strides(v, layout):
    b, x, y, d = v.strides
    return C.Strides(b, x, y, d) if layout == "bshd" else C.Strides(b, y, x, d)


def needs_grad(torch, *xs):
    """Whether autograd records a call on these arrays: grad mode on and a torch tensor requiring grad."""
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in xs)


def fast(torch, q, k, v, canvas, tile, window, text, text_padding, scale, order, out, return_lse, layout):
    """A call with the signature of an earlier one (P.signature): (result or None, signature or None)."""
    try:
        sig = P.signature(torch, q, k, v, out, canvas, tile, window, text, text_padding, scale, order, layout, return_lse)
        prep = None if sig is None else P.lookup(sig)
    except TypeError:  # an argument that cannot be a key: the full path every time
        return None, None
    if prep is None or needs_grad(torch, q, k, v, out):
        return None, sig
    return prep(torch, q, k, v, out), sig


def tile_count(canvas, tile):
    """Tiles of the grid (whole and partial), or ValueError naming tile= for an extent below 1."""
    if any(t <= 0 for t in tile):
        raise ValueError(f"tile: {tile}: every extent must be at least 1")
    n = 1
    for c, t in zip(canvas, tile):
        n *= (c + t - 1) // t
    return n


def _inputs(q, k, v, canvas, tile, window, text, text_padding, order, layout, key_tiles=None):
    """q, k, v as views with the problem's arguments checked: (qv, kv, vv, canvas, tile, windows, text,
    text_padding, (B, S, H, D), ktv). With key_tiles (the caller's key tiles, int32 [B, H, tiles, k]):
    windows is None and ktv its view; else ktv is None."""
    check_order_layout(order, layout)
    canvas, tile = _triple(canvas, "canvas"), _triple(tile, "tile")
    qv, kv, vv = view(q, "q"), view(k, "k"), view(v, "v")
    for name, x in (("q", qv), ("k", kv), ("v", vv)):
        if len(x.shape) != 4:
            raise ValueError(f"{name}: expected 4 dimensions ({'[B, S, H, D]' if layout == 'bshd' else '[B, H, S, D]'} with "
                             f"layout={layout!r}), got shape {x.shape}")
    _like_q("k", kv, qv)
    _like_q("v", vv, qv)
    if layout == "bshd":
        B, S, H, D = qv.shape
    else:
        B, H, S, D = qv.shape
    text, text_padding = _int(text, "text"), _int(text_padding, "text_padding")
    video = canvas[0] * canvas[1] * canvas[2]
    if S != video + text:
        raise ValueError(f"q: {S} tokens along the sequence axis, but canvas {canvas} has {video} video tokens and text={text}: "
                         f"{video + text} expected")
    if key_tiles is None:
        if window is None:
            raise TypeError("window: required (t, h, w) in tiles, or key_tiles= the caller's key tiles")
        return qv, kv, vv, canvas, tile, normalize_windows(window, H), text, text_padding, (B, S, H, D), None
    if window is not None:
        raise ValueError("window: not with key_tiles (the caller's key tiles replace the windows)")
    tiles = tile_count(canvas, tile)
    ktv = view(key_tiles, "key_tiles", index=True)
    if len(ktv.shape) != 4 or ktv.shape[:3] != (B, H, tiles) or ktv.shape[3] < 1:
        raise ValueError(f"key_tiles: expected int32 [B, H, tiles, k] = [{B}, {H}, {tiles}, k >= 1], got shape {ktv.shape}")
    n = ktv.shape[3]
    if ktv.strides != (H * tiles * n, tiles * n, n, 1):
        raise ValueError(f"key_tiles: must be contiguous (strides {ktv.strides})")
    if ktv.device != qv.device:
        raise ValueError(f"key_tiles: on {ktv.device[0]}:{ktv.device[1]}, q on {qv.device[0]}:{qv.device[1]}")
    return qv, kv, vv, canvas, tile, None, text, text_padding, (B, S, H, D), ktv


def _problem(qv, kv, vv, ov, B, H, D, canvas, tile, windows, text, text_padding, scale, order, layout, ktv=None, topk=None):
    """The plan cache's key of a problem and a function that makes its stile_problem (windows None:
    the caller's key tiles, ktv.shape[3] per row, or topk)."""
    st = tuple((s.batch, s.token, s.head, s.dim) for s in (_strides(x, layout) for x in (qv, kv, vv, ov)))
    n = ktv.shape[3] if ktv is not None else topk
    kt = ("key_tiles", n) if n is not None else windows
    key = (qv.dtype, B, canvas, tile, kt, H, D, text, text_padding, _ORDERS[order], float(scale or 0.0), st)

    def make_problem():
        p = C.Problem()
        p.struct_size = ctypes.sizeof(C.Problem)
        p.batch, p.canvas[:], p.tile[:] = B, canvas, tile
        if n is not None:
            p.key_tiles_k = n
        elif isinstance(windows[0], int):
            p.window[:] = windows
        else:
            arr = ((ctypes.c_int64 * 3) * H)(*[(ctypes.c_int64 * 3)(*w) for w in windows])
            p.head_windows = ctypes.cast(arr, ctypes.POINTER(ctypes.c_int64 * 3))
            p._keep = arr  # the library copies it while planning
        p.heads, p.head_dim, p.text, p.text_padding = H, D, text, text_padding
        p.dtype, p.order, p.scale = qv.dtype, _ORDERS[order], float(scale or 0.0)
        p.q, p.k, p.v, p.o = (C.Strides(*s) for s in st)
        return p

    return key, make_problem


_UNSET = object()


def run(q, k, v, *, canvas, tile, window=None, text=0, text_padding=0, scale=None, order="natural", out=None,
        return_lse=False, device=None, layout="bshd", lse_out=None, sig=_UNSET, key_tiles=None):
    """The eager implementation behind attention() (see its docstring); returns (out, lse or None).
    sig: the call's signature when the caller has tried the fast path already."""
    if key_tiles is not None:
        sig = None  # the fast path keeps an earlier call's io: not for tensors that change every call
    if sig is _UNSET:
        sig = None
        torch = sys.modules.get("torch")
        if torch is not None and device is None and lse_out is None:
            done, sig = fast(torch, q, k, v, canvas, tile, window, text, text_padding, scale, order, out, return_lse, layout)
            if done is not None:
                return done
    qv, kv, vv, canvas, tile, windows, text, text_padding, (B, S, H, D), ktv = _inputs(q, k, v, canvas, tile, window, text,
                                                                                        text_padding, order, layout, key_tiles)
    devname, staged = _device_name(qv, device)

    ov = None
    if out is not None:
        ov = view(out, "out")
        _like_q("out", ov, qv)
        if not ov.writable:
            raise ValueError("out: read-only array")
    else:
        out = _alloc_like(qv, qv.shape, qv.dtype, "out")
        ov = view(out, "out")
        if ov.device != qv.device:  # a producer that allocates on its current device, not q's
            raise ValueError(f"out: the new array is on {ov.device[0]}:{ov.device[1]}, q on {qv.device[0]}:{qv.device[1]}; "
                             "pass out= on q's device (or make that device current)")
    lse = lv = None
    if return_lse or lse_out is not None:
        lse = lse_out if lse_out is not None else _alloc_like(qv, (B, H, S), C.DTYPE_F32, "lse")
        lv = view(lse, "lse")
        if lv.shape != (B, H, S) or lv.dtype != C.DTYPE_F32 or lv.strides != (H * S, S, 1):
            raise ValueError(f"lse: expected a contiguous float32 [B, H, S] = {(B, H, S)} array")

    if B == 0:  # an empty batch: nothing to compute (the library counts batch 0 as 1)
        return out, lse
    key, make_problem = _problem(qv, kv, vv, ov, B, H, D, canvas, tile, windows, text, text_padding, scale, order, layout, ktv)
    dev = R.device(devname)
    plan = R.plan(dev, key, make_problem)
    if staged:
        _execute_staged(plan, dev, (qv, kv, vv, ov, lv, ktv))
    else:
        io = C.IO()
        io.struct_size = ctypes.sizeof(C.IO)
        for f, x in (("q", qv), ("k", kv), ("v", vv), ("o", ov), ("lse", lv), ("key_tiles", ktv)):
            if x is not None:
                t = getattr(io, f)
                t.data, t.bytes, t.dtype = x.ptr, x.nbytes, x.dtype
        io.stream = _stream_of(qv)
        what = f"stile.attention on {dev.name}"
        _check(C.stile_plan_execute(plan.handle, ctypes.byref(io)), what)
        if sig is not None:
            gpu = qv.device[0] != "cpu"
            P.record(sig, P.Prepared(plan, io, q, (B, H, S) if lse is not None else None, qv.device[1] if gpu else None,
                                     qv.device[0] == "cuda", what))
    return out, lse


def backward(q, k, v, o, lse, d_o, d_q, d_k, d_v, *, canvas, tile, window=None, text=0, text_padding=0, scale=None,
             order="natural", layout="bshd", key_tiles=None):
    """The backward pass (stile_plan_backward) of attention(q, k, v, ...) = o with its lse: writes
    d_q, d_k, d_v (arrays of q's kind and device with q's, k's and v's strides) from d_o (o's strides).
    Runs where the arrays are, on the plan the forward used (the same problem, the same strides);
    key_tiles: the forward's own (instead of window)."""
    qv, kv, vv, canvas, tile, windows, text, text_padding, (B, S, H, D), ktv = _inputs(q, k, v, canvas, tile, window, text,
                                                                                        text_padding, order, layout, key_tiles)
    devname, _ = _device_name(qv, None)
    ov, dov, lv = view(o, "o"), view(d_o, "d_o"), view(lse, "lse")
    _like_q("o", ov, qv)
    _like_q("d_o", dov, qv)
    if dov.strides != ov.strides:
        raise ValueError(f"d_o: strides {dov.strides} differ from o's {ov.strides} (the gradient takes the output's layout)")
    if lv.shape != (B, H, S) or lv.dtype != C.DTYPE_F32 or lv.strides != (H * S, S, 1) or lv.device != qv.device:
        raise ValueError(f"lse: expected the forward's contiguous float32 [B, H, S] = {(B, H, S)} array on q's device")
    gv = []
    for name, g, x in (("d_q", d_q, qv), ("d_k", d_k, kv), ("d_v", d_v, vv)):
        y = view(g, name)
        _like_q(name, y, qv)
        if y.strides != x.strides or not y.writable:
            raise ValueError(f"{name}: a writable array with the strides of its input {x.strides} expected")
        gv.append(y)
    if B == 0:
        return d_q, d_k, d_v
    key, make_problem = _problem(qv, kv, vv, ov, B, H, D, canvas, tile, windows, text, text_padding, scale, order, layout, ktv)
    dev = R.device(devname)
    plan = R.plan(dev, key, make_problem)
    io = C.GradIO()
    io.struct_size = ctypes.sizeof(C.GradIO)
    xs = (qv, kv, vv, ov, lv, dov, *gv) + ((ktv,) if ktv is not None else ())
    for f, x in zip(("q", "k", "v", "o", "lse", "d_o", "d_q", "d_k", "d_v", "key_tiles"), xs):
        t = getattr(io, f)
        t.data, t.bytes, t.dtype = x.ptr, x.nbytes, x.dtype
    io.stream = _stream_of(qv)
    _check(C.stile_plan_backward(plan.handle, ctypes.byref(io)), f"stile.attention backward on {dev.name}")
    return d_q, d_k, d_v


def _execute_staged(plan, dev, views):
    """Host arrays on a GPU device: each through a buffer of the device (upload, execute, download).
    The copies hide an out that overlaps an input from the library: refused here, as it would be."""
    for i, name in ((0, "q"), (1, "k"), (2, "v"), (4, "lse")):
        x, o = views[i], views[3]
        if x is not None and x.nbytes and o.nbytes and x.ptr < o.ptr + o.nbytes and o.ptr < x.ptr + x.nbytes:
            raise C.StileValueError(C.ERR_ALIASING, f"out overlaps {name} in host memory", "stile.attention")
    bufs = []
    try:
        io = C.IO()
        io.struct_size = ctypes.sizeof(C.IO)
        for f, x in zip(("q", "k", "v", "o", "lse", "key_tiles"), views):
            if x is None:
                bufs.append(None)
                continue
            b = ctypes.c_void_p()
            _check(C.stile_buffer_create(dev.handle, max(x.nbytes, 1), ctypes.byref(b)), f"{f}: staging buffer on {dev.name}")
            bufs.append(b)
            if f in ("q", "k", "v", "key_tiles"):
                _check(C.stile_buffer_upload(b, 0, x.ptr, x.nbytes), f"{f}: upload to {dev.name}")
            t = getattr(io, f)
            t.data, t.bytes, t.dtype = C.stile_buffer_data(b), x.nbytes, x.dtype
        _check(C.stile_plan_execute(plan.handle, ctypes.byref(io)), f"stile.attention on {dev.name}")
        _check(C.stile_buffer_download(bufs[3], 0, views[3].ptr, views[3].nbytes), f"out: download from {dev.name}")
        if views[4] is not None:
            _check(C.stile_buffer_download(bufs[4], 0, views[4].ptr, views[4].nbytes), f"lse: download from {dev.name}")
    finally:
        for b in bufs:
            if b is not None:
                C.stile_buffer_destroy(ctypes.byref(b))
