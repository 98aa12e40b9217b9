"""examples/hunyuan_attention.py runs and its --check (SDPA under the contract's mask) holds."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "hunyuan_attention.py"


def test_hunyuan_attention_example():
    pytest.importorskip("torch", reason="the example is written for torch, which is not installed")
    if not EXAMPLE.exists():
        pytest.skip("no source tree here")
    r = subprocess.run([sys.executable, str(EXAMPLE), "--canvas", "6x16x40", "--heads", "2", "--window", "1x1x3", "--text", "9",
                        "--text-padding", "2", "--check"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "relative L2 error" in r.stdout
