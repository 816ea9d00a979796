"""Triton: Qwen3's per-head RMSNorm of q and k, then RoPE, in one pass over the new tokens.

In torch this is two norms, a float copy, six multiplies, a concatenation and a cast for each
of q and k: about twenty small kernels per layer, each of which reads and writes the whole
tensor. Here one program per token loads its query and key heads, each dim beside the one it is
rotated with (i and i + d/2), normalizes them (when the model has q/k norms), rotates each pair
by the token's angles from the cos/sin table, and writes the result back in place. Same rounding
points as reference.qk_norm_rope. The math (norm_rope_rows) is shared with the decode attention
kernel, which applies it to heads it has loaded anyway.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def rope_partner(offs_d, head_dim):
    """The dim each dim is rotated with: i + d/2 below d/2, i - d/2 from there."""
    half = head_dim // 2
    return tl.where(offs_d < half, offs_d + half, offs_d - half)


@triton.jit
def norm_rope_rows(x, x_partner, offs_d, head_dim, cos_sin_row, w_ptr, eps, NORM: tl.constexpr):
    """Heads in registers, one per row: x (R, BLOCK_D) and x_partner, the same rows loaded at dims
    rope_partner(offs_d); cos_sin_row points at the token's cos | sin. Normalized (NORM) and
    rotated -> (R, BLOCK_D) in x's dtype. Also the decode attention kernel's, for its query rows
    and new key (decode_split.py)."""
    dtype = x.dtype
    half = head_dim // 2
    mask_d = offs_d < head_dim
    x, x_partner = x.to(tl.float32), x_partner.to(tl.float32)
    if NORM:
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / head_dim + eps)  # (R,)
        w = tl.load(w_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        w_partner = tl.load(w_ptr + rope_partner(offs_d, head_dim), mask=mask_d, other=0.0).to(tl.float32)
        # rms_norm's rounding: normalized in float32, cast, times the weight, cast again
        x = ((x * rstd[:, None]).to(dtype).to(tl.float32) * w[None, :]).to(dtype).to(tl.float32)
        x_partner = ((x_partner * rstd[:, None]).to(dtype).to(tl.float32) * w_partner[None, :]).to(dtype).to(tl.float32)
    pair = offs_d % half
    cos = tl.load(cos_sin_row + pair, mask=mask_d, other=0.0)
    sin = tl.load(cos_sin_row + half + pair, mask=mask_d, other=0.0)
    sign = tl.where(offs_d < half, -1.0, 1.0)  # (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)
    return (x * cos[None, :] + sign[None, :] * x_partner * sin[None, :]).to(dtype)


@triton.jit
def _norm_rope_heads(x_ptr, stride_h, num_heads, w_ptr, cos_sin_row, offs_d, head_dim, eps,
                     BLOCK_H: tl.constexpr, NORM: tl.constexpr):
    """Normalize and rotate the (num_heads, head_dim) heads of one token, in place."""
    offs_h = tl.arange(0, BLOCK_H)
    mask = (offs_h[:, None] < num_heads) & (offs_d[None, :] < head_dim)
    rows = x_ptr + offs_h[:, None] * stride_h
    x = tl.load(rows + offs_d[None, :], mask=mask, other=0.0)
    x_partner = tl.load(rows + rope_partner(offs_d, head_dim)[None, :], mask=mask, other=0.0)
    tl.store(rows + offs_d[None, :], norm_rope_rows(x, x_partner, offs_d, head_dim, cos_sin_row, w_ptr, eps, NORM),
             mask=mask)


@triton.jit
def _qk_norm_rope_kernel(
    q_ptr, k_ptr, positions_ptr, cos_sin_ptr, q_weight_ptr, k_weight_ptr,
    stride_qn, stride_qh, stride_kn, stride_kh, stride_cs, num_heads, num_kv_heads, head_dim, eps,
    BLOCK_D: tl.constexpr, BLOCK_HQ: tl.constexpr, BLOCK_HK: tl.constexpr, NORM: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    cos_sin_row = cos_sin_ptr + tl.load(positions_ptr + token).to(tl.int64) * stride_cs
    offs_d = tl.arange(0, BLOCK_D)
    _norm_rope_heads(q_ptr + token * stride_qn, stride_qh, num_heads, q_weight_ptr, cos_sin_row, offs_d, head_dim,
                     eps, BLOCK_HQ, NORM)
    _norm_rope_heads(k_ptr + token * stride_kn, stride_kh, num_kv_heads, k_weight_ptr, cos_sin_row, offs_d, head_dim,
                     eps, BLOCK_HK, NORM)


def qk_norm_rope(q, k, positions, cos_sin_cache, q_weight=None, k_weight=None, eps=1e-6):
    """Same contract as reference.qk_norm_rope, but q and k are overwritten and returned."""
    N, num_heads, head_dim = q.shape
    num_kv_heads = k.shape[1]
    assert q.stride(-1) == 1 and k.stride(-1) == 1 and head_dim % 2 == 0
    assert cos_sin_cache.dtype == torch.float32 and cos_sin_cache.stride(-1) == 1
    if N == 0:
        return q, k
    norm = q_weight is not None
    _qk_norm_rope_kernel[(N,)](
        q, k, positions, cos_sin_cache, q_weight if norm else q, k_weight if norm else k,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), cos_sin_cache.stride(0), num_heads, num_kv_heads,
        head_dim, eps, BLOCK_D=triton.next_power_of_2(head_dim), BLOCK_HQ=triton.next_power_of_2(num_heads),
        BLOCK_HK=triton.next_power_of_2(num_kv_heads), NORM=norm, num_warps=4,
    )
    return q, k
