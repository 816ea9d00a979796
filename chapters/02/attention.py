"""Attention with a KV cache: store the new tokens' keys and values, then attend over the cache.

A token's key and value depend only on the token and its position, never on the tokens after
it, so once computed they are valid for the rest of the generation. Chapter 1 recomputed them
for every token at every step; here each layer keeps them in a cache and each step computes only
the new tokens: the whole prompt in the first step (prefill), then one token (decode).

The cache is contiguous: every sequence owns one row of `max_model_len` slots per layer,

    k_cache, v_cache  (max_num_seqs, max_model_len, n_kv_heads, head_dim)

and a sequence's token at position p lives in slot p of its row. The projections and the
rotary embedding (ch01/model.py) do not change: the positions they need come from the model
runner, which knows how many tokens each sequence has cached.
"""

import torch

from ch01 import attention as ch01_attention
from ch02 import solutions
from ch02.solutions import cached_attention  # noqa: F401 (exercise 2.1: the answer key)


class Attention(ch01_attention.Attention):
    """Chapter 1's attention core with a cache: same constructor, a different forward.

    The model runner hands every layer its views of the cache after building the model."""

    k_cache = v_cache = torch.tensor([])  # (max_num_seqs, max_model_len, n_kv_heads, head_dim) once allocated

    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    forward = solutions.attention_forward  # exercise 2.2 (solutions.py)
