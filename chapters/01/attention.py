"""Causal grouped-query attention over the tokens of one sequence: no cache yet.

`Attention` is the attention *core*: it receives q, k and v already projected and rotated, and
returns the attended values. Chapter 2 swaps this class for one that keeps a KV cache, chapter 3
for one that pages it; the projections around it (model.py) never change.
"""

import torch
from torch import nn

from ch01.solutions import causal_attention  # exercise 1.3: the answer key


class Attention(nn.Module):
    def __init__(self, num_heads: int, head_dim: int, scale: float, num_kv_heads: int):
        super().__init__()
        self.num_heads, self.head_dim, self.scale, self.num_kv_heads = num_heads, head_dim, scale, num_kv_heads

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return causal_attention(q, k, v, self.scale)
