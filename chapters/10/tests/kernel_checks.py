"""Chapter 10's FP8 kernels against their torch twins, under Triton's interpreter (chapter 9's
tests/interpreter.py sends a check to a child process that has it on).

    store   heads not a power of two (a padded head row), slot -1, slots either side of a block
            edge, keys that are strided views of one fused projection, heads whose scales differ
            by 1000x, and values far past the range (saturated, never NaN): byte for byte
    decode  chapter 9's decode cases (block edges, empty contexts, GQA groups of 1, 2 and 3) on
            FP8 pools whose heads have different scales, through the launcher that folds the
            scales into the query and the output
"""

import torch
import triton
import triton.language as tl

from ch09.kernels.kvcache import store_kvcache_torch
from ch09.tests.kernel_checks import DECODE_CASES, _compare, _paged_case
from ch10.e4m3 import E4M3_MAX
from ch10.fp8 import FP8_DTYPE, fp8_scales
from ch10.solutions import quantize_fp8
from ch10.kernels import attention, kvcache


@triton.jit
def _cast_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n).to(y_ptr.dtype.element_ty), mask=offs < n)


def triton_cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x.to(dtype) by Triton itself. A GPU rounds float32 to e4m3 exactly as torch does; Triton's
    interpreter does not (it rounds some ties and a few other values differently), so the
    kernel's codes are compared with Triton's own cast of the twin's scaled and clamped values."""
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    _cast_kernel[(1,)](x.contiguous(), out, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    return out


def store_with_triton_cast(key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping):
    """The twin's arithmetic (scale, clamp) with Triton's cast to e4m3, stored byte for byte."""
    for x, cache, scale in ((key, k_cache, k_scale), (value, v_cache, v_scale)):
        scaled = (x.float() / scale[:, None]).clamp(-E4M3_MAX, E4M3_MAX)
        codes = triton_cast(scaled, FP8_DTYPE).view(torch.uint8)
        store_kvcache_torch(codes, codes, cache.view(torch.uint8), cache.view(torch.uint8), slot_mapping)

STORE_CASES = [(1, 16, torch.float32), (3, 8, torch.float16), (2, 4, torch.bfloat16)]  # (n_kv_heads, head_dim, dtype)


def check_store_kvcache_fp8_kernel(fn) -> None:
    kernel = triton.jit(fn)
    num_blocks, block_size = 5, 4
    slots = torch.tensor([3, -1, 4, 19, 0, 9, -1, 8])
    for n_kv_heads, head_dim, dtype in STORE_CASES:
        torch.manual_seed(0)
        N, D = len(slots), n_kv_heads * head_dim
        qkv = torch.randn(N, 3 * D) * torch.logspace(-2, 1, 3 * D)  # heads of very different sizes
        qkv[2, D] = 1e4  # far past 448 * scale: must saturate
        qkv = qkv.to(dtype)
        key = qkv[:, D:2 * D].view(N, n_kv_heads, head_dim)
        value = qkv[:, 2 * D:].view(N, n_kv_heads, head_dim)
        k_scale, v_scale = fp8_scales(key[:4]), fp8_scales(value[:4])  # from the first tokens, as the engine does
        caches = [torch.zeros(num_blocks, block_size, n_kv_heads, head_dim, dtype=FP8_DTYPE) for _ in range(4)]
        kvcache.launch_store_kvcache_fp8(kernel, key, value, caches[0], caches[1], k_scale, v_scale, slots)
        store_with_triton_cast(key, value, caches[2], caches[3], k_scale, v_scale, slots)
        case = f"store_kvcache_fp8, n_kv_heads={n_kv_heads}, head_dim={head_dim}, {dtype}, slots={slots.tolist()}"
        for name, got, want in (("k_cache", caches[0], caches[2]), ("v_cache", caches[1], caches[3])):
            assert not got.float().isnan().any(), f"{case}: {name} holds NaN codes (a value past 448 must saturate)"
            _compare(f"{case}: {name} codes against the twin's", got.view(torch.uint8), want.view(torch.uint8), 0)


def fp8_paged_case(n_heads, n_kv_heads, head_dim, block_size, context_lens, dtype):
    """Chapter 9's decode case, its pools quantized with scales that differ from head to head."""
    q, k, v, block_tables, lens = _paged_case(n_heads, n_kv_heads, head_dim, block_size, context_lens, dtype)
    sizes = torch.logspace(-1, 1, n_kv_heads)[None, None, :, None]  # head h's values around 10^(2h/(n-1) - 1)
    k, v = k.float() * sizes, v.float() * sizes.flip(2)
    k_scale, v_scale = fp8_scales(k.flatten(0, 1)), fp8_scales(v.flatten(0, 1))
    return q, quantize_fp8(k, k_scale), quantize_fp8(v, v_scale), block_tables, lens, k_scale, v_scale


def check_paged_decode_attention_fp8(fn, launch=None) -> None:
    """fn: chapter 9's decode kernel (or a learner's); launch: the FP8 launcher (the chapter's, or a planted one)."""
    kernel, launch = triton.jit(fn), launch or attention.launch_paged_decode_attention_fp8
    for case in DECODE_CASES:
        q, k_cache, v_cache, block_tables, lens, k_scale, v_scale = fp8_paged_case(*case)
        scale = case[2] ** -0.5
        got = launch(kernel, q, k_cache, v_cache, block_tables, lens, scale, k_scale, v_scale)
        want = attention.paged_decode_attention_fp8_torch(q, k_cache, v_cache, block_tables, lens, scale, k_scale, v_scale)
        tol = (1e-5 if case[-1] == torch.float32 else 2e-3) * want.abs().max().item()  # relative to the outputs
        _compare(f"paged_decode_attention_fp8, {case[0]} query heads on {case[1]} K/V heads, block_size {case[3]}, "
                 f"context_lens {case[4]}, {case[-1]}", got.float(), want.float(), tol)


# --- wrong launchers the decode check must reject ---------------------------------------------------
def launch_scales_twice(kernel, q, k_cache, v_cache, block_tables, lens, scale, k_scale, v_scale):
    # dequantizes the keys and also folds k_scale into the query: the scores scaled twice
    heads = attention.per_query_head(k_scale, q.shape[1])
    return attention.launch_paged_decode_attention_fp8(kernel, q * heads, k_cache, v_cache, block_tables, lens, scale,
                                                       k_scale, v_scale)


def launch_heads_in_turn(kernel, q, k_cache, v_cache, block_tables, lens, scale, k_scale, v_scale):
    # query head h takes KV head h % n_kv_heads's scale (repeat, not repeat_interleave): the wrong head's
    group = q.shape[1] // k_scale.shape[0]
    q_scaled = (q.float() * k_scale.repeat(group)[:, None]).contiguous()
    out = attention.launch_paged_decode_attention(kernel, q_scaled, k_cache, v_cache, block_tables, lens, scale)
    return (out * v_scale.repeat(group)[:, None]).to(q.dtype)


def launch_without_v_scale(kernel, q, k_cache, v_cache, block_tables, lens, scale, k_scale, v_scale):
    # forgets the values' scale: the output is in codes, not values
    q_scaled = (q.float() * attention.per_query_head(k_scale, q.shape[1])).contiguous()
    return attention.launch_paged_decode_attention(kernel, q_scaled, k_cache, v_cache, block_tables, lens, scale).to(q.dtype)


WRONG_LAUNCHERS = [launch_scales_twice, launch_heads_in_turn, launch_without_v_scale]


def check_wrong_launchers_are_caught(fn) -> None:
    for launch in WRONG_LAUNCHERS:
        try:
            check_paged_decode_attention_fp8(fn, launch)
        except AssertionError:
            continue
        raise AssertionError(f"the FP8 decode check passed {launch.__name__}, a wrong launcher")
