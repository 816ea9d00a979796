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


def apply_temperature(logits: torch.Tensor, temperatures: torch.Tensor) -> torch.Tensor:
    """logits (B, V), temperatures (B,) -> (B, V) float32: each row divided by its temperature.
    A greedy row (temperature 0) comes back unchanged: it takes the argmax, and x / 0 is inf."""
    divisor = torch.where(temperatures == 0, 1.0, temperatures.float())
    return logits.float() / divisor.unsqueeze(1)  # (B, 1) broadcasts along the vocabulary


def top_k_mask(logits: torch.Tensor, top_ks: torch.Tensor) -> torch.Tensor:
    """logits (B, V), top_ks (B,) int (-1 keeps all) -> (B, V) bool, True where a token is dropped:
    below the k-th largest logit of its row (a token tied with the k-th stays)."""
    V = logits.shape[-1]
    k = torch.where((top_ks < 1) | (top_ks > V), V, top_ks).long()  # (B,): -1 means all V
    sorted_logits = logits.sort(dim=-1, descending=True).values  # (B, V)
    kth = sorted_logits.gather(1, (k - 1).unsqueeze(1))  # (B, 1): the k-th largest of each row
    return logits < kth


def top_p_mask(probs: torch.Tensor, top_ps: torch.Tensor) -> torch.Tensor:
    """probs (B, V) (each row sums to 1), top_ps (B,) in (0, 1] -> (B, V) bool, True where a token
    is dropped: keep the smallest set of most likely tokens whose probability reaches top_p."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)  # (B, V)
    # A token stays while the tokens ranked above it hold less than top_p: the token that crosses
    # top_p stays too (the first always does). top_p = 1 keeps all, whatever the rounding of cumsum.
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (B, V)
    drop_sorted = (mass_before >= top_ps.unsqueeze(1)) & (top_ps < 1).unsqueeze(1)
    return torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)  # back to vocabulary order


def min_p_mask(probs: torch.Tensor, min_ps: torch.Tensor) -> torch.Tensor:
    """probs (B, V), min_ps (B,) in [0, 1] -> (B, V) bool, True where a token is dropped: less
    likely than min_p times its row's most likely token."""
    return probs < min_ps.unsqueeze(1) * probs.max(dim=-1, keepdim=True).values


def filtered_probs(logits: torch.Tensor, top_ks: torch.Tensor, top_ps: torch.Tensor, min_ps: torch.Tensor) -> torch.Tensor:
    """Tempered logits (B, V) -> (B, V) probabilities over the tokens that survive top-k, then
    top-p, then min-p, each row renormalized after each filter."""
    probs = logits.masked_fill(top_k_mask(logits, top_ks), float("-inf")).softmax(dim=-1)
    probs = probs.masked_fill(top_p_mask(probs, top_ps), 0.0)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    probs = probs.masked_fill(min_p_mask(probs, min_ps), 0.0)
    return probs / probs.sum(dim=-1, keepdim=True)


def draw(probs: torch.Tensor, generators: list | None = None) -> torch.Tensor:
    """probs (B, V) -> (B,) token ids, row i drawn with probabilities probs[i]. generators: None,
    or B entries, each a torch.Generator (a seeded row draws from it alone) or None (the global
    random stream, shared by the unseeded rows)."""
    noise = torch.empty_like(probs).exponential_(1)  # (B, V)
    for i, gen in enumerate(generators or []):
        if gen is not None:  # a loop over the seeded rows' noise only; the filters have no loop
            noise[i] = torch.empty_like(probs[i]).exponential_(1, generator=gen)
    noise.clamp_min_(torch.finfo(noise.dtype).tiny)  # a drawn 0 would make 0 / 0 on a dropped token
    return (probs / noise).argmax(dim=-1)


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
