"""What stile needs to know of an array: where its memory is (host or which GPU), its dtype, shape,
element strides and data address, read without copying from torch tensors, NumPy arrays and any
object that implements DLPack (``__dlpack__``/``__dlpack_device__``: CuPy, JAX, ...)."""

import ctypes
import sys

from . import _capi as C

_DTYPE_NAMES = {C.DTYPE_F32: "float32", C.DTYPE_F16: "float16", C.DTYPE_BF16: "bfloat16", C.DTYPE_I32: "int32"}
_ITEMSIZE = {C.DTYPE_F32: 4, C.DTYPE_F16: 2, C.DTYPE_BF16: 2, C.DTYPE_I32: 4}


def dtype_name(dt):
    return _DTYPE_NAMES[dt]


class View:
    """One array as stile sees it. kind: "torch", "numpy" or "dlpack"; device: ("cpu", 0) or
    ("cuda", N) / ("rocm", N); strides and offsets in elements; keep: what must stay alive."""

    __slots__ = ("obj", "kind", "device", "dtype", "shape", "strides", "ptr", "nbytes", "keep", "writable", "torch_dtype")

    def span_bytes(self):
        """Bytes from ptr to one past the last element the strides reach (0 for an empty array)."""
        if any(s == 0 for s in self.shape):
            return 0
        last = sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        return (last + 1) * _ITEMSIZE[self.dtype]


def _unsupported_dtype(name, what):
    return TypeError(f"{name}: dtype {what} is not one stile computes in (float32, float16, bfloat16)")


# ---- torch ----
def _torch_view(t, name):
    import torch

    dts = {torch.float32: C.DTYPE_F32, torch.float16: C.DTYPE_F16, torch.bfloat16: C.DTYPE_BF16, torch.int32: C.DTYPE_I32}
    if t.dtype not in dts:
        raise _unsupported_dtype(name, t.dtype)
    v = View()
    v.obj, v.kind, v.keep, v.torch_dtype = t, "torch", t, t.dtype
    dev = t.device
    if dev.type == "cpu":
        v.device = ("cpu", 0)
    elif dev.type == "cuda":
        v.device = ("rocm" if getattr(torch.version, "hip", None) else "cuda", dev.index if dev.index is not None else torch.cuda.current_device())
    else:
        raise ValueError(f"{name}: a tensor on {dev} (stile takes CPU and CUDA/ROCm tensors)")
    if t.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{name}: requires grad; autograd goes through stile.attention on torch tensors where they are "
                         "(not device= staging), or run under torch.no_grad()")
    v.dtype = dts[t.dtype]
    v.shape = tuple(t.shape)
    v.strides = tuple(t.stride())
    v.ptr = t.data_ptr()
    v.writable = True
    v.nbytes = v.span_bytes()
    return v


# ---- NumPy ----
def _numpy_view(a, name):
    import numpy as np

    if a.dtype == np.float32:
        dt = C.DTYPE_F32
    elif a.dtype == np.float16:
        dt = C.DTYPE_F16
    elif a.dtype.name == "bfloat16":  # ml_dtypes' bfloat16
        dt = C.DTYPE_BF16
    elif a.dtype == np.int32:
        dt = C.DTYPE_I32
    else:
        raise _unsupported_dtype(name, a.dtype)
    item = a.dtype.itemsize
    if any(s % item for s in a.strides):
        raise ValueError(f"{name}: strides {a.strides} bytes are not whole elements of {item} bytes")
    if any(s < 0 for s in a.strides):
        raise ValueError(f"{name}: negative strides {a.strides} (stile takes strides >= 0)")
    v = View()
    v.obj, v.kind, v.keep, v.torch_dtype = a, "numpy", a, None
    v.device = ("cpu", 0)
    v.dtype = dt
    v.shape = tuple(a.shape)
    v.strides = tuple(s // item for s in a.strides)
    v.ptr = a.__array_interface__["data"][0]
    v.writable = a.flags.writeable
    v.nbytes = v.span_bytes()
    return v


# ---- DLPack (any producer) ----
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    pass


_Deleter = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _Deleter)]

_capsule_get = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get.restype = ctypes.c_void_p
_capsule_get.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_rename = ctypes.pythonapi.PyCapsule_SetName
_capsule_rename.restype = ctypes.c_int
_capsule_rename.argtypes = [ctypes.py_object, ctypes.c_char_p]

_KDL = {1: "cpu", 2: "cuda", 3: "cpu", 10: "rocm", 13: "cpu"}  # kDLCPU, kDLCUDA, kDLCUDAHost, kDLROCM, kDLCUDAManaged


class _Owner:
    """Holds a consumed DLPack capsule's managed tensor and calls its deleter once, when dropped."""

    __slots__ = ("mt", "obj")

    def __init__(self, mt, obj):
        self.mt, self.obj = mt, obj

    def __del__(self):
        mt = self.mt
        if mt and mt.contents.deleter:
            mt.contents.deleter(mt)
        self.mt = None


def _dlpack_view(x, name):
    try:
        dev_type, dev_id = x.__dlpack_device__()
    except Exception as e:
        raise TypeError(f"{name}: __dlpack_device__ failed: {e}") from None
    if int(dev_type) not in _KDL:
        raise ValueError(f"{name}: DLPack device type {int(dev_type)} (stile takes CPU, CUDA and ROCm memory)")
    try:
        cap = x.__dlpack__(stream=None) if _KDL[int(dev_type)] != "cpu" else x.__dlpack__()
    except TypeError:
        cap = x.__dlpack__()
    try:
        ptr = _capsule_get(cap, b"dltensor")
    except (ValueError, TypeError):
        ptr = None
    if not ptr:
        raise TypeError(f"{name}: __dlpack__ did not return an unconsumed DLPack capsule")
    mt = ctypes.cast(ptr, ctypes.POINTER(_DLManagedTensor))
    _capsule_rename(cap, b"used_dltensor")  # consumed: the deleter is ours to call now
    owner = _Owner(mt, x)
    t = mt.contents.dl_tensor
    code, bits, lanes = t.dtype.code, t.dtype.bits, t.dtype.lanes
    dts = {(2, 32): C.DTYPE_F32, (2, 16): C.DTYPE_F16, (4, 16): C.DTYPE_BF16, (0, 32): C.DTYPE_I32}
    if lanes != 1 or (code, bits) not in dts:
        raise _unsupported_dtype(name, f"(DLPack code {code}, {bits} bits, {lanes} lanes)")
    v = View()
    v.obj, v.kind, v.keep, v.torch_dtype = x, "dlpack", owner, None
    v.device = (_KDL[t.device.device_type], t.device.device_id)
    v.dtype = dts[(code, bits)]
    v.shape = tuple(t.shape[i] for i in range(t.ndim))
    if t.strides:
        v.strides = tuple(t.strides[i] for i in range(t.ndim))
    else:  # compact row-major
        s, acc = [], 1
        for n in reversed(v.shape):
            s.append(acc)
            acc *= n
        v.strides = tuple(reversed(s))
    if any(s < 0 for s in v.strides):
        raise ValueError(f"{name}: negative strides {v.strides} (stile takes strides >= 0)")
    v.ptr = (t.data or 0) + t.byte_offset
    v.writable = True  # DLPack has no read-only flag before 1.0: writing into out is the caller's choice
    v.nbytes = v.span_bytes()
    return v


def view(x, name, index=False):
    """The View of x (torch tensor, NumPy array or DLPack object), or TypeError/ValueError naming name.
    index: x holds int32 indices (key tiles); otherwise float32, float16 or bfloat16 values."""
    v = _view(x, name)
    if index and v.dtype != C.DTYPE_I32:
        raise TypeError(f"{name}: dtype {_DTYPE_NAMES[v.dtype]}: expected int32 tile indices")
    if not index and v.dtype == C.DTYPE_I32:
        raise _unsupported_dtype(name, "int32")
    return v


def _view(x, name):
    mod = type(x).__module__.split(".")[0]
    if mod == "torch" and "torch" in sys.modules:
        import torch

        if isinstance(x, torch.Tensor):
            return _torch_view(x, name)
    if mod == "numpy" and "numpy" in sys.modules:
        import numpy as np

        if isinstance(x, np.ndarray):
            return _numpy_view(x, name)
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        return _dlpack_view(x, name)
    raise TypeError(f"{name}: a {type(x).__module__}.{type(x).__qualname__} is not an array stile can read "
                    "(a torch tensor, a NumPy array, or an object with __dlpack__)")
