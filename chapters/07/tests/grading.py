"""Chapter 7's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import torch

from ch07 import sampler

REFERENCE = {
    "apply_temperature": sampler.apply_temperature,
    "top_k_mask": sampler.top_k_mask,
    "top_p_mask": sampler.top_p_mask,
    "min_p_mask": sampler.min_p_mask,
    "draw": sampler.draw,
}


# --- 7.1 temperature ----------------------------------------------------------------------------
def temperature_multiplies(logits, temperatures):
    # multiplies by the temperature: a hot request gets sharper, a cold one flatter
    return logits.float() * torch.where(temperatures == 0, 1.0, temperatures.float()).unsqueeze(1)


def temperature_zero_as_tiny(logits, temperatures):
    # treats greedy as a very low temperature: the greedy rows' logits blow up (and overflow)
    return logits.float() / temperatures.float().clamp_min(1e-30).unsqueeze(1)


def temperature_of_the_first_row(logits, temperatures):
    # one temperature for the whole batch: every request gets the first one's
    t = temperatures[0].item()
    return logits.float() / (t if t > 0 else 1.0)


def temperature_in_place(logits, temperatures):
    # divides in place: float() of float32 logits is the caller's own tensor, which now holds tempered values
    return logits.float().div_(torch.where(temperatures == 0, 1.0, temperatures.float()).unsqueeze(1))


# --- 7.2 top-k -----------------------------------------------------------------------------------
def _kth_mask(logits, k, descending=True):
    V = logits.shape[-1]
    k = torch.where((k < 1) | (k > V), V, k).long()
    sorted_logits = logits.sort(dim=-1, descending=descending).values
    kth = sorted_logits.gather(1, (k - 1).clamp(0, V - 1).unsqueeze(1))
    return logits < kth if descending else logits > kth


def top_k_keeps_one_more(logits, top_ks):
    # the k-th is read one place too far: k + 1 tokens stay
    return _kth_mask(logits, top_ks + (top_ks > 0).long())


def top_k_sorted_ascending(logits, top_ks):
    # sorts the wrong way: keeps the k least likely tokens
    return _kth_mask(logits, top_ks, descending=False)


def top_k_of_the_first_row(logits, top_ks):
    # one k for the whole batch: every request gets the first one's
    return _kth_mask(logits, top_ks[:1].expand(len(top_ks)))


def top_k_drops_ties(logits, top_ks):
    # keeps exactly k tokens, the first k of a sort: a token tied with the k-th is dropped or kept by
    # the accident of the sort's order
    V = logits.shape[-1]
    k = torch.where((top_ks < 1) | (top_ks > V), V, top_ks).long()
    order = logits.argsort(dim=-1, descending=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(V).expand_as(order).contiguous())
    return rank >= k.unsqueeze(1)


# --- 7.3 top-p -----------------------------------------------------------------------------------
def _scatter_back(drop_sorted, order):
    return torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)


def top_p_without_the_crossing_token(probs, top_ps):
    # keeps only the tokens whose running total stays within p: the one that crosses p is dropped
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    drop = (sorted_probs.cumsum(dim=-1) > top_ps.unsqueeze(1)) & (top_ps < 1).unsqueeze(1)
    drop[:, 0] = False
    return _scatter_back(drop, order)


def top_p_sorted_ascending(probs, top_ps):
    # sums from the least likely token up: keeps the unlikely tail and drops the head
    sorted_probs, order = probs.sort(dim=-1, descending=False)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    return _scatter_back((mass_before >= top_ps.unsqueeze(1)) & (top_ps < 1).unsqueeze(1), order)


def top_p_keeps_p_of_the_tokens(probs, top_ps):
    # reads p as a share of the vocabulary: keeps the top ceil(p * V) tokens, whatever their mass
    V = probs.shape[-1]
    order = probs.sort(dim=-1, descending=True).indices
    count = torch.ceil(top_ps * V).long().unsqueeze(1)
    drop = torch.arange(V)[None, :] >= count
    return _scatter_back(drop, order)


def top_p_mask_in_sorted_order(probs, top_ps):
    # the right tokens are dropped in the sorted row, but the mask is never put back in vocabulary order
    sorted_probs, _ = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    return (mass_before >= top_ps.unsqueeze(1)) & (top_ps < 1).unsqueeze(1)


# --- 7.4 min-p -----------------------------------------------------------------------------------
def min_p_absolute(probs, min_ps):
    # compares with min_p itself, not min_p times the most likely token
    return probs < min_ps.unsqueeze(1)


def min_p_against_the_batch_max(probs, min_ps):
    # the most likely token of the whole batch, not of the row
    return probs < min_ps.unsqueeze(1) * probs.max()


def min_p_drops_the_equal(probs, min_ps):
    # drops a token exactly at the threshold too: min_p = 1 then drops everything
    return probs <= min_ps.unsqueeze(1) * probs.max(dim=-1, keepdim=True).values


# --- 7.5 the draw --------------------------------------------------------------------------------
def draw_argmax(probs, generators=None):
    # the most likely token every time: greedy under another name
    return probs.argmax(dim=-1)


def draw_times_noise(probs, generators=None):
    # p x E instead of p / E: the race is rigged, unlikely tokens win more often than they should
    noise = torch.empty_like(probs).exponential_(1)
    return (probs * noise).argmax(dim=-1)


def draw_from_the_first_generator(probs, generators=None):
    # the first seeded row's generator draws the whole batch: a seeded row's noise depends on its neighbours
    gen = next((g for g in generators or [] if g is not None), None)
    noise = torch.empty_like(probs).exponential_(1, generator=gen).clamp_min(torch.finfo(probs.dtype).tiny)
    return (probs / noise).argmax(dim=-1)


def draw_ignoring_generators(probs, generators=None):
    # the global stream for every row: a seed changes nothing
    return torch.multinomial(probs, 1).squeeze(1)


PLANTED = {
    "apply_temperature": [temperature_multiplies, temperature_zero_as_tiny, temperature_of_the_first_row, temperature_in_place],
    "top_k_mask": [top_k_keeps_one_more, top_k_sorted_ascending, top_k_of_the_first_row, top_k_drops_ties],
    "top_p_mask": [top_p_without_the_crossing_token, top_p_sorted_ascending, top_p_keeps_p_of_the_tokens,
                   top_p_mask_in_sorted_order],
    "min_p_mask": [min_p_absolute, min_p_against_the_batch_max, min_p_drops_the_equal],
    "draw": [draw_argmax, draw_times_noise, draw_from_the_first_generator, draw_ignoring_generators],
}

