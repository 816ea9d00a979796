"""Attention over the paged KV cache.

Every call writes this step's keys and values into the cache at `slot_mapping` and attends over
the cache and them, so a query sees its sequence's cached past (earlier chunks, prefix-cache
hits, earlier decode steps) and the tokens of this step alike:

    decode step (one query per sequence)   paged_attention_decode, which stores the new tokens itself
    prefill / chunks / mixed batches       store_kvcache, then paged_attention_prefill (causal from
                                           each query's position)

A prefill that reads nothing from the cache (no hits, no earlier chunks) attends over the fresh
q/k/v directly, which is faster than reading the cache back: torch's varlen (flash) attention on
a GPU, SDPA per sequence on a CPU. Before the cache exists (the GPU memory-profiling warm-up)
that path is the only one. An FP8 cache always reads back, so prefill sees the same rounded
keys and values as decode.

An FP8 cache keeps one scale per KV head for keys and one for values (kernels/kvcache.py). They
are set from the first prefill that stores anything after `calibrate_fp8()` (the model runner
calls it once the cache exists): the largest |k| and |v| of each head in those tokens, with
headroom for larger ones later (reference.FP8_HEADROOM). No host sync: a Python flag says
whether it happened, and the amax stays on the device.
"""

import functools
import inspect

import torch
import torch.nn.functional as F
from torch import nn

from nanovllm_final.kernels import paged_attention_decode, paged_attention_prefill, reference, store_kvcache
from nanovllm_final.utils.context import get_context

@functools.cache
def varlen():
    """torch's varlen attention and the names of its arguments (they grew across torch releases), or
    (None, set()) on an older torch. Imported on first use on a GPU: the import pulls in torch's
    compiler stack, which costs a CPU-only process (a test, a notebook) seconds for nothing."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:  # older torch: fall back to SDPA per sequence
        return None, set()
    return varlen_attn, set(inspect.signature(varlen_attn).parameters)


def attention_without_cache(q, k, v, cu_seqlens_q, max_seqlen_q, scale):
    """Causal attention of each sequence over its own fresh tokens. q (N, H, d); k, v (N, Hkv, d)."""
    varlen_attn, VARLEN_ARGS = varlen() if q.is_cuda else (None, set())
    if varlen_attn is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and \
            ("scale" in VARLEN_ARGS or scale == q.shape[-1] ** -0.5):
        kwargs = {"scale": scale} if "scale" in VARLEN_ARGS else {}
        kwargs.update({"window_size": (-1, 0)} if "window_size" in VARLEN_ARGS else {"is_causal": True})
        if "enable_gqa" in VARLEN_ARGS:
            kwargs["enable_gqa"] = True
        else:  # older releases want as many K/V heads as query heads
            group = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        return varlen_attn(q, k, v, cu_seqlens_q, cu_seqlens_q, max_seqlen_q, max_seqlen_q, **kwargs)
    out = torch.empty_like(q)
    cu = cu_seqlens_q.tolist()
    for start, end in zip(cu[:-1], cu[1:]):
        qi, ki, vi = (t[start:end].transpose(0, 1) for t in (q, k, v))  # (heads, L, d)
        o = F.scaled_dot_product_attention(qi, ki, vi, is_causal=True, scale=scale, enable_gqa=True)
        out[start:end] = o.transpose(0, 1)
    return out


class Attention(nn.Module):
    def __init__(self, num_heads: int, head_dim: int, scale: float, num_kv_heads: int):
        super().__init__()
        self.num_heads, self.head_dim, self.scale, self.num_kv_heads = num_heads, head_dim, scale, num_kv_heads
        # Filled in by the model runner once the pool is sized: views into one big tensor.
        self.k_cache = self.v_cache = torch.tensor([])
        self.k_scale = self.v_scale = None  # (Hkv,) float32 with an FP8 cache
        self.fp8_calibrated = True

    def calibrate_fp8(self) -> None:
        """Take this layer's FP8 scales from the next prefill that stores tokens."""
        self.fp8_calibrated = False

    def set_fp8_scales(self, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        stored = (slot_mapping >= 0)[:, None, None]  # (N, 1, 1): padding and cached tokens do not count
        for x, scale in ((k, self.k_scale), (v, self.v_scale)):
            new = reference.fp8_scales(torch.where(stored, x.float(), 0.0))
            scale.copy_(torch.where(new > reference.FP8_MIN_SCALE, new, scale))  # a head that saw only zeros keeps its scale
        self.fp8_calibrated = True

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: tuple | None = None) -> torch.Tensor:
        """q (N, H, d), k and v (N, Hkv, d) -> (N, H, d). rope (a decode step only:
        RotaryEmbedding.decode_args): q and k are not normalized and rotated yet, the kernel does it."""
        ctx = get_context()
        has_cache = self.k_cache.numel() > 0
        if not ctx.is_prefill:  # the decode kernel stores each sequence's new token itself
            return paged_attention_decode(q, self.k_cache, self.v_cache, ctx.block_tables, ctx.context_lens,
                                          self.scale, self.k_scale, self.v_scale, (k, v, ctx.slot_mapping), rope)
        assert rope is None, "a prefill's q and k are rotated before attention (RotaryEmbedding.forward)"
        if has_cache:
            if not self.fp8_calibrated:
                self.set_fp8_scales(k, v, ctx.slot_mapping)
            store_kvcache(k, v, self.k_cache, self.v_cache, ctx.slot_mapping, self.k_scale, self.v_scale)
        if not has_cache or (ctx.no_cache_reads and self.k_scale is None):
            return attention_without_cache(q, k, v, ctx.cu_seqlens_q, ctx.max_seqlen_q, self.scale)
        return paged_attention_prefill(q, self.k_cache, self.v_cache, ctx.cu_seqlens_q, ctx.context_lens,
                                       ctx.block_tables, self.scale, self.k_scale, self.v_scale)
