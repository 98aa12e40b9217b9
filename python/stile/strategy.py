"""Window strategies (FastVideo's JSON format, a window per (step, layer, head)) over the C library's
stile_strategy_* calls, a writer of calibration captures, and calibration through the `stile
calibrate` command (docs/calibration.md)."""

import ctypes
import json
import os
import pathlib
import shutil
import subprocess
import threading

from . import _capi as C


class Strategy:
    """A window per (step, layer, head): ``Strategy()`` empty, ``Strategy.load(path)``, then
    ``s[step, layer, head] = (t, h, w)``, ``s[step, layer, head]``, ``len(s)``, ``s.save(path)``,
    ``s.to_json()``. A head without an entry attends fully."""

    def __init__(self, _handle=None):
        if _handle is None:
            _handle = ctypes.c_void_p()
            C.check(C.stile_strategy_create(ctypes.byref(_handle)), "stile_strategy_create")
        self._h = _handle
        self._lock = threading.Lock()  # stile.h: calls on one strategy must not race (ctypes lets go of the GIL)

    @classmethod
    def load(cls, path):
        h = ctypes.c_void_p()
        C.check(C.stile_strategy_load(os.fsencode(path), ctypes.byref(h)), f"loading {path}")
        return cls(h)

    def save(self, path):
        """Write atomically (a temporary file beside it, then rename)."""
        with self._lock:
            C.check(C.stile_strategy_save(self._h, os.fsencode(path)), f"saving {path}")

    def to_json(self):
        with self._lock:
            n = ctypes.c_size_t()
            st = C.stile_strategy_json(self._h, None, 0, ctypes.byref(n))
            if st not in (C.OK, C.ERR_BUFFER_TOO_SMALL):
                C.check(st, "stile_strategy_json")
            buf = ctypes.create_string_buffer(n.value + 1)
            C.check(C.stile_strategy_json(self._h, buf, len(buf), ctypes.byref(n)), "stile_strategy_json")
        return buf.value.decode()

    def __setitem__(self, key, window):
        step, layer, head = key
        w = (ctypes.c_int64 * 3)(*[int(x) for x in window])
        with self._lock:
            C.check(C.stile_strategy_set(self._h, step, layer, head, ctypes.byref(w)), f"strategy[{step}, {layer}, {head}]")

    def __getitem__(self, key):
        step, layer, head = key
        w = (ctypes.c_int64 * 3)()
        with self._lock:
            st = C.stile_strategy_get(self._h, step, layer, head, ctypes.byref(w))
            if st == C.ERR_OUT_OF_RANGE:
                raise KeyError(key)
            C.check(st, f"strategy[{step}, {layer}, {head}]")
        return tuple(w)

    def __contains__(self, key):
        try:
            self[key]
            return True
        except KeyError:
            return False

    def __len__(self):
        with self._lock:
            return int(C.stile_strategy_size(self._h))

    def windows(self, step, layer, heads, full):
        """The per-head windows of (step, layer) for stile.attention: an entry, or `full` (the grid)."""
        return [self[step, layer, h] if (step, layer, h) in self else tuple(full) for h in range(heads)]

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            C.stile_strategy_destroy(ctypes.byref(h))
            self._h = None


class Capture:
    """Writes a calibration capture (docs/calibration.md): ``add(step, layer, q, k, v)`` for each
    attention call of interest ([B, S, H, D] or [S, H, D], natural token order, torch or NumPy,
    float32/float16/bfloat16), then ``close()`` writes manifest.json."""

    def __init__(self, directory, *, canvas, tile, heads, head_dim, text=0, text_padding=0):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest = {"canvas": list(canvas), "tile": list(tile), "heads": int(heads), "head_dim": int(head_dim),
                         "text": int(text), "text_padding": int(text_padding), "samples": []}

    def add(self, step, layer, q, k, v):
        import numpy as np

        entry = {"step": int(step), "layer": int(layer)}
        n = sum(1 for s in self.manifest["samples"] if s["step"] == step and s["layer"] == layer)
        for name, t in (("q", q), ("k", k), ("v", v)):
            a = _host_numpy(t)
            if a.dtype not in (np.float32, np.float16, np.uint16):
                raise TypeError(f"{name}: dtype {a.dtype} (float32, float16 or bfloat16)")
            entry[name] = f"{name}_s{step}_l{layer}_{n}.npy"
            np.save(self.dir / entry[name], np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))))
        self.manifest["samples"].append(entry)

    def close(self):
        tmp = self.dir / "manifest.json.tmp"
        tmp.write_text(json.dumps(self.manifest, indent=1))
        os.replace(tmp, self.dir / "manifest.json")


def _host_numpy(t):
    """A host NumPy copy; bfloat16 as its bit pattern ('<u2'), as the capture format stores it."""
    import numpy as np

    if type(t).__module__.split(".")[0] == "torch":
        import torch

        t = t.detach()
        if t.dtype == torch.bfloat16:
            return t.contiguous().view(torch.int16).cpu().numpy().view(np.uint16)
        return t.cpu().numpy()
    a = np.asarray(t)
    return a.view(np.uint16) if a.dtype.name == "bfloat16" else a


def _stile_exe(exe):
    if exe:
        return exe
    if os.environ.get("STILE_EXE"):
        return os.environ["STILE_EXE"]
    lib = pathlib.Path(C.library_path).resolve() if os.path.sep in C.library_path else None
    for cand in ([lib.parent / "tools" / "stile", lib.parent.parent / "bin" / "stile", lib.parent.parent.parent / "bin" / "stile"]
                 if lib else []):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("stile")
    if not found:
        raise FileNotFoundError("stile.calibrate runs the `stile calibrate` command: not found (pass exe= or set STILE_EXE)")
    return found


def calibrate(capture_dir, candidates, *, out, skip_steps=0, max_rel_l2=None, device=None, markdown=None, exe=None):
    """Pick a window per (step, layer, head) from a capture (Capture, or bench/calibration/make_capture.py)
    with `stile calibrate` (docs/calibration.md: the candidate closest to full attention, ties to the
    sparser; with max_rel_l2 the sparsest within it). Writes `out` (FastVideo's format) and returns
    it as a Strategy. candidates: a list of (t, h, w). The command's report goes to logging."""
    cands = ";".join(",".join(str(int(x)) for x in c) for c in candidates)
    cmd = [_stile_exe(exe), "calibrate", str(capture_dir), "--candidates", cands, "--out", str(out), "--skip-steps", str(int(skip_steps))]
    if max_rel_l2 is not None:
        cmd += ["--max-rel-l2", repr(float(max_rel_l2))]
    if device is not None:
        cmd += ["--device", str(device)]
    if markdown is not None:
        cmd += ["--markdown", str(markdown)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        C.logger.info("%s", line)
    if r.returncode != 0:
        raise C.StileError(C.ERR_INVALID_ARGUMENT if r.returncode == 2 else C.ERR_BACKEND,
                           (r.stderr.strip() or r.stdout.strip()).splitlines()[-1] if (r.stderr or r.stdout).strip() else
                           f"exit status {r.returncode}", "stile calibrate")
    return Strategy.load(out)
