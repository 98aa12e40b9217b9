"""The plan cache (one plan per device and problem, reused; bounded) and calls from several threads."""

import threading

import numpy as np

import stile
from stile import _runtime

CANVAS, TILE = (2, 8, 8), (1, 4, 4)


def test_a_loop_plans_once(rng):
    q, k, v = (rng.standard_normal((1, 128, 2, 64)).astype(np.float32) for _ in range(3))
    stile.clear_plan_cache()
    before = stile.plan_cache_stats()
    outs = [stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 1)) for _ in range(5)]
    after = stile.plan_cache_stats()
    assert after["plans_created"] - before["plans_created"] == 1
    assert after["plan_cache_hits"] - before["plan_cache_hits"] == 4
    assert all(np.array_equal(o, outs[0]) for o in outs)
    # another problem (another window) is another plan; the strides are part of the problem too
    stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1))
    stile.attention(*(np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 1, 2)), 1, 2) for x in (q, k, v)), canvas=CANVAS,
                    tile=TILE, window=(1, 1, 1))
    assert stile.plan_cache_stats()["plans_created"] - after["plans_created"] == 2


def test_cache_is_bounded(rng, monkeypatch):
    monkeypatch.setattr(_runtime, "PLAN_CACHE_SIZE", 3)
    stile.clear_plan_cache()
    q, k, v = (rng.standard_normal((1, 128, 1, 64)).astype(np.float32) for _ in range(3))
    for s in range(1, 7):
        stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 1, 1), scale=s / 10)
    assert len(_runtime._plans) == 3


def test_threads_share_plans_and_agree(rng):
    stile.clear_plan_cache()
    q, k, v = (rng.standard_normal((2, 128, 2, 64)).astype(np.float32) for _ in range(3))
    want = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 2))
    created = stile.plan_cache_stats()["plans_created"]
    results, errors = [None] * 8, []

    def worker(i):
        try:
            for _ in range(10):
                results[i] = stile.attention(q, k, v, canvas=CANVAS, tile=TILE, window=(1, 2, 2))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(r, want) for r in results)
    assert stile.plan_cache_stats()["plans_created"] == created
