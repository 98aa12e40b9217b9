"""Arrays that stile knows only through DLPack (__dlpack__ / __dlpack_device__), as CuPy and JAX
arrays reach it."""

import numpy as np
import pytest

import stile
from reference import attention as ref_attention, nmse

CANVAS, TILE = (2, 4, 4), (2, 2, 2)


class OnlyDLPack:
    """Hides everything of an array but the DLPack protocol."""

    def __init__(self, a):
        self._a = a
        self.shape = a.shape

    def __dlpack__(self, stream=None):
        return self._a.__dlpack__()

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_numpy_through_dlpack(rng):
    arrs = [rng.standard_normal((1, 32, 2, 64)).astype(np.float32) for _ in range(3)]
    qkv = [OnlyDLPack(a) for a in arrs]
    o = stile.attention(*qkv, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    assert isinstance(o, np.ndarray)
    ro, _ = ref_attention(*arrs, CANVAS, TILE, [(1, 1, 1)] * 2)
    assert nmse(o, ro) <= 1e-10
    out = np.zeros_like(arrs[0])
    o2 = stile.attention(*qkv, canvas=CANVAS, tile=TILE, window=(1, 1, 1), out=OnlyDLPack(out))
    assert isinstance(o2, OnlyDLPack) and np.array_equal(out, o)


def test_strided_dlpack(rng):
    """Strides come through the capsule: a transposed view is read in place."""
    base = [rng.standard_normal((1, 2, 32, 64)).astype(np.float32) for _ in range(3)]
    views = [OnlyDLPack(np.swapaxes(b, 1, 2)) for b in base]
    o = stile.attention(*views, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    ref = stile.attention(*(np.ascontiguousarray(np.swapaxes(b, 1, 2)) for b in base), canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    assert np.array_equal(o, ref)


def test_dlpack_bfloat16_from_torch(rng):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    qkv = [torch.from_numpy(rng.standard_normal((1, 32, 2, 64)).astype(np.float32)).bfloat16() for _ in range(3)]
    out = torch.empty_like(qkv[0])
    stile.attention(*(OnlyDLPack(t) for t in qkv), canvas=CANVAS, tile=TILE, window=(1, 1, 1), out=OnlyDLPack(out))
    ro, _ = ref_attention(*(t.double().numpy() for t in qkv), CANVAS, TILE, [(1, 1, 1)] * 2)
    assert nmse(out.double().numpy(), ro) <= 1e-4
    with pytest.raises(TypeError, match="out: cannot allocate"):
        stile.attention(*(OnlyDLPack(t) for t in qkv), canvas=CANVAS, tile=TILE, window=(1, 1, 1))


def test_dlpack_errors():
    class Bad:
        def __dlpack__(self, stream=None):
            raise RuntimeError("no")

        def __dlpack_device__(self):
            return (12, 0)  # kDLOneAPI

    z = np.zeros((1, 32, 2, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="k: DLPack device type 12"):
        stile.attention(z, Bad(), z, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    with pytest.raises(TypeError, match="v: dtype int32 is not one stile computes in"):
        stile.attention(z, z, OnlyDLPack(np.zeros((1, 32, 2, 64), dtype=np.int32)), canvas=CANVAS, tile=TILE, window=(1, 1, 1))


def _stile_has(name):
    return any(d["name"] == name and "unavailable" not in d for d in stile.devices())


def test_cupy_arrays_on_the_gpu(rng):
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    if not _stile_has("cuda:0"):
        pytest.skip("stile has no cuda:0 here")
    host = [rng.standard_normal((1, 32, 2, 64)).astype(np.float32) for _ in range(3)]
    o = stile.attention(*(cp.asarray(a) for a in host), canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    assert type(o).__module__.startswith("cupy")
    ro, _ = ref_attention(*host, CANVAS, TILE, [(1, 1, 1)] * 2)
    assert nmse(cp.asnumpy(o), ro) <= 1e-10


def test_jax_arrays_on_the_gpu(rng, monkeypatch):
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    cp = pytest.importorskip("cupy", reason="CuPy is not installed (the output array here)")
    if not _stile_has("cuda:0"):
        pytest.skip("stile has no cuda:0 here")
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("JAX has no GPU here")
    host = [rng.standard_normal((1, 32, 2, 64)).astype(np.float32) for _ in range(3)]
    qkv = [jax.device_put(a, gpu) for a in host]
    out = cp.zeros((1, 32, 2, 64), dtype=cp.float32)  # JAX arrays are immutable: the result goes to a CuPy array
    stile.attention(*qkv, canvas=CANVAS, tile=TILE, window=(1, 1, 1), out=out)
    ro, _ = ref_attention(*host, CANVAS, TILE, [(1, 1, 1)] * 2)
    assert nmse(cp.asnumpy(out), ro) <= 1e-10
