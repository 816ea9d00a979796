"""Chapter 2's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/02/exercises.py, checked by `pytest chapters/02`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (attention.py, llm.py, model_runner.py).
"""

import torch

from ch02.context import get_context
from ch02.sequence import Sequence


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


def attention_forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
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


def prepare_inputs(seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The step's flat batch: for each sequence, the tokens not yet in the cache.

    Returns input_ids (N,), positions (N,), cu_seqlens_q (B+1,) and context_lens (B,), all int64.
    """
    input_ids, positions, cu_seqlens_q, context_lens = [], [], [0], []
    for seq in seqs:
        start, end = seq.num_cached_tokens, seq.num_tokens
        input_ids.extend(seq.token_ids[start:end])
        positions.extend(range(start, end))  # a token's position is its index in its own sequence
        cu_seqlens_q.append(cu_seqlens_q[-1] + end - start)
        context_lens.append(end)
    return torch.tensor(input_ids), torch.tensor(positions), torch.tensor(cu_seqlens_q), torch.tensor(context_lens)


def postprocess(self, seqs: list[Sequence], token_ids: list[int]) -> None:
    eos = self.config.eos_token_ids
    for seq, token_id in zip(seqs, token_ids):
        seq.num_cached_tokens = seq.num_tokens  # the step stored K/V of every token it computed
        seq.append_token(token_id)  # ...but not of this one: it is the next step's input
        if token_id in eos and not seq.ignore_eos:
            seq.finish_reason = "stop"
        elif seq.num_completion_tokens == seq.max_tokens:
            seq.finish_reason = "length"
