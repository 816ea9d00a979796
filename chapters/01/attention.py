"""Causal grouped-query attention over the tokens of one sequence: no cache yet.

`Attention` is the attention *core*: it receives q, k and v already projected and rotated, and
returns the attended values. Chapter 2 swaps this class for one that keeps a KV cache, chapter 3
for one that pages it; the projections around it (model.py) never change.
"""

import torch
from torch import nn


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Each token attends to itself and every earlier token.

    q: (T, n_heads, head_dim); k, v: (T, n_kv_heads, head_dim) -> (T, n_heads, head_dim).
    Grouped-query attention: n_heads / n_kv_heads query heads share one K/V head, query head h
    using K/V head h // group. Scores and softmax in float32.
    """
    T, n_heads, _ = q.shape
    group = n_heads // k.shape[1]
    k = k.repeat_interleave(group, dim=1)  # (T, n_heads, head_dim): head h sees K/V head h // group
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * scale  # (n_heads, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))  # token i may not look at tokens after i
    probs = scores.softmax(dim=-1)
    out = torch.einsum("hqk,khd->qhd", probs, v.float())  # (T, n_heads, head_dim)
    return out.to(q.dtype)


class Attention(nn.Module):
    def __init__(self, num_heads: int, head_dim: int, scale: float, num_kv_heads: int):
        super().__init__()
        self.num_heads, self.head_dim, self.scale, self.num_kv_heads = num_heads, head_dim, scale, num_kv_heads

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return causal_attention(q, k, v, self.scale)
