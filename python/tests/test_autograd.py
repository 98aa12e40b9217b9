"""Autograd through torch.ops.stile.attention: gradients from the library's backward pass
(stile_plan_backward, the CPU backend here) against a float64 reference differentiated by torch,
torch.autograd.gradcheck in float32, the backward operator's registration, compiled graphs, and
the refusals (a loss that uses the returned LSE, device= staging)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (./run test installs the CPU wheel where it can)")

import stile  # noqa: E402
from reference import mask as ref_mask, natural_to_tiled  # noqa: E402
from torch_block import AttentionBlock  # noqa: E402

CANVAS, TILE = (2, 3, 4), (1, 2, 3)  # partial tiles on two axes
VIDEO = 2 * 3 * 4


def _ref64(q, k, v, windows, text, pad, order="natural", scale=None):
    """Dense masked attention in float64 torch ops, differentiable: [B, S, H, D] in and out."""
    B, S, H, D = q.shape
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    perm = np.arange(S)
    if order == "tiled":
        perm = np.concatenate([natural_to_tiled(CANVAS, TILE), np.arange(VIDEO, S)])
    outs = []
    for h in range(H):
        m = torch.from_numpy(ref_mask(CANVAS, TILE, windows[h], text, pad)[np.ix_(perm, perm)])
        s = torch.einsum("bqd,bkd->bqk", q[:, :, h], k[:, :, h]) * scale
        s = s.masked_fill(~m, float("-inf"))
        outs.append(torch.einsum("bqk,bkd->bqd", torch.softmax(s, dim=-1), v[:, :, h]))
    return torch.stack(outs, dim=2)


def _inputs(rng, B, S, H, D, dtype=torch.float32):
    return [torch.from_numpy(rng.standard_normal((B, S, H, D))).to(dtype).requires_grad_() for _ in range(3)]


@pytest.mark.parametrize("order", ["natural", "tiled"])
def test_gradients_match_a_float64_reference(rng, order):
    B, H, D, text, pad = 2, 2, 16, 3, 1
    windows = [(1, 1, 1), (2, 1, 2)]
    q, k, v = _inputs(rng, B, VIDEO + text, H, D)
    g = torch.from_numpy(rng.standard_normal(q.shape)).float()
    o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=windows, text=text, text_padding=pad, order=order, scale=0.7)
    assert o.grad_fn is not None
    (o * g).sum().backward()
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    (_ref64(q64, k64, v64, windows, text, pad, order, 0.7) * g.double()).sum().backward()
    for got, want in ((q.grad, q64.grad), (k.grad, k64.grad), (v.grad, v64.grad)):
        err = ((got.double() - want) ** 2).sum() / (want ** 2).sum()
        assert err <= 1e-10, float(err)
    # deterministic: the same gradients bitwise on a second backward
    first = [x.grad.clone() for x in (q, k, v)]
    for x in (q, k, v):
        x.grad = None
    stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=windows, text=text, text_padding=pad, order=order,
                    scale=0.7).mul(g).sum().backward()
    assert all(torch.equal(a, x.grad) for a, x in zip(first, (q, k, v)))


@pytest.mark.filterwarnings("ignore:Input #.* is not a double precision")
def test_gradcheck_float32(rng):
    """torch.autograd.gradcheck in float32 (stile has no float64): finite differences of 1e-2 against
    the analytic gradients, with tolerances a float32 forward allows."""
    q, k, v = _inputs(rng, 1, VIDEO + 2, 2, 8)

    def f(q, k, v):
        return stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=[(1, 1, 1), (2, 2, 2)], text=2, text_padding=1)

    assert torch.autograd.gradcheck(f, (q, k, v), eps=1e-2, atol=2e-3, rtol=2e-2, nondet_tol=0.0, fast_mode=False)


def test_half_precision_gradients(rng):
    """bf16 and f16 inputs: gradients in the input's dtype, close to the float64 reference's."""
    for dtype, bound in ((torch.float16, 1e-5), (torch.bfloat16, 1e-4)):
        q, k, v = _inputs(rng, 1, VIDEO, 2, 16, dtype)
        o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 2))
        o.float().sum().backward()
        assert q.grad.dtype == dtype
        q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
        _ref64(q64, k64, v64, [(1, 2, 2)] * 2, 0, 0).sum().backward()
        for got, want in ((q.grad, q64.grad), (k.grad, k64.grad), (v.grad, v64.grad)):
            assert float(((got.double() - want) ** 2).sum() / (want ** 2).sum()) <= bound


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch here")
@pytest.mark.parametrize("D", [64, 16])  # the tensor-core backward (d 64), the portable one
def test_cuda_gradients_on_the_current_stream(rng, D):
    """CUDA tensors: the backward runs on cuda:0 on torch's stream; bf16 gradients against the float64
    reference within the conformance bound, and bitwise the same on a second backward."""
    if not [d for d in stile.devices() if d["name"] == "cuda:0" and "unavailable" not in d]:
        pytest.skip("stile has no cuda:0 here")
    text, pad, windows = 3, 1, [(1, 1, 1), (2, 1, 2)]
    cpu = _inputs(rng, 2, VIDEO + text, 2, D, torch.bfloat16)
    q, k, v = (x.detach().cuda().requires_grad_() for x in cpu)
    g = torch.from_numpy(rng.standard_normal(q.shape)).to(torch.bfloat16)
    grads = []
    for _ in range(2):
        for x in (q, k, v):
            x.grad = None
        o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=windows, text=text, text_padding=pad)
        (o.float() * g.cuda().float()).sum().backward()
        grads.append([x.grad.clone() for x in (q, k, v)])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in cpu)
    (_ref64(q64, k64, v64, windows, text, pad) * g.double()).sum().backward()
    for got, want in zip(grads[0], (q64.grad, k64.grad, v64.grad)):
        assert got.dtype == torch.bfloat16 and got.is_cuda
        assert float(((got.cpu().double() - want) ** 2).sum() / (want ** 2).sum()) <= 1e-4


def test_strided_inputs_and_upstream_gradients(rng):
    """q, k, v as views of one packed projection and an upstream gradient with other strides (an
    expand): the gradients take their inputs' layouts and agree with contiguous inputs."""
    B, S, H, D = 1, VIDEO, 2, 16
    qkv = torch.from_numpy(rng.standard_normal((B, S, 3, H, D))).float().requires_grad_()
    q, k, v = qkv.unbind(2)
    o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 2))
    o.sum().backward()  # dO is an expanded scalar: zero strides
    q2, k2, v2 = (x.detach().contiguous().requires_grad_() for x in (q, k, v))
    stile.attention(q2, k2, v2, canvas=CANVAS, tile=TILE, window=(1, 1, 2)).sum().backward()
    assert torch.allclose(qkv.grad[:, :, 0], q2.grad, rtol=0, atol=1e-6)
    assert torch.allclose(qkv.grad[:, :, 1], k2.grad, rtol=0, atol=1e-6)
    assert torch.allclose(qkv.grad[:, :, 2], v2.grad, rtol=0, atol=1e-6)


def test_a_loss_on_the_lse_raises(rng):
    q, k, v = _inputs(rng, 1, VIDEO, 2, 16)
    o, lse = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), return_lse=True)
    with pytest.raises(RuntimeError, match="returned LSE"):
        (o.sum() + lse.sum()).backward()
    q.grad = None
    o, lse = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), return_lse=True)
    (o.sum() + lse.detach().sum()).backward()  # a detached LSE is fine
    assert q.grad is not None


def test_backward_op_registration(rng):
    """The backward operator's schema, fake implementation and eager behaviour agree, and the forward
    op's autograd formula is registered (torch.library.opcheck)."""
    q, k, v = (x.detach() for x in _inputs(rng, 1, VIDEO, 2, 16))
    o, lse = torch.ops.stile.attention(q, k, v, list(CANVAS), list(TILE), [1, 1, 1], 0, 0, 0.0, 0, 0, True)
    args = (q, k, v, o, lse, torch.randn_like(o), lse.new_empty((0,)), list(CANVAS), list(TILE), [1, 1, 1], 0, 0, 0.0, 0, 0)
    torch.library.opcheck(torch.ops.stile.attention_backward.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))
    qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
    torch.library.opcheck(torch.ops.stile.attention.default,
                          (qg, kg, vg, list(CANVAS), list(TILE), [1, 1, 1], 0, 0, 0.0, 0, 0, True),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_graph_gradients_equal_eager(rng, backend):
    torch.manual_seed(int(rng.integers(2**31)))
    torch._dynamo.reset()
    m = AttentionBlock(2, 16, CANVAS, TILE, use_lse=False)
    x = torch.randn(2, VIDEO, 32)
    m(x).square().sum().backward()
    want = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    torch.compile(m, backend=backend, fullgraph=True)(x).square().sum().backward()
    for p, w in zip(m.parameters(), want):
        assert torch.allclose(p.grad, w, rtol=1e-5, atol=1e-6)


def test_compiled_graph_with_a_loss_on_the_lse_raises(rng):
    torch._dynamo.reset()
    m = AttentionBlock(2, 16, CANVAS, TILE)
    with pytest.raises(Exception, match="returned LSE"):
        torch.compile(m, backend="aot_eager", fullgraph=True)(torch.randn(1, VIDEO, 32)).sum().backward()


def test_autograd_refuses_device_staging(rng):
    """device= stages host arrays through another device's buffers, which autograd does not follow."""
    q, k, v = _inputs(rng, 1, VIDEO, 2, 16)
    with pytest.raises(ValueError, match="device='cpu': under torch.compile or autograd"):
        stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), device="cpu")


def test_empty_batch_and_double_backward(rng):
    q, k, v = _inputs(rng, 0, VIDEO, 2, 16)
    stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1)).sum().backward()
    assert q.grad.shape == q.shape
    q, k, v = _inputs(rng, 1, VIDEO, 2, 16)
    o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    (gq,) = torch.autograd.grad(o.square().sum(), (q,), create_graph=True)
    with pytest.raises(RuntimeError, match="no second derivative"):
        gq.sum().backward()


def test_the_op_without_its_lse_refuses_a_gradient(rng):
    q, k, v = _inputs(rng, 1, VIDEO, 2, 16)
    with pytest.raises(RuntimeError, match="without its LSE"):
        torch.ops.stile.attention(q, k, v, list(CANVAS), list(TILE), [1, 1, 1], 0, 0, 0.0, 0, 0, False)
