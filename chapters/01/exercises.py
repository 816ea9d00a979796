"""Chapter 1 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/01

Each test plugs your function into the real chapter-1 model and compares its output and the
generated tokens with the reference. The notebook notebooks/01_naive_generate.ipynb walks
through every piece; the chapter's own code is the answer key, so try before you peek.
"""

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x: (..., D), weight: (D,). Divide each vector by its root-mean-square (+ eps inside the
    square root), then multiply by weight. Compute in float32, return x's dtype."""
    raise NotImplementedError(
        "Exercise 1.1: RMSNorm — x * rsqrt(mean(x**2, last dim) + eps) * weight; "
        "see notebooks/01_naive_generate.ipynb, section 'RMSNorm'"
    )


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (T, n_heads, head_dim); cos, sin: (T, head_dim/2). Split each head into a first and a
    second half (x1, x2) and return cat(x1*cos - x2*sin, x2*cos + x1*sin) in x's dtype."""
    raise NotImplementedError(
        "Exercise 1.2: rotary embedding — rotate the (first half, second half) pairs of each head "
        "by the angles in cos/sin; see notebooks/01_naive_generate.ipynb, section 'Rotary embedding'"
    )


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """q: (T, n_heads, head_dim); k, v: (T, n_kv_heads, head_dim) -> (T, n_heads, head_dim).
    Query head h uses K/V head h // (n_heads // n_kv_heads). Token i attends to tokens 0..i."""
    raise NotImplementedError(
        "Exercise 1.3: causal grouped-query attention — share each K/V head among its group of "
        "query heads, mask the future, softmax(q·k * scale) @ v; see notebooks/01_naive_generate.ipynb, "
        "section 'Attention'"
    )


def generate(model, prompt_ids: list[int], params, eos_token_ids=(), generator=None) -> list[int]:
    """The naive loop: run `model` over all tokens so far, take the last position's logits,
    pick the next token with ch01.sampler.sample(logits, params.temperature, generator), append
    it; stop after params.max_tokens tokens or at an EOS token (unless params.ignore_eos).
    Return only the new tokens."""
    raise NotImplementedError(
        "Exercise 1.4: the generate loop — forward the whole sequence, sample from the last "
        "logits, append, stop at EOS or max_tokens; see notebooks/01_naive_generate.ipynb, "
        "section 'The generate loop'"
    )
