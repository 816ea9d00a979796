"""Plain-torch versions of every kernel: the spec the Triton kernels are tested against, and the CPU path.

Each function here computes exactly what its Triton twin computes (same rounding points), in a
few lines of torch that a reader can check by eye. The engine calls them through
`nanovllm_final.kernels`, which picks this file on CPU and the Triton kernels on CUDA.

Shapes (vLLM / nano-vllm names):
    k_cache, v_cache  (num_blocks, block_size, Hkv, d)   one layer's paged KV cache
    k_scale, v_scale  (Hkv,)   float32, only for an FP8 cache: one scale per KV head and layer
    slot_mapping      (N,)   slot = block_id * block_size + offset; -1 = do not store
    block_tables      (B, max_blocks) int32, padded with -1
    context_lens      (B,)   tokens in the cache per sequence, the current one included

Check: `python -m pytest tests/final/test_kernels.py -q`
"""

import torch
import torch.nn.functional as F

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0  # largest finite float8_e4m3fn
FP8_MIN_SCALE = 1e-8  # an all-zero head would otherwise give scale 0 and 0/0 = NaN
# A head's scale is set once, from the first tokens it stores (fp8_scales): their largest |x|
# lands at 448 / FP8_HEADROOM, so later tokens up to 16x larger still fit; larger ones saturate.
# The price is at the small end only: e4m3 keeps 3 mantissa bits down to 2^-6 * scale, i.e.
# values down to ~1/1800 of the calibration maximum keep full relative precision.
FP8_HEADROOM = 16.0


def is_fp8(cache: torch.Tensor) -> bool:
    return cache.dtype == FP8_DTYPE


def fp8_scales(x: torch.Tensor) -> torch.Tensor:
    """x (..., Hkv, d) -> (Hkv,) float32: one scale per head, from the largest |x| of that head."""
    amax = x.float().abs().flatten(0, -3).amax(dim=(0, 2))  # (Hkv,)
    return (amax * FP8_HEADROOM / FP8_MAX).clamp_min(FP8_MIN_SCALE)


def quantize_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (..., Hkv, d), scale (Hkv,) -> x / scale in e4m3, saturated at +-448 (a plain cast
    would turn anything larger into NaN)."""
    return (x.float() / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)


def stored_as(cache: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """The same (num_blocks, block_size, Hkv, d) values, stored in memory with the dimensions in
    `order`, and seen again as (num_blocks, block_size, Hkv, d) (the kernels read it by strides)."""
    stored = _bytes(cache).permute(order).contiguous().view(cache.dtype)
    return stored.permute(tuple(order.index(dim) for dim in range(4)))


def key_major(v_cache: torch.Tensor) -> torch.Tensor:
    """V stored (num_blocks, Hkv, d, block_size): how an FP8 engine keeps V (keys contiguous within
    each head and dimension of a block)."""
    return stored_as(v_cache, (0, 2, 3, 1))


def head_major(k_cache: torch.Tensor) -> torch.Tensor:
    """K stored (num_blocks, Hkv, block_size, d): how an FP8 engine keeps K (each head's keys of a
    block contiguous, a tile one run of bytes)."""
    return stored_as(k_cache, (0, 2, 1, 3))


def is_key_major(v_cache: torch.Tensor, k_cache: torch.Tensor) -> bool:
    """Whether V is stored key-major (reference.key_major); the kernels take that, or V laid out as K."""
    if v_cache.stride(1) == 1 and v_cache.shape[1] > 1:
        return True
    assert v_cache.stride() == k_cache.stride(), "a V cache is laid out as K, or key-major (reference.key_major)"
    return False


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """FP8 tensors travel through indexing as uint8: not every device indexes float8 itself."""
    return t.view(torch.uint8) if is_fp8(t) else t


def store_kvcache(key, value, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
    """Write key/value (N, Hkv, d) into the caches at slot_mapping (N,); slots < 0 are skipped."""
    block_size = k_cache.shape[1]
    keep = slot_mapping >= 0
    slots = slot_mapping[keep].long()  # (n,)
    key, value = key[keep], value[keep]  # (n, Hkv, d)
    if is_fp8(k_cache):
        key, value = quantize_fp8(key, k_scale), quantize_fp8(value, v_scale)
    blocks, rows = slots // block_size, slots % block_size  # indexing, not a flat view: V may be key-major
    _bytes(k_cache)[blocks, rows] = _bytes(key.to(k_cache.dtype))
    _bytes(v_cache)[blocks, rows] = _bytes(value.to(v_cache.dtype))


def gather_blocks(cache, scale, block_tables):
    """Each sequence's blocks side by side: (B, max_blocks * block_size, Hkv, d) float32.
    Whole blocks are copied (not token by token); -1 padding reads block 0, masked later.
    scale (Hkv,) multiplies FP8 codes back to values."""
    blocks = block_tables.long().clamp_min(0)  # (B, max_blocks)
    out = _bytes(cache)[blocks].view(cache.dtype).float()  # (B, max_blocks, block_size, Hkv, d)
    if scale is not None:
        out = out * scale[:, None]
    return out.flatten(1, 2)


def attend(q, k, v, visible, scale):
    """Softmax attention of q (B, H, Lq, d) over k, v (B, Hkv, L, d) where visible (B, 1, Lq, L);
    query heads share KV heads in groups. A row that sees nothing gives zeros."""
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, scale=scale, enable_gqa=True)
    return out.nan_to_num(0.0)


DECODE_GROUP = 8  # sequences of similar length attended together


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                           k_scale=None, v_scale=None, new_kv=None, rope=None):
    """One new query per sequence against its whole cached context. q (B, H, d) -> (B, H, d).
    new_kv (key, value, slot_mapping): this step's tokens, stored first (store_kvcache).
    rope (positions, cos_sin_cache, q_weight, k_weight, eps), with new_kv: q and key are first
    normalized and rotated (qk_norm_rope) at positions (B,).

    Sequences go in groups of similar context length, each group's blocks gathered only up to its
    longest context: reading the cache is most of the work, and one batch padded to the longest
    context of all would read up to twice as much."""
    if rope is not None:
        q, key = qk_norm_rope(q, new_kv[0], *rope)
        new_kv = (key, *new_kv[1:])
    if new_kv is not None:
        key, value, slot_mapping = new_kv
        store_kvcache(key, value, k_cache, v_cache, slot_mapping, k_scale, v_scale)
    out = torch.empty_like(q)
    lens = context_lens.tolist()
    by_length = sorted(range(len(lens)), key=lens.__getitem__)
    for i in range(0, len(lens), DECODE_GROUP):
        rows = torch.tensor(by_length[i:i + DECODE_GROUP], device=q.device)
        width = max(1, -(-max(lens[r] for r in rows.tolist()) // k_cache.shape[1]))  # blocks to read
        k = gather_blocks(k_cache, k_scale, block_tables[rows, :width]).transpose(1, 2)  # (b, Hkv, L, d)
        v = gather_blocks(v_cache, v_scale, block_tables[rows, :width]).transpose(1, 2)
        visible = torch.arange(k.shape[2], device=q.device)[None, :] < context_lens[rows, None]  # (b, L)
        o = attend(q[rows].float().unsqueeze(2), k, v, visible[:, None, None, :], scale)  # (b, H, 1, d)
        out[rows] = o.squeeze(2).to(q.dtype)
    return out


def paged_attention_prefill(q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale,
                            k_scale=None, v_scale=None):
    """The last q_len_i tokens of each sequence, causal against its whole cache. q (Nq, H, d)."""
    out = torch.empty_like(q)
    cu = cu_seqlens_q.tolist()
    block_size = k_cache.shape[1]
    for i, ctx_len in enumerate(context_lens.tolist()):
        q_len = cu[i + 1] - cu[i]
        if q_len == 0:
            continue
        table = block_tables[i:i + 1, :-(-ctx_len // block_size)]  # this sequence's blocks only
        k = gather_blocks(k_cache, k_scale, table).transpose(1, 2)  # (1, Hkv, L, d)
        v = gather_blocks(v_cache, v_scale, table).transpose(1, 2)
        q_pos = ctx_len - q_len + torch.arange(q_len, device=q.device)  # absolute positions
        visible = torch.arange(k.shape[2], device=q.device)[None, :] <= q_pos[:, None]  # (q_len, L): causal
        qi = q[cu[i]:cu[i + 1]].float().transpose(0, 1).unsqueeze(0)  # (1, H, q_len, d)
        out[cu[i]:cu[i + 1]] = attend(qi, k, v, visible[None, None], scale)[0].transpose(0, 1).to(q.dtype)
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


def silu_and_mul(x):
    """x (..., 2F) = [gate | up] -> silu(gate) * up (..., F): SwiGLU's gate, two torch kernels."""
    gate, up = x.chunk(2, dim=-1)
    return F.silu(gate) * up


def linear(x, weight, bias=None, silu_mul=False, out=None):
    """x (M, K) @ weight (N, K)^T + bias -> (M, N); with silu_mul, x (M, 2K) is [gate | up] and
    the product reads silu_and_mul(x). `out` takes the result in place."""
    h = silu_and_mul(x) if silu_mul else x
    if out is None:
        return F.linear(h, weight, bias)
    return torch.addmm(bias, h, weight.t(), out=out) if bias is not None else torch.mm(h, weight.t(), out=out)


def norm_linear(x, residual, norm_weight, eps, weight, bias=None):
    """(rms_norm(x + residual) @ weight^T + bias, x + residual): the RMSNorm before a product and
    the product; without a residual (rms_norm(x) @ weight^T + bias, x)."""
    normed, summed = (rms_norm(x, norm_weight, eps), x) if residual is None else \
        fused_add_rms_norm(x, residual, norm_weight, eps)
    return linear(normed, weight, bias), summed


def sample_gumbel(logits, temperatures, min_ps, generators=None, need_min_p=True, seeds=None):
    """One token per row of logits (B, V): argmax(logits / T - log E), E ~ Exp(1) (a Gumbel-max
    draw: token i wins with probability softmax(logits / T)_i); temperature 0 is the plain argmax;
    min-p drops tokens below min_p times the top probability first. A seeded row (a
    torch.Generator in `generators`) draws its noise from its own generator. `seeds` is the
    Triton kernel's (its Philox keys); here the noise comes from torch. -> (B,) int64"""
    x = logits.float()
    greedy = temperatures == 0
    scores = x / torch.where(greedy, 1.0, temperatures)[:, None]
    noise = torch.empty_like(x).exponential_(1)
    for i, gen in enumerate(generators or []):
        if gen is not None:  # this row's own stream: reproducible whatever the batch
            noise[i] = torch.empty_like(x[i]).exponential_(1, generator=gen)
    scores = torch.where(greedy[:, None], scores, scores - noise.log())
    if need_min_p:
        threshold = x.amax(dim=-1) + temperatures * min_ps.log()  # (B,); min_p 0 gives -inf
        keep = (x >= threshold[:, None]) | greedy[:, None]
        scores = scores.masked_fill(~keep, float("-inf"))
    return scores.argmax(dim=-1)
