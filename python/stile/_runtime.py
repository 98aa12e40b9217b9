"""Devices and plans with Python lifetimes: devices opened once per name and kept for the process,
plans cached per (device, problem) so that a diffusion loop plans once. Both caches are locked;
a plan in use by one thread stays alive while another evicts it (plans are reference-counted
Python objects, destroyed when the last user lets go)."""

import atexit
import collections
import ctypes
import threading

from . import _capi as C


class Device:
    """An open stile device (stile_device_open). ``name`` as opened ("cpu", "cuda:0"); ``info`` the
    library's stile_device_info as a dict."""

    def __init__(self, name):
        h = ctypes.c_void_p()
        C.check(C.stile_device_open(name.encode(), None, ctypes.byref(h)), f"opening device {name!r}")
        self.handle, self.name = h, name
        di = C.DeviceInfo()
        C.check(C.stile_device_get_info(h, ctypes.byref(di)), f"device {name!r}")
        self.info = {f: getattr(di, f).decode(errors="replace") for f in ("name", "backend", "description", "card", "driver")}

    def close(self):
        if self.handle:
            C.stile_device_close(ctypes.byref(self.handle))
            self.handle = None

    def __repr__(self):
        return f"<stile.Device {self.info['name']}: {self.info['description']}>"


class Plan:
    """A problem planned on a device (stile_plan_create); executes from any thread."""

    __slots__ = ("handle", "device", "info", "__weakref__")

    def __init__(self, device, problem):
        h = ctypes.c_void_p()
        C.check(C.stile_plan_create(device.handle, ctypes.byref(problem), ctypes.byref(h)), f"planning on {device.name}")
        self.handle, self.device = h, device
        pi = C.PlanInfo()
        C.check(C.stile_plan_get_info(h, ctypes.byref(pi)))
        self.info = pi

    def __del__(self):
        h = getattr(self, "handle", None)
        if h and _open:  # after shutdown the library's own teardown has them
            C.stile_plan_destroy(ctypes.byref(h))
            self.handle = None


_lock = threading.Lock()
_devices = {}
_plans = collections.OrderedDict()
PLAN_CACHE_SIZE = 256  # problems kept planned; the least recently used goes first
_open = True
stats = {"plans_created": 0, "plan_cache_hits": 0}


def device(name):
    """The Device of name, opened at its first use and kept until the process ends."""
    with _lock:
        d = _devices.get(name)
        if d is None:
            d = _devices[name] = Device(name)
        return d


def plan(dev, key, make_problem):
    """The cached plan of (dev, key); make_problem() builds the stile_problem on a miss."""
    k = (dev.name, key)
    with _lock:
        p = _plans.get(k)
        if p is not None:
            _plans.move_to_end(k)
            stats["plan_cache_hits"] += 1
            return p
    p = Plan(dev, make_problem())  # outside the lock: planning a big problem takes a while
    with _lock:
        q = _plans.get(k)
        if q is not None:  # another thread planned it meanwhile: keep one
            return q
        _plans[k] = p
        stats["plans_created"] += 1
        while len(_plans) > PLAN_CACHE_SIZE:
            _plans.popitem(last=False)
    return p


def clear_plan_cache():
    """Drop every cached plan (a plan still executing elsewhere lives until that call returns)."""
    from . import _prepared

    _prepared.clear()  # the fast path's records hold plans too
    with _lock:
        _plans.clear()


@atexit.register
def _shutdown():
    global _open
    from . import _prepared

    _prepared.clear()  # plans go before their devices
    with _lock:
        _plans.clear()
        for d in _devices.values():
            d.close()
        _devices.clear()
        _open = False
