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
from ch02.context import get_context


def cached_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, context_len: int, scale: float) -> torch.Tensor:
    """The new tokens of one sequence attend over its cached keys and values.

    q: (n, n_heads, head_dim), the queries of the sequence's last n tokens, at positions
    context_len - n .. context_len - 1. k_cache, v_cache: (>= context_len, n_kv_heads, head_dim),
    the sequence's cache with those n tokens already stored. Query j may see positions
    0 .. context_len - n + j: the whole past, and the new tokens up to itself. With n = 1 (decode)
    nothing is masked; with n = context_len (a prefill from an empty cache) this is chapter 1's
    causal mask. Returns (n, n_heads, head_dim).
    """
    n, n_heads, _ = q.shape
    k, v = k_cache[:context_len], v_cache[:context_len]  # (L, n_kv_heads, head_dim); slots past L are empty
    group = n_heads // k.shape[1]
    k = k.repeat_interleave(group, dim=1)  # (L, n_heads, head_dim): head h sees K/V head h // group
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * scale  # (n_heads, n, L)
    # Query j sits at position context_len - n + j; key i is in its future when i > that.
    future = torch.ones(n, context_len, dtype=torch.bool, device=q.device).triu(diagonal=context_len - n + 1)
    scores = scores.masked_fill(future, float("-inf"))
    probs = scores.softmax(dim=-1)
    out = torch.einsum("hqk,khd->qhd", probs, v.float())  # (n, n_heads, head_dim)
    return out.to(q.dtype)


class Attention(ch01_attention.Attention):
    """Chapter 1's attention core with a cache: same constructor, a different forward.

    The model runner hands every layer its views of the cache after building the model."""

    k_cache = v_cache = torch.tensor([])  # (max_num_seqs, max_model_len, n_kv_heads, head_dim) once allocated

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (N, n_heads, head_dim); k, v: (N, n_kv_heads, head_dim): the new tokens of every
        sequence of the batch, back to back -> (N, n_heads, head_dim)."""
        ctx = get_context()
        cu = ctx.cu_seqlens_q.tolist()
        out = torch.empty_like(q)
        for i, (row, context_len) in enumerate(zip(ctx.cache_rows.tolist(), ctx.context_lens.tolist())):
            s, e = cu[i], cu[i + 1]  # this sequence's new tokens in the flat batch
            start = context_len - (e - s)  # their positions: start .. context_len - 1
            # Store first: each new token must see its own key and value, and those of the new
            # tokens before it.
            self.k_cache[row, start:context_len] = k[s:e]
            self.v_cache[row, start:context_len] = v[s:e]
            out[s:e] = cached_attention(q[s:e], self.k_cache[row], self.v_cache[row], context_len, self.scale)
        return out
