"""Plain per-row references for chapter 7's filters: one row at a time, in Python floats, written
from the definitions; the batched code must agree with them row by row."""

import math


def tempered(row: list[float], temperature: float) -> list[float]:
    return list(row) if temperature == 0 else [x / temperature for x in row]


def softmax(row: list[float]) -> list[float]:
    top = max(row)
    e = [math.exp(x - top) if x != -math.inf else 0.0 for x in row]
    return [x / sum(e) for x in e]


def top_k_keep(row: list[float], k: int) -> set[int]:
    """The tokens whose logit is at least the k-th largest (all of them for k = -1 or k >= V)."""
    if k == -1 or k >= len(row):
        return set(range(len(row)))
    kth = sorted(row, reverse=True)[k - 1]
    return {i for i, x in enumerate(row) if x >= kth}


def top_p_keep(probs: list[float], p: float) -> set[int]:
    """Most likely first, add tokens until their total reaches p (the one that reaches it included)."""
    if p >= 1:
        return set(range(len(probs)))
    keep, total = set(), 0.0
    for i in sorted(range(len(probs)), key=lambda i: -probs[i]):
        keep.add(i)
        total += probs[i]
        if total >= p:
            break
    return keep


def min_p_keep(probs: list[float], m: float) -> set[int]:
    return {i for i, q in enumerate(probs) if q >= m * max(probs)}


def only(probs: list[float], keep: set[int]) -> list[float]:
    total = sum(probs[i] for i in keep)
    return [q / total if i in keep else 0.0 for i, q in enumerate(probs)]


def filtered(row: list[float], temperature: float, k: int, p: float, m: float) -> list[float]:
    """The distribution a sampled row draws from: temperature, top-k, top-p, min-p."""
    logits = tempered(row, temperature)
    probs = only(softmax(logits), top_k_keep(logits, k))
    probs = only(probs, top_p_keep(probs, p))
    return only(probs, min_p_keep(probs, m))
