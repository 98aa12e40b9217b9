"""The per-call fast path for torch tensors: a call whose arrays have the shapes, strides, dtypes and
devices of an earlier call, with the same arguments, skips validation and problem building. It
reuses that call's plan and a ready stile_io, in which only the data addresses and the stream change.
The first call of each such signature goes the full way (stile._attention.run), which checks
everything and records the signature here."""

import ctypes
import struct
import threading

from . import _capi as C
from . import _runtime as R

_SIZE = 256  # signatures kept; all are dropped when full (a model has a handful)
_lock = threading.Lock()
_table = {}
_ADDR = struct.Struct("=Q")
_OFFSETS = tuple(getattr(C.IO, f).offset + C.Tensor.data.offset for f in ("q", "k", "v", "o", "lse"))
_STREAM = C.IO.stream.offset
_CUDA_STREAM_LEGACY = 1  # cudaStreamLegacy: the runtime's handle of the legacy default stream


_PLAIN = (int, float, str, bool, type(None))


def _key(x):
    """x as a key that equals another only when the values are equal: plain numbers, strings and
    (nested) tuples or lists of them. Anything else (a tensor as scale, an array as canvas) raises
    TypeError, and the call takes the full path, which reads its value every time."""
    t = type(x)
    if t in _PLAIN:
        return x
    if t is tuple or t is list:
        return tuple(e if type(e) in _PLAIN else _key(e) for e in x)
    raise TypeError("not a plain value")


def signature(torch, q, k, v, out, canvas, tile, window, text, text_padding, scale, order, layout, return_lse):
    """The key of a torch call, or None when it is not one the fast path takes (TypeError: arguments
    that are not plain values)."""
    T = torch.Tensor
    if type(q) is not T or type(k) is not T or type(v) is not T or (out is not None and type(out) is not T):
        return None
    o = None if out is None else (out.shape, out.stride(), out.dtype, out.device)
    return (q.shape, q.stride(), k.shape, k.stride(), v.shape, v.stride(), q.dtype, k.dtype, v.dtype, q.device, k.device,
            v.device, o, _key(canvas), _key(tile), _key(window), _key(text), _key(text_padding), _key(scale), _key(order),
            _key(layout), _key(return_lse))


class Prepared:
    """A recorded call: its plan, its stile_io as bytes, what to allocate, and where the stream comes
    from (gpu_index: torch's current stream on that GPU; legacy: its default stream is named
    cudaStreamLegacy, so that the call enqueues and returns as torch's own ops do)."""

    __slots__ = ("plan", "template", "shape", "dtype", "device", "lse_shape", "gpu_index", "legacy", "what")

    def __init__(self, plan, io, q, lse_shape, gpu_index, legacy, what):
        self.plan, self.template = plan, bytes(io)
        self.shape, self.dtype, self.device = q.shape, q.dtype, q.device
        self.lse_shape, self.gpu_index, self.legacy, self.what = lse_shape, gpu_index, legacy, what

    def __call__(self, torch, q, k, v, out):
        if out is None:
            out = torch.empty(self.shape, dtype=self.dtype, device=self.device)
        lse = None if self.lse_shape is None else torch.empty(self.lse_shape, dtype=torch.float32, device=self.device)
        io = C.IO.from_buffer_copy(self.template)
        pack, (oq, ok, ov, oo, ol) = _ADDR.pack_into, _OFFSETS
        pack(io, oq, q.data_ptr())
        pack(io, ok, k.data_ptr())
        pack(io, ov, v.data_ptr())
        pack(io, oo, out.data_ptr())
        if lse is not None:
            pack(io, ol, lse.data_ptr())
        if self.gpu_index is not None:
            pack(io, _STREAM, stream_handle(torch, self.gpu_index, self.legacy))
        R.stats["plan_cache_hits"] += 1
        C.check(C.stile_plan_execute(self.plan.handle, io), self.what)
        return out, lse


def stream_handle(torch, index, legacy):
    """torch's current stream on GPU index as the handle stile takes: its raw handle, and for the
    default stream (0) cudaStreamLegacy where legacy is set (CUDA), else 0 (NULL: the call waits)."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    s = raw(index) if raw is not None else torch.cuda.current_stream(index).cuda_stream
    return s if s or not legacy else _CUDA_STREAM_LEGACY


def lookup(sig):
    return _table.get(sig)


def record(sig, prepared):
    with _lock:
        if len(_table) >= _SIZE:
            _table.clear()
        _table[sig] = prepared


def clear():
    with _lock:
        _table.clear()
