"""The decode kernel: one program per split of one sequence's context and one KV head.

decode_attention.py launches decode_split_kernel. A program attends the `group` query heads that
share KV head `kv_head` to the keys [start, end) of sequence `seq`, in five steps:

  1. A split that lies past the end of a short context reads nothing; when it is the sequence's
     only split (context_len 0: a padding row of a CUDA-graph batch) it writes zeros.
  2. With the step's new tokens (STORE), the split that holds the context's last key loads that
     key and value from the projection (load_new_token): the cache does not hold them yet, so the
     tiles stop one key short of the end. With ROPE the key comes straight from the projection
     and is normalized (QK_NORM, Qwen3) and rotated at its position first.
  3. The group's queries, as the rows of one matrix (with ROPE normalized and rotated as the key
     is), an FP8 cache's key scale folded in.
  4. The tiles, one online-softmax step each, and the step's token from registers, which is then
     written into the cache for the next steps (attend_and_store_new_token).
  5. The output; with several splits, each writes its normalized output and log-sum-exp, and
     decode_reduce_kernel weighs them together.

Step 4 reads its tiles one of two ways. Queries first (attend_split_queries_first: scores q K^T,
attention_tile.attend_tile, as prefill reads them, the last tile masked) for every cache but the
engine's FP8 one; keys first (KEYS_FIRST, decode_split_fp8.py) for that one.

The kernel keeps num_kv_heads among its parameters without reading it (as prefill keeps
stride_vt): taking a parameter out moves the others in the kernel's parameter bank, and ptxas then
schedules the loop differently from the code that was measured (docs/kernels.md).
"""

import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

from .attention_tile import attend_tile, fold_fp8_scales
from .decode_split_fp8 import attend_split_keys_first
from .kvcache import encode
from .rotary import norm_rope_rows, rope_partner


@triton.jit
def load_new_token(new_k_ptr, new_v_ptr, slot_mapping_ptr, seq, kv_head, end, context_len, offs_d, head_dim,
                   stride_nkb, stride_nkh, stride_nvb, stride_nvh):
    """This step's token of sequence seq, where this split holds the context's last key: -> (slot,
    mask_d, new_k, new_v, read_end). slot is -1 in every other split, and where the token is
    already in the cache; new_k and new_v (BLOCK_D,) as the projection gave them; the tiles read
    the cache's keys [start, read_end)."""
    last = end == context_len
    slot = tl.load(slot_mapping_ptr + seq, mask=last, other=-1).to(tl.int64)
    mask_d = (offs_d < head_dim) & last
    new_k = tl.load(new_k_ptr + seq * stride_nkb + kv_head * stride_nkh + offs_d, mask=mask_d, other=0.0)
    new_v = tl.load(new_v_ptr + seq * stride_nvb + kv_head * stride_nvh + offs_d, mask=mask_d, other=0.0)
    read_end = tl.where(slot >= 0, end - 1, end)
    return slot, mask_d, new_k, new_v, read_end


@triton.jit
def attend_new_token(q, m_i, l_i, acc, k, v, qk_scale, FP8: tl.constexpr, DOT_DTYPE: tl.constexpr):
    """The online softmax of attend_tile for one more key, held in registers: k and v (BLOCK_D,) as
    the cache keeps them (kvcache.encode), q as the tiles take it (fold_fp8_scales), and the
    probability rounded as the tiles round it before their second product."""
    if FP8:
        s = tl.sum(q.to(tl.float32) * k.to(DOT_DTYPE).to(tl.float32)[None, :], axis=1)
    else:
        s = tl.sum(q.to(tl.float32) * k.to(tl.float32)[None, :], axis=1) * qk_scale
    m_new = tl.maximum(m_i, s)
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new)
    l_i = l_i * alpha + p
    if FP8:
        pv = p.to(DOT_DTYPE).to(tl.float32)[:, None] * v.to(DOT_DTYPE).to(tl.float32)[None, :]
    else:
        pv = p.to(q.dtype).to(tl.float32)[:, None] * v.to(tl.float32)[None, :]
    return m_new, l_i, acc * alpha[:, None] + pv


@triton.jit
def attend_and_store_new_token(q, m_i, l_i, acc, new_k, new_v, slot, mask_d, k_cache_ptr, v_cache_ptr, k_scale_ptr,
                               v_scale_ptr, kv_head, qk_scale, stride_cb, stride_ct, stride_ch, stride_vb, stride_vt,
                               stride_vh, stride_vd, offs_d, BLOCK_SIZE: tl.constexpr, FP8: tl.constexpr,
                               FP8_MAX: tl.constexpr, DOT_DTYPE: tl.constexpr):
    """This step's token (load_new_token's; slot -1: nothing to do), encoded as store_kvcache keeps
    it, attended (attend_new_token) and written into the cache at slot."""
    if slot >= 0:
        k_scale, v_scale = 1.0, 1.0
        if FP8:
            k_scale, v_scale = tl.load(k_scale_ptr + kv_head), tl.load(v_scale_ptr + kv_head)
        k = encode(new_k, k_scale, k_cache_ptr.dtype.element_ty, FP8, FP8_MAX)
        v = encode(new_v, v_scale, v_cache_ptr.dtype.element_ty, FP8, FP8_MAX)
        m_i, l_i, acc = attend_new_token(q, m_i, l_i, acc, k, v, qk_scale, FP8, DOT_DTYPE)
        block, row = slot // BLOCK_SIZE, slot % BLOCK_SIZE
        tl.store(k_cache_ptr + block * stride_cb + row * stride_ct + kv_head * stride_ch + offs_d, k, mask=mask_d)
        tl.store(v_cache_ptr + block * stride_vb + row * stride_vt + kv_head * stride_vh + offs_d * stride_vd, v,
                 mask=mask_d)
    return m_i, l_i, acc


@triton.jit
def attend_split_queries_first(q, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, table, start, read_end, offs_d, head_dim,
                               kv_head, qk_scale, stride_cb, stride_ct, stride_ch, stride_vb, stride_vh, stride_vd,
                               BLOCK_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, FP8: tl.constexpr,
                               DOT_DTYPE: tl.constexpr, DOT_PRECISION: tl.constexpr, V_KEY_MAJOR: tl.constexpr):
    """The keys [start, read_end) of one sequence (its block table at `table`) in tiles of BLOCK_N,
    queries first (attend_tile), the last tile masked at read_end -> updated (m_i, l_i, acc)."""
    for n0 in range(start, read_end, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < read_end
        m_i, l_i, acc = attend_tile(q, m_i, l_i, acc, mask_n[None, :],
                                    k_cache_ptr, v_cache_ptr, table, offs_n, mask_n, offs_d, head_dim,
                                    kv_head, qk_scale, stride_cb, stride_ct, stride_ch,
                                    stride_vb, stride_vh, stride_vd,
                                    BLOCK_SIZE, FP8, DOT_DTYPE, DOT_PRECISION, V_KEY_MAJOR)
    return m_i, l_i, acc


@triton.jit(do_not_specialize=["stride_bt", "split_size", "num_splits"])  # they vary step to step: one compile
def decode_split_kernel(
    q_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr, block_tables_ptr, context_lens_ptr,
    out_ptr, part_out_ptr, part_lse_ptr,
    new_k_ptr, new_v_ptr, slot_mapping_ptr,  # with STORE: this step's tokens (each context's last key)
    k_desc, v_desc,  # with TMA: tensor descriptors of the caches (decode_split_fp8.tensor_descriptors)
    qk_scale,  # softmax scale * log2(e): the kernel works in base 2
    stride_qb, stride_qh, stride_ob, stride_oh, stride_nkb, stride_nkh, stride_nvb, stride_nvh,
    stride_cb, stride_ct, stride_ch, stride_vb, stride_vt, stride_vh, stride_vd, stride_bt,
    num_heads, num_kv_heads, head_dim, group, split_size, num_splits,  # num_kv_heads: not read (module docstring)
    # with ROPE: each sequence's position, RoPE's table, the q/k norms' weights (QK_NORM). Last, so that
    # the parameters above keep their places in the parameter bank (module docstring).
    positions_ptr, cos_sin_ptr, q_norm_ptr, k_norm_ptr, rope_eps,
    BLOCK_SIZE: tl.constexpr, GROUP_PAD: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    FP8: tl.constexpr, FP8_MAX: tl.constexpr, DOT_DTYPE: tl.constexpr, DOT_PRECISION: tl.constexpr,
    ONE_SPLIT: tl.constexpr, STORE: tl.constexpr,
    V_KEY_MAJOR: tl.constexpr,  # queries-first tiles: V laid out as K, or key-major
    KEYS_FIRST: tl.constexpr, TABLE_PAD: tl.constexpr, TMA: tl.constexpr,  # keys-first tiles (decode_split_fp8.py)
    ROPE: tl.constexpr, QK_NORM: tl.constexpr, PDL: tl.constexpr,
):
    if PDL:  # pdl.py: start while the kernel before (q/k/v's product) finishes
        gdc_launch_dependents()
    kv_head = tl.program_id(0)  # the fastest-varying: a sequence's programs start together,
    split = tl.program_id(1)  # and sequences start in batch order (the scheduler puts the longest first)
    seq = tl.program_id(2)
    context_len = tl.load(context_lens_ptr + seq)
    start = split * split_size
    offs_g = tl.arange(0, GROUP_PAD)
    offs_d = tl.arange(0, BLOCK_D)
    heads = kv_head * group + offs_g  # the query heads that read this KV head
    mask_gd = (offs_g[:, None] < group) & (offs_d[None, :] < head_dim)
    out_ptrs = out_ptr + seq * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
    # context_lens and the block tables come from the host before the step, not from the kernel
    # before: a program may read them, and leave, before it waits for that kernel (PDL).
    if start >= context_len:  # 1. this split lies past the end of a short context: nothing to read
        if ONE_SPLIT:  # context_len 0 (a padding row of a CUDA-graph batch): zeros, not garbage
            if PDL:
                gdc_wait()  # out may share memory with what the kernel before still reads
            tl.store(out_ptrs, tl.zeros([GROUP_PAD, BLOCK_D], out_ptr.dtype.element_ty), mask=mask_gd)
        return
    if PDL:
        gdc_wait()  # q and the new token are the kernel before's output
    end = tl.minimum(start + split_size, context_len)
    if ROPE:
        cos_sin_row = cos_sin_ptr + tl.load(positions_ptr + seq).to(tl.int64) * head_dim  # (a contiguous table)
    if STORE:  # 2. the split that holds the last key (this step's token) takes it from registers
        slot, mask_d, new_k, new_v, read_end = load_new_token(new_k_ptr, new_v_ptr, slot_mapping_ptr, seq, kv_head,
                                                              end, context_len, offs_d, head_dim,
                                                              stride_nkb, stride_nkh, stride_nvb, stride_nvh)
        if ROPE:
            new_k_partner = tl.load(new_k_ptr + seq * stride_nkb + kv_head * stride_nkh + rope_partner(offs_d, head_dim),
                                    mask=mask_d, other=0.0)
            new_k = tl.reshape(norm_rope_rows(tl.expand_dims(new_k, 0), tl.expand_dims(new_k_partner, 0), offs_d,
                                              head_dim, cos_sin_row, k_norm_ptr, rope_eps, QK_NORM),
                               (BLOCK_D,))
    else:
        read_end = end

    q_ptrs = q_ptr + seq * stride_qb + heads[:, None] * stride_qh
    q = tl.load(q_ptrs + offs_d[None, :], mask=mask_gd, other=0.0)  # 3. (GROUP_PAD, BLOCK_D)
    if ROPE:
        q_partner = tl.load(q_ptrs + rope_partner(offs_d, head_dim)[None, :], mask=mask_gd, other=0.0)
        q = norm_rope_rows(q, q_partner, offs_d, head_dim, cos_sin_row, q_norm_ptr, rope_eps, QK_NORM)
    q, out_scale = fold_fp8_scales(q, k_scale_ptr, v_scale_ptr, kv_head, qk_scale, FP8, DOT_DTYPE)

    m_i = tl.full([GROUP_PAD], float("-inf"), tl.float32)  # 4. running max of the scores (base 2)
    l_i = tl.zeros([GROUP_PAD], tl.float32)  # running sum of exp2(score - m_i)
    acc = tl.zeros([GROUP_PAD, BLOCK_D], tl.float32)  # running sum of p * v
    if STORE and not KEYS_FIRST:  # the step's token before the loop, so that q need not live through it
        m_i, l_i, acc = attend_and_store_new_token(q, m_i, l_i, acc, new_k, new_v, slot, mask_d, k_cache_ptr,
                                                   v_cache_ptr, k_scale_ptr, v_scale_ptr, kv_head, qk_scale,
                                                   stride_cb, stride_ct, stride_ch, stride_vb, stride_vt, stride_vh,
                                                   stride_vd, offs_d, BLOCK_SIZE, FP8, FP8_MAX, DOT_DTYPE)
    table = block_tables_ptr + seq * stride_bt
    if KEYS_FIRST:
        m_i, l_i, acc = attend_split_keys_first(q, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, table, start, end,
                                                read_end, offs_d, kv_head, stride_cb, stride_ct, stride_ch, stride_vb,
                                                stride_vh, stride_vd, BLOCK_SIZE, BLOCK_N, DOT_DTYPE, TABLE_PAD,
                                                k_desc, v_desc, TMA)
        if STORE:  # the step's token after the cache's keys: the first tiles' copies start sooner
            m_i, l_i, acc = attend_and_store_new_token(q, m_i, l_i, acc, new_k, new_v, slot, mask_d, k_cache_ptr,
                                                       v_cache_ptr, k_scale_ptr, v_scale_ptr, kv_head, qk_scale,
                                                       stride_cb, stride_ct, stride_ch, stride_vb, stride_vt,
                                                       stride_vh, stride_vd, offs_d, BLOCK_SIZE, FP8, FP8_MAX,
                                                       DOT_DTYPE)
    else:
        m_i, l_i, acc = attend_split_queries_first(q, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, table, start, read_end,
                                                   offs_d, head_dim, kv_head, qk_scale, stride_cb, stride_ct,
                                                   stride_ch, stride_vb, stride_vh, stride_vd, BLOCK_SIZE, BLOCK_N,
                                                   FP8, DOT_DTYPE, DOT_PRECISION, V_KEY_MAJOR)

    out = acc * (out_scale / l_i)[:, None]  # 5. out_scale: an FP8 cache's value scale, else 1
    if ONE_SPLIT:
        tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask_gd)
    else:  # partial result of this split: normalized output and its log2-sum-exp2
        part = (seq * num_heads + heads) * num_splits + split  # (GROUP_PAD,)
        tl.store(part_out_ptr + part[:, None] * head_dim + offs_d[None, :], out, mask=mask_gd)
        tl.store(part_lse_ptr + part, m_i + tl.log2(l_i), mask=offs_g < group)


@triton.jit(do_not_specialize=["split_size", "num_splits"])
def decode_reduce_kernel(
    part_out_ptr, part_lse_ptr, context_lens_ptr, out_ptr,
    stride_ob, stride_oh, num_heads, head_dim, split_size, num_splits,
    SPLIT_PAD: tl.constexpr, BLOCK_D: tl.constexpr, PDL: tl.constexpr,
):
    """One program per (sequence, query head): the splits' partial outputs weighed by their share
    of the softmax mass, exp2(lse - max lse)."""
    if PDL:  # pdl.py
        gdc_launch_dependents()
        gdc_wait()
    seq = tl.program_id(0)
    head = tl.program_id(1)
    used = tl.cdiv(tl.load(context_lens_ptr + seq), split_size)  # splits that saw any token
    offs_s = tl.arange(0, SPLIT_PAD)
    offs_d = tl.arange(0, BLOCK_D)
    part = (seq * num_heads + head) * num_splits + offs_s  # (SPLIT_PAD,)
    lse = tl.load(part_lse_ptr + part, mask=offs_s < used, other=float("-inf"))
    weight = tl.exp2(lse - tl.max(lse, axis=0))
    o = tl.load(part_out_ptr + part[:, None] * head_dim + offs_d[None, :],
                mask=(offs_s[:, None] < used) & (offs_d[None, :] < head_dim), other=0.0)
    out = tl.sum(weight[:, None] * o, axis=0) / tl.sum(weight, axis=0)
    out = tl.where(used > 0, out, 0.0)  # context_len 0 (CUDA-graph padding): zeros
    tl.store(out_ptr + seq * stride_ob + head * stride_oh + offs_d, out.to(out_ptr.dtype.element_ty),
             mask=offs_d < head_dim)
