"""Every refusal is a Python exception that names the argument; nothing is written on failure."""

import numpy as np
import pytest

import stile

CANVAS, TILE, WIN = (2, 4, 4), (2, 2, 2), (1, 1, 1)


def qkv(shape=(1, 32, 2, 64), dtype=np.float32):
    return [np.zeros(shape, dtype=dtype) for _ in range(3)]


def call(q, k, v, **kw):
    args = dict(canvas=CANVAS, tile=TILE, window=WIN)
    args.update(kw)
    return stile.attention(q, k, v, **args)


@pytest.mark.parametrize("bad,exc,words", [
    (dict(q=np.zeros((1, 32, 2, 64), dtype=np.float64)), TypeError, "q: dtype float64"),
    (dict(k=np.zeros((1, 32, 2, 64), dtype=np.float16)), TypeError, "k: dtype float16 differs"),
    (dict(v=np.zeros((1, 31, 2, 64), dtype=np.float32)), ValueError, "v: shape"),
    (dict(q=np.zeros((32, 2, 64), dtype=np.float32)), ValueError, "q: expected 4 dimensions"),
    (dict(q=[[1.0]]), TypeError, "q: a builtins.list is not an array"),
    (dict(canvas=(2, 4)), ValueError, "canvas"),
    (dict(canvas=(2, 4, 5)), ValueError, "40 video tokens"),
    (dict(window=[(1, 1, 1)] * 3), ValueError, "3 per-head windows for 2 heads"),
    (dict(window="abc"), TypeError, "window"),
    (dict(order="zigzag"), ValueError, "order="),
    (dict(text="x"), TypeError, "text: expected an integer"),
    (dict(text_padding=1.5), TypeError, "text_padding: expected an integer"),
    (dict(layout="sbhd"), ValueError, "layout="),
    (dict(out=np.zeros((1, 32, 2, 32), dtype=np.float32)), ValueError, "out: shape"),
    (dict(out=np.zeros((1, 32, 2, 64), dtype=np.float16)), TypeError, "out: dtype"),
])
def test_bad_arguments(bad, exc, words):
    q, k, v = qkv()
    args = {"q": q, "k": k, "v": v}
    args.update({n: bad.pop(n) for n in ("q", "k", "v") if n in bad})
    with pytest.raises(exc, match=words.replace("(", r"\(").replace("[", r"\[")):
        call(args["q"], args["k"], args["v"], **bad)


def test_library_refusals_are_value_errors():
    q, k, v = qkv()
    with pytest.raises(stile.StileValueError, match="window"):
        call(q, k, v, window=(0, 1, 1))
    with pytest.raises(stile.StileValueError, match="tile"):
        call(q, k, v, tile=(0, 2, 2))
    with pytest.raises(stile.StileValueError, match="text_padding"):
        q, k, v = qkv((1, 35, 2, 64))
        call(q, k, v, text=3, text_padding=4)


def test_read_only_out():
    q, k, v = qkv()
    out = np.zeros_like(q)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: read-only"):
        call(q, k, v, out=out)


def test_out_aliasing_an_input_is_refused_and_nothing_is_written():
    q, k, v = qkv()
    q[:] = 1.5
    with pytest.raises(stile.StileValueError) as e:
        call(q, k, v, out=q)
    assert e.value.status == 8  # STILE_ERR_ALIASING
    assert (q == 1.5).all()


def test_device_not_found():
    q, k, v = qkv()
    with pytest.raises(stile.StileError) as e:
        call(q, k, v, device="cuda:7")
    assert "cuda:7" in str(e.value)
    with pytest.raises(ValueError, match="device="):
        call(q, k, v, device="npu:0")


def test_negative_strides():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="q: negative strides"):
        call(q[:, ::-1], k, v)


def test_library_messages_reach_logging(caplog):
    q, k, v = qkv()
    with caplog.at_level("ERROR", logger="stile"), pytest.raises(stile.StileValueError):
        call(q, k, v, window=(0, 1, 1))
    assert any("window" in r.getMessage() for r in caplog.records if r.name == "stile")


def test_float_window_values_that_are_integers():
    q, k, v = qkv()
    a = call(q, k, v, window=(1.0, 1, 1))
    assert np.array_equal(a, call(q, k, v, window=(1, 1, 1)))


def test_dlpack_that_is_not_a_capsule():
    class NotACapsule:
        def __dlpack__(self, stream=None):
            return object()

        def __dlpack_device__(self):
            return (1, 0)

    q, k, v = qkv()
    with pytest.raises(TypeError, match="k: __dlpack__ did not return"):
        call(q, NotACapsule(), v)
