"""Chapter 7's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/07/exercises.py, checked by `pytest chapters/07`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (sampler.py).
"""

import torch


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
