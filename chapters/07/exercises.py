"""Chapter 7 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/07

Each test checks your function on small hand-made rows against a plain one-row-at-a-time
reference, then plugs it into the real chapter-7 sampler (ch07.sampler) and checks what the
engine draws. Every function works on the whole batch at once: a row's parameter is one entry of
a (B,) tensor, and no loop over rows is needed. The notebook notebooks/07_sampling.ipynb walks
through every piece, with hints; the chapter's own code is the answer key, so try before you peek.
"""

import torch


def apply_temperature(logits: torch.Tensor, temperatures: torch.Tensor) -> torch.Tensor:
    """logits: (B, V), any float dtype; temperatures: (B,) float, >= 0, one per row.
    Return (B, V) float32: each row's logits tempered by its own temperature. A row with
    temperature 0 is greedy (the sampler takes its argmax): return that row unchanged."""
    raise NotImplementedError(
        "Exercise 7.1: temperature, per row — reshape the logits by each row's temperature, and leave the "
        "greedy rows alone; see notebooks/07_sampling.ipynb, section 'Temperature and greedy'"
    )


def top_k_mask(logits: torch.Tensor, top_ks: torch.Tensor) -> torch.Tensor:
    """logits: (B, V) float; top_ks: (B,) int64, each >= 1 or -1 (keep every token); a k above V
    keeps every token too. Return a (B, V) bool mask, True where a token is dropped: the tokens of
    a row below its k-th largest logit (a token tied with the k-th stays)."""
    raise NotImplementedError(
        "Exercise 7.2: top-k, per row — find each row's k-th largest logit and drop what lies below it; "
        "see notebooks/07_sampling.ipynb, section 'Top-k'"
    )


def top_p_mask(probs: torch.Tensor, top_ps: torch.Tensor) -> torch.Tensor:
    """probs: (B, V) float, each row sums to 1; top_ps: (B,) float in (0, 1]. Return a (B, V) bool
    mask, True where a token is dropped: each row keeps the smallest set of its most likely
    tokens whose probabilities add up to at least its top_p; top_p = 1 keeps every token."""
    raise NotImplementedError(
        "Exercise 7.3: top-p (nucleus), per row — walk each row from its most likely token and stop once "
        "the mass reaches p; see notebooks/07_sampling.ipynb, section 'Top-p'"
    )


def min_p_mask(probs: torch.Tensor, min_ps: torch.Tensor) -> torch.Tensor:
    """probs: (B, V) float, each row sums to 1; min_ps: (B,) float in [0, 1]. Return a (B, V) bool
    mask, True where a token is dropped: less likely than min_p times the most likely token of
    its own row (a token exactly at that threshold stays)."""
    raise NotImplementedError(
        "Exercise 7.4: min-p, per row — a threshold relative to each row's most likely token; see "
        "notebooks/07_sampling.ipynb, section 'Min-p'"
    )


def draw(probs: torch.Tensor, generators: list | None = None) -> torch.Tensor:
    """probs: (B, V) float, each row sums to 1 (dropped tokens are 0). generators: None, or a list
    of B entries, each a torch.Generator (that row's own random stream: a seeded request) or None
    (the global random stream). Return (B,) int64 token ids, row i drawn with probabilities
    probs[i]; a seeded row must get the same token whatever the other rows are."""
    raise NotImplementedError(
        "Exercise 7.5: the draw, with seeds — draw every row at once, and give each seeded row randomness "
        "from its own generator only; see notebooks/07_sampling.ipynb, section 'The draw and seeds'"
    )
