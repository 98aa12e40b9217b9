"""FastVideo's STA entry point on stile: the call FastVideo's SLIDING_TILE_ATTN backend makes
(fastvideo_kernel.sliding_tile_attention / st_attn.sliding_tile_attention), in natural token order,
on any device stile has and any canvas.

Differences from FastVideo's kernel: tokens stay in the model's natural (raster) order — no tile
permutation before and after; the canvas is any "TxHxW" (FastVideo's kernel: 30x48x80, 36x48x48,
18x48x80 only); text slots after the video tokens are S - T*H*W (any number), of which the first
text_length are valid keys."""

from . import _attention

TILE = (6, 8, 8)  # FastVideo's STA tile


def _canvas(shape):
    if isinstance(shape, str):
        try:
            t = tuple(int(x) for x in shape.lower().split("x"))
        except ValueError:
            t = ()
        if len(t) != 3:
            raise ValueError(f"dit_seq_shape={shape!r}: expected 'TxHxW', e.g. '30x48x80'")
        return t
    return _attention._triple(shape, "dit_seq_shape")


def sliding_tile_attention(q, k, v, window_size, text_length, has_text=True, dit_seq_shape="30x48x80", *, seq_shape=None,
                           tile=TILE, out=None):
    """q, k, v: [B, H, S, D] (FastVideo's layout), S = T*H*W video tokens in natural order followed, if
    has_text, by text slots of which the first text_length are valid. window_size: one (t, h, w) in
    tiles per head. Returns o, [B, H, S, D]. seq_shape= is accepted as newer FastVideo spells it."""
    canvas = _canvas(seq_shape if seq_shape is not None else dit_seq_shape)
    S = q.shape[2]
    video = canvas[0] * canvas[1] * canvas[2]
    if has_text:
        text = S - video
        if text < 0:
            raise ValueError(f"q: {S} tokens, fewer than the {video} video tokens of {canvas}")
        if not 0 <= int(text_length) <= text:
            raise ValueError(f"text_length={text_length}: outside 0..{text} (the text slots after the video tokens)")
        padding = text - int(text_length)
    else:
        if S != video:
            raise ValueError(f"q: {S} tokens with has_text=False; canvas {canvas} has {video}")
        text = padding = 0
    windows = [tuple(w) for w in window_size]
    if len(windows) != q.shape[1]:
        raise ValueError(f"window_size: {len(windows)} windows for {q.shape[1]} heads (one per head)")
    return _attention_call(q, k, v, canvas, tile, windows, text, padding, out)


def _attention_call(q, k, v, canvas, tile, windows, text, padding, out):
    from . import attention

    return attention(q, k, v, canvas=canvas, tile=tile, window=windows, text=text, text_padding=padding, layout="bhsd",
                     out=out)
