"""Triton: Qwen3's per-head RMSNorm of q and k, then RoPE, in one pass over the new tokens.

In torch this is two norms, a float copy, six multiplies, a concatenation and a cast for each
of q and k: about twenty small kernels per layer, each of which reads and writes the whole
tensor. Here one program per token loads its query and key heads once, normalizes them (when
the model has q/k norms), rotates each pair (i, i + d/2) by the token's angles from the cos/sin
table, and writes the result back in place. Same rounding points as reference.qk_norm_rope.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _norm_rope_heads(x_ptr, stride_h, num_heads, w_ptr, cos, sin, offs_d, eps,
                     HALF: tl.constexpr, BLOCK_H: tl.constexpr, NORM: tl.constexpr):
    """Normalize and rotate the (num_heads, 2 * HALF) tile of one token, in place."""
    offs_h = tl.arange(0, BLOCK_H)
    mask = (offs_h[:, None] < num_heads) & (offs_d[None, :] < HALF)
    lo = x_ptr + offs_h[:, None] * stride_h + offs_d[None, :]  # dims [0, d/2)
    hi = lo + HALF  # dims [d/2, d)
    x1 = tl.load(lo, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(hi, mask=mask, other=0.0).to(tl.float32)
    dtype = x_ptr.dtype.element_ty
    if NORM:
        rstd = 1.0 / tl.sqrt((tl.sum(x1 * x1, axis=1) + tl.sum(x2 * x2, axis=1)) / (2 * HALF) + eps)
        w1 = tl.load(w_ptr + offs_d, mask=offs_d < HALF, other=0.0).to(tl.float32)
        w2 = tl.load(w_ptr + HALF + offs_d, mask=offs_d < HALF, other=0.0).to(tl.float32)
        # rms_norm's rounding: normalized in float32, cast, times the weight, cast again
        x1 = ((x1 * rstd[:, None]).to(dtype).to(tl.float32) * w1[None, :]).to(dtype).to(tl.float32)
        x2 = ((x2 * rstd[:, None]).to(dtype).to(tl.float32) * w2[None, :]).to(dtype).to(tl.float32)
    tl.store(lo, (x1 * cos[None, :] - x2 * sin[None, :]).to(dtype), mask=mask)
    tl.store(hi, (x2 * cos[None, :] + x1 * sin[None, :]).to(dtype), mask=mask)


@triton.jit
def norm_rope_rows(x, x_partner, offs_d, head_dim, cos_sin_ptr, pos, w_ptr, eps, NORM: tl.constexpr):
    """The same as _norm_rope_heads, for heads already in registers (the decode attention kernel's
    query rows and new key): x (R, BLOCK_D) one head per row; x_partner the same rows loaded at
    dims rope_partner(offs_d) (i + d/2 for i < d/2, i - d/2 above). -> (R, BLOCK_D) in x's dtype."""
    dtype = x.dtype
    half = head_dim // 2
    mask_d = offs_d < head_dim
    partner = rope_partner(offs_d, head_dim)
    x, x_partner = x.to(tl.float32), x_partner.to(tl.float32)
    if NORM:
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / head_dim + eps)  # (R,)
        w = tl.load(w_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        w_partner = tl.load(w_ptr + partner, mask=mask_d, other=0.0).to(tl.float32)
        x = ((x * rstd[:, None]).to(dtype).to(tl.float32) * w[None, :]).to(dtype).to(tl.float32)
        x_partner = ((x_partner * rstd[:, None]).to(dtype).to(tl.float32) * w_partner[None, :]).to(dtype).to(tl.float32)
    pair = offs_d % half
    cos = tl.load(cos_sin_ptr + pos * (2 * half) + pair, mask=mask_d, other=0.0)
    sin = tl.load(cos_sin_ptr + pos * (2 * half) + half + pair, mask=mask_d, other=0.0)
    sign = tl.where(offs_d < half, -1.0, 1.0)  # (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)
    return (x * cos[None, :] + sign[None, :] * x_partner * sin[None, :]).to(dtype)


@triton.jit
def rope_partner(offs_d, head_dim):
    """The dim each dim is rotated with: i + d/2 below d/2, i - d/2 from there."""
    half = head_dim // 2
    return tl.where(offs_d < half, offs_d + half, offs_d - half)


@triton.jit
def _qk_norm_rope_kernel(
    q_ptr, k_ptr, positions_ptr, cos_sin_ptr, q_weight_ptr, k_weight_ptr,
    stride_qn, stride_qh, stride_kn, stride_kh, stride_cs, num_heads, num_kv_heads, eps,
    HALF: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_HQ: tl.constexpr, BLOCK_HK: tl.constexpr,
    NORM: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    pos = tl.load(positions_ptr + token).to(tl.int64)
    offs_d = tl.arange(0, BLOCK_D)
    cos = tl.load(cos_sin_ptr + pos * stride_cs + offs_d, mask=offs_d < HALF, other=0.0)  # (BLOCK_D,)
    sin = tl.load(cos_sin_ptr + pos * stride_cs + HALF + offs_d, mask=offs_d < HALF, other=0.0)
    _norm_rope_heads(q_ptr + token * stride_qn, stride_qh, num_heads, q_weight_ptr, cos, sin, offs_d, eps,
                     HALF, BLOCK_HQ, NORM)
    _norm_rope_heads(k_ptr + token * stride_kn, stride_kh, num_kv_heads, k_weight_ptr, cos, sin, offs_d, eps,
                     HALF, BLOCK_HK, NORM)


def qk_norm_rope(q, k, positions, cos_sin_cache, q_weight=None, k_weight=None, eps=1e-6):
    """Same contract as reference.qk_norm_rope, but q and k are overwritten and returned."""
    N, num_heads, head_dim = q.shape
    num_kv_heads = k.shape[1]
    assert q.stride(-1) == 1 and k.stride(-1) == 1 and head_dim % 2 == 0
    assert cos_sin_cache.dtype == torch.float32 and cos_sin_cache.stride(-1) == 1
    if N == 0:
        return q, k
    norm = q_weight is not None
    half = head_dim // 2
    _qk_norm_rope_kernel[(N,)](
        q, k, positions, cos_sin_cache, q_weight if norm else q, k_weight if norm else k,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), cos_sin_cache.stride(0), num_heads, num_kv_heads, eps,
        HALF=half, BLOCK_D=triton.next_power_of_2(half), BLOCK_HQ=triton.next_power_of_2(num_heads),
        BLOCK_HK=triton.next_power_of_2(num_kv_heads), NORM=norm, num_warps=4,
    )
    return q, k
