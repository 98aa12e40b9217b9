#!/usr/bin/env python3
"""stile.attention from PyTorch on a CUDA GPU, in one process: its output against FlexAttention-STA on
the same inputs (natural token order), its time against `stile bench` for the same problem, the
Python overhead per call, and the same under torch.compile(fullgraph=True). Writes a stile-python/1
record (card, driver, date, command, commit, every number).

    STILE_LIBRARY=build-gpu/libstile.so PYTHONPATH=python python3 bench/python_attention.py \
        --stile build-gpu/tools/stile --workload hunyuan-720p --out results.json

Times: stile.attention and FlexAttention per call between CUDA events (median of --repeat after
--warmup); `stile bench` the CLI's median on the same card, run from here before and after.
Python overhead: host time of one stile.attention call (it enqueues on torch's current stream and
returns) minus that of the bare stile_plan_execute call through ctypes with a prepared stile_io,
measured after the queue drained (host_us) and back to back while the GPU is busy (queued_us).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def die(msg):
    print(f"python_attention: {msg}", file=sys.stderr)
    sys.exit(2)


def stile_bench(exe, workload, dtype, repeat, warmup):
    """`stile bench` for the workload on cuda:0: its record for the STA result."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.json")
        cmd = [exe, "bench", "--device", "cuda:0", "--workload", workload, "--dtype", dtype, "--no-full", "--repeat",
               str(repeat), "--warmup", str(warmup), "--json", path]
        r = subprocess.run(cmd, capture_output=True, text=True)
        print(r.stdout, end="")
        if r.returncode != 0:
            die(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
        rec = json.load(open(path))
    res = [x for x in rec["results"] if x.get("kind") == "sta"]
    if not res:
        die(f"stile bench wrote no STA result: {rec['results']}")
    return {"command": " ".join(cmd[:1] + cmd[1:-2]), "ms_median": res[0]["ms_median"], "runs_ms": res[0]["runs_ms"],
            "who": rec.get("who")}


def host_us(torch, fn, n):
    """Host time of one call in microseconds, median over n calls, each after the queue has drained."""
    out = []
    for _ in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e3)
    torch.cuda.synchronize()
    return statistics.median(out)


def queued_us(torch, fn, rounds, per_round=10):
    """Host time of one call in microseconds while the GPU is busy with the earlier ones: median over
    rounds of per_round back-to-back calls (what a model's loop pays)."""
    out = []
    for _ in range(rounds):
        torch.cuda.synchronize()
        fn()  # the GPU is busy from here on
        t0 = time.perf_counter_ns()
        for _ in range(per_round):
            fn()
        out.append((time.perf_counter_ns() - t0) / 1e3 / per_round)
    torch.cuda.synchronize()
    return statistics.median(out)


def profile_top(fn, n, lines=14):
    """The functions that take the host time of n calls (cProfile, by own time)."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(lines)
    return buf.getvalue()


def natural_to_tiled(torch, canvas, tile, device):
    """perm[i] = natural index of the i-th token in tiled order."""
    T, H, W = canvas
    t, h, w = tile
    idx = torch.arange(T * H * W, device=device, dtype=torch.int64)
    ct, ch, cw = idx // (H * W), (idx // W) % H, idx % W
    g = [-(-T // t), -(-H // h), -(-W // w)]
    tile_index = ((ct // t) * g[1] + ch // h) * g[2] + cw // w
    local = ((ct % t) * h + ch % h) * w + cw % w
    return torch.argsort(tile_index * (t * h * w) + local)


def nmse(torch, got, ref):
    g, r = got.double(), ref.double()
    return ((g - r) ** 2).sum().item() / (r ** 2).sum().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stile", required=True, help="the stile CLI of the same build")
    ap.add_argument("--workload", default="hunyuan-720p")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "f16"))
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    import stile

    sys.path.insert(0, os.path.join(HERE, "peers"))
    import peers

    if not torch.cuda.is_available():
        die("no CUDA device")
    wl = json.loads(subprocess.run([args.stile, "bench", "--list-workloads"], check=True, capture_output=True,
                                   text=True).stdout)
    w = next((x for x in wl if x["name"] == args.workload), None) or die(f"unknown workload {args.workload}")
    s = w["shape"]
    if s["batch"] != 1 or s["order"] != "natural":
        die("batch 1, natural order workloads only")
    canvas, tile, H, D, text, pad = tuple(s["canvas"]), tuple(s["tile"]), s["heads"], s["head_dim"], s["text"], s["text_padding"]
    windows = [tuple(x) for x in s["windows"]]
    window = windows[0] if len(windows) == 1 else windows
    S = w["tokens"]
    dt = {"bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    print(f"stile {stile.library_version()} from {stile._capi.library_path}; torch {torch.__version__}; "
          f"{torch.cuda.get_device_name(0)}", flush=True)

    before = stile_bench(args.stile, args.workload, args.dtype, args.repeat, args.warmup)

    torch.manual_seed(1)
    q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=dt) for _ in range(3))  # [B, S, H, D], natural order
    kw = dict(canvas=canvas, tile=tile, window=window, text=text, text_padding=pad)

    def eager():
        return stile.attention(q, k, v, **kw)

    o = eager()
    torch.cuda.synchronize()
    eager_runs = peers.time_fn(torch, eager, args.warmup, args.repeat)
    out = torch.empty_like(q)

    def eager_out():
        return stile.attention(q, k, v, out=out, **kw)

    eager_out_runs = peers.time_fn(torch, eager_out, args.warmup, args.repeat)

    # the bare C call: the cached plan, a prepared stile_io, torch's stream
    import ctypes

    C = stile._capi
    plan = next(p for (dev, key), p in stile._runtime._plans.items() if dev == "cuda:0")
    io = C.IO()
    io.struct_size = ctypes.sizeof(C.IO)
    code = {torch.bfloat16: C.DTYPE_BF16, torch.float16: C.DTYPE_F16}[dt]
    for f, x in (("q", q), ("k", k), ("v", v), ("o", out)):
        t = getattr(io, f)
        t.data, t.bytes, t.dtype = x.data_ptr(), x.numel() * x.element_size(), code
    io.stream = torch.cuda.current_stream().cuda_stream or 1

    def bare():
        st = C.stile_plan_execute(plan.handle, ctypes.byref(io))
        if st != C.OK:
            die(f"stile_plan_execute: {st}")

    bare_runs = peers.time_fn(torch, bare, args.warmup, args.repeat)
    n_host = 100
    host_eager, host_eager_out, host_bare = (host_us(torch, f, n_host) for f in (eager, eager_out, bare))
    q_eager, q_eager_out, q_bare = (queued_us(torch, f, 10) for f in (eager, eager_out, bare))

    # torch.compile(fullgraph=True): the custom op in the graph
    torch._dynamo.reset()
    compiled = torch.compile(lambda a, b, c: stile.attention(a, b, c, **kw), fullgraph=True)
    oc = compiled(q, k, v)
    torch.cuda.synchronize()
    compiled_equal = bool(torch.equal(oc, o))
    compiled_runs = peers.time_fn(torch, lambda: compiled(q, k, v), args.warmup, args.repeat)
    host_compiled = host_us(torch, lambda: compiled(q, k, v), n_host)
    q_compiled = queued_us(torch, lambda: compiled(q, k, v), 10)
    print("host profile of 20 compiled calls:\n" + profile_top(lambda: compiled(q, k, v), 20))
    torch.cuda.synchronize()

    # FlexAttention-STA on the same inputs: tokens to tiled order, the contract's mask, back to natural
    perm = torch.cat([natural_to_tiled(torch, canvas, tile, "cuda"), torch.arange(canvas[0] * canvas[1] * canvas[2], S, device="cuda")])
    qt, kt, vt = (x.transpose(1, 2)[:, :, perm].contiguous() for x in (q, k, v))  # [B, H, S, D], tiled
    mask_mod, n = peers.sta_mask_mod(torch, s, "cuda")
    assert n == S
    bm = create_block_mask(mask_mod, B=None, H=None if len(set(windows)) == 1 else H, Q_LEN=S, KV_LEN=S, device="cuda",
                           _compile=True)
    flex = torch.compile(flex_attention)
    ot = flex(qt, kt, vt, block_mask=bm)
    of = torch.empty_like(ot)
    of[:, :, perm] = ot
    of = of.transpose(1, 2)  # [B, S, H, D], natural
    err = nmse(torch, o, of)
    flex_runs = peers.time_fn(torch, lambda: flex(qt, kt, vt, block_mask=bm), args.warmup, args.repeat)

    after = stile_bench(args.stile, args.workload, args.dtype, args.repeat, args.warmup)

    med = statistics.median
    bench_ms = (before["ms_median"] + after["ms_median"]) / 2
    r = {
        "nmse_stile_vs_flex": err,
        "compiled_output_equals_eager": compiled_equal,
        "stile_bench_before_ms": before["ms_median"], "stile_bench_after_ms": after["ms_median"],
        "stile_attention_ms": med(eager_runs), "stile_attention_out_ms": med(eager_out_runs),
        "bare_execute_ms": med(bare_runs), "compiled_ms": med(compiled_runs), "flex_sta_ms": med(flex_runs),
        "ratio_attention_to_bench": med(eager_runs) / bench_ms, "ratio_compiled_to_bench": med(compiled_runs) / bench_ms,
        "host_us_attention": host_eager, "host_us_attention_out": host_eager_out, "host_us_bare_execute": host_bare,
        "host_us_compiled": host_compiled,
        "python_overhead_us": host_eager - host_bare, "python_overhead_out_us": host_eager_out - host_bare,
        "compiled_overhead_us": host_compiled - host_bare,
        "queued_us_attention": q_eager, "queued_us_attention_out": q_eager_out, "queued_us_bare_execute": q_bare,
        "queued_us_compiled": q_compiled, "queued_python_overhead_us": q_eager - q_bare,
        "queued_python_overhead_out_us": q_eager_out - q_bare, "queued_compiled_overhead_us": q_compiled - q_bare,
        "runs_ms": {"stile_attention": eager_runs, "stile_attention_out": eager_out_runs, "bare_execute": bare_runs,
                    "compiled": compiled_runs, "flex_sta": flex_runs, "stile_bench_before": before["runs_ms"],
                    "stile_bench_after": after["runs_ms"]},
    }
    for key in ("nmse_stile_vs_flex", "stile_bench_before_ms", "stile_attention_ms", "stile_attention_out_ms", "bare_execute_ms",
                "compiled_ms", "flex_sta_ms", "stile_bench_after_ms", "ratio_attention_to_bench", "ratio_compiled_to_bench",
                "host_us_attention", "host_us_attention_out", "host_us_bare_execute", "host_us_compiled", "python_overhead_us",
                "python_overhead_out_us", "compiled_overhead_us", "queued_us_attention", "queued_us_attention_out",
                "queued_us_bare_execute", "queued_us_compiled", "queued_python_overhead_us", "queued_python_overhead_out_us",
                "queued_compiled_overhead_us", "compiled_output_equals_eager"):
        print(f"{key:32s} {r[key]:.6g}" if not isinstance(r[key], bool) else f"{key:32s} {r[key]}")
    props = torch.cuda.get_device_properties(0)
    driver = peers.nvidia_driver()
    record = {
        "schema": "stile-python/1",
        "card": props.name, "driver": f"NVIDIA {driver}, CUDA {torch.version.cuda}", "torch": torch.__version__,
        "stile": stile.library_version(),
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": os.environ.get("STILE_COMMIT", "unknown"),
        "command": " ".join(["python3"] + sys.argv),
        "bench_command": before["command"],
        "workload": w, "dtype": args.dtype, "repeat": args.repeat, "warmup": args.warmup, "host_calls": n_host,
        "results": r,
    }
    peers.write_record(args.out, record)


if __name__ == "__main__":
    main()
