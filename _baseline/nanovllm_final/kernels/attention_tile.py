"""The inner step of both attention kernels: one tile of keys and values from the paged cache.

Flash attention's online softmax. A program holds a running max m_i of the scores (base 2), the
running sum l_i of exp2(score - m_i) and the running sum acc of p * v; each tile of BLOCK_N keys
raises the max if it must, rescales what was accumulated by alpha = exp2(m_old - m_new), and
adds its own part. After the last tile, acc / l_i is the softmax-weighted sum of the values.

FP8 caches are read as their 1-byte codes and their scales never enter this loop: the caller
folds the KV head's key scale into q and multiplies the value scale into the output, so a tile
is a load, a conversion and a dot. e4m3 codes are exact in fp16, so the tensor cores multiply
them in fp16 (FP8_DOT=False); FP8_DOT=True feeds the codes to an fp8 matmul instead, with q
and the probabilities rounded to e4m3 on their way in (q carries its own per-row scale).
"""

import triton
import triton.language as tl


@triton.jit
def attend_tile(q, q_scale, m_i, l_i, acc, visible,
                k_cache_ptr, v_cache_ptr, table, offs_n, mask_n, offs_d,
                head_dim, kv_head, qk_scale, stride_cb, stride_ct, stride_ch,
                stride_vb, stride_vt, stride_vh, stride_vd,
                BLOCK_SIZE: tl.constexpr, FP8: tl.constexpr, FP8_DOT: tl.constexpr,
                DOT_DTYPE: tl.constexpr, DOT_PRECISION: tl.constexpr, V_KEY_MAJOR: tl.constexpr):
    """q (M, BLOCK_D) against keys offs_n (BLOCK_N,) of one sequence (its block table at `table`);
    visible (M or 1, BLOCK_N) says which query row sees which key. FP8: q arrives scaled (base-2
    softmax scale and key scale folded in) and in DOT_DTYPE, or in e4m3 with q_scale (M,) beside
    it when FP8_DOT. K's strides are stride_c*, with d contiguous; V is laid out as K or, when
    V_KEY_MAJOR, with the keys of a block contiguous (its strides stride_v*). -> updated (m_i, l_i, acc)."""
    block = tl.load(table + offs_n // BLOCK_SIZE, mask=mask_n, other=0).to(tl.int64)  # (BLOCK_N,)
    row = block * stride_cb + (offs_n % BLOCK_SIZE) * stride_ct + kv_head * stride_ch
    mask_nd = mask_n[:, None] & (offs_d[None, :] < head_dim)
    k = tl.load(k_cache_ptr + row[:, None] + offs_d[None, :], mask=mask_nd, other=0.0)
    if FP8:
        if FP8_DOT:
            s = tl.dot(q, tl.trans(k)) * q_scale[:, None]
        else:
            s = tl.dot(q, tl.trans(k.to(DOT_DTYPE)), input_precision=DOT_PRECISION)
    else:
        s = tl.dot(q, tl.trans(k.to(q.dtype)), input_precision=DOT_PRECISION) * qk_scale
    s = tl.where(visible, s, float("-inf"))  # (M, BLOCK_N)

    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    alpha = tl.exp2(m_i - m_new)  # rescales what was accumulated under the old max
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, axis=1)
    if V_KEY_MAJOR:
        v_row = block * stride_vb + kv_head * stride_vh + offs_n % BLOCK_SIZE
        v_ptrs = v_cache_ptr + v_row[:, None] + offs_d[None, :] * stride_vd
    else:  # laid out as K
        v_ptrs = v_cache_ptr + row[:, None] + offs_d[None, :]
    v = tl.load(v_ptrs, mask=mask_nd, other=0.0)
    if FP8:
        if FP8_DOT:  # p <= 1 times 256 stays inside e4m3's normal range down to p ~ 2^-14
            pv = tl.dot((p * 256.0).to(v.dtype), v) * (1.0 / 256.0)
        else:
            pv = tl.dot(p.to(DOT_DTYPE), v.to(DOT_DTYPE), input_precision=DOT_PRECISION)
    else:
        pv = tl.dot(p.to(q.dtype), v.to(q.dtype), input_precision=DOT_PRECISION)
    return m_new, l_i, acc * alpha[:, None] + pv
