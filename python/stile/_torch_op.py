"""torch.ops.stile.attention: stile.attention as a torch operator, so that torch.compile
(fullgraph=True included) keeps a model that calls it in one graph. The fake implementation gives
the output shapes for tracing; the CPU and CUDA kernels are the eager call on the same tensors.

The operator is defined through torch.library.Library and registered for the CPU and CUDA dispatch
keys directly, not through torch.library.custom_op, whose Python wrapper around each call (autograd
redispatch, guards) cost about 100 us per call on a 2-core machine; this one costs a few.

Its gradient is a second operator, torch.ops.stile.attention_backward (stile_plan_backward on the
plan the forward used; deterministic), registered as the first one's autograd formula, so eager
autograd, torch.autograd.gradcheck and compiled graphs (AOTAutograd traces the backward through its
fake implementation) all take it. The forward keeps its LSE whenever a gradient may be needed. The
gradient with respect to the returned LSE is not computed: a backward that receives a nonzero one
raises (inside the backward operator, where the values are known) rather than dropping it. Backends
without a backward pass raise their StileError."""

import torch

from ._attention import _LAYOUTS, _ORDERS, backward, check_order_layout, needs_grad, run

_ORDER_NAMES = {code: name for name, code in _ORDERS.items()}  # the op's order: stile_token_order's value
SCHEMA = ("attention(Tensor q, Tensor k, Tensor v, int[] canvas, int[] tile, int[] windows, int text, int text_padding, "
          "float scale, int order, int layout, bool return_lse, Tensor? key_tiles=None) -> (Tensor, Tensor)")

BACKWARD_SCHEMA = ("attention_backward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor grad_o, Tensor grad_lse, "
                   "int[] canvas, int[] tile, int[] windows, int text, int text_padding, float scale, int order, int layout, "
                   "Tensor? key_tiles=None) -> (Tensor, Tensor, Tensor)")

_lib = torch.library.Library("stile", "DEF")
_lib.define(SCHEMA)
_lib.define(BACKWARD_SCHEMA)


def _windows(windows):
    """Three numbers: one window for every head; 3·H numbers: one per head; none: the caller's key tiles."""
    if not windows:
        return None
    if len(windows) == 3:
        return tuple(windows)
    return tuple(tuple(windows[i:i + 3]) for i in range(0, len(windows), 3))


def _kernel(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse, key_tiles=None):
    q, k, v = q.detach(), k.detach(), v.detach()  # below autograd: the tensors may still say they require grad
    o, lse = run(q, k, v, canvas=canvas, tile=tile, window=_windows(windows), text=text, text_padding=text_padding,
                 scale=scale or None, order=_ORDER_NAMES[order], layout=_LAYOUTS[layout], return_lse=return_lse,
                 key_tiles=key_tiles)
    if lse is None:
        lse = q.new_empty((0,), dtype=torch.float32)
    return o, lse


for _key in ("CPU", "CUDA"):
    _lib.impl("attention", _kernel, _key)


@torch.library.register_fake("stile::attention", lib=_lib)
def _(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse, key_tiles=None):
    o = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if not return_lse:
        return o, q.new_empty((0,), dtype=torch.float32)
    B, H, S = (q.shape[0], q.shape[2], q.shape[1]) if layout == 0 else (q.shape[0], q.shape[1], q.shape[2])
    return o, torch.empty((B, H, S), dtype=torch.float32, device=q.device)


def _like(t):
    """A new tensor with t's shape, strides, dtype and device (the library's gradients take the
    layout of their input)."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)


def _backward_kernel(q, k, v, o, lse, grad_o, grad_lse, canvas, tile, windows, text, text_padding, scale, order, layout,
                     key_tiles=None):
    if lse.dim() != 3:  # the forward's placeholder for return_lse=False (an empty batch's LSE is [0, H, S])
        raise RuntimeError(_NO_LSE)
    if grad_lse.numel() and bool(grad_lse.ne(0).any()):
        raise RuntimeError("stile.attention: the loss depends on the returned LSE, whose gradient stile does not compute "
                           "(detach the LSE, or use it outside the loss)")
    q, k, v, o, lse = (x.detach() for x in (q, k, v, o, lse))
    d_o = grad_o.detach()
    if d_o.stride() != o.stride():  # the library takes dO in o's layout
        d_o = _like(o).copy_(d_o)
    dq, dk, dv = _like(q), _like(k), _like(v)
    backward(q, k, v, o, lse, d_o, dq, dk, dv, canvas=canvas, tile=tile, window=_windows(windows), text=text,
             text_padding=text_padding, scale=scale or None, order=_ORDER_NAMES[order], layout=_LAYOUTS[layout],
             key_tiles=key_tiles)
    return dq, dk, dv


for _key in ("CPU", "CUDA"):
    _lib.impl("attention_backward", _backward_kernel, _key)


@torch.library.register_fake("stile::attention_backward", lib=_lib)
def _(q, k, v, o, lse, grad_o, grad_lse, canvas, tile, windows, text, text_padding, scale, order, layout, key_tiles=None):
    return _like(q), _like(k), _like(v)


_NO_LSE = ("stile.attention: the forward ran without its LSE, which the backward needs (call the op with return_lse=True "
           "when a gradient is wanted; stile.attention does)")


def _setup_context(ctx, inputs, output):
    q, k, v = inputs[:3]
    if output[1].dim() != 3 and any(ctx.needs_input_grad[:3]):
        raise RuntimeError(_NO_LSE)
    ctx.args = inputs[3:11]  # canvas .. layout
    ctx.key_tiles = inputs[12] if len(inputs) > 12 else None  # an int32 tensor: no gradient
    ctx.save_for_backward(q, k, v, *output)


def _backward(ctx, grad_o, grad_lse):
    # autograd passes zeros for an output that did not reach the loss (grads are materialized), so
    # grad_o and grad_lse are tensors here; the backward operator checks grad_lse's values
    q, k, v, o, lse = ctx.saved_tensors
    dq, dk, dv = torch.ops.stile.attention_backward(q, k, v, o, lse, grad_o, grad_lse, *ctx.args, key_tiles=ctx.key_tiles)
    return (dq, dk, dv) + (None,) * 10


def _no_double_backward(ctx, *grads):
    raise RuntimeError("stile.attention: no second derivative (the backward pass is not differentiable; create_graph=True "
                       "through stile.attention is not supported)")


def _no_setup(ctx, inputs, output):
    pass


torch.library.register_autograd("stile::attention", _backward, setup_context=_setup_context, lib=_lib)
# a gradient of the gradients would otherwise come out as zeros with a warning
torch.library.register_autograd("stile::attention_backward", _no_double_backward, setup_context=_no_setup, lib=_lib)


def call(q, k, v, canvas, tile, windows, text, text_padding, scale, order, layout, return_lse, key_tiles=None):
    """The op with stile.attention's arguments (windows: a triple or a tuple of triples; None with
    key_tiles, the caller's int32 tiles)."""
    check_order_layout(order, layout)
    if windows is None:
        flat = []
    else:
        flat = list(windows) if isinstance(windows[0], int) else [x for w in windows for x in w]
    grad = needs_grad(torch, q, k, v)  # the backward needs the LSE
    o, lse = torch.ops.stile.attention(q, k, v, list(canvas), list(tile), flat, int(text), int(text_padding),
                                       float(scale or 0.0), _ORDERS[order], _LAYOUTS.index(layout), bool(return_lse or grad),
                                       key_tiles=key_tiles)
    return o, (lse if return_lse else None)
