"""Chapter 3 — paged KV blocks: one pool of fixed-size blocks per layer, shared by all sequences.

Chapter 2 reserved a row of max_model_len slots per sequence; here a sequence holds only the
blocks its tokens fill (a block table maps its block numbers to pool blocks), takes one more when
it crosses a block boundary, and gives them all back when it finishes. Read block_manager.py
first, then model_runner.py (slot_mapping), attention.py (store by slot, gather by block table)
and llm.py (when blocks are taken and freed, and what the pool costs vs chapter 2's rows).
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch01.sampling_params import SamplingParams
from ch03.attention import Attention, gather_kv, store_kvcache
from ch03.block_manager import BlockManager
from ch03.context import Context, get_context, reset_context, set_context
from ch03.llm import LLM, PoolUsage
from ch03.model_runner import ModelRunner, compute_slot_mapping
from ch03.sequence import Sequence

__all__ = [
    "LLM", "SamplingParams", "Sequence", "BlockManager", "ModelRunner", "Attention", "PoolUsage", "Context",
    "compute_slot_mapping", "store_kvcache", "gather_kv", "get_context", "set_context", "reset_context",
]
