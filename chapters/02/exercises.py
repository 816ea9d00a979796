"""Chapter 2 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/02

Each test plugs your function into the real chapter-2 engine (ch02.attention, ch02.model_runner,
ch02.llm) and checks what it computes and the tokens the engine then generates. The notebook
notebooks/02_kv_cache.ipynb walks through every piece; the chapter's own code is the answer key,
so try before you peek.
"""

import torch


def cached_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, context_len: int, scale: float) -> torch.Tensor:
    """q: (n, n_heads, head_dim), the queries of one sequence's last n tokens (positions
    context_len - n .. context_len - 1). k_cache, v_cache: (max_len, n_kv_heads, head_dim), the
    sequence's cache row with those tokens already stored; slots from context_len on hold
    nothing you may read. Query j may attend to positions 0 .. context_len - n + j. Grouped
    heads as in chapter 1 (query head h uses K/V head h // (n_heads // n_kv_heads)); scores and
    softmax in float32; return (n, n_heads, head_dim) in q's dtype."""
    raise NotImplementedError(
        "Exercise 2.1: attention over the cache — take the first context_len keys and values, "
        "mask each query's future with the offset context_len - n, softmax(q·k * scale) @ v; "
        "see notebooks/02_kv_cache.ipynb, section 'Attention over the cache'"
    )


def attention_forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The forward of ch02.attention.Attention (`self` is the layer). q: (N, n_heads, head_dim),
    k, v: (N, n_kv_heads, head_dim): the new tokens of every sequence, back to back. Read the
    batch's layout with ch02.context.get_context(): sequence i's tokens are rows
    cu_seqlens_q[i]:cu_seqlens_q[i+1], it owns row cache_rows[i] of self.k_cache / self.v_cache
    (max_num_seqs, max_model_len, n_kv_heads, head_dim), and its length after this step is
    context_lens[i]. For each sequence, write its new keys and values into its row at their
    positions, then attend with ch02.attention.cached_attention. Return (N, n_heads, head_dim)."""
    raise NotImplementedError(
        "Exercise 2.2: store, then attend — for each sequence, write k and v into its cache row at "
        "positions context_len - n .. context_len - 1, then call cached_attention on the row; "
        "see notebooks/02_kv_cache.ipynb, section 'Store, then attend'"
    )


def prepare_inputs(seqs: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inputs of one step for a batch of ch02.sequence.Sequence. Each sequence computes the
    tokens whose K/V are not cached yet: seq.token_ids[seq.num_cached_tokens:]. Return, as int64
    tensors: input_ids (N,) (those tokens, sequence after sequence), positions (N,) (each token's
    index in its own sequence), cu_seqlens_q (B+1,) (0, then the running total of tokens per
    sequence) and context_lens (B,) (each sequence's length once they are cached)."""
    raise NotImplementedError(
        "Exercise 2.3: prefill, then one token per step — feed each sequence's uncached tokens at "
        "positions num_cached_tokens .. num_tokens - 1, with cu_seqlens_q and context_lens; "
        "see notebooks/02_kv_cache.ipynb, section 'Prefill, then one token per step'"
    )


def postprocess(self, seqs: list, token_ids: list[int]) -> None:
    """ch02.llm.LLM.postprocess (`self` is the LLM): after a step, `token_ids[i]` was sampled for
    `seqs[i]`. For each sequence: every token it had before this step now has its K/V in the
    cache (update num_cached_tokens), then append the new token (seq.append_token), then finish
    it: finish_reason "stop" if the token is in self.config.eos_token_ids (unless
    seq.ignore_eos), else "length" once it has seq.max_tokens new tokens."""
    raise NotImplementedError(
        "Exercise 2.4: after the step — mark the computed tokens cached, append the sampled token "
        "(its K/V come next step), stop at EOS or max_tokens; see notebooks/02_kv_cache.ipynb, "
        "section 'The generation loop'"
    )
