"""torch tensors (CPU here; CUDA where present): read in place, results against the NumPy reference,
and the custom op torch.ops.stile.attention under torch.compile(fullgraph=True)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (./run test installs the CPU wheel where it can)")

import stile  # noqa: E402
from reference import BOUNDS, attention as ref_attention, nmse  # noqa: E402
from torch_block import AttentionBlock  # noqa: E402

CANVAS, TILE = (4, 6, 6), (2, 4, 4)
S = 4 * 6 * 6


def _qkv(rng, shape, dtype, device="cpu"):
    return [torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(device=device, dtype=dtype) for _ in range(3)]


def _np64(t):
    return t.detach().to(torch.float64).cpu().numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_matches_reference(rng, dtype, layout):
    B, H, D, text, pad = 2, 3, 64, 7, 2
    shape = (B, S + text, H, D) if layout == "bshd" else (B, H, S + text, D)
    q, k, v = _qkv(rng, shape, dtype)
    windows = [(1, 1, 1), (2, 1, 2), (3, 2, 2)]
    o, lse = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=windows, text=text, text_padding=pad, layout=layout,
                             return_lse=True)
    assert isinstance(o, torch.Tensor) and o.dtype == dtype and o.shape == q.shape and lse.dtype == torch.float32
    to_bshd = (lambda x: x) if layout == "bshd" else (lambda x: np.swapaxes(x, 1, 2))
    ro, rl = ref_attention(*(to_bshd(_np64(x)) for x in (q, k, v)), CANVAS, TILE, windows, text, pad)
    assert not torch.isnan(o).any()
    assert nmse(to_bshd(_np64(o)), ro) <= BOUNDS[str(dtype).split(".")[1]]
    assert np.abs(_np64(lse) - rl).max() <= (1e-5 if dtype == torch.float32 else 1e-2)


def test_transposed_views_are_not_copied(rng):
    """A [B, H, S, D] tensor seen as [B, S, H, D] through transpose(1, 2): same answer as contiguous."""
    q, k, v = _qkv(rng, (1, 2, S, 64), torch.float32)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    assert not qt.is_contiguous()
    o = stile.attention(qt, kt, vt, canvas=CANVAS, tile=TILE, window=(1, 2, 1))
    ref = stile.attention(*(x.contiguous() for x in (qt, kt, vt)), canvas=CANVAS, tile=TILE, window=(1, 2, 1))
    assert torch.equal(o, ref)
    o2 = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1), layout="bhsd")
    assert torch.equal(o2.transpose(1, 2), ref)


def test_torch_errors_name_the_argument(rng):
    q, k, v = _qkv(rng, (1, S, 2, 64), torch.float32)
    with pytest.raises(TypeError, match="k: dtype"):
        stile.attention(q, k.double(), v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    with pytest.raises(TypeError, match="v: dtype bfloat16 differs"):
        stile.attention(q, k, v.bfloat16(), canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    with pytest.raises(ValueError, match="device='cpu': under torch.compile or autograd"):
        stile.attention(q.requires_grad_(), k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), device="cpu")
    q.requires_grad_(False)
    with pytest.raises(ValueError, match="q: a tensor on meta"):
        stile.attention(q.to("meta"), k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    # a head dim that is not contiguous: refused by the library, or computed right; never a crash
    wide = torch.from_numpy(rng.standard_normal((1, S, 2, 128)).astype(np.float32))
    try:
        o = stile.attention(wide[..., ::2], k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    except stile.StileValueError as e:
        assert "q" in str(e)
    else:
        ref = stile.attention(wide[..., ::2].contiguous(), k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
        assert torch.equal(o, ref)


def test_no_grad_allows_leaf_tensors(rng):
    q, k, v = _qkv(rng, (1, S, 2, 64), torch.float32)
    q.requires_grad_()
    with torch.no_grad():
        o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    assert o.shape == q.shape


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_torch_compile_fullgraph(rng, backend):
    torch.manual_seed(int(rng.integers(2**31)))
    torch._dynamo.reset()
    m = AttentionBlock(2, 64, CANVAS, TILE).eval()
    x = torch.randn(2, S, 128)
    with torch.no_grad():
        want = m(x)
        compiled = torch.compile(m, backend=backend, fullgraph=True)
        got = compiled(x)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_custom_op_registration(rng):
    """The op's schema, fake implementation and eager behaviour agree (torch.library.opcheck)."""
    q, k, v = _qkv(rng, (1, S, 2, 64), torch.float32)
    for return_lse in (False, True):
        args = (q, k, v, list(CANVAS), list(TILE), [1, 1, 1], 0, 0, 0.0, 0, 0, return_lse)
        torch.library.opcheck(torch.ops.stile.attention.default, args,
                              test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                          "test_aot_dispatch_static"))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fq = mode.from_tensor(q)
        o, lse = torch.ops.stile.attention(fq, fq, fq, list(CANVAS), list(TILE), [1, 1, 1], 0, 0, 0.0, 0, 0, True)
        assert o.shape == q.shape and lse.shape == (1, 2, S)


def test_argument_values_not_identities_key_the_fast_path(rng):
    """A scale given as a tensor is read at each call (no cached plan keyed on the object)."""
    q, k, v = _qkv(rng, (1, S, 2, 64), torch.float32)
    s = torch.tensor(0.05)
    a = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), scale=s)
    s.fill_(0.5)
    b = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), scale=s)
    want = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), scale=0.5)
    assert not torch.equal(a, b) and torch.equal(b, want)


def test_empty_batch(rng):
    q, k, v = _qkv(rng, (0, S, 2, 64), torch.float32)
    o, lse = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), return_lse=True)
    assert o.shape == q.shape and lse.shape == (0, 2, S)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch here")
def test_cuda_tensors_on_the_current_stream(rng):
    """On torch's default stream (enqueued as cudaStreamLegacy) and on a side stream, first call and
    repeated (fast path) calls; results against the reference."""
    names = [d["name"] for d in stile.devices() if d["name"] == "cuda:0" and "unavailable" not in d]
    if not names:
        pytest.skip("stile has no cuda:0 here")
    q, k, v = _qkv(rng, (1, S, 2, 64), torch.bfloat16, "cuda")
    ro, _ = ref_attention(*(_np64(x) for x in (q, k, v)), CANVAS, TILE, [(1, 1, 1)] * 2)
    stile.clear_plan_cache()
    for _ in range(2):
        o = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
        o = o * 1  # a torch op after it on the same stream sees its result
        assert nmse(_np64(o), ro) <= BOUNDS["bfloat16"]
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    hits = stile.plan_cache_stats()["plan_cache_hits"]
    with torch.cuda.stream(s):
        outs = [stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1)) for _ in range(3)]
        outs = [o * 1 for o in outs]
    s.synchronize()
    assert stile.plan_cache_stats()["plan_cache_hits"] - hits == 3
    for o in outs:
        assert nmse(_np64(o), ro) <= BOUNDS["bfloat16"]


def test_repeated_calls_reuse_the_prepared_call(rng):
    """The second call of a signature takes the fast path (stile/_prepared.py): same results, one
    plan; other strides, another output or return_lse are other signatures; a call autograd records
    goes through the op (test_autograd.py) on the same plan."""
    from stile import _prepared

    stile.clear_plan_cache()
    q, k, v = _qkv(rng, (1, S, 2, 64), torch.float32)
    created = stile.plan_cache_stats()["plans_created"]
    first, lse1 = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1), return_lse=True)
    assert len(_prepared._table) == 1
    hits = stile.plan_cache_stats()["plan_cache_hits"]
    again, lse2 = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1), return_lse=True)
    assert stile.plan_cache_stats()["plan_cache_hits"] == hits + 1
    assert again.data_ptr() != first.data_ptr() and torch.equal(again, first) and torch.equal(lse1, lse2)
    q2 = q.clone() * 2  # same signature, other data: the addresses are read at each call
    o2 = stile.attention(q2, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1))
    ref = stile.attention(q2.numpy(), k.numpy(), v.numpy(), canvas=CANVAS, tile=TILE, window=(1, 2, 1))
    assert np.array_equal(o2.numpy(), ref)
    out = torch.empty_like(q)
    assert stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1), out=out) is out
    assert torch.equal(out, first)
    assert stile.plan_cache_stats()["plans_created"] - created == 1  # the NumPy arrays' problem is the same
    hits = stile.plan_cache_stats()["plan_cache_hits"]
    graded = stile.attention(q.requires_grad_(), k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1))
    assert graded.grad_fn is not None and torch.equal(graded.detach(), first)  # through the op, not the prepared call
    assert stile.plan_cache_stats()["plan_cache_hits"] == hits + 1
    q.requires_grad_(False)
    with pytest.raises(stile.StileValueError):
        stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1), out=q)  # aliasing: the library refuses
    stile.clear_plan_cache()
    assert not _prepared._table
