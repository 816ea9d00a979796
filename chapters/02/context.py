"""Context: what the attention layers need to know about the batch, beside q, k and v.

The model's forward takes only (input_ids, positions) and every decoder layer calls the same
attention core, so the batch's layout travels beside the model in one module-level object, set
before each forward pass (nano-vllm's and vLLM's set_context/get_context). For a batch of B
sequences whose new tokens sit back to back in one flat tensor of N tokens:

    cu_seqlens_q  (B+1,)  sequence i's new tokens are rows cu_seqlens_q[i]:cu_seqlens_q[i+1]
    context_lens  (B,)    sequence i's length once this step's K/V are stored in the cache
    cache_rows    (B,)    the cache row each sequence owns (chapter 2's contiguous cache only)
"""

from dataclasses import dataclass

import torch


@dataclass
class Context:
    cu_seqlens_q: torch.Tensor | None = None
    context_lens: torch.Tensor | None = None
    cache_rows: torch.Tensor | None = None


_CONTEXT = Context()


def set_context(context: Context) -> None:
    global _CONTEXT
    _CONTEXT = context


def get_context() -> Context:
    return _CONTEXT


def reset_context() -> None:
    set_context(Context())
