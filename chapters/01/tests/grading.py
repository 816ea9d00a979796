"""Chapter 1's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import torch

from ch01 import attention, layers, naive_generate, sampler

REFERENCE = {
    "rms_norm": layers.rms_norm,
    "apply_rope": layers.apply_rope,
    "causal_attention": attention.causal_attention,
    "generate": naive_generate.generate,
}


# --- 1.1 RMSNorm ------------------------------------------------------------------------------
def rms_norm_without_eps(x, weight, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True))).to(x.dtype) * weight


def rms_norm_without_weight(x, weight, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rms_norm_without_float32(x, weight, eps):
    # right in float32, but a 16-bit x is squared in 16 bits: float16 overflows past 65,504
    # (|x| > 256) and the norm comes out 0; bfloat16 keeps 8 bits of mantissa for the sum
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)) * weight


def rms_norm_eps_outside_the_root(x, weight, eps):
    # eps added to the root instead of under it: close for large vectors, off for small ones
    x32 = x.float()
    return (x32 / (x32.pow(2).mean(-1, keepdim=True).sqrt() + eps)).to(x.dtype) * weight


def rms_norm_std_instead_of_rms(x, weight, eps):  # subtracts the mean: that is LayerNorm's job
    x32 = x.float()
    return ((x32 - x32.mean(-1, keepdim=True)) * torch.rsqrt(x32.var(-1, keepdim=True, unbiased=False) + eps)).to(x.dtype) * weight


# --- 1.2 rotary embedding ---------------------------------------------------------------------
def apply_rope_interleaved(x, cos, sin):  # rotates (0,1), (2,3)... pairs: GPT-J's layout, not these models'
    x1, x2 = x.float()[..., 0::2], x.float()[..., 1::2]
    cos, sin = cos[:, None, :], sin[:, None, :]
    out = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
    return out.to(x.dtype)


def apply_rope_wrong_sign(x, cos, sin):  # rotates the other way
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[:, None, :], sin[:, None, :]
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1).to(x.dtype)


# --- 1.3 causal grouped-query attention ---------------------------------------------------------
def _attention(q, k, v, scale, *, expand, diagonal=1, masked=True, softmax_dim=-1):
    group = q.shape[1] // k.shape[1]
    k, v = expand(k, group), expand(v, group)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * scale
    if masked:
        T = q.shape[0]
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(diagonal), float("-inf"))
    probs = scores.softmax(softmax_dim).nan_to_num()
    return torch.einsum("hqk,khd->qhd", probs, v.float()).to(q.dtype)


def attention_wrong_grouping(q, k, v, scale):  # head h uses K/V head h % n_kv_heads
    return _attention(q, k, v, scale, expand=lambda t, g: t.repeat(1, g, 1))


def attention_without_mask(q, k, v, scale):  # every token sees the future
    return _attention(q, k, v, scale, expand=lambda t, g: t.repeat_interleave(g, 1), masked=False)


def attention_cannot_see_itself(q, k, v, scale):  # off by one: the mask hides the diagonal too
    return _attention(q, k, v, scale, expand=lambda t, g: t.repeat_interleave(g, 1), diagonal=0)


def attention_softmax_over_queries(q, k, v, scale):
    # softmax along the wrong axis of (head, query, key): each key's column sums to 1, not each query's row
    return _attention(q, k, v, scale, expand=lambda t, g: t.repeat_interleave(g, 1), softmax_dim=-2)


# --- 1.4 the generate loop ----------------------------------------------------------------------
def _loop(model, prompt_ids, params, eos_token_ids, generator, *, same_position=False, stop_at_eos=True, row=-1,
          copy=True, eos_before_append=False):
    device = model.lm_head.weight.device
    tokens, new = list(prompt_ids) if copy else prompt_ids, []
    for _ in range(params.max_tokens):
        ids = torch.tensor(tokens, device=device)
        positions = torch.arange(len(tokens), device=device)
        if same_position:
            positions = torch.zeros_like(positions)
        logits = model.compute_logits(model(ids, positions))[row]
        nxt = sampler.sample(logits, params.temperature, generator)
        if eos_before_append and nxt in eos_token_ids and not params.ignore_eos:
            break
        tokens.append(nxt)
        new.append(nxt)
        if stop_at_eos and nxt in eos_token_ids and not params.ignore_eos:
            break
    return new


@torch.inference_mode()
def generate_every_token_at_position_zero(model, prompt_ids, params, eos_token_ids=(), generator=None):
    # (Shifting *all* positions by one would be no bug: RoPE only sees distances between tokens.)
    return _loop(model, prompt_ids, params, eos_token_ids, generator, same_position=True)


@torch.inference_mode()
def generate_never_stops(model, prompt_ids, params, eos_token_ids=(), generator=None):
    return _loop(model, prompt_ids, params, eos_token_ids, generator, stop_at_eos=False)


@torch.inference_mode()
def generate_from_first_position(model, prompt_ids, params, eos_token_ids=(), generator=None):
    return _loop(model, prompt_ids, params, eos_token_ids, generator, row=0)


@torch.inference_mode()
def generate_returns_prompt_too(model, prompt_ids, params, eos_token_ids=(), generator=None):
    return list(prompt_ids) + _loop(model, prompt_ids, params, eos_token_ids, generator)


@torch.inference_mode()
def generate_grows_the_callers_prompt(model, prompt_ids, params, eos_token_ids=(), generator=None):
    # `tokens = prompt_ids` is no copy: every new token is appended to the caller's own list
    return _loop(model, prompt_ids, params, eos_token_ids, generator, copy=False)


@torch.inference_mode()
def generate_leaves_out_the_eos_token(model, prompt_ids, params, eos_token_ids=(), generator=None):
    # stops on EOS before keeping it: the caller never sees why the sequence ended
    return _loop(model, prompt_ids, params, eos_token_ids, generator, eos_before_append=True)


PLANTED = {
    "rms_norm": [rms_norm_without_eps, rms_norm_without_weight, rms_norm_std_instead_of_rms, rms_norm_without_float32,
                 rms_norm_eps_outside_the_root],
    "apply_rope": [apply_rope_interleaved, apply_rope_wrong_sign],
    "causal_attention": [attention_wrong_grouping, attention_without_mask, attention_cannot_see_itself,
                         attention_softmax_over_queries],
    "generate": [
        generate_every_token_at_position_zero,
        generate_never_stops,
        generate_from_first_position,
        generate_returns_prompt_too,
        generate_grows_the_callers_prompt,
        generate_leaves_out_the_eos_token,
    ],
}

