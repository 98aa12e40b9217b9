"""A transformer-shaped block around stile.attention, shared by test_torch.py and test_autograd.py
(import it after pytest.importorskip("torch")): projections around the attention, [B, S, H*D] in and
out, the LSE's mean added to the output when use_lse."""

import torch

import stile


class AttentionBlock(torch.nn.Module):
    def __init__(self, H, D, canvas, tile, use_lse=True):
        super().__init__()
        self.H, self.D, self.canvas, self.tile, self.use_lse = H, D, canvas, tile, use_lse
        self.qkv = torch.nn.Linear(H * D, 3 * H * D, bias=False)
        self.proj = torch.nn.Linear(H * D, H * D, bias=False)

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.H, self.D).unbind(2)
        o, lse = stile.attention(q, k, v, canvas=self.canvas, tile=self.tile, window=[(1, 1, 1), (2, 2, 2)], return_lse=True)
        y = self.proj(torch.relu(o).reshape(B, N, self.H * self.D))
        return y + lse.mean() if self.use_lse else y
