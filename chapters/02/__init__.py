"""Chapter 2 — KV cache: keep every past token's keys and values, compute each new token once.

Chapter 1 ran the whole sequence through the model for every new token; here each attention
layer stores K and V in a cache preallocated to `max_model_len` per sequence, so a step computes
only the prompt (prefill) or one token (decode). Read attention.py (store, then attend over the
cache), then model_runner.py (which tokens each step computes, at which positions) and llm.py
(static batches and the cache's cost: slots reserved vs used). sequence.py and context.py are
the small records they pass around.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch01.sampling_params import SamplingParams
from ch02.attention import Attention, cached_attention
from ch02.context import Context, get_context, reset_context, set_context
from ch02.llm import LLM, CacheUsage
from ch02.model_runner import ModelRunner, prepare_inputs
from ch02.sequence import RowSequence, Sequence

__all__ = [
    "LLM", "SamplingParams", "Sequence", "RowSequence", "ModelRunner", "Attention", "CacheUsage", "Context",
    "cached_attention", "prepare_inputs", "get_context", "set_context", "reset_context",
]
