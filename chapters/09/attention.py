"""Attention for chapter 9: a step of one query per sequence (a decode step, and every step a
CUDA graph replays) stores through the store kernel and attends with the paged decode kernel,
reading the pool in place; a step in which some sequence computes several tokens (a prompt, or
a chunk of one) keeps chapter 3's gather and attention, with the store kernel."""

import torch

from ch03 import attention
from ch03.context import get_context
from ch09.kernels import paged_decode_attention, store_kvcache


class Attention(attention.Attention):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (N, n_heads, head_dim); k, v: (N, n_kv_heads, head_dim) -> (N, n_heads, head_dim)."""
        ctx = get_context()
        if q.shape[0] != ctx.context_lens.shape[0]:  # N tokens for B sequences, N > B: some compute several
            return super().forward(q, k, v)  # chapter 3's loop, through the store below
        self.store(k, v, ctx.slot_mapping)  # first: each query sees its own key
        context_lens = ctx.context_lens.to(q.device)  # a no-op in the engine: its prepare put them there
        return self.decode(q, ctx.block_tables, context_lens)

    def store(self, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        store_kvcache(k, v, self.k_cache, self.v_cache, slot_mapping)  # the store kernel

    def decode(self, q: torch.Tensor, block_tables: torch.Tensor, context_lens: torch.Tensor) -> torch.Tensor:
        """One query per sequence against the pool, read in place by the decode kernel."""
        return paged_decode_attention(q, self.k_cache, self.v_cache, block_tables, context_lens, self.scale)
