"""The engine's GPU kernels, one public name each, with a plain-torch twin for the CPU.

    store_kvcache            write new K/V into the paged cache (FP8: quantize with per-head scales)
    paged_attention_decode   one query per sequence against its paged context (the decode step),
                             attending to and storing the step's new K/V when given them, and
                             normalizing and rotating q and the new K on the way (rope)
    paged_attention_prefill  many queries per sequence, causal, against the paged cache
    qk_norm_rope             per-head RMSNorm of q and k (Qwen3), then RoPE, in one pass
    rms_norm                 RMSNorm
    fused_add_rms_norm       residual add + RMSNorm in one pass -> (normed, x + residual)
    silu_and_mul             SwiGLU's gate, silu(gate) * up, in one pass
    linear                   x @ W^T + b; one row (a decode step of one sequence) by a GEMV
                             kernel, which can read silu(gate) * up as its x
    norm_linear              RMSNorm of x + residual, then a linear layer; one row in one kernel
                             (the GEMV normalizes x as it loads it)
    sample_gumbel            one token per row of logits: greedy, temperature, min-p, in one pass

Each name runs the Triton kernel when its tensors are on CUDA and triton imports, and the torch
reference in `reference.py` otherwise. Setting NANOVLLM_TRITON_INTERPRET=1 together with
TRITON_INTERPRET=1 (before triton is imported) runs the Triton kernels on CPU tensors through
Triton's interpreter: that is how the tests check them on a laptop.

A decode row with context_len 0 (the padding of a CUDA-graph batch) gives zeros.

What each kernel does and what was measured: docs/kernels.md.
Check: `python -m pytest tests/final/test_kernels.py -q` (CPU), `tests/final/test_kernels_gpu.py` (GPU)
Speed: `python -m tools.bench_kernels` (GPU)
"""

import os

import torch

from . import reference

try:
    import triton
except ImportError:  # no triton wheel on this platform: the torch path still works
    triton = None
HAS_TRITON = triton is not None

INTERPRET = os.environ.get("NANOVLLM_TRITON_INTERPRET") == "1" and os.environ.get("TRITON_INTERPRET") == "1"


if HAS_TRITON and INTERPRET:
    # Triton 3.6's interpreter turns a loop bound held in a tensor into a Python int with
    # int(array of shape (1,)), which numpy >= 2.4 refuses; .item() works for every numpy.
    from triton.runtime import interpreter as _interpreter

    _patch_lang_tensor = _interpreter._patch_lang_tensor

    def _patch_lang_tensor_item(tensor, scope):
        _patch_lang_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.item()))

    _interpreter._patch_lang_tensor = _patch_lang_tensor_item


def use_triton(t: torch.Tensor) -> bool:
    """Triton for CUDA tensors; for CPU tensors only under the interpreter (tests)."""
    return HAS_TRITON and (t.is_cuda or INTERPRET)


if HAS_TRITON:
    from . import activation, decode_attention, gemv, kvcache, prefill_attention, rmsnorm, rotary, sampling


def store_kvcache(key, value, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
    impl = kvcache if use_triton(key) else reference
    return impl.store_kvcache(key, value, k_cache, v_cache, slot_mapping, k_scale, v_scale)


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                           k_scale=None, v_scale=None, new_kv=None, rope=None):
    impl = decode_attention if use_triton(q) else reference
    return impl.paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                                       k_scale, v_scale, new_kv, rope)


def paged_attention_prefill(q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale,
                            k_scale=None, v_scale=None):
    impl = prefill_attention if use_triton(q) else reference
    return impl.paged_attention_prefill(q, k_cache, v_cache, cu_seqlens_q, context_lens,
                                        block_tables, scale, k_scale, v_scale)


def qk_norm_rope(q, k, positions, cos_sin_cache, q_weight=None, k_weight=None, eps=1e-6):
    impl = rotary if use_triton(q) else reference
    return impl.qk_norm_rope(q, k, positions, cos_sin_cache, q_weight, k_weight, eps)


def rms_norm(x, weight, eps):
    return (rmsnorm if use_triton(x) else reference).rms_norm(x, weight, eps)


def fused_add_rms_norm(x, residual, weight, eps):
    return (rmsnorm if use_triton(x) else reference).fused_add_rms_norm(x, residual, weight, eps)


def silu_and_mul(x):
    return (activation if use_triton(x) else reference).silu_and_mul(x)


def linear(x, weight, bias=None, silu_mul=False, out=None):
    return (gemv if use_triton(x) else reference).linear(x, weight, bias, silu_mul, out)


def norm_linear(x, residual, norm_weight, eps, weight, bias=None):
    return (gemv if use_triton(x) else reference).norm_linear(x, residual, norm_weight, eps, weight, bias)


def sample_gumbel(logits, temperatures, min_ps, generators=None, need_min_p=True):
    impl = sampling if use_triton(logits) else reference
    return impl.sample_gumbel(logits, temperatures, min_ps, generators, need_min_p)


__all__ = ["store_kvcache", "paged_attention_decode", "paged_attention_prefill", "qk_norm_rope", "rms_norm",
           "fused_add_rms_norm", "silu_and_mul", "linear", "norm_linear", "sample_gumbel", "use_triton", "reference"]
