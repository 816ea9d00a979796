"""Paged decode attention over an FP8 pool: chapter 9's kernel, with the scales folded in.

Attention must read each key as code * k_scale and each value as code * v_scale. A program of
chapter 9's kernel reads one KV head, and one scale serves that whole head, so the products can
be regrouped instead of multiplying every key and value as it is loaded:

    q . (code_k * k_scale)            = (q * k_scale) . code_k        scale the query once
    sum_j p_j (code_v_j * v_scale)    = v_scale * sum_j p_j code_v_j  scale the output once

So the kernel runs unchanged on the codes (it loads them and converts to float32 as it did
bf16), the query comes in multiplied by its KV head's k_scale, and the output goes out
multiplied by v_scale: two small multiplies per step instead of one per key. The twin says the
same thing the plain way: gather the codes, dequantize, attend.
"""

import torch

from ch02.attention import cached_attention
from ch03.attention import gather_kv
from ch09.kernels.attention import launch_paged_decode_attention, paged_decode_attention_kernel
from ch10.fp8 import FP8_DTYPE, dequantize_fp8


def per_query_head(scale: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(n_kv_heads,) -> (n_heads, 1): each query head gets the scale of the KV head it reads."""
    return scale.repeat_interleave(n_heads // scale.shape[0])[:, None]


def launch_paged_decode_attention_fp8(kernel, q, k_cache, v_cache, block_tables, context_lens, scale,
                                      k_scale, v_scale) -> torch.Tensor:
    """Run `kernel` (chapter 9's paged_decode_attention_kernel) on an FP8 pool: q (B, n_heads, head_dim) -> same."""
    n_heads = q.shape[1]
    q_scaled = (q.float() * per_query_head(k_scale, n_heads)).contiguous()  # (B, n_heads, head_dim) float32
    out = launch_paged_decode_attention(kernel, q_scaled, k_cache, v_cache, block_tables, context_lens, scale)
    return (out * per_query_head(v_scale, n_heads)).to(q.dtype)


def gather_fp8(cache: torch.Tensor, scale: torch.Tensor, block_table: torch.Tensor, context_len: int) -> torch.Tensor:
    """Chapter 3's gather of one sequence's first context_len codes, dequantized: (context_len, n_kv_heads, head_dim) float32."""
    codes = gather_kv(cache.view(torch.uint8), block_table, context_len).view(FP8_DTYPE)  # indexed as bytes
    return dequantize_fp8(codes, scale)


def paged_decode_attention_fp8_torch(q, k_cache, v_cache, block_tables, context_lens, scale, k_scale, v_scale):
    """The twin: each sequence's keys and values gathered and dequantized, then chapter 2's attention."""
    out = torch.zeros_like(q)
    for i, context_len in enumerate(context_lens.tolist()):
        if context_len > 0:
            k = gather_fp8(k_cache, k_scale, block_tables[i], context_len)  # (context_len, n_kv_heads, head_dim)
            v = gather_fp8(v_cache, v_scale, block_tables[i], context_len)
            out[i:i + 1] = cached_attention(q[i:i + 1].float(), k, v, context_len, scale)
    return out


def paged_decode_attention_fp8(q, k_cache, v_cache, block_tables, context_lens, scale, k_scale, v_scale):
    """q (B, n_heads, head_dim), one query per sequence, over FP8 pools -> (B, n_heads, head_dim):
    the kernel on a GPU, its twin on a CPU."""
    if q.is_cuda:
        return launch_paged_decode_attention_fp8(paged_decode_attention_kernel, q, k_cache, v_cache, block_tables,
                                                 context_lens, scale, k_scale, v_scale)
    return paged_decode_attention_fp8_torch(q, k_cache, v_cache, block_tables, context_lens, scale, k_scale, v_scale)
