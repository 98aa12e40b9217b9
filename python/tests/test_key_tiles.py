"""stile.attention with caller-chosen key tiles (key_tiles=) against the independent NumPy reference."""

import numpy as np
import pytest

import stile
from reference import BOUNDS, attention as ref_attention, key_tile_attention, nmse


def _grid(canvas, tile):
    return [-(-c // t) for c, t in zip(canvas, tile)]


def _lists(rng, B, H, tiles, k):
    """Random rows with gaps (-1), repeats, and one empty row."""
    kt = rng.integers(-1, tiles, size=(B, H, tiles, k)).astype(np.int32)
    kt[0, 0, 0, :] = -1
    if k > 1:
        kt[-1, -1, -1, 1] = kt[-1, -1, -1, 0] = tiles - 1  # a repeat
    return kt


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("text,pad", [(0, 0), (7, 3)])
def test_matches_reference(rng, dtype, text, pad):
    canvas, tile, B, H, D = (5, 7, 9), (2, 4, 4), 2, 2, 64
    g = _grid(canvas, tile)
    tiles = g[0] * g[1] * g[2]
    S = canvas[0] * canvas[1] * canvas[2] + text
    q, k, v = (rng.standard_normal((B, S, H, D)).astype(dtype) for _ in range(3))
    kt = _lists(rng, B, H, tiles, 4)
    o, lse = stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=kt, text=text, text_padding=pad, return_lse=True)
    ro, rl = key_tile_attention(q, k, v, canvas, tile, kt, text, pad)
    assert not np.isnan(o).any()
    assert nmse(o, ro) <= BOUNDS[dtype]
    finite = np.isfinite(rl)
    assert (np.isfinite(lse) == finite).all(), "rows without keys must have lse -inf, and only those"
    assert np.abs(lse[finite] - rl[finite]).max() <= (1e-5 if dtype == "float32" else 1e-3)
    if text == 0:  # query tile 0 of batch 0, head 0 lists no tile: its tokens' outputs are zeros
        tok = [(t * canvas[1] + h) * canvas[2] + w for t in range(tile[0]) for h in range(tile[1]) for w in range(tile[2])]
        assert (o[0, tok, 0] == 0).all() and np.isneginf(lse[0, 0, tok]).all()


def test_window_tiles_as_lists_equal_the_window(rng):
    """The tiles of a window, given as lists in any order, compute the STA of that window."""
    canvas, tile, window, H = (4, 8, 12), (2, 4, 4), (1, 2, 3), 2
    g = _grid(canvas, tile)
    tiles = g[0] * g[1] * g[2]
    rows = []
    for qt in range(tiles):
        c = (qt // (g[1] * g[2]), qt // g[2] % g[1], qt % g[2])
        s = [min(max(c[a] - window[a] // 2, 0), g[a] - window[a]) for a in range(3)]
        row = [((s[0] + i) * g[1] + s[1] + j) * g[2] + s[2] + l for i in range(window[0]) for j in range(window[1])
               for l in range(window[2])]
        rng.shuffle(row)
        rows.append(row)
    kt = np.ascontiguousarray(np.broadcast_to(np.array(rows, dtype=np.int32), (1, H, tiles, len(rows[0]))))
    q, k, v = (rng.standard_normal((1, 4 * 8 * 12, H, 64)).astype(np.float32) for _ in range(3))
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=kt)
    ro, _ = ref_attention(q, k, v, canvas, tile, [window] * H)
    assert nmse(o, ro) <= 1e-10


def test_bad_key_tiles_are_refused(rng):
    canvas, tile = (2, 4, 4), (2, 2, 2)
    q, k, v = (rng.standard_normal((1, 32, 2, 64)).astype(np.float32) for _ in range(3))
    kt = np.zeros((1, 2, 4, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="window: not with key_tiles"):
        stile.attention(q, k, v, canvas=canvas, tile=tile, window=(1, 1, 1), key_tiles=kt)
    with pytest.raises(TypeError, match="window: required"):
        stile.attention(q, k, v, canvas=canvas, tile=tile)
    with pytest.raises(ValueError, match=r"key_tiles: expected int32 \[B, H, tiles, k\] = \[1, 2, 4, k >= 1\]"):
        stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=np.zeros((1, 2, 3, 2), dtype=np.int32))
    with pytest.raises(TypeError, match="key_tiles: dtype float32: expected int32"):
        stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=kt.astype(np.float32))
    with pytest.raises(ValueError, match="key_tiles: must be contiguous"):
        stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=np.zeros((1, 2, 4, 4), dtype=np.int32)[..., ::2])
    bad = kt.copy()
    bad[0, 1, 2, 1] = 4  # past the 4 tiles
    out = np.full_like(q, 7.0)
    with pytest.raises(stile.StileError) as e:
        stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=bad, out=out)
    assert e.value.status == stile._capi.ERR_OUT_OF_RANGE
    assert (out == 7.0).all(), "the CPU refuses before writing"


def test_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    canvas, tile, H = (2, 4, 4), (2, 2, 2), 2
    q, k, v = (torch.from_numpy(rng.standard_normal((1, 32, H, 64)).astype(np.float32)) for _ in range(3))
    kt = torch.from_numpy(_lists(rng, 1, H, 4, 3))
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=kt)
    ro, _ = key_tile_attention(q.numpy(), k.numpy(), v.numpy(), canvas, tile, kt.numpy())
    assert nmse(o.numpy(), ro) <= 1e-10


def test_autograd_and_compile(rng):
    """Gradients through the op with key tiles against a float64 torch reference; a compiled graph
    gives the eager result."""
    torch = pytest.importorskip("torch")
    from reference import key_tile_mask

    canvas, tile, B, H, D, text, pad = (2, 3, 4), (1, 2, 3), 2, 2, 16, 3, 1
    tiles = 2 * 2 * 2
    kt = rng.integers(-1, tiles, size=(B, H, tiles, 3)).astype(np.int32)
    kt[..., 0] = rng.integers(0, tiles, size=(B, H, tiles))  # no empty rows (their softmax has no keys)
    S = 24 + text
    q, k, v = (torch.from_numpy(rng.standard_normal((B, S, H, D))).float().requires_grad_() for _ in range(3))
    g = torch.from_numpy(rng.standard_normal((B, S, H, D))).float()
    ktt = torch.from_numpy(kt)
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=ktt, text=text, text_padding=pad)
    assert o.grad_fn is not None
    (o * g).sum().backward()
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    outs = []
    for b in range(B):
        for h in range(H):
            m = torch.from_numpy(key_tile_mask(canvas, tile, kt[b, h], text, pad))
            s = (q64[b, :, h] @ k64[b, :, h].T / np.sqrt(D)).masked_fill(~m, float("-inf"))
            outs.append(torch.softmax(s, dim=-1) @ v64[b, :, h])
    ref = torch.stack(outs).reshape(B, H, S, D).transpose(1, 2)
    (ref * g.double()).sum().backward()
    for got, want in ((o, ref), (q.grad, q64.grad), (k.grad, k64.grad), (v.grad, v64.grad)):
        err = ((got.detach().double() - want.detach()) ** 2).sum() / (want.detach() ** 2).sum()
        assert err <= 1e-10, float(err)
    with torch.no_grad():
        f = torch.compile(lambda a, b, c, t: stile.attention(a, b, c, canvas=canvas, tile=tile, key_tiles=t, text=text,
                                                             text_padding=pad), fullgraph=True, backend="eager")
        assert torch.equal(f(q, k, v, ktt), o.detach())


def test_staged_through_a_gpu_device(rng):
    """Host arrays and lists with device= a GPU device (lavapipe's vulkan:0 in CI)."""
    names = [d["name"] for d in stile.devices() if "unavailable" not in d and d["backend"] != "cpu"]
    if not names:
        pytest.skip("no GPU device here (the Vulkan backend with lavapipe provides one in CI)")
    canvas, tile, H = (2, 8, 8), (1, 4, 4), 2
    q, k, v = (rng.standard_normal((1, 128, H, 64)).astype(np.float32) for _ in range(3))
    kt = _lists(rng, 1, H, 8, 3)
    o = stile.attention(q, k, v, canvas=canvas, tile=tile, key_tiles=kt, device=names[0])
    ro, _ = key_tile_attention(q, k, v, canvas, tile, kt)
    assert nmse(o, ro) <= 1e-10
