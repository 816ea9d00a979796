"""Chapter 2's Context, with the two fields paged attention needs (vLLM's names):

    slot_mapping  (N,)            where each new token's K/V goes in the pool:
                                  block_table[pos // block_size] * block_size + pos % block_size
    block_tables  (B, max_blocks) each sequence's blocks, padded with -1 to the longest table

`cache_rows` stays None: a sequence's place in the cache is its block table now. The same
set_context/get_context as chapter 2 carry it to the attention layers.
"""

from dataclasses import dataclass

import torch

from ch02 import context
from ch02.context import get_context, reset_context, set_context

__all__ = ["Context", "get_context", "reset_context", "set_context"]


@dataclass
class Context(context.Context):
    slot_mapping: torch.Tensor | None = None
    block_tables: torch.Tensor | None = None
