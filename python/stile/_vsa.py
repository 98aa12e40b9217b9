"""stile.vsa: Video Sparse Attention's forward (stile_vsa_forward, stile/stile_vsa.h) on the caller's
arrays: tile means, coarse attention, the top-k key tiles per query tile, the fine attention on them,
and the gated sum of the two outputs (docs/contract.md, "VSA steps")."""

import ctypes

from . import _capi as C
from . import _runtime as R
from ._attention import _alloc_like, _device_name, _inputs, _int, _like_q, _problem, _stream_of, tile_count, view


def vsa(q, k, v, gate, *, canvas, tile, topk, scale=None, order="natural", out=None, layout="bshd", key_tiles_out=None):
    """VSA's forward of q, k, v (video tokens only) with the coarse branch's gate: out = the attention
    of each query tile to its topk key tiles of highest coarse score + gate * the coarse attention's
    output of its tile. q, k, v, gate (and out): one shape, dtype and device, as stile.attention's;
    gate and out with the same strides. Runs where the arrays are, on a backend that has the VSA
    steps (the CPU; the GPU backends raise StileError saying they have none yet). key_tiles_out: an
    optional contiguous int32 array [B, H, tiles, topk] on q's device that receives the chosen tiles
    (largest coarse score first). Returns out."""
    qv, kv, vv, canvas, tile, _, _, _, (B, S, H, D), _ = _inputs(q, k, v, canvas, tile, (1, 1, 1), 0, 0, order, layout)
    topk = _int(topk, "topk")
    gv = view(gate, "gate")
    _like_q("gate", gv, qv)
    if out is None:
        out = _alloc_like(qv, qv.shape, qv.dtype, "out")
    ov = view(out, "out")
    _like_q("out", ov, qv)
    if not ov.writable:
        raise ValueError("out: read-only array")
    if gv.strides != ov.strides:
        raise ValueError(f"gate: strides {gv.strides} differ from out's {ov.strides} (the gate takes the output's layout)")
    ktv = None
    if key_tiles_out is not None:
        tiles = tile_count(canvas, tile)
        ktv = view(key_tiles_out, "key_tiles_out", index=True)
        if ktv.shape != (B, H, tiles, topk) or ktv.strides != (H * tiles * topk, tiles * topk, topk, 1):
            raise ValueError(f"key_tiles_out: expected a contiguous int32 [B, H, tiles, topk] = {(B, H, tiles, topk)} array, "
                             f"got shape {ktv.shape}")
        if ktv.device != qv.device or not ktv.writable:
            raise ValueError("key_tiles_out: a writable array on q's device expected")
    if B == 0:
        return out
    devname, _ = _device_name(qv, None)
    key, make_problem = _problem(qv, kv, vv, ov, B, H, D, canvas, tile, None, 0, 0, scale, order, layout, topk=topk)
    dev = R.device(devname)
    plan = R.plan(dev, key, make_problem)
    io = C.VsaIO()
    io.struct_size = ctypes.sizeof(C.VsaIO)
    for f, x in (("q", qv), ("k", kv), ("v", vv), ("gate", gv), ("o", ov), ("key_tiles", ktv)):
        if x is None:
            continue
        t = getattr(io, f)
        t.data, t.bytes, t.dtype = x.ptr, x.nbytes, x.dtype
    io.stream = _stream_of(qv)
    C.check(C.stile_vsa_forward(plan.handle, ctypes.byref(io)), f"stile.vsa on {dev.name}")
    return out
