#!/usr/bin/env python3
"""stile's peers on a GPU with PyTorch: cuDNN SDPA dense, FlashAttention SDPA dense, and FlexAttention
with an STA block mask, timed on stile's named workloads; writes stile-bench/2 records (docs/bench-schema.md)
so `stile bench --compare` and `stile chart` put stile beside them from the same run on the same card.

    stile bench --list-workloads > workloads.json
    python3 bench/peers/peers.py --workloads-json workloads.json --out peers.json

The workloads (shapes, windows, FLOPs) come from stile's own list, so both sides time the same problems.
FlexAttention runs on tokens in tiled order (tiles contiguous), with a mask built from the STA contract
(docs/contract.md); its FLOPs are stile's computed FLOPs for the same problem.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys


def die(msg):
    print(f"peers: {msg}", file=sys.stderr)
    sys.exit(2)


def load_workloads(path, names):
    try:
        with open(path) as f:
            all_w = json.load(f)
    except OSError as e:
        die(f"--workloads-json {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        die(f"--workloads-json {path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}")
    if not isinstance(all_w, list) or not all(isinstance(w, dict) and "name" in w and "shape" in w for w in all_w):
        die(f"--workloads-json {path}: expected the list printed by `stile bench --list-workloads`")
    by_name = {w["name"]: w for w in all_w}
    for n in names:
        if n not in by_name:
            die(f"--workload {n}: unknown workload (known: {', '.join(by_name)})")
    return [by_name[n] for n in names]


def sta_mask_mod(torch, shape, device):
    """The STA contract as a FlexAttention mask_mod over tokens in tiled order (then text)."""
    T, H, W = shape["canvas"]
    t, h, w = shape["tile"]
    n = [-(-T // t), -(-H // h), -(-W // w)]
    windows = shape["windows"]
    heads = shape["heads"]
    text = shape["text"]
    valid = text - shape["text_padding"]
    # tile coordinates of each token in tiled order (partial edge tiles included)
    coords = []
    for a in range(n[0]):
        for b in range(n[1]):
            for c in range(n[2]):
                size = (min(t, T - a * t)) * (min(h, H - b * h)) * (min(w, W - c * w))
                coords.extend([(a, b, c)] * size)
    video = len(coords)
    coords += [(0, 0, 0)] * text
    tc = torch.tensor(coords, dtype=torch.int32, device=device)  # [S, 3]

    def start(q, win, size):
        if win >= size:
            return 0
        return min(max(q - win // 2, 0), size - win)

    # per head and tile coordinate: the window's [lo, hi) on each axis
    per_head = windows if len(windows) == heads else [windows[0]] * heads
    lo = torch.zeros(heads, 3, max(n), dtype=torch.int32)
    hi = torch.zeros(heads, 3, max(n), dtype=torch.int32)
    for hd, win in enumerate(per_head):
        for ax in range(3):
            for q in range(n[ax]):
                e = min(win[ax], n[ax])
                s = start(q, win[ax], n[ax])
                lo[hd, ax, q], hi[hd, ax, q] = s, s + e
    lo, hi = lo.to(device), hi.to(device)

    def mask_mod(b, hh, q_idx, kv_idx):
        qc, kc = tc[q_idx], tc[kv_idx]
        inside = ((kc[0] >= lo[hh, 0, qc[0]]) & (kc[0] < hi[hh, 0, qc[0]]) &
                  (kc[1] >= lo[hh, 1, qc[1]]) & (kc[1] < hi[hh, 1, qc[1]]) &
                  (kc[2] >= lo[hh, 2, qc[2]]) & (kc[2] < hi[hh, 2, qc[2]]))
        k_video = kv_idx < video
        k_text_valid = (kv_idx >= video) & (kv_idx < video + valid)
        q_text = q_idx >= video
        return k_text_valid | (k_video & (q_text | inside))

    return mask_mod, video + text


def self_check(torch, F, create_block_mask, flex, dev):
    """FlexAttention with sta_mask_mod against SDPA with a dense boolean mask written from the contract
    by plain loops (natural coordinates, partial tiles, per-head windows, text with padding)."""
    shape = {"canvas": [5, 7, 9], "tile": [2, 4, 4], "windows": [[3, 1, 3], [1, 2, 1]], "heads": 2, "head_dim": 64,
             "batch": 1, "text": 5, "text_padding": 2, "order": "tiled"}
    T, H, W = shape["canvas"]
    t, h, w = shape["tile"]
    n = [-(-T // t), -(-H // h), -(-W // w)]
    order = []  # natural (t, h, w) of each token in tiled order
    for a in range(n[0]):
        for b in range(n[1]):
            for c in range(n[2]):
                for x in range(a * t, min(T, (a + 1) * t)):
                    for y in range(b * h, min(H, (b + 1) * h)):
                        for z in range(c * w, min(W, (c + 1) * w)):
                            order.append((x, y, z))
    V, S = len(order), len(order) + 5
    valid = 3
    mask = torch.zeros(2, S, S, dtype=torch.bool)
    for hd, win in enumerate(shape["windows"]):
        for i in range(S):
            for j in range(S):
                if j >= V:
                    mask[hd, i, j] = j < V + valid
                elif i >= V:
                    mask[hd, i, j] = True
                else:
                    ok = True
                    for ax in range(3):
                        qt, kt, wn, nn = order[i][ax] // shape["tile"][ax], order[j][ax] // shape["tile"][ax], win[ax], n[ax]
                        s0 = 0 if wn >= nn else min(max(qt - wn // 2, 0), nn - wn)
                        ok = ok and (wn >= nn or s0 <= kt < s0 + wn)
                    mask[hd, i, j] = ok
    q, k, v = (torch.randn(1, 2, S, 64, device=dev, dtype=torch.float32) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(dev)[None])
    mask_mod, n_tok = sta_mask_mod(torch, shape, dev)
    assert n_tok == S
    bm = create_block_mask(mask_mod, B=None, H=2, Q_LEN=S, KV_LEN=S, device=dev)
    out = flex(q, k, v, block_mask=bm)
    err = ((out - ref).norm() / ref.norm()).item()
    print(f"peers: self-check of the FlexAttention STA mask against a dense mask: rel L2 {err:.2e}")
    if not err < 1e-4:
        die(f"the FlexAttention STA mask disagrees with the contract (rel L2 {err:.2e})")


def time_fn(torch, fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    runs = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        runs.append(a.elapsed_time(b))
    return runs


def time_backward(torch, forward, inputs, warmup, repeat):
    """The backward pass alone: one forward with q, k, v requiring grad, kept alive, then
    torch.autograd.grad of it with a fixed dO, timed as time_fn times the forward."""
    # A compiled backward (FlexAttention's) donates its saved buffers unless told not to, and then
    # refuses retain_graph=True: keep them, so that one forward serves every timed backward.
    torch._functorch.config.donated_buffer = False
    for x in inputs:
        x.requires_grad_(True)
    try:
        o = forward()
        d_o = torch.randn_like(o)
        return time_fn(torch, lambda: torch.autograd.grad(o, inputs, d_o, retain_graph=True), warmup, repeat)
    finally:
        for x in inputs:
            x.requires_grad_(False)
            x.grad = None


def result(w, impl, kind, runs, flops, warmup, sparsity):
    med = statistics.median(runs)
    return {"workload": w["name"], "implementation": impl, "kind": kind, "dtype": w["dtype"],
            "shape": w["shape"], "warmup": warmup, "runs_ms": runs, "ms_median": med, "ms_min": min(runs),
            "ms_max": max(runs), "spread": (max(runs) - min(runs)) / med, "flops": flops,
            "tflops": flops / med * 1e-9, "sparsity": sparsity}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads-json", required=True, help="output of `stile bench --list-workloads`")
    ap.add_argument("--workload", default="hunyuan-720p,wan-480p,wan-720p,stepvideo",
                    help="comma-separated workload names")
    ap.add_argument("--impl", default="cudnn,flash,flex", help="which peers: cudnn, flash, flex")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", required=True, help="the stile-bench/2 file to write")
    ap.add_argument("--dtype", choices=("bf16", "f16", "f32"), help="override the workloads' dtype")
    ap.add_argument("--backward", action="store_true",
                    help="also time each peer's backward pass (torch.autograd.grad of a forward kept alive; kinds "
                         "sta-backward and dense-backward, FLOPs 2.5x the forward's, FlashAttention's accounting)")
    args = ap.parse_args()
    impls = args.impl.split(",")
    for i in impls:
        if i not in ("cudnn", "flash", "flex"):
            die(f"--impl {i}: unknown (cudnn, flash, flex)")
    workloads = load_workloads(args.workloads_json, args.workload.split(","))
    if args.dtype:
        for w in workloads:
            w["dtype"] = args.dtype

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    if not torch.cuda.is_available():
        die("no CUDA device")
    dev = "cuda"
    flex = torch.compile(flex_attention)
    torch.manual_seed(1)
    if "flex" in impls:
        self_check(torch, F, create_block_mask, flex, dev)
    results = []
    for w in workloads:
        s = w["shape"]
        if s["batch"] != 1:
            die(f"{w['name']}: batch {s['batch']} is not supported here")
        S, Hh, D = w["tokens"], s["heads"], s["head_dim"]
        dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[w["dtype"]]
        q, k, v = (torch.randn(1, Hh, S, D, device=dev, dtype=dt) for _ in range(3))
        for impl in impls:
            first = len(results)
            if impl in ("cudnn", "flash"):
                backend = SDPBackend.CUDNN_ATTENTION if impl == "cudnn" else SDPBackend.FLASH_ATTENTION
                def run(backend=backend):
                    with sdpa_kernel(backend):
                        return F.scaled_dot_product_attention(q, k, v)
                try:
                    runs = time_fn(torch, run, args.warmup, args.repeat)
                except RuntimeError as e:
                    print(f"peers: {w['name']}: {impl} failed: {e}", file=sys.stderr)
                    continue
                name = "torch/cudnn-sdpa" if impl == "cudnn" else "torch/flash-sdpa"
                results.append(result(w, name, "dense", runs, w["dense_flops"], args.warmup, 0.0))
                back = None
                if args.backward:
                    try:
                        back = time_backward(torch, run, (q, k, v), args.warmup, args.repeat)
                    except RuntimeError as e:
                        print(f"peers: {w['name']}: {impl} backward failed: {e}", file=sys.stderr)
                if back:
                    results.append(result(w, name, "dense-backward", back, 2.5 * w["dense_flops"], args.warmup, 0.0))
            else:
                mask_mod, n = sta_mask_mod(torch, s, dev)
                assert n == S
                uniform = len({tuple(x) for x in s["windows"]}) == 1
                # One mask for all heads when the windows agree; compiled mask creation (S^2 pairs).
                bm = create_block_mask(mask_mod, B=None, H=None if uniform else Hh, Q_LEN=S, KV_LEN=S, device=dev,
                                       _compile=True)
                runs = time_fn(torch, lambda: flex(q, k, v, block_mask=bm), args.warmup, args.repeat)
                results.append(result(w, "torch/flex-sta", "sta", runs, w["sta_flops"], args.warmup, w["sparsity"]))
                if args.backward:
                    back = time_backward(torch, lambda: flex(q, k, v, block_mask=bm), (q, k, v), args.warmup, args.repeat)
                    results.append(result(w, "torch/flex-sta", "sta-backward", back, 2.5 * w["sta_flops"], args.warmup,
                                          w["sparsity"]))
            for r in results[first:]:
                print(f"[{w['name']}] {r['implementation']:18s} {r['kind']:14s} median {r['ms_median']:9.3f} ms "
                      f"({r['tflops']:.1f} TFLOPS)", flush=True)
        del q, k, v
        torch.cuda.empty_cache()

    props = torch.cuda.get_device_properties(0)
    driver = nvidia_driver()
    record = {
        "schema": "stile-bench/2",
        "who": {"implementation": f"torch {torch.__version__}", "version": torch.__version__, "backend": "cuda",
                "device": "cuda:0", "card": props.name, "driver": f"NVIDIA {driver}, CUDA {torch.version.cuda}",
                "description": f"{props.name}, {props.multi_processor_count} SMs"},
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": os.environ.get("STILE_COMMIT", "unknown"),
        "command": " ".join(["python3"] + sys.argv),
        "results": results,
    }
    write_record(args.out, record)


def nvidia_driver():
    """The driver version nvidia-smi reports, or "unknown"."""
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def write_record(path, record):
    """Write a JSON record atomically (a temporary file renamed over path)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
