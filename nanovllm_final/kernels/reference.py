"""Plain-torch versions of every kernel: the spec the Triton kernels are tested against, and the CPU path.

Each function here computes exactly what its Triton twin computes (same rounding points), in a
few lines of torch that a reader can check by eye. The engine calls them through
`nanovllm_final.kernels`, which picks this file on CPU and the Triton kernels on CUDA.

Shapes (vLLM / nano-vllm names):
    k_cache, v_cache  (num_blocks, block_size, Hkv, d)   one layer's paged KV cache
    k_scale, v_scale  (num_blocks, block_size, Hkv)      float32, only for an FP8 cache
    slot_mapping      (N,)   slot = block_id * block_size + offset; -1 = do not store
    block_tables      (B, max_blocks) int32, padded with -1
    context_lens      (B,)   tokens in the cache per sequence, the current one included

Check: `python -m pytest tests/final/test_kernels.py -q`
"""

import torch

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0  # largest finite float8_e4m3fn
FP8_MIN_SCALE = 1e-8  # an all-zero row would otherwise give scale 0 and 0/0 = NaN


def is_fp8(cache: torch.Tensor) -> bool:
    return cache.dtype == FP8_DTYPE


def quantize_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (..., d) -> (x_fp8 (..., d), scale (...,) float32), one scale per token per head."""
    x = x.float()
    scale = (x.abs().amax(dim=-1) / FP8_MAX).clamp_min(FP8_MIN_SCALE)  # (...,)
    return (x / scale[..., None]).to(FP8_DTYPE), scale


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """FP8 tensors travel through indexing as uint8: not every device indexes float8 itself."""
    return t.view(torch.uint8) if is_fp8(t) else t


def store_kvcache(key, value, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
    """Write key/value (N, Hkv, d) into the caches at slot_mapping (N,); slots < 0 are skipped."""
    num_blocks, block_size, num_kv_heads, head_dim = k_cache.shape
    keep = slot_mapping >= 0
    slots = slot_mapping[keep].long()  # (n,)
    key, value = key[keep], value[keep]  # (n, Hkv, d)
    k_flat = k_cache.view(num_blocks * block_size, num_kv_heads, head_dim)
    v_flat = v_cache.view(num_blocks * block_size, num_kv_heads, head_dim)
    if is_fp8(k_cache):
        key, k_s = quantize_fp8(key)
        value, v_s = quantize_fp8(value)
        k_scale.view(-1, num_kv_heads)[slots] = k_s
        v_scale.view(-1, num_kv_heads)[slots] = v_s
    _bytes(k_flat)[slots] = _bytes(key.to(k_cache.dtype))
    _bytes(v_flat)[slots] = _bytes(value.to(v_cache.dtype))


def gather_kv(cache, scale, block_table, num_tokens):
    """The first num_tokens keys (or values) of one sequence: (num_tokens, Hkv, d) float32."""
    block_size = cache.shape[1]
    pos = torch.arange(num_tokens, device=cache.device)
    slots = block_table[pos // block_size].long() * block_size + pos % block_size  # (L,)
    out = _bytes(cache.flatten(0, 1))[slots].view(cache.dtype).float()
    if scale is not None:
        out = out * scale.flatten(0, 1)[slots][..., None]
    return out


def _gather_padded(cache, scale, block_tables, max_len):
    """All sequences' first max_len tokens: (B, max_len, Hkv, d) float32; padding reads slot 0."""
    block_size = cache.shape[1]
    pos = torch.arange(max_len, device=cache.device)
    blocks = block_tables[:, pos // block_size].long().clamp_min(0)  # (B, L); -1 pads -> block 0
    slots = blocks * block_size + pos % block_size
    out = _bytes(cache.flatten(0, 1))[slots].view(cache.dtype).float()  # (B, L, Hkv, d)
    if scale is not None:
        out = out * scale.flatten(0, 1)[slots][..., None]
    return out


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                           k_scale=None, v_scale=None):
    """One new query per sequence against its whole cached context. q (B, H, d) -> (B, H, d)."""
    B, H, d = q.shape
    num_kv_heads = k_cache.shape[2]
    group = H // num_kv_heads  # query heads sharing one KV head
    max_len = int(context_lens.max())
    k = _gather_padded(k_cache, k_scale, block_tables, max_len)  # (B, L, Hkv, d)
    v = _gather_padded(v_cache, v_scale, block_tables, max_len)
    qg = q.float().view(B, num_kv_heads, group, d)
    scores = torch.einsum("bkgd,blkd->bkgl", qg, k) * scale  # (B, Hkv, G, L)
    past_end = torch.arange(max_len, device=q.device)[None, :] >= context_lens[:, None]  # (B, L)
    scores.masked_fill_(past_end[:, None, None, :], float("-inf"))
    probs = scores.softmax(dim=-1).nan_to_num(0.0)  # context_len 0 (CUDA-graph padding) -> zeros
    out = torch.einsum("bkgl,blkd->bkgd", probs, v)  # (B, Hkv, G, d)
    return out.reshape(B, H, d).to(q.dtype)


def paged_attention_prefill(q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale,
                            k_scale=None, v_scale=None):
    """The last q_len_i tokens of each sequence, causal against its whole cache. q (Nq, H, d)."""
    Nq, H, d = q.shape
    num_kv_heads = k_cache.shape[2]
    group = H // num_kv_heads
    out = torch.empty_like(q)
    cu = cu_seqlens_q.tolist()
    for i, ctx_len in enumerate(context_lens.tolist()):
        q_len = cu[i + 1] - cu[i]
        if q_len == 0:
            continue
        k = gather_kv(k_cache, k_scale, block_tables[i], ctx_len)  # (L, Hkv, d)
        v = gather_kv(v_cache, v_scale, block_tables[i], ctx_len)
        qi = q[cu[i]:cu[i + 1]].float().view(q_len, num_kv_heads, group, d)
        scores = torch.einsum("qkgd,lkd->kgql", qi, k) * scale  # (Hkv, G, q_len, L)
        q_pos = ctx_len - q_len + torch.arange(q_len, device=q.device)  # absolute positions
        future = torch.arange(ctx_len, device=q.device)[None, :] > q_pos[:, None]  # (q_len, L)
        scores.masked_fill_(future, float("-inf"))
        o = torch.einsum("kgql,lkd->qkgd", scores.softmax(dim=-1), v)  # (q_len, Hkv, G, d)
        out[cu[i]:cu[i + 1]] = o.reshape(q_len, H, d).to(q.dtype)
    return out


def apply_rope(x, cos, sin):
    """Rotate each pair (i, i + d/2) of x (N, heads, d) by its token's angle; cos, sin (N, 1, d/2)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


def qk_norm_rope(q, k, positions, cos_sin_cache, q_weight=None, k_weight=None, eps=1e-6):
    """Qwen3's per-head RMSNorm of q (N, H, d) and k (N, Hkv, d) when weights are given, then RoPE
    at positions (N,); cos_sin_cache (max_position, 1, d) float32 holds cos | sin. -> (q, k)"""
    if q_weight is not None:
        q, k = rms_norm(q, q_weight, eps), rms_norm(k, k_weight, eps)
    cos, sin = cos_sin_cache[positions].chunk(2, dim=-1)  # (N, 1, d/2) each
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin)


def rms_norm(x, weight, eps):
    """x * rsqrt(mean(x^2) + eps) in float32, cast to x.dtype, then times weight (HF's order)."""
    xf = x.float()
    normed = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (normed.to(x.dtype) * weight).to(x.dtype)


def fused_add_rms_norm(x, residual, weight, eps):
    """(rms_norm(x + residual), x + residual); the sum is rounded to x.dtype first, as HF does."""
    summed = x + residual
    return rms_norm(summed, weight, eps), summed
