"""Attention over an FP8 pool: quantize on the way in, dequantize on the way out.

Chapter 9's attention stores each step's K/V and, for a step of one query per sequence, runs the
paged decode kernel; for a step in which a sequence computes several tokens, chapter 3's gather
and attention. Here the same three paths read and write e4m3 codes:

    store    kernels.store_kvcache_fp8      each head divided by its scale, clamped, cast
    decode   kernels.paged_decode_attention_fp8  chapter 9's kernel, the scales folded in
    prefill  gather_fp8, then chapter 2's attention   codes * scale, then the usual softmax

The scales (k_scale, v_scale: (n_kv_heads,) float32, one pair per layer) are set once, from the
first tokens the layer stores after the model runner arms it (`calibrate_fp8`), and then never
change: a code stored earlier must mean the same value at every later step.
"""

import torch

from ch02.attention import cached_attention
from ch03.context import get_context
from ch09 import attention
from ch10 import fp8
from ch10.kernels import paged_decode_attention_fp8, store_kvcache_fp8
from ch10.kernels.attention import gather_fp8


class Attention(attention.Attention):
    k_scale = v_scale = None  # (n_kv_heads,) float32, given by the model runner with the FP8 pool
    fp8_calibrated = True

    def calibrate_fp8(self) -> None:
        """Take this layer's scales from the next tokens it stores."""
        self.fp8_calibrated = False

    def set_fp8_scales(self, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        stored = slot_mapping >= 0  # a CUDA graph's padding rows store nothing and set nothing
        for x, scale in ((k, self.k_scale), (v, self.v_scale)):
            scale.copy_(fp8.fp8_scales(x[stored]))  # in place: the graphs read this very tensor
        self.fp8_calibrated = True

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (N, n_heads, head_dim); k, v: (N, n_kv_heads, head_dim) -> (N, n_heads, head_dim)."""
        ctx = get_context()
        if not self.fp8_calibrated:
            self.set_fp8_scales(k, v, ctx.slot_mapping)
        store_kvcache_fp8(k, v, self.k_cache, self.v_cache, self.k_scale, self.v_scale, ctx.slot_mapping)
        if q.shape[0] == ctx.context_lens.shape[0]:  # one query per sequence: the decode kernel
            return paged_decode_attention_fp8(q, self.k_cache, self.v_cache, ctx.block_tables,
                                              ctx.context_lens.to(q.device), self.scale, self.k_scale, self.v_scale)
        cu = ctx.cu_seqlens_q.tolist()
        out = torch.empty_like(q)
        for i, context_len in enumerate(ctx.context_lens.tolist()):
            s, e = cu[i], cu[i + 1]
            k_seq = gather_fp8(self.k_cache, self.k_scale, ctx.block_tables[i], context_len)  # (context_len, n_kv_heads, head_dim)
            v_seq = gather_fp8(self.v_cache, self.v_scale, ctx.block_tables[i], context_len)
            out[s:e] = cached_attention(q[s:e].float(), k_seq, v_seq, context_len, self.scale)
        return out
