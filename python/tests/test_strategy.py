"""Strategy files (stile_strategy_*) and calibration (Capture, then `stile calibrate`) from Python."""

import json

import numpy as np
import pytest

import stile
from stile.strategy import Capture


def test_set_get_save_load(tmp_path):
    s = stile.Strategy()
    assert len(s) == 0
    s[0, 0, 0] = (3, 3, 3)
    s[2, 1, 5] = (1, 6, 10)
    assert s[2, 1, 5] == (1, 6, 10) and (0, 0, 0) in s and (0, 0, 1) not in s and len(s) == 2
    with pytest.raises(KeyError):
        s[9, 9, 9]
    with pytest.raises(stile.StileError):
        s[0, 0, 0] = (0, 1, 1)
    p = tmp_path / "strategy.json"
    s.save(p)
    t = stile.Strategy.load(p)
    assert t[0, 0, 0] == (3, 3, 3) and t[2, 1, 5] == (1, 6, 10) and len(t) == 2
    assert json.loads(t.to_json()) == json.loads(s.to_json())
    assert t.windows(2, 1, 6, (5, 6, 10)) == [(5, 6, 10)] * 5 + [(1, 6, 10)]


def test_load_errors(tmp_path):
    with pytest.raises(stile.StileError, match="missing.json"):
        stile.Strategy.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"0": ')
    with pytest.raises(stile.StileError):
        stile.Strategy.load(bad)


def test_capture_and_calibrate(tmp_path, rng):
    canvas, tile, H, D = (2, 8, 8), (1, 4, 4), 2, 64
    cap = Capture(tmp_path / "cap", canvas=canvas, tile=tile, heads=H, head_dim=D)
    for step in range(2):
        cap.add(step, 0, *(rng.standard_normal((1, 128, H, D)).astype(np.float32) for _ in range(3)))
    cap.close()
    try:
        s = stile.calibrate(tmp_path / "cap", [(1, 1, 1), (2, 2, 2)], out=tmp_path / "s.json")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    for step in range(2):
        for h in range(H):
            assert s[step, 0, h] in ((1, 1, 1), (2, 2, 2))
    with pytest.raises(stile.StileError, match="stile calibrate"):
        stile.calibrate(tmp_path / "nothing", [(1, 1, 1)], out=tmp_path / "t.json")
