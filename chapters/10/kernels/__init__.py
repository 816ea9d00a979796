"""Chapter 10's kernels: chapter 9's store and decode attention, for a pool of e4m3 codes.

    store_kvcache_fp8           kvcache.py    quantize each head by its scale, then store
    paged_decode_attention_fp8  attention.py  chapter 9's kernel on the codes, the scales folded in

Each public name runs Triton on CUDA tensors and the plain-torch twin on CPU tensors.
"""

from ch10.kernels.attention import paged_decode_attention_fp8
from ch10.kernels.kvcache import store_kvcache_fp8

__all__ = ["paged_decode_attention_fp8", "store_kvcache_fp8"]
