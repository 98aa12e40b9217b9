"""stile.fastvideo.sliding_tile_attention: FastVideo's STA call ([B, H, S, D], a window per head,
text_length valid text tokens after the video) in natural order, against the NumPy reference."""

import numpy as np
import pytest

import stile
from stile import fastvideo
from reference import attention as ref_attention, nmse


def test_matches_reference(rng):
    canvas, text_slots, text_length = (6, 16, 16), 10, 7
    S = 6 * 16 * 16 + text_slots
    q, k, v = (rng.standard_normal((1, 2, S, 64)).astype(np.float32) for _ in range(3))
    windows = [[1, 1, 1], [1, 2, 1]]
    o = fastvideo.sliding_tile_attention(q, k, v, windows, text_length, True, "6x16x16")
    assert o.shape == q.shape
    tr = lambda x: np.swapaxes(x, 1, 2)  # noqa: E731
    ro, _ = ref_attention(tr(q), tr(k), tr(v), canvas, (6, 8, 8), [tuple(w) for w in windows], text_slots,
                          text_slots - text_length)
    assert nmse(tr(o), ro) <= 1e-10
    o2 = fastvideo.sliding_tile_attention(q, k, v, windows, text_length, seq_shape="6x16x16")
    assert np.array_equal(o, o2)


def test_without_text(rng):
    q, k, v = (rng.standard_normal((1, 1, 6 * 8 * 16, 64)).astype(np.float32) for _ in range(3))
    o = fastvideo.sliding_tile_attention(q, k, v, [[1, 1, 1]], 0, False, "6x8x16")
    tr = lambda x: np.swapaxes(x, 1, 2)  # noqa: E731
    ro, _ = ref_attention(tr(q), tr(k), tr(v), (6, 8, 16), (6, 8, 8), [(1, 1, 1)])
    assert nmse(tr(o), ro) <= 1e-10


def test_errors():
    z = np.zeros((1, 2, 6 * 8 * 8 + 4, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="dit_seq_shape"):
        fastvideo.sliding_tile_attention(z, z, z, [[1, 1, 1]] * 2, 4, True, "6x8")
    with pytest.raises(ValueError, match="text_length=5"):
        fastvideo.sliding_tile_attention(z, z, z, [[1, 1, 1]] * 2, 5, True, "6x8x8")
    with pytest.raises(ValueError, match="window_size: 1 windows for 2 heads"):
        fastvideo.sliding_tile_attention(z, z, z, [[1, 1, 1]], 4, True, "6x8x8")
    with pytest.raises(ValueError, match="has_text=False"):
        fastvideo.sliding_tile_attention(z, z, z, [[1, 1, 1]] * 2, 0, False, "6x8x8")
    with pytest.raises(stile.StileValueError, match="window"):
        fastvideo.sliding_tile_attention(z, z, z, [[0, 1, 1]] * 2, 4, True, "6x8x8")
