"""Triton kernel: causal attention of many new query tokens against the paged KV cache.

Spec: `reference.paged_attention_prefill`. One kernel for everything that is not a pure decode
step: a whole prompt, a chunk of a long prompt (chunked prefill), the uncached tail of a prompt
whose prefix came from the prefix cache, and mixed batches where a decode is a sequence with
q_len = 1. The new tokens' K/V are already in the cache, so keys are always read from the pages.

Sequence i owns queries cu_seqlens_q[i] : cu_seqlens_q[i+1] (q_len_i of them), and those are its
*last* q_len_i tokens: query j sits at position context_lens[i] - q_len_i + j and sees keys
0 .. that position (causal with an offset).

Grid: (cdiv(Nq, BLOCK_Q) + B, Hkv). A program takes BLOCK_Q consecutive query tokens of one
sequence and all `group` query heads of one KV head, stacked as BLOCK_M = BLOCK_Q * GROUP_PAD
rows of one matrix, so a key tile is loaded once for the whole group (grouped-query aware, as in
decode). Tile t belongs to the last sequence i with cu_seqlens_q[i] // BLOCK_Q + i <= t; the grid
is an upper bound on the number of tiles, computed without reading cu_seqlens_q on the host, and
programs past a sequence's last tile return at once. Inside, the usual flash-attention loop:
online softmax over key tiles of BLOCK_N (attention_tile.py, shared with decode), up to the
tile's last query position.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k prefill` (GPU, real shapes)
"""

import math

import torch
import triton
import triton.language as tl

from .attention_tile import attend_tile
from .decode_attention import fold_fp8_scales
from .reference import FP8_MAX, is_fp8, is_key_major

# Tile configuration, from a sweep on an H100 (tune_kernels.py)
BLOCK_M = 64  # rows per program: query tokens x query heads of one group
BLOCK_N = 64  # keys per inner-loop tile
NUM_WARPS, NUM_STAGES = 4, 2


@triton.jit(do_not_specialize=["stride_bt", "num_seqs"])  # they vary step to step: one compile
def _prefill_kernel(
    q_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr,
    cu_seqlens_q_ptr, context_lens_ptr, block_tables_ptr, out_ptr,
    qk_scale,  # softmax scale * log2(e)
    stride_qn, stride_qh, stride_on, stride_oh,
    stride_cb, stride_ct, stride_ch, stride_vb, stride_vt, stride_vh, stride_vd, stride_bt,
    num_seqs, num_kv_heads, head_dim, group,
    BLOCK_SIZE: tl.constexpr, BLOCK_Q: tl.constexpr, GROUP_PAD: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    FP8: tl.constexpr, FP8_MAX: tl.constexpr, DOT_DTYPE: tl.constexpr, DOT_PRECISION: tl.constexpr,
    V_KEY_MAJOR: tl.constexpr,
):
    tile = tl.program_id(0)
    kv_head = tl.program_id(1)
    # Which sequence this tile belongs to. Sequence i's tiles start at cu[i] // BLOCK_Q + i, which
    # grows strictly with i: binary search for the last start <= tile (a loop, not a vector of
    # num_seqs lanes, so one compiled kernel serves every batch).
    seq = tl.zeros([], tl.int32)
    hi = num_seqs
    while hi - seq > 1:
        mid = (seq + hi) // 2
        starts_before = tl.load(cu_seqlens_q_ptr + mid) // BLOCK_Q + mid <= tile
        seq = tl.where(starts_before, mid, seq)
        hi = tl.where(starts_before, hi, mid)
    q_start = tl.load(cu_seqlens_q_ptr + seq)
    q_len = tl.load(cu_seqlens_q_ptr + seq + 1) - q_start
    first_tok = (tile - (q_start // BLOCK_Q + seq)) * BLOCK_Q  # first query of this tile, in seq
    if first_tok >= q_len:
        return
    context_len = tl.load(context_lens_ptr + seq)

    offs_m = tl.arange(0, BLOCK_Q * GROUP_PAD)
    tok = first_tok + offs_m // GROUP_PAD  # (BLOCK_M,) query token of each row
    g = offs_m % GROUP_PAD  # and its head within the group
    offs_d = tl.arange(0, BLOCK_D)
    mask_m = (tok < q_len) & (g < group)
    mask_md = mask_m[:, None] & (offs_d[None, :] < head_dim)
    heads = kv_head * group + g
    q_off = (q_start + tok).to(tl.int64)[:, None] * stride_qn + heads[:, None] * stride_qh + offs_d[None, :]
    q = tl.load(q_ptr + q_off, mask=mask_md, other=0.0)  # (BLOCK_M, BLOCK_D)
    q_pos = context_len - q_len + tok  # absolute position of each row's query

    q, q_scale, out_scale = fold_fp8_scales(q, k_scale_ptr, v_scale_ptr, kv_head, qk_scale, BLOCK_Q * GROUP_PAD,
                                            k_cache_ptr.dtype.element_ty, FP8, False, FP8_MAX, DOT_DTYPE)

    m_i = tl.full([BLOCK_Q * GROUP_PAD], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_Q * GROUP_PAD], tl.float32)
    acc = tl.zeros([BLOCK_Q * GROUP_PAD, BLOCK_D], tl.float32)
    table = block_tables_ptr + seq * stride_bt
    kv_end = tl.minimum(context_len, context_len - q_len + first_tok + BLOCK_Q)  # causal: no later keys
    for n0 in range(0, kv_end, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < kv_end
        visible = mask_n[None, :] & (offs_n[None, :] <= q_pos[:, None])  # causal
        m_i, l_i, acc = attend_tile(q, q_scale, m_i, l_i, acc, visible,
                                    k_cache_ptr, v_cache_ptr, table, offs_n, mask_n, offs_d, head_dim,
                                    kv_head, qk_scale, stride_cb, stride_ct, stride_ch,
                                    stride_vb, stride_vt, stride_vh, stride_vd,
                                    BLOCK_SIZE, FP8, False, DOT_DTYPE, DOT_PRECISION, V_KEY_MAJOR)

    o_off = (q_start + tok).to(tl.int64)[:, None] * stride_on + heads[:, None] * stride_oh + offs_d[None, :]
    tl.store(out_ptr + o_off, (acc * (out_scale / l_i)[:, None]).to(out_ptr.dtype.element_ty), mask=mask_md)


def paged_attention_prefill(q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale,
                            k_scale=None, v_scale=None):
    """Same contract as reference.paged_attention_prefill."""
    Nq, H, head_dim = q.shape
    _, block_size, num_kv_heads, _ = k_cache.shape
    group = H // num_kv_heads
    assert H == group * num_kv_heads and q.stride(-1) == 1 and k_cache.stride(-1) == 1
    assert v_cache.shape == k_cache.shape
    out = torch.empty(Nq, H, head_dim, dtype=q.dtype, device=q.device)
    num_seqs = context_lens.shape[0]
    if Nq == 0 or num_seqs == 0:
        return out
    group_pad = triton.next_power_of_2(group)
    assert group_pad <= BLOCK_M, f"{group} query heads per KV head is more than this kernel handles"
    block_q = BLOCK_M // group_pad
    fp8 = is_fp8(k_cache)
    if not fp8:
        k_scale, v_scale = k_cache, v_cache  # unused pointers
    grid = (triton.cdiv(Nq, block_q) + num_seqs, num_kv_heads)
    _prefill_kernel[grid](
        q, k_cache, v_cache, k_scale, v_scale, cu_seqlens_q, context_lens, block_tables, out,
        scale * math.log2(math.e),
        q.stride(0), q.stride(1), out.stride(0), out.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), v_cache.stride(3), block_tables.stride(0),
        num_seqs, num_kv_heads, head_dim, group,
        BLOCK_SIZE=block_size, BLOCK_Q=block_q, GROUP_PAD=group_pad, BLOCK_N=BLOCK_N,
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)), FP8=fp8,
        FP8_MAX=FP8_MAX, DOT_DTYPE=tl.float32 if q.dtype == torch.float32 else tl.float16,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32", V_KEY_MAJOR=is_key_major(v_cache, k_cache),
        num_warps=NUM_WARPS, num_stages=NUM_STAGES,
    )
    return out
