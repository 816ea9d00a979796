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
    """Chapter 2's attention core over a paged pool: store by slot, gather by block table.

    `store` and `gather` are the two places that touch the pool: chapter 9 replaces the store with
    a kernel and adds a decode path, chapter 10 stores and gathers FP8 codes, and this loop stays."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (N, n_heads, head_dim); k, v: (N, n_kv_heads, head_dim) -> (N, n_heads, head_dim)."""
        ctx = get_context()
        self.store(k, v, ctx.slot_mapping)  # first, as in chapter 2
        cu = ctx.cu_seqlens_q.tolist()
        out = torch.empty_like(q)
        for i, context_len in enumerate(ctx.context_lens.tolist()):
            s, e = cu[i], cu[i + 1]
            k_seq, v_seq = self.gather(ctx.block_tables[i], context_len)  # (context_len, n_kv_heads, head_dim)
            out[s:e] = cached_attention(q[s:e].to(k_seq.dtype), k_seq, v_seq, context_len, self.scale)
        return out

    def store(self, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        """This step's keys and values into their slots."""
        store_kvcache(k, v, self.k_cache, self.v_cache, slot_mapping)

    def gather(self, block_table: torch.Tensor, context_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One sequence's keys and values, read back in position order through its block table."""
        return gather_kv(self.k_cache, block_table, context_len), gather_kv(self.v_cache, block_table, context_len)
