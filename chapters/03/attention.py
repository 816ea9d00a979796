"""Paged attention: K/V live in one pool of blocks per layer, shared by every sequence.

    k_cache, v_cache  (num_blocks, block_size, n_kv_heads, head_dim)

Seen as one long array of num_blocks * block_size slots, slot s is block s // block_size at
offset s % block_size. Each step:

    1. store   every new token's K/V goes to its slot (slot_mapping), in one indexed write
    2. gather  each sequence's K/V, read back in order through its block table
    3. attend  chapter 2's cached_attention, unchanged

The gather copies K/V into a contiguous tensor to keep the attention code of chapter 2; real
paged-attention kernels (chapter 9) read the blocks in place instead.
"""

import torch

from ch02 import attention
from ch02.attention import cached_attention
from ch03.context import get_context
from ch03.solutions import gather_kv  # exercise 3.5: the answer key


def store_kvcache(k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slot_mapping: torch.Tensor) -> None:
    """Write k, v (N, n_kv_heads, head_dim) to the pool's slots slot_mapping (N,)."""
    num_blocks, block_size, n_kv_heads, head_dim = k_cache.shape
    k_cache.view(num_blocks * block_size, n_kv_heads, head_dim)[slot_mapping] = k  # (slots, n_kv_heads, head_dim)
    v_cache.view(num_blocks * block_size, n_kv_heads, head_dim)[slot_mapping] = v


class Attention(attention.Attention):
    """Chapter 2's attention core over a paged pool: store by slot, gather by block table."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (N, n_heads, head_dim); k, v: (N, n_kv_heads, head_dim) -> (N, n_heads, head_dim)."""
        ctx = get_context()
        store_kvcache(k, v, self.k_cache, self.v_cache, ctx.slot_mapping)  # first, as in chapter 2
        cu = ctx.cu_seqlens_q.tolist()
        out = torch.empty_like(q)
        for i, context_len in enumerate(ctx.context_lens.tolist()):
            s, e = cu[i], cu[i + 1]
            k_seq = gather_kv(self.k_cache, ctx.block_tables[i], context_len)  # (context_len, n_kv_heads, head_dim)
            v_seq = gather_kv(self.v_cache, ctx.block_tables[i], context_len)
            out[s:e] = cached_attention(q[s:e], k_seq, v_seq, context_len, self.scale)
        return out
