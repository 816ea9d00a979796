"""Sampler: one next token per row of logits, each row with its own parameters, in one batch.

    greedy rows (temperature 0)  argmax of the raw logits
    other rows                   logits / temperature -> top-k -> top-p -> min-p -> draw

A batch with no top-k and no top-p (greedy, temperature, min-p: the common case) goes through
`kernels.sample_gumbel`, one pass over the logits (a Triton kernel on a GPU, its torch twin on a
CPU). The general path below handles the rest.

The filters run on the whole batch at once: one sort of each row, then per-row thresholds as
tensors ((B, 1) columns), so a batch of mixed requests costs the same as a uniform one. The draw
is the exponential race: argmax(p / E) with E ~ Exp(1) picks token i with probability p_i, and
needs only noise, which lets a seeded request draw its noise from its own generator (a small
loop over the seeded rows only) while the others share one.

Which filters are needed at all (`flags`) is best decided from the Python parameters: asking the
tensors (`bool(t.any())`) would wait for the GPU to finish the forward pass first.
"""

import torch
from torch import nn

from nanovllm_final.kernels import sample_gumbel


class Sampler(nn.Module):
    @torch.no_grad()
    def forward(self, logits: torch.Tensor, temperatures: torch.Tensor, top_ks: torch.Tensor,
                top_ps: torch.Tensor, min_ps: torch.Tensor, generators: list | None = None,
                flags: dict | None = None) -> torch.Tensor:
        """logits (B, V); temperatures, top_ps, min_ps (B,) float; top_ks (B,) int (-1 = all);
        generators: B entries, a torch.Generator for a seeded row or None; flags: all_greedy,
        need_sort, need_min_p as Python bools (read from the tensors when not given).
        -> (B,) token ids."""
        flags = flags or sampling_flags(temperatures, top_ks, top_ps, min_ps, logits.shape[-1])
        if flags["all_greedy"]:
            return logits.argmax(dim=-1)  # the bf16 logits' order is their float32 values' order
        if not flags["need_sort"]:
            return sample_gumbel(logits, temperatures, min_ps, generators, flags["need_min_p"])
        logits = logits.float()
        greedy = logits.argmax(dim=-1)
        is_greedy = temperatures == 0
        logits = logits / torch.where(is_greedy, 1.0, temperatures).unsqueeze(1)
        probs = filtered_probs(logits, top_ks, top_ps, min_ps, flags["need_sort"], flags["need_min_p"])  # (B, V)
        noise = torch.empty_like(probs).exponential_(1)
        for i, gen in enumerate(generators or []):
            if gen is not None:  # redraw this row from its own stream: reproducible per request
                noise[i] = torch.empty_like(probs[i]).exponential_(1, generator=gen)
        noise.clamp_min_(torch.finfo(noise.dtype).tiny)  # a drawn 0 would make 0/0 = NaN on a filtered token
        sampled = (probs / noise).argmax(dim=-1)
        return torch.where(is_greedy, greedy, sampled)


def sampling_flags(temperatures, top_ks, top_ps, min_ps, vocab_size: int) -> dict:
    return dict(all_greedy=bool((temperatures == 0).all()),
                need_sort=bool(((top_ks > 0) & (top_ks < vocab_size)).any() or (top_ps < 1).any()),
                need_min_p=bool((min_ps > 0).any()))


def filtered_probs(logits: torch.Tensor, top_ks: torch.Tensor, top_ps: torch.Tensor, min_ps: torch.Tensor,
                   need_sort: bool, need_min_p: bool) -> torch.Tensor:
    """Softmax over the tokens that survive top-k, top-p and min-p, per row. logits (B, V)."""
    V = logits.shape[-1]
    if need_sort:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        ranks = torch.arange(V, device=logits.device)[None, :]
        k = torch.where(top_ks > 0, top_ks, V).unsqueeze(1)  # (B, 1)
        sorted_logits = sorted_logits.masked_fill(ranks >= k, float("-inf"))
        sorted_probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (the first always stays).
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_ps.unsqueeze(1), float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    if need_min_p:
        # min-p compares with the most likely token, which every filter above keeps.
        too_unlikely = probs < min_ps.unsqueeze(1) * probs.max(dim=-1, keepdim=True).values
        probs = probs.masked_fill(too_unlikely, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs
