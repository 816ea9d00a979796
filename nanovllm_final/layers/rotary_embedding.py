"""Rotary position embedding (RoPE) with a precomputed cos/sin table.

Pair i of each head (dims i and i + head_dim/2) is rotated by angle position * theta^(-2i/d):
q.k then depends only on the distance between two tokens. The table is built once for every
position up to max_position, in float32 as transformers computes it, and indexed per token.
"""

import torch
from torch import nn


def apply_rotary_emb(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (T, n_heads, head_dim); cos, sin: (T, 1, head_dim/2)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, max_position: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.arange(max_position, dtype=torch.float32)[:, None] * inv_freq[None, :]  # (P, d/2)
        cache = torch.cat([freqs.cos(), freqs.sin()], dim=-1)[:, None, :]  # (P, 1, d): cos | sin
        self.register_buffer("cos_sin_cache", cache, persistent=False)

    def forward(self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor):
        cos, sin = self.cos_sin_cache[positions].chunk(2, dim=-1)  # (T, 1, d/2) each
        return apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)
