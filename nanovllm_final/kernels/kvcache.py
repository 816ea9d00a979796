"""Triton kernel: write this step's keys and values into the paged KV cache.

Spec: `reference.store_kvcache`. Token i of the batch goes to slot = slot_mapping[i], i.e. block
slot // block_size, row slot % block_size; slot -1 (a padded token, or one whose KV is already
cached) is skipped. Prefill and mixed steps store through this kernel; a decode step hands its
tokens to the decode kernel instead, which stores them itself (decode_attention.py, new_kv). A
key-major V (FP8) is written by _store_v_key_major_kernel, 32 tokens a warp, so that a prefill's
consecutive tokens write neighbouring bytes together, where each token writing its own V values
would write them 256 bytes apart (docs/kernels.md has the measurement).

Grid: (N,) - one program per token, covering all of its KV heads at once (a (Hkv, d) tile, 2 KiB
for 8 heads x 128 dims in bf16). Pure data movement: the kernel reads 2*N*Hkv*d elements and
writes as many.

Layouts: both caches are (num_blocks, block_size, Hkv, d) tensors, and each is addressed through
its own strides. K always has d contiguous; an FP8 engine keeps K head-major inside each block
(stored as (num_blocks, Hkv, block_size, d): a head's keys one run of bytes) and V key-major
(stored as (num_blocks, Hkv, d, block_size)), both seen through permuted views, because decode
attention reads a head's keys a tile at a time and multiplies probabilities by V along the keys
(decode_split_fp8.py). Writing one token of such a V scatters its d values block_size bytes
apart; a step writes one token per sequence.

FP8 (cache dtype float8_e4m3fn): the cache keeps x / scale in e4m3, saturated at +-448, with
one float32 scale per KV head and layer (k_scale, v_scale (Hkv,), set once by the attention
layer from the first tokens it stores: reference.fp8_scales). A per-head scale, unlike a
per-token one, folds out of attention's inner loop: into q before it and into the output after.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k store` (GPU, real shapes)
"""

import triton
import triton.language as tl

from .reference import FP8_MAX, is_fp8, is_key_major

V_TOKENS = 32  # tokens per program of _store_v_key_major_kernel: one warp's lanes


@triton.jit
def encode(x, scale, CACHE_DTYPE: tl.constexpr, FP8: tl.constexpr, FP8_MAX: tl.constexpr):
    """x as the cache keeps it: FP8 codes of x / scale, saturated at +-FP8_MAX, or x cast. The
    decode kernel stores its step's tokens through this too (decode_split.attend_and_store_new_token)."""
    if FP8:
        x = tl.clamp(x.to(tl.float32) / scale, -FP8_MAX, FP8_MAX)
    return x.to(CACHE_DTYPE)


@triton.jit
def _store_one(x_ptr, stride_xh, cache_ptr, scale_ptr, slot, block_size, num_kv_heads,
               stride_cb, stride_ct, stride_ch, stride_cd, offs_h, offs_d, mask,
               FP8: tl.constexpr, FP8_MAX: tl.constexpr):
    """Store one token's (Hkv, d) tile of K or V at `slot`."""
    x = tl.load(x_ptr + offs_h[:, None] * stride_xh + offs_d[None, :], mask=mask, other=0.0)
    block = slot // block_size
    row = slot % block_size
    dst = cache_ptr + block * stride_cb + row * stride_ct + offs_h[:, None] * stride_ch + offs_d[None, :] * stride_cd
    scale = 1.0
    if FP8:
        scale = tl.load(scale_ptr + offs_h, mask=offs_h < num_kv_heads, other=1.0)[:, None]  # (Hkv, 1)
    tl.store(dst, encode(x, scale, cache_ptr.dtype.element_ty, FP8, FP8_MAX), mask=mask)


@triton.jit
def _store_kvcache_kernel(
    key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr, slot_mapping_ptr,
    stride_kn, stride_kh, stride_vn, stride_vh,
    stride_kb, stride_kt, stride_kc,  # K cache strides: block, row in block, head (d is contiguous)
    stride_vb, stride_vt, stride_vc, stride_vd,  # V cache strides: block, row, head, d
    block_size, num_kv_heads, head_dim,
    BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
    FP8: tl.constexpr, FP8_MAX: tl.constexpr, STORE_V: tl.constexpr,
):
    token = tl.program_id(0)
    slot = tl.load(slot_mapping_ptr + token).to(tl.int64)
    if slot < 0:  # nothing to store for this token
        return
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_h[:, None] < num_kv_heads) & (offs_d[None, :] < head_dim)  # (BLOCK_H, BLOCK_D)
    token = token.to(tl.int64)
    _store_one(key_ptr + token * stride_kn, stride_kh, k_cache_ptr, k_scale_ptr, slot,
               block_size, num_kv_heads, stride_kb, stride_kt, stride_kc, 1, offs_h, offs_d, mask,
               FP8, FP8_MAX)
    if STORE_V:  # (a key-major V goes through _store_v_key_major_kernel)
        _store_one(value_ptr + token * stride_vn, stride_vh, v_cache_ptr, v_scale_ptr, slot,
                   block_size, num_kv_heads, stride_vb, stride_vt, stride_vc, stride_vd, offs_h, offs_d, mask,
                   FP8, FP8_MAX)


@triton.jit
def _store_v_key_major_kernel(
    value_ptr, v_cache_ptr, v_scale_ptr, slot_mapping_ptr, stride_vn, stride_vh,
    stride_vb, stride_vc, stride_vd, block_size, num_tokens, head_dim,
    TOKENS: tl.constexpr, FP8: tl.constexpr, FP8_MAX: tl.constexpr,
):
    """V of TOKENS consecutive tokens for one KV head, into a key-major cache (keys contiguous for
    each (block, head, d)): one d at a time, the tokens along a warp's lanes, so that where they
    hold consecutive slots, as a prefill's tokens do, the warp writes TOKENS neighbouring bytes in
    one memory transaction, where a token at a time writes its d values 256 bytes apart."""
    head = tl.program_id(1)
    tokens = tl.program_id(0) * TOKENS + tl.arange(0, TOKENS)
    slots = tl.load(slot_mapping_ptr + tokens, mask=tokens < num_tokens, other=-1).to(tl.int64)  # (TOKENS,)
    keep = slots >= 0
    dst = v_cache_ptr + slots // block_size * stride_vb + slots % block_size + head * stride_vc
    src = value_ptr + tokens.to(tl.int64) * stride_vn + head * stride_vh
    scale = 1.0
    if FP8:
        scale = tl.load(v_scale_ptr + head)
    for d in range(head_dim):  # a token's row of d values stays in L1 across the loop
        x = tl.load(src + d, mask=keep, other=0.0)
        tl.store(dst + d * stride_vd, encode(x, scale, v_cache_ptr.dtype.element_ty, FP8, FP8_MAX), mask=keep)


def store_kvcache(key, value, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
    """Same contract as reference.store_kvcache; key/value may be strided views of a fused QKV."""
    N, num_kv_heads, head_dim = key.shape
    if N == 0:
        return
    assert key.stride(-1) == 1 and value.stride(-1) == 1, "head_dim must be contiguous"
    assert k_cache.stride(-1) == 1, "head_dim must be contiguous in the K cache"
    fp8 = is_fp8(k_cache)
    if fp8:
        assert k_scale is not None and v_scale is not None and k_scale.is_contiguous() and v_scale.is_contiguous()
    else:  # unused pointers: pass the caches so the launch has a tensor to point at
        k_scale, v_scale = k_cache, v_cache
    v_key_major = is_key_major(v_cache, k_cache)
    _store_kvcache_kernel[(N,)](
        key, value, k_cache, v_cache, k_scale, v_scale, slot_mapping,
        key.stride(0), key.stride(1), value.stride(0), value.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), v_cache.stride(3),
        k_cache.shape[1], num_kv_heads, head_dim,
        BLOCK_H=triton.next_power_of_2(num_kv_heads), BLOCK_D=triton.next_power_of_2(head_dim),
        FP8=fp8, FP8_MAX=FP8_MAX, STORE_V=not v_key_major,
        num_warps=4,
    )
    if v_key_major:
        _store_v_key_major_kernel[(triton.cdiv(N, V_TOKENS), num_kv_heads)](
            value, v_cache, v_scale, slot_mapping, value.stride(0), value.stride(1),
            v_cache.stride(0), v_cache.stride(2), v_cache.stride(3), k_cache.shape[1], N, head_dim,
            TOKENS=V_TOKENS, FP8=fp8, FP8_MAX=FP8_MAX, num_warps=max(1, V_TOKENS // 32),
        )
