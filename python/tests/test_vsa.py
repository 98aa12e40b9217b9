"""stile.vsa (stile_vsa_forward) against a float64 NumPy reference written from docs/contract.md's
"VSA steps": tile means, coarse attention, top-k, fine attention on the chosen tiles, gated sum."""

import numpy as np
import pytest

import stile
from reference import BOUNDS, key_tile_attention, natural_to_tiled, nmse

CANVAS, TILE = (5, 7, 9), (2, 4, 4)  # partial tiles on every axis
GRID = [-(-c // t) for c, t in zip(CANVAS, TILE)]
TILES = GRID[0] * GRID[1] * GRID[2]
VIDEO = 5 * 7 * 9


def _tile_of_natural():
    idx = np.arange(VIDEO)
    t, h, w = idx // (7 * 9), (idx // 9) % 7, idx % 9
    return ((t // TILE[0]) * GRID[1] + h // TILE[1]) * GRID[2] + w // TILE[2]


def _reference(q, k, v, gate, kept, order):
    """q, k, v, gate [B, S, H, D] (S in `order`); kept: the library's chosen tiles. Returns (o, scores)."""
    q, k, v, gate = (np.asarray(x, dtype=np.float64) for x in (q, k, v, gate))
    perm = natural_to_tiled(CANVAS, TILE) if order == "tiled" else np.arange(VIDEO)
    inv = np.argsort(perm)  # natural index -> position in the tensors
    qn, kn, vn, gn = (x[:, inv] for x in (q, k, v, gate))  # natural order
    tile_of = _tile_of_natural()
    B, _, H, D = q.shape
    pooled = [np.zeros((B, H, TILES, D)) for _ in range(3)]
    for x, out in zip((qn, kn, vn), pooled):
        for t in range(TILES):
            out[:, :, t] = x[:, tile_of == t].mean(axis=1)
    qc, kc, vc = pooled
    s = np.einsum("bhtd,bhud->bhtu", qc, kc) / np.sqrt(D)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    oc = np.einsum("bhtu,bhud->bhtd", p / p.sum(axis=-1, keepdims=True), vc)
    fine, _ = key_tile_attention(qn, kn, vn, CANVAS, TILE, kept)
    o = fine + gn * np.transpose(oc[:, :, tile_of], (0, 2, 1, 3))
    return o[:, perm], s


@pytest.mark.parametrize("dtype,order", [("float32", "natural"), ("float16", "tiled")])
def test_matches_reference(rng, dtype, order):
    B, H, D, topk = 2, 2, 32, 5
    q, k, v, gate = (rng.standard_normal((B, VIDEO, H, D)).astype(dtype) for _ in range(4))
    kept = np.full((B, H, TILES, topk), -7, dtype=np.int32)
    o = stile.vsa(q, k, v, gate, canvas=CANVAS, tile=TILE, topk=topk, order=order, key_tiles_out=kept)
    assert o.shape == q.shape and o.dtype == q.dtype and not np.isnan(o).any()
    ro, scores = _reference(q, k, v, gate, kept, order)
    # the kept tiles: distinct, a top-k of the reference's scores up to f32 rounding, largest first
    for b in range(B):
        for h in range(H):
            for t in range(TILES):
                row, s = kept[b, h, t], scores[b, h, t]
                assert len(set(row)) == topk and row.min() >= 0
                left = np.setdiff1d(np.arange(TILES), row)
                assert s[row].min() >= s[left].max() - 1e-4
                assert (np.diff(s[row]) <= 1e-4).all()
    assert nmse(o, ro) <= BOUNDS[dtype]


def test_bad_arguments(rng):
    q, k, v, gate = (rng.standard_normal((1, VIDEO, 1, 16)).astype(np.float32) for _ in range(4))
    with pytest.raises(ValueError, match="gate: shape"):
        stile.vsa(q, k, v, gate[:, :, :, :8], canvas=CANVAS, tile=TILE, topk=3)
    with pytest.raises(stile.StileValueError):
        stile.vsa(q, k, v, gate, canvas=CANVAS, tile=TILE, topk=TILES + 1)
    with pytest.raises(ValueError, match="key_tiles_out: expected"):
        stile.vsa(q, k, v, gate, canvas=CANVAS, tile=TILE, topk=3, key_tiles_out=np.zeros((1, 1, TILES, 4), dtype=np.int32))
