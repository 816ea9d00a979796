"""The batch's metadata, set once per forward pass and read by every attention layer.

nano-vllm's set_context/get_context: the model's forward takes only (input_ids, positions), so
the paged-attention details travel beside it in one module-level `Context`. Names are vLLM's:

    slot_mapping   (N,) int64   where token n's K/V goes: block_id * block_size + offset; -1 skips
    cu_seqlens_q   (B+1,) int32 prefix sums of the tokens each sequence computes this step
    context_lens   (B,) int32   tokens in the cache per sequence once this step's are stored
    block_tables   (B, max_blocks) int32  each sequence's blocks, padded with -1
"""

from dataclasses import dataclass

import torch


@dataclass
class Context:
    is_prefill: bool = False  # False: every sequence computes exactly one token (a decode step)
    cu_seqlens_q: torch.Tensor | None = None
    max_seqlen_q: int = 0
    slot_mapping: torch.Tensor | None = None
    context_lens: torch.Tensor | None = None
    block_tables: torch.Tensor | None = None
    no_cache_reads: bool = False  # a prefill whose queries see only their own tokens (no hits, no chunks)


_CONTEXT = Context()


def get_context() -> Context:
    return _CONTEXT


def set_context(is_prefill, cu_seqlens_q=None, max_seqlen_q=0, slot_mapping=None, context_lens=None,
                block_tables=None, no_cache_reads=False) -> None:
    global _CONTEXT
    _CONTEXT = Context(is_prefill, cu_seqlens_q, max_seqlen_q, slot_mapping, context_lens, block_tables, no_cache_reads)


def reset_context() -> None:
    global _CONTEXT
    _CONTEXT = Context()
