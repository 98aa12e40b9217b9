#!/usr/bin/env python3
"""A HunyuanVideo-shaped attention layer (MM-DiT: video and text tokens in one sequence, per-head RMS
norm of q and k, 24 heads of 128) with sliding tile attention through stile.attention, on whatever
device is here: a CUDA GPU through torch if there is one, else the CPU.

    python3 examples/hunyuan_attention.py            # 720p (30x48x80 latents) on a GPU; a small canvas on the CPU
    python3 examples/hunyuan_attention.py --canvas 6x16x16 --heads 4 --check

--check compares the layer's attention with PyTorch's scaled_dot_product_attention under the same mask,
written out token by token (small canvases only).
"""
import argparse
import time

import torch

import stile


class STAAttention(torch.nn.Module):
    """x [B, video + text, dim] -> [B, video + text, dim]; tokens in the model's natural order."""

    def __init__(self, dim, heads, canvas, tile=(6, 8, 8), window=(3, 3, 3), text=0):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.canvas, self.tile, self.window, self.text = canvas, tile, window, text
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.q_norm = torch.nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = torch.nn.RMSNorm(self.head_dim, eps=1e-6)
        self.proj = torch.nn.Linear(dim, dim)

    def attention_inputs(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).unbind(2)  # [B, N, H, D] views, no copies
        return self.q_norm(q), self.k_norm(k), v

    def forward(self, x, text_padding=0):
        q, k, v = self.attention_inputs(x)
        o = stile.attention(q, k, v, canvas=self.canvas, tile=self.tile, window=self.window, text=self.text,
                            text_padding=text_padding)
        return self.proj(o.flatten(2))


def contract_mask(canvas, tile, window, text, text_padding, device):
    """[S, S] bool from docs/contract.md, for --check."""
    T, H, W = canvas
    idx = torch.arange(T * H * W, device=device)
    coords = [idx // (H * W), (idx // W) % H, idx % W]
    video = T * H * W
    S = video + text
    m = torch.zeros(S, S, dtype=torch.bool, device=device)
    vv = torch.ones(video, video, dtype=torch.bool, device=device)
    for a in range(3):
        n = -(-canvas[a] // tile[a])
        w = min(window[a], n)
        t = coords[a] // tile[a]
        start = (t - window[a] // 2).clamp(0, n - w)
        vv &= (t[None, :] >= start[:, None]) & (t[None, :] < start[:, None] + w)
    m[:video, :video] = vv
    m[:, video:S - text_padding] = True
    m[video:, :video] = True
    return m


def main():
    gpu = torch.cuda.is_available() and any(d["name"] == "cuda:0" and "unavailable" not in d for d in stile.devices())
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--canvas", default="30x48x80" if gpu else "6x24x40", help="latent T x H x W")
    ap.add_argument("--heads", type=int, default=24 if gpu else 4)
    ap.add_argument("--text", type=int, default=256 if gpu else 32, help="text token slots after the video tokens")
    ap.add_argument("--text-padding", type=int, default=40 if gpu else 5)
    ap.add_argument("--window", default="3x3x3")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    canvas = tuple(int(x) for x in args.canvas.split("x"))
    window = tuple(int(x) for x in args.window.split("x"))
    device, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)

    torch.manual_seed(0)
    layer = STAAttention(args.heads * 128, args.heads, canvas, window=window, text=args.text).to(device, dtype).eval()
    S = canvas[0] * canvas[1] * canvas[2] + args.text
    x = torch.randn(1, S, args.heads * 128, device=device, dtype=dtype)
    print(f"stile {stile.library_version()}; tensors on {device} ({dtype}); {S} tokens, {args.heads} heads of 128, "
          f"window {args.window}")
    with torch.no_grad():
        y = layer(x, text_padding=args.text_padding)  # plans once (cached for later calls)
        if gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(3):
            y = layer(x, text_padding=args.text_padding)
        if gpu:
            torch.cuda.synchronize()
        print(f"layer: {(time.perf_counter() - t0) / 3 * 1e3:.1f} ms per call, output {tuple(y.shape)}")
        if args.check:
            q, k, v = layer.attention_inputs(x)
            o = stile.attention(q, k, v, canvas=canvas, tile=layer.tile, window=window, text=args.text,
                                text_padding=args.text_padding).float()
            mask = contract_mask(canvas, layer.tile, window, args.text, args.text_padding, device)
            ref = torch.nn.functional.scaled_dot_product_attention(*(t.float().transpose(1, 2) for t in (q, k, v)),
                                                                   attn_mask=mask).transpose(1, 2)
            err = ((o - ref).norm() / ref.norm()).item()
            print(f"check against SDPA with the contract's mask: relative L2 error {err:.2e}")
            if not err < (1e-2 if dtype == torch.bfloat16 else 1e-5):
                raise SystemExit("check FAILED")


if __name__ == "__main__":
    main()
