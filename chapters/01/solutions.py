"""Chapter 1's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/01/exercises.py, checked by `pytest chapters/01`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (attention.py, layers.py, naive_generate.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ch01 import sampler

if TYPE_CHECKING:  # for the annotations only (model.py imports this file)
    from ch01.model import CausalLM
    from ch01.sampling_params import SamplingParams


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Scale each vector to unit root-mean-square, then by a learned weight.

    x: (..., D), weight: (D,). Computed in float32 and cast back, as the reference models do,
    so that bf16 inputs do not lose the small eps.
    """
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return x32.to(x.dtype) * weight


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first-half, second-half) pair of every head by its position's angle.

    x: (T, n_heads, head_dim); cos, sin: (T, head_dim/2). Because q and k are both rotated by
    their own positions, q·k depends only on the distance between them.
    """
    x1, x2 = x.float().chunk(2, dim=-1)  # (T, n_heads, head_dim/2) each
    cos, sin = cos[:, None, :], sin[:, None, :]  # (T, 1, head_dim/2): the same angle for every head
    rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return rotated.to(x.dtype)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Each token attends to itself and every earlier token.

    q: (T, n_heads, head_dim); k, v: (T, n_kv_heads, head_dim) -> (T, n_heads, head_dim).
    Grouped-query attention: n_heads / n_kv_heads query heads share one K/V head, query head h
    using K/V head h // group. Scores and softmax in float32.
    """
    T, n_heads, _ = q.shape
    group = n_heads // k.shape[1]
    k = k.repeat_interleave(group, dim=1)  # (T, n_heads, head_dim): head h sees K/V head h // group
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * scale  # (n_heads, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))  # token i may not look at tokens after i
    probs = scores.softmax(dim=-1)
    out = torch.einsum("hqk,khd->qhd", probs, v.float())  # (T, n_heads, head_dim)
    return out.to(q.dtype)


@torch.inference_mode()
def generate(model: CausalLM, prompt_ids: list[int], params: SamplingParams, eos_token_ids=(), generator=None) -> list[int]:
    """Return the new token ids (not the prompt), stopping at max_tokens or an EOS token."""
    device = model.lm_head.weight.device
    tokens = list(prompt_ids)
    new_tokens = []
    for _ in range(params.max_tokens):
        input_ids = torch.tensor(tokens, device=device)  # (T,): the whole sequence, every step
        positions = torch.arange(len(tokens), device=device)  # (T,)
        hidden = model(input_ids, positions)  # (T, D)
        logits = model.compute_logits(hidden[-1:])[0]  # (vocab,): only the last position predicts
        next_id = sampler.sample(logits, params.temperature, generator)
        tokens.append(next_id)
        new_tokens.append(next_id)
        if next_id in eos_token_ids and not params.ignore_eos:
            break
    return new_tokens
