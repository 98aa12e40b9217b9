"""torch.ops.stile.attention: stile.attention as a torch operator, so that torch.compile
(fullgraph=True included) keeps a model that calls it in one graph. The fake implementation gives
the output shapes for tracing; the CPU and CUDA kernels are the eager call on the same tensors.

The operator is defined through torch.library.Library and registered for the CPU and CUDA dispatch
keys directly, not through torch.library.custom_op, whose Python wrapper around each call (autograd
redispatch, guards) cost about 100 us per call on a 2-core machine; this one costs a few. It has no
gradient yet: eager calls refuse a tensor that requires grad, and in a compiled graph, where the
forward cannot see grad mode, the backward raises instead of returning no gradient."""

import torch

from ._attention import _LAYOUTS, _ORDERS, check_order_layout, run

_ORDER_NAMES = {code: name for name, code in _ORDERS.items()}  # the op's order: stile_token_order's value
SCHEMA = ("attention(Tensor q, Tensor k, Tensor v, int[] canvas, int[] tile, int[] windows, int text, int text_padding, "
          "float scale, int order, int layout, bool return_lse) -> (Tensor, Tensor)")

_lib = torch.library.Library("stile", "DEF")
_lib.define(SCHEMA)


def _windows(windows):
    """Three numbers: one window for every head; 3·H numbers: one per head."""
    if len(windows) == 3:
        return tuple(windows)
    return tuple(tuple(windows[i:i + 3]) for i in range(0, len(windows), 3))


def _kernel(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse):
    o, lse = run(q, k, v, canvas=canvas, tile=tile, window=_windows(windows), text=text, text_padding=text_padding,
                 scale=scale or None, order=_ORDER_NAMES[order], layout=_LAYOUTS[layout], return_lse=return_lse)
    if lse is None:
        lse = q.new_empty((0,), dtype=torch.float32)
    return o, lse


for _key in ("CPU", "CUDA"):
    _lib.impl("attention", _kernel, _key)


@torch.library.register_fake("stile::attention", lib=_lib)
def _(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse):
    o = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if not return_lse:
        return o, q.new_empty((0,), dtype=torch.float32)
    B, H, S = (q.shape[0], q.shape[2], q.shape[1]) if layout == 0 else (q.shape[0], q.shape[1], q.shape[2])
    return o, torch.empty((B, H, S), dtype=torch.float32, device=q.device)


def _no_backward(ctx, grad_o, grad_lse):
    raise RuntimeError("stile.attention is forward-only: it has no gradient (run it under torch.no_grad(), or detach "
                       "its inputs)")


def _setup_context(ctx, inputs, output):
    pass


torch.library.register_autograd("stile::attention", _no_backward, setup_context=_setup_context, lib=_lib)


def call(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse):
    """The op with stile.attention's arguments (windows: a triple or a tuple of triples)."""
    check_order_layout(order, layout)
    flat = list(windows) if isinstance(windows[0], int) else [x for w in windows for x in w]
    o, lse = torch.ops.stile.attention(q, k, v, list(canvas), list(tile), flat, int(text), int(text_padding),
                                       float(scale or 0.0), _ORDERS[order], _LAYOUTS.index(layout), bool(return_lse))
    return o, (lse if return_lse else None)
