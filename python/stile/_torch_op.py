"""torch.ops.stile.attention: stile.attention as a torch custom op, so that torch.compile
(fullgraph=True included) keeps a model that calls it in one graph. The fake implementation gives
the output shapes for tracing; the real one is the eager call on the same tensors."""

import torch

from ._attention import run

_ORDERS = ("natural", "tiled")
_LAYOUTS = ("bshd", "bhsd")


@torch.library.custom_op("stile::attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, canvas: list[int], tile: list[int],
                  windows: list[int], text: int, text_padding: int, scale: float, order: int, layout: int,
                  return_lse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # three numbers: one window for every head (a per-head list of one head reads the same)
    window = tuple(windows) if len(windows) == 3 else tuple(tuple(windows[i:i + 3]) for i in range(0, len(windows), 3))
    with torch.no_grad():
        o, lse = run(q, k, v, canvas=canvas, tile=tile, window=window, text=text, text_padding=text_padding,
                     scale=scale or None, order=_ORDERS[order], layout=_LAYOUTS[layout], return_lse=return_lse)
    if lse is None:
        lse = q.new_empty((0,), dtype=torch.float32)
    return o, lse


@_attention_op.register_fake
def _(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse):
    o = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if not return_lse:
        return o, q.new_empty((0,), dtype=torch.float32)
    B, H, S = (q.shape[0], q.shape[2], q.shape[1]) if layout == 0 else (q.shape[0], q.shape[1], q.shape[2])
    return o, torch.empty((B, H, S), dtype=torch.float32, device=q.device)


def call(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse):
    """The op with stile.attention's arguments (windows: a triple or a tuple of triples)."""
    flat = list(windows) if isinstance(windows[0], int) else [x for w in windows for x in w]
    o, lse = torch.ops.stile.attention(q, k, v, list(canvas), list(tile), flat, int(text), int(text_padding),
                                       float(scale or 0.0), _ORDERS.index(order), _LAYOUTS.index(layout), bool(return_lse))
    return o, (lse if return_lse else None)
