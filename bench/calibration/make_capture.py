#!/usr/bin/env python3
"""Write a synthetic calibration capture (docs/calibration.md): standard-normal q, k, v of a given
shape for a few (step, layer) samples, bf16 stored as its bit pattern in '<u2', and the manifest.

    python3 bench/calibration/make_capture.py OUTDIR --canvas 30 48 80 --tile 6 8 8 --heads 24 \
        --head-dim 128 --steps 1 --layers 2
"""
import argparse
import json
import os
import sys

import numpy as np


def bf16_bits(x):
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")  # round to nearest even


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--canvas", type=int, nargs=3, required=True)
    ap.add_argument("--tile", type=int, nargs=3, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--head-dim", type=int, required=True)
    ap.add_argument("--text", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tokens = a.canvas[0] * a.canvas[1] * a.canvas[2] + a.text
    rng = np.random.default_rng(a.seed)
    samples = []
    for step in range(a.steps):
        for layer in range(a.layers):
            names = {}
            for t in "qkv":
                x = rng.standard_normal((1, tokens, a.heads, a.head_dim), dtype=np.float32)
                names[t] = f"{t}_s{step}_l{layer}.npy"
                np.save(os.path.join(a.out, names[t]), bf16_bits(x))
            samples.append({"step": step, "layer": layer, **names})
            print(f"wrote step {step} layer {layer}", flush=True)
    manifest = {"canvas": a.canvas, "tile": a.tile, "heads": a.heads, "head_dim": a.head_dim, "text": a.text,
                "text_padding": 0, "samples": samples}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
