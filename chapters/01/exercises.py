"""Chapter 1 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/01

Each test plugs your function into the real chapter-1 model and compares its output and the
generated tokens with the reference. The notebook notebooks/01_naive_generate.ipynb walks
through every piece and has hints for each exercise, from a nudge to nearly the answer; the
chapter's page shows a solution after each exercise, folded, so try before you peek.
"""

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm of every vector along the last dimension.

    x: (..., D), any float dtype (the model may run in bfloat16 or float16); weight: (D,), the
    learned scale of each of the D dimensions; eps: a small float that keeps the division safe.
    Do the arithmetic in float32 (`x.float()`): 16-bit floats overflow when squared and round
    eps away. Cast the normalized vector back to x's dtype (`.to(x.dtype)`), then scale it by
    weight. Returns a tensor of x's shape and dtype.
    """
    raise NotImplementedError(
        "Exercise 1.1: write rms_norm (bring each token's vector to a typical size, then scale it "
        "by weight); see notebooks/01_naive_generate.ipynb, section 'RMSNorm'"
    )


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The rotary embedding of the queries (or keys) of T tokens.

    x: (T, n_heads, head_dim). cos, sin: (T, head_dim // 2), from ch01.layers.rope_cos_sin:
    row t holds, for each pair i of a head, the cosine and sine of the angle token t turns pair
    i by. Pair i is dims i and i + head_dim // 2 of a head (the first half with the second, not
    neighbours). Every head of a token turns by the same angles. Compute in float32; return a
    tensor of x's shape and dtype.
    """
    raise NotImplementedError(
        "Exercise 1.2: write apply_rope (turn each pair of numbers of every head by its token's "
        "angle); see notebooks/01_naive_generate.ipynb, section 'Rotary embedding'"
    )


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal grouped-query attention over the T tokens of one sequence.

    q: (T, n_heads, head_dim); k, v: (T, n_kv_heads, head_dim); scale: the number every q·k
    score is multiplied by (1 / sqrt(head_dim)). n_heads is a multiple of n_kv_heads: query head
    h uses K/V head h // (n_heads // n_kv_heads). Token i attends to tokens 0 .. i, never to
    later ones. Scores and softmax in float32; returns (T, n_heads, head_dim) in q's dtype.
    """
    raise NotImplementedError(
        "Exercise 1.3: write causal_attention (every token gathers the values of itself and the "
        "tokens before it, query heads sharing K/V heads by groups); see "
        "notebooks/01_naive_generate.ipynb, section 'Attention'"
    )


def generate(model, prompt_ids: list[int], params, eos_token_ids=(), generator=None) -> list[int]:
    """The naive generation loop: one forward pass over the whole sequence per new token.

    model: a ch01.model.CausalLM. `model(input_ids, positions)` takes two int64 tensors of shape
    (T,), the token ids and their positions 0 .. T-1, on the model's device
    (`model.lm_head.weight.device`), and returns hidden states (T, hidden_size);
    `model.compute_logits(hidden)` turns (n, hidden_size) into logits (n, vocab_size).
    params: a ch01.SamplingParams with `temperature`, `max_tokens` and `ignore_eos`. Pick each
    token with `ch01.sampler.sample(logits, params.temperature, generator)`, where logits is one
    row (vocab_size,); it returns an int.
    Stop after params.max_tokens new tokens, or right after a token in eos_token_ids unless
    params.ignore_eos. Return the new token ids only (not the prompt); an EOS token that ended
    the loop is included. No gradients are needed: `with torch.inference_mode():` saves memory.
    """
    raise NotImplementedError(
        "Exercise 1.4: write generate (run the model, pick the next token, add it to the sequence, "
        "again until a stop); see notebooks/01_naive_generate.ipynb, section 'The generate loop'"
    )
