"""An independent NumPy reference for the tests, written from docs/contract.md: the mask token by
token (tile coordinates, the clamped window, text rules), softmax in float64."""

import numpy as np


def _axis_ok(qt, kt, n, w):
    if w >= n:
        return np.ones((len(qt), len(kt)), dtype=bool)
    s = np.clip(qt - w // 2, 0, n - w)
    return (kt[None, :] >= s[:, None]) & (kt[None, :] < s[:, None] + w)


def natural_to_tiled(canvas, tile):
    """perm[i] = the natural (raster) index of the i-th token in tiled order."""
    T, H, W = canvas
    grid = [-(-c // t) for c, t in zip(canvas, tile)]
    perm = []
    for gt in range(grid[0]):
        for gh in range(grid[1]):
            for gw in range(grid[2]):
                for t in range(gt * tile[0], min(T, (gt + 1) * tile[0])):
                    for h in range(gh * tile[1], min(H, (gh + 1) * tile[1])):
                        for w in range(gw * tile[2], min(W, (gw + 1) * tile[2])):
                            perm.append((t * H + h) * W + w)
    return np.array(perm)


def mask(canvas, tile, window, text, text_padding):
    """[S, S] bool: query row attends key column (natural order)."""
    T, H, W = canvas
    video = T * H * W
    S = video + text
    idx = np.arange(video)
    coords = [idx // (H * W), (idx // W) % H, idx % W]
    grid = [-(-c // t) for c, t in zip(canvas, tile)]
    m = np.zeros((S, S), dtype=bool)
    vv = np.ones((video, video), dtype=bool)
    for a in range(3):
        tc = coords[a] // tile[a]
        vv &= _axis_ok(tc, tc, grid[a], window[a])
    m[:video, :video] = vv
    valid = text - text_padding
    m[:, video:video + valid] = True  # every query attends the valid text keys
    m[video:, :video] = True          # text queries attend every video key
    return m


def attention(q, k, v, canvas, tile, windows, text=0, text_padding=0, scale=None, order="natural"):
    """q, k, v: [B, S, H, D] arrays; windows: one triple per head. Returns (o float64, lse float64 [B, H, S])."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    B, S, Hh, D = q.shape
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    video = canvas[0] * canvas[1] * canvas[2]
    if order == "tiled":
        perm = np.concatenate([natural_to_tiled(canvas, tile), np.arange(video, S)])
    else:
        perm = np.arange(S)
    o = np.zeros_like(q)
    lse = np.zeros((B, Hh, S))
    for h in range(Hh):
        m = mask(canvas, tile, windows[h], text, text_padding)[np.ix_(perm, perm)]  # rows/cols in the tensors' order
        s = np.einsum("bqd,bkd->bqk", q[:, :, h], k[:, :, h]) * scale
        s = np.where(m[None], s, -np.inf)
        mx = s.max(axis=-1, keepdims=True)
        p = np.exp(s - mx)
        den = p.sum(axis=-1, keepdims=True)
        o[:, :, h] = np.einsum("bqk,bkd->bqd", p / den, v[:, :, h])
        lse[:, h] = (mx + np.log(den))[..., 0]
    return o, lse


def key_tile_mask(canvas, tile, rows, text=0, text_padding=0):
    """[S, S] bool (natural order) for one (batch, head)'s lists rows [tiles, k] (-1 unused)."""
    T, H, W = canvas
    video = T * H * W
    S = video + text
    grid = [-(-c // t) for c, t in zip(canvas, tile)]
    idx = np.arange(video)
    c = [idx // (H * W), (idx // W) % H, idx % W]
    tile_of = ((c[0] // tile[0]) * grid[1] + c[1] // tile[1]) * grid[2] + c[2] // tile[2]
    allowed = np.zeros((grid[0] * grid[1] * grid[2],) * 2, dtype=bool)  # [query tile, key tile]
    for qt, row in enumerate(rows):
        for kt in row:
            if kt >= 0:
                allowed[qt, kt] = True
    m = np.zeros((S, S), dtype=bool)
    m[:video, :video] = allowed[np.ix_(tile_of, tile_of)]
    m[:, video:video + text - text_padding] = True
    m[video:, :video] = True
    return m


def key_tile_attention(q, k, v, canvas, tile, key_tiles, text=0, text_padding=0, scale=None):
    """Caller-chosen key tiles (docs/contract.md): video query token attends the video keys of the
    tiles listed for its (batch, head, query tile) (-1 unused, repeats once) and the valid text keys;
    text queries attend every valid key. q, k, v: [B, S, H, D] natural order; key_tiles [B, H,
    tiles, k]. Returns (o, lse) in float64; a row with no key: o = 0, lse = -inf."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    B, S, Hh, D = q.shape
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    o = np.zeros_like(q)
    lse = np.full((B, Hh, S), -np.inf)
    for b in range(B):
        for h in range(Hh):
            m = key_tile_mask(canvas, tile, key_tiles[b, h], text, text_padding)
            s = np.where(m, q[b, :, h] @ k[b, :, h].T * scale, -np.inf)
            rows = m.any(axis=1)
            mx = np.where(rows, s.max(axis=1), 0.0)
            p = np.where(m, np.exp(s - mx[:, None]), 0.0)
            den = p.sum(axis=1)
            o[b, rows, h] = (p[rows] / den[rows, None]) @ v[b, :, h]
            lse[b, h, rows] = mx[rows] + np.log(den[rows])
    return o, lse


def nmse(got, ref):
    got = np.asarray(got, dtype=np.float64)
    return float(((got - ref) ** 2).sum() / (ref ** 2).sum())


BOUNDS = {"float32": 1e-10, "float16": 1e-5, "bfloat16": 1e-4}
