"""The FP8 store: each new token's key and value, quantized per head on the way into the pool.

Chapter 9's store copied numbers; this one does arithmetic on them first. A token's key is
(n_kv_heads, head_dim) numbers and each head has its own scale, so a program loads the token's
whole key as a 2-D tile, one row per head, and the head's scale as a column:

    codes = cast_e4m3(clamp(key / scale[head], -448, 448))      (n_kv_heads, head_dim)

Grid: (N,), one program per token; slot -1 stores nothing (a CUDA graph's padding). Its twin,
`store_kvcache_fp8_torch`, quantizes with `quantize_fp8` and writes with chapter 9's twin.
"""

import torch
import triton
import triton.language as tl

from ch09.kernels.kvcache import store_kvcache_torch
from ch10 import solutions  # exercise 10.3's quantize_fp8 is in the answer key
from ch10.e4m3 import E4M3_MAX


@triton.jit
def quantize_head_rows(x_ptr, cache_ptr, scale_ptr, row, offs, h, n_kv_heads, FP8_MAX: tl.constexpr):
    """Load one token's (HEADS, HEAD_DIM) tile at x_ptr + offs, quantize each row by its head's
    scale, and store the codes at cache_ptr + row + offs."""
    keep = (h < n_kv_heads)[:, None]  # (HEADS, 1): the rows past n_kv_heads are padding
    x = tl.load(x_ptr + offs, mask=keep, other=0.0).to(tl.float32)
    scale = tl.load(scale_ptr + h, mask=h < n_kv_heads, other=1.0)[:, None]  # (HEADS, 1): each row its head's
    codes = tl.clamp(x / scale, -FP8_MAX, FP8_MAX)  # e4m3 has no infinity: hold large values at 448
    tl.store(cache_ptr + row + offs, codes.to(cache_ptr.dtype.element_ty), mask=keep)


@triton.jit
def store_kvcache_fp8_kernel(key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr,
                             slot_mapping_ptr, key_stride, value_stride, n_kv_heads,
                             HEADS: tl.constexpr, HEAD_DIM: tl.constexpr, FP8_MAX: tl.constexpr):
    token = tl.program_id(0)
    slot = tl.load(slot_mapping_ptr + token)
    if slot == -1:
        return
    h = tl.arange(0, HEADS)  # n_kv_heads rounded up to a power of two
    offs = h[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]  # (HEADS, HEAD_DIM): one row per head
    row = slot * n_kv_heads * HEAD_DIM  # the slot's first number in the pool
    quantize_head_rows(key_ptr + token * key_stride, k_cache_ptr, k_scale_ptr, row, offs, h, n_kv_heads, FP8_MAX)
    quantize_head_rows(value_ptr + token * value_stride, v_cache_ptr, v_scale_ptr, row, offs, h, n_kv_heads, FP8_MAX)


def launch_store_kvcache_fp8(kernel, key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping) -> None:
    """Run `kernel` over key, value (N, n_kv_heads, head_dim) into FP8 pools (num_blocks, block_size, n_kv_heads, head_dim)."""
    N, n_kv_heads, head_dim = key.shape
    assert key.stride(-1) == value.stride(-1) == 1 and key.stride(1) == value.stride(1) == head_dim
    assert k_cache.is_contiguous() and v_cache.is_contiguous() and k_cache.shape[-2:] == (n_kv_heads, head_dim)
    assert head_dim == triton.next_power_of_2(head_dim), f"head_dim {head_dim} is not a power of two"
    assert k_scale.shape == v_scale.shape == (n_kv_heads,) and slot_mapping.shape == (N,)
    kernel[(N,)](key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping, key.stride(0), value.stride(0),
                 n_kv_heads, HEADS=triton.next_power_of_2(n_kv_heads), HEAD_DIM=head_dim, FP8_MAX=E4M3_MAX)


def store_kvcache_fp8_torch(key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping) -> None:
    """The twin: quantize (exercise 10.3's quantize_fp8), then chapter 9's store, byte for byte (indexing a
    float8 tensor is not supported on every device; its bytes as uint8 are)."""
    codes_k, codes_v = solutions.quantize_fp8(key, k_scale), solutions.quantize_fp8(value, v_scale)
    as_bytes = lambda t: t.view(torch.uint8)  # noqa: E731
    store_kvcache_torch(as_bytes(codes_k), as_bytes(codes_v), as_bytes(k_cache), as_bytes(v_cache), slot_mapping)


def store_kvcache_fp8(key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping) -> None:
    """key, value (N, n_kv_heads, head_dim) quantized into the FP8 pools at slot_mapping (N,):
    the kernel on a GPU, its twin on a CPU."""
    if key.is_cuda:
        launch_store_kvcache_fp8(store_kvcache_fp8_kernel, key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping)
    else:
        store_kvcache_fp8_torch(key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping)
