"""Attention over an FP8 pool: quantize on the way in, dequantize on the way out.

Chapter 9's attention stores each step's K/V and, for a step of one query per sequence, runs the
paged decode kernel; for a step in which a sequence computes several tokens, chapter 3's gather
and attention. Its forward stays; the three methods it calls read and write e4m3 codes here:

    store    kernels.store_kvcache_fp8           each head divided by its scale, clamped, cast
    decode   kernels.paged_decode_attention_fp8  chapter 9's kernel, the scales folded in
    gather   gather_fp8                          codes * scale, for chapter 3's loop (prompts, chunks)

The scales (k_scale, v_scale: (n_kv_heads,) float32, one pair per layer) are set once, from the
first tokens the layer stores after the model runner arms it (`calibrate_fp8`), and then never
change: a code stored earlier must mean the same value at every later step.
"""

import torch

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

    def store(self, k: torch.Tensor, v: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        if not self.fp8_calibrated:  # the first tokens stored after calibrate_fp8 set the scales
            self.set_fp8_scales(k, v, slot_mapping)
        store_kvcache_fp8(k, v, self.k_cache, self.v_cache, self.k_scale, self.v_scale, slot_mapping)

    def gather(self, block_table: torch.Tensor, context_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One sequence's keys and values as codes * scale, float32 (chapter 3's loop attends in it)."""
        return (gather_fp8(self.k_cache, self.k_scale, block_table, context_len),
                gather_fp8(self.v_cache, self.v_scale, block_table, context_len))

    def decode(self, q: torch.Tensor, block_tables: torch.Tensor, context_lens: torch.Tensor) -> torch.Tensor:
        return paged_decode_attention_fp8(q, self.k_cache, self.v_cache, block_tables, context_lens, self.scale,
                                          self.k_scale, self.v_scale)
