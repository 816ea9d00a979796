"""Chapter 9's kernels, each a readable Triton kernel beside its plain-torch twin.

    store_kvcache           kvcache.py    new K/V to their slots of the pool
    paged_decode_attention  attention.py  one query per sequence against its blocks, in place
    fused_add_rms_norm      rmsnorm.py    residual add + RMSNorm in one pass

Each public name runs the Triton kernel on CUDA tensors and the twin on CPU tensors. The tests
run the kernels on a CPU too, through Triton's interpreter (ch09/tests/interpreter.py).
"""

from ch09.kernels.attention import paged_decode_attention
from ch09.kernels.kvcache import store_kvcache
from ch09.kernels.rmsnorm import fused_add_rms_norm

__all__ = ["fused_add_rms_norm", "paged_decode_attention", "store_kvcache"]
