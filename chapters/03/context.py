"""Chapter 3's Context: chapter 2's batch layout, with the two fields paged attention needs in place
of chapter 2's `cache_rows` (vLLM's names):

    cu_seqlens_q  (B+1,)          as in chapter 2: where each sequence's new tokens are in the batch
    context_lens  (B,)            as in chapter 2: each sequence's length once this step is stored
    slot_mapping  (N,)            where each new token's K/V goes in the pool:
                                  block_table[pos // block_size] * block_size + pos % block_size
    block_tables  (B, max_blocks) each sequence's blocks, padded with -1 to the longest table

A sequence's place in the cache is its block table now, so chapter 2's row has no field here: this
is a new class rather than a subclass of chapter 2's, which would carry `cache_rows` along unused.
The same set_context/get_context as chapter 2 carry it to the attention layers.
"""

from dataclasses import dataclass

import torch

from ch02.context import get_context, reset_context, set_context

__all__ = ["Context", "get_context", "reset_context", "set_context"]


@dataclass
class Context:
    cu_seqlens_q: torch.Tensor | None = None
    context_lens: torch.Tensor | None = None
    slot_mapping: torch.Tensor | None = None
    block_tables: torch.Tensor | None = None
