"""stile.attention on NumPy arrays against the independent NumPy reference (reference.py)."""

import numpy as np
import pytest

import stile
from reference import BOUNDS, attention as ref_attention, nmse

CASES = [
    # canvas, tile, window(s), heads, text, padding, order, layout
    ((5, 7, 9), (2, 4, 4), (3, 1, 3), 2, 0, 0, "natural", "bshd"),
    ((4, 6, 6), (2, 4, 4), (1, 1, 1), 2, 9, 4, "tiled", "bshd"),
    ((5, 7, 9), (2, 4, 4), [(1, 1, 1), (3, 1, 3), (2, 2, 2), (9, 9, 9)], 4, 5, 2, "natural", "bhsd"),
    ((3, 5, 6), (3, 2, 4), (2, 9, 9), 1, 3, 3, "natural", "bhsd"),  # full window, text all padding
]


def _inputs(rng, shape, dtype):
    return [rng.standard_normal(shape).astype(dtype) for _ in range(3)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[6]}-{c[7]}-text{c[4]}")
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_matches_reference(rng, case, dtype):
    canvas, tile, window, H, text, pad, order, layout = case
    S = canvas[0] * canvas[1] * canvas[2] + text
    B, D = 2, 64
    shape = (B, S, H, D) if layout == "bshd" else (B, H, S, D)
    q, k, v = _inputs(rng, shape, dtype)
    o, lse = stile.attention(q, k, v, canvas=canvas, tile=tile, window=window, text=text, text_padding=pad, order=order,
                             layout=layout, return_lse=True)
    assert o.shape == q.shape and o.dtype == q.dtype and lse.shape == (B, H, S) and lse.dtype == np.float32
    to_bshd = (lambda x: x) if layout == "bshd" else (lambda x: np.swapaxes(x, 1, 2))
    windows = [window] * H if isinstance(window[0], int) else window
    ro, rl = ref_attention(to_bshd(q), to_bshd(k), to_bshd(v), canvas, tile, windows, text, pad, order=order)
    assert not np.isnan(o).any()
    assert nmse(to_bshd(o), ro) <= BOUNDS[dtype]
    assert np.abs(lse - rl).max() <= (1e-5 if dtype == "float32" else 1e-3)


def test_strided_views_are_read_in_place(rng):
    """Views with gaps (a packed qkv and a padded head dim) give the same result as compact copies."""
    canvas, tile, window, H, D = (4, 6, 6), (2, 4, 4), (1, 3, 1), 2, 64
    S = 4 * 6 * 6
    qkv = rng.standard_normal((1, S, 3, H, D + 8)).astype(np.float32)
    q, k, v = (qkv[:, :, i, :, :D] for i in range(3))
    assert not q.flags.c_contiguous
    out = np.full((1, S, H, D + 4), np.nan, dtype=np.float32)
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, window=window, out=out[..., :D])
    assert np.isnan(out[..., D:]).all(), "elements outside the out view were written"
    ref = stile.attention(*(np.ascontiguousarray(x) for x in (q, k, v)), canvas=canvas, tile=tile, window=window)
    assert np.array_equal(o, ref)


def test_scale(rng):
    canvas, tile = (2, 4, 4), (2, 2, 2)
    q, k, v = _inputs(rng, (1, 32, 1, 64), "float32")
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, window=(1, 1, 1), scale=0.3)
    ro, _ = ref_attention(q, k, v, canvas, tile, [(1, 1, 1)], scale=0.3)
    assert nmse(o, ro) <= 1e-10


def test_out_is_returned_and_written(rng):
    q, k, v = _inputs(rng, (1, 32, 2, 64), "float32")
    out = np.empty_like(q)
    o = stile.attention(q, k, v, canvas=(2, 4, 4), tile=(2, 2, 2), window=(1, 1, 1), out=out)
    assert o is out


def test_devices_and_version():
    devs = stile.devices()
    assert any(d["name"] == "cpu:0" for d in devs)
    assert stile.library_version().startswith(stile.__version__)


def test_staged_through_a_gpu_device(rng):
    """Host arrays with device= a GPU device (lavapipe's vulkan:0 in CI) go through its buffers."""
    names = [d["name"] for d in stile.devices() if "unavailable" not in d and d["backend"] != "cpu"]
    if not names:
        pytest.skip("no GPU device here (the Vulkan backend with lavapipe provides one in CI)")
    canvas, tile = (2, 8, 8), (1, 4, 4)
    q, k, v = _inputs(rng, (1, 128, 2, 64), "float32")
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, window=(1, 1, 1), device=names[0])
    ro, _ = ref_attention(q, k, v, canvas, tile, [(1, 1, 1)] * 2)
    assert nmse(o, ro) <= 1e-10


def test_staged_out_overlapping_an_input_is_refused(rng):
    names = [d["name"] for d in stile.devices() if "unavailable" not in d and d["backend"] != "cpu"]
    if not names:
        pytest.skip("no GPU device here (the Vulkan backend with lavapipe provides one in CI)")
    q, k, v = _inputs(rng, (1, 128, 2, 64), "float32")
    with pytest.raises(stile.StileValueError, match="out overlaps q"):
        stile.attention(q, k, v, canvas=(2, 8, 8), tile=(1, 4, 4), window=(1, 1, 1), device=names[0], out=q)
