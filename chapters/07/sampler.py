"""Sampler: one next token per row of logits, each row with its own parameters, in one call.

    greedy rows (temperature 0)  argmax of the raw logits: a different rule, not a low temperature
    other rows                   logits / temperature -> top-k -> top-p -> min-p -> draw

Each filter is a mask over the whole batch, (B, V) at once: a row's parameter is a (B, 1) column
that broadcasts along the vocabulary, so a batch of different requests costs what a uniform one
does, with no Python loop over rows.

Why this order (the order of transformers' `generate` and of vLLM's first sampler; nano-vllm's
final engine keeps it):
- temperature first: the filters that look at probabilities (top-p, min-p) must see the
  distribution that will be drawn from, which temperature reshapes;
- top-k next: it keeps ranks, so temperature cannot change what it keeps, and it is a hard cap;
- top-p on the k survivors, renormalized: "the most likely tokens holding p of what is left";
- min-p last: it compares each token with the most likely one, which every filter keeps, so the
  ratio it tests is the same before or after top-k. (vLLM's V1 engine applies min-p before top-k
  and top-p; that differs from this order only when top-p and min-p are both set.)

The draw is the exponential race: argmax(p / E) with E ~ Exp(1) independent per token picks
token i with probability p_i. It needs only noise, so a seeded request draws its noise from its
own torch.Generator, and its tokens do not depend on which other requests share the batch.
"""

import torch
from torch import nn

from ch07.solutions import apply_temperature, draw, min_p_mask, top_k_mask, top_p_mask  # exercises 7.1, 7.2, 7.3, 7.4, 7.5: the answer key


def filtered_probs(logits: torch.Tensor, top_ks: torch.Tensor, top_ps: torch.Tensor, min_ps: torch.Tensor) -> torch.Tensor:
    """Tempered logits (B, V) -> (B, V) probabilities over the tokens that survive top-k, then
    top-p, then min-p, each row renormalized after each filter."""
    probs = logits.masked_fill(top_k_mask(logits, top_ks), float("-inf")).softmax(dim=-1)
    probs = probs.masked_fill(top_p_mask(probs, top_ps), 0.0)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    probs = probs.masked_fill(min_p_mask(probs, min_ps), 0.0)
    return probs / probs.sum(dim=-1, keepdim=True)


class Sampler(nn.Module):
    @torch.no_grad()
    def forward(self, logits: torch.Tensor, temperatures: torch.Tensor, top_ks: torch.Tensor, top_ps: torch.Tensor,
                min_ps: torch.Tensor, generators: list | None = None) -> torch.Tensor:
        """logits (B, V); temperatures, top_ps, min_ps (B,) float; top_ks (B,) int (-1 = all);
        generators: None or B entries (torch.Generator or None) -> (B,) token ids."""
        greedy = logits.argmax(dim=-1)  # exact: no division, no noise
        if not bool((temperatures > 0).any()):
            return greedy
        probs = filtered_probs(apply_temperature(logits, temperatures), top_ks, top_ps, min_ps)  # (B, V)
        return torch.where(temperatures == 0, greedy, draw(probs, generators))
