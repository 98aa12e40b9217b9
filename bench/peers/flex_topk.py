#!/usr/bin/env python3
"""FlexAttention with caller-chosen key tiles: the block mask of `stile bench --sparsity topk:K` (the
same seeded lists: K distinct tiles per (batch, head, query tile), a partial Fisher-Yates shuffle
driven by the same xorshift64), tokens in tiled order padded to whole tiles, one Flex block per tile.
Prints the median time and writes a stile-bench/2 result list (docs/bench-schema.md).

    python3 bench/peers/flex_topk.py --canvas 21x30x52 --tile 4x4x4 --heads 12 --topk 78 --out flex.json
"""
import argparse
import json
import statistics
import sys

from peers import time_fn  # bench/peers/peers.py: CUDA-event timing after warm-up


def lists(canvas, tile, heads, k, seed, batch=1):
    n = [-(-c // t) for c, t in zip(canvas, tile)]
    tiles = n[0] * n[1] * n[2]
    perm = list(range(tiles))
    s = (seed * 0x9E3779B97F4A7C15 + 1) & (2**64 - 1)
    out = []
    for _ in range(batch * heads * tiles):
        row = []
        for i in range(k):
            s ^= (s << 13) & (2**64 - 1)
            s ^= s >> 7
            s ^= (s << 17) & (2**64 - 1)
            j = i + s % (tiles - i)
            perm[i], perm[j] = perm[j], perm[i]
            row.append(perm[i])
        out.append(row)
    return out, tiles


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--canvas", required=True)
    ap.add_argument("--tile", required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--topk", type=int, required=True)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1, help="stile bench's --seed (its key tiles use seed + 3)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    import torch
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    canvas = [int(x) for x in a.canvas.split("x")]
    tile = [int(x) for x in a.tile.split("x")]
    rows, tiles = lists(canvas, tile, a.heads, a.topk, a.seed + 3)
    bs = tile[0] * tile[1] * tile[2]
    S = tiles * bs  # padded to whole tiles
    dev = "cuda"
    # the lists as Flex's block tables: kv_indices is [B, H, query blocks, key blocks] (its last extent, times
    # the block size, is the key length Flex infers), the first K entries of each row the listed tiles, sorted;
    # every listed block is whole, so they go in as full blocks (no mask_mod inside them)
    idx = torch.zeros(1, a.heads, tiles, tiles, dtype=torch.int32)
    idx[..., :a.topk] = torch.sort(torch.tensor(rows, dtype=torch.int32).view(1, a.heads, tiles, a.topk), dim=-1).values
    idx = idx.to(dev)
    num = torch.full((1, a.heads, tiles), a.topk, dtype=torch.int32, device=dev)
    flex = torch.compile(flex_attention, dynamic=False)
    q, k, v = (torch.randn(1, a.heads, S, a.head_dim, device=dev, dtype=torch.bfloat16) for _ in range(3))
    ko = {"BLOCK_M": bs, "BLOCK_N": bs}  # Flex's tiles must divide the mask's blocks (its default on Hopper is 128)
    try:
        bm = BlockMask.from_kv_blocks(torch.zeros_like(num), idx, num, idx, BLOCK_SIZE=bs)
        ms = time_fn(torch, lambda: flex(q, k, v, block_mask=bm, kernel_options=ko), a.warmup, a.repeat)
    except Exception as e:  # noqa: BLE001 - report and try the lists as partial blocks
        print(f"flex_topk: as full blocks: {type(e).__name__}: {str(e)[:300]}; as partial blocks instead")
        bm = BlockMask.from_kv_blocks(num, idx, BLOCK_SIZE=bs)
        ms = time_fn(torch, lambda: flex(q, k, v, block_mask=bm, kernel_options=ko), a.warmup, a.repeat)
    med = statistics.median(ms)
    flops = 4.0 * a.head_dim * a.heads * tiles * a.topk * bs * bs
    print(f"flex topk:{a.topk} {a.canvas} tile {a.tile} padded to {S} tokens: median {med:.3f} ms, {flops / med * 1e-9:.1f} TFLOPS "
          f"(torch {torch.__version__}, {torch.cuda.get_device_name()})")
    if a.out:
        with open(a.out, "w") as f:
            json.dump([{"workload": f"topk{a.topk}-{a.canvas}-{a.tile}", "implementation": "flex", "kind": "sta-topk",
                        "dtype": "bf16", "runs_ms": ms, "ms_median": med, "flops": flops, "tflops": flops / med * 1e-9,
                        "padded_tokens": S}], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
