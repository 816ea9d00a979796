"""Chapter 2 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/02

Each test plugs your function into the real chapter-2 engine (ch02.attention, ch02.model_runner,
ch02.llm) and checks what it computes and the tokens the engine then generates. The notebook
notebooks/02_kv_cache.ipynb walks through every piece and has hints for each exercise, from a
nudge to nearly the answer; the chapter's page shows a solution after each exercise, folded, so
try before you peek.
"""

import torch


def cached_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, context_len: int, scale: float) -> torch.Tensor:
    """The new tokens of one sequence attend over its cache row.

    q: (n, n_heads, head_dim), the queries of the sequence's last n tokens, which sit at
    positions context_len - n .. context_len - 1. k_cache, v_cache: (max_len, n_kv_heads,
    head_dim), the sequence's cache row; slots 0 .. context_len - 1 hold the keys and values of
    its tokens, these n included (they are stored first). Slots from context_len on hold
    leftovers you must not read. Each query may see its own position and every earlier one.
    scale multiplies every q·k score. Grouped heads as in chapter 1: query head h uses K/V head
    h // (n_heads // n_kv_heads). Scores and softmax in float32; returns (n, n_heads, head_dim)
    in q's dtype.
    """
    raise NotImplementedError(
        "Exercise 2.1: write cached_attention (the new queries of one sequence read its cached "
        "keys and values, each query only its own past); see notebooks/02_kv_cache.ipynb, "
        "section 'Attention over the cache'"
    )


def attention_forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """ch02.attention.Attention.forward; `self` is the attention layer.

    q: (N, n_heads, head_dim); k, v: (N, n_kv_heads, head_dim): this step's new tokens of every
    sequence of the batch, back to back. What the layer has:
      self.k_cache, self.v_cache  (max_num_seqs, max_model_len, n_kv_heads, head_dim): the cache,
                                  one row per sequence, slot p of a row for the token at position p
      self.scale                  the score scale to pass on to cached_attention
    The batch's layout comes from `ch02.context.get_context()`, three int64 tensors
    (`.tolist()` makes them lists):
      ctx.cu_seqlens_q  (B+1,)  sequence i's new tokens are rows cu_seqlens_q[i]:cu_seqlens_q[i+1]
      ctx.cache_rows    (B,)    the row of the cache sequence i owns
      ctx.context_lens  (B,)    sequence i's length once this step's tokens are stored
    For each sequence: store its new keys and values in its row, at their positions; then
    attend with `ch02.attention.cached_attention(q_i, k_row, v_row, context_len, self.scale)`.
    Returns (N, n_heads, head_dim), the rows in q's order.
    """
    raise NotImplementedError(
        "Exercise 2.2: write Attention.forward (for each sequence of the batch: store its new keys "
        "and values in its cache row, then attend over the row); see notebooks/02_kv_cache.ipynb, "
        "section 'Store, then attend'"
    )


def prepare_inputs(seqs: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inputs of one step for a batch of ch02.sequence.Sequence.

    Each sequence computes the tokens whose K/V are not cached yet: those after its first
    seq.num_cached_tokens tokens, up to seq.num_tokens (seq.token_ids is the whole list).
    Returns four int64 tensors:
      input_ids     (N,)    those tokens, sequence after sequence
      positions     (N,)    each token's index in its own sequence
      cu_seqlens_q  (B+1,)  0, then the running total of new tokens after each sequence
      context_lens  (B,)    each sequence's length once this step's tokens are cached
    """
    raise NotImplementedError(
        "Exercise 2.3: write prepare_inputs (one flat batch of every sequence's uncached tokens, "
        "their positions, and where each sequence's tokens start and end); see "
        "notebooks/02_kv_cache.ipynb, section 'Prefill, then one token per step'"
    )


def postprocess(self, seqs: list, token_ids: list[int]) -> None:
    """ch02.llm.LLM.postprocess; `self` is the LLM. A step has run: token_ids[i] was sampled
    for seqs[i]. Updates each sequence in place; returns nothing.

    What a sequence (ch02.sequence.Sequence) has:
      seq.num_tokens             its length (prompt + generated), before the new token
      seq.num_cached_tokens      how many leading tokens have their K/V in the cache
      seq.append_token(t)        adds token t (num_tokens grows by one)
      seq.num_completion_tokens  how many tokens it has generated (a property)
      seq.max_tokens, seq.ignore_eos   from its SamplingParams
      seq.finish_reason          None while running; set it to "stop" or "length" to finish it
    and self.config.eos_token_ids, the model's end-of-sequence ids.
    For each sequence: the step stored the K/V of every token it had before this one; then the
    new token joins it (its K/V are computed next step); then it finishes with "stop" on an EOS
    token (unless seq.ignore_eos), else with "length" once it has max_tokens new tokens.
    """
    raise NotImplementedError(
        "Exercise 2.4: write LLM.postprocess (after a step, bring each sequence up to date: what "
        "is cached now, its new token, and whether it has finished); see notebooks/02_kv_cache.ipynb, "
        "section 'The generation loop'"
    )
