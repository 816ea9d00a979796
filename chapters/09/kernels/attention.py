"""Paged decode attention: one query per sequence against its keys and values, read in place
from the pool through its block table (chapter 3 gathered them into a copy first).

Grid: (num_seqs, n_kv_heads). A program owns one sequence and one K/V head, and with it the
GROUP = n_heads // n_kv_heads query heads that share that head (grouped-query attention), so
each key and value it loads serves GROUP queries. It walks the sequence's blocks in order, one
block of keys per iteration, and keeps a running softmax (`online_softmax_update`): the scores
of every key are never held at once, so any context length fits in the same few registers.

    for each block b of the sequence:    keys and values (BLOCK, head_dim), masked past the context
        scores = q . k * scale           (GROUP, BLOCK)
        fold the scores and values into the running max m, sum l and weighted sum acc
    out = acc / l

Its twin, `paged_decode_attention_torch`, is chapter 3's gather and chapter 2's attention, one
sequence at a time. A row with context_len 0 (the padding of a CUDA graph) gives zeros.
"""

import torch
import triton
import triton.language as tl

from ch02.attention import cached_attention
from ch03.attention import gather_kv
# exercise 9.2: the answer key. The decode kernel calls it by this module's global name, so a
# test or the notebook can swap in a learner's step by setting attention.online_softmax_update.
from ch09.solutions import online_softmax_update


@triton.jit
def paged_decode_attention_kernel(q_ptr, k_cache_ptr, v_cache_ptr, block_tables_ptr, context_lens_ptr, out_ptr,
                                  scale, block_size, num_kv_heads, max_blocks,
                                  GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, HEAD_DIM: tl.constexpr,
                                  BLOCK: tl.constexpr):
    seq = tl.program_id(0)
    kv_head = tl.program_id(1)
    g = tl.arange(0, GROUP_PAD)  # GROUP rounded up to a power of two: the rows past GROUP are masked
    d = tl.arange(0, HEAD_DIM)
    heads = kv_head * GROUP + g  # the query heads that read this K/V head
    q_offs = (seq * num_kv_heads * GROUP + heads[:, None]) * HEAD_DIM + d[None, :]  # (GROUP_PAD, HEAD_DIM)
    q = tl.load(q_ptr + q_offs, mask=g[:, None] < GROUP, other=0.0).to(tl.float32)

    m = tl.full((GROUP_PAD,), float("-inf"), tl.float32)
    l = tl.zeros((GROUP_PAD,), tl.float32)
    acc = tl.zeros((GROUP_PAD, HEAD_DIM), tl.float32)
    context_len = tl.load(context_lens_ptr + seq)
    offs = tl.arange(0, BLOCK)  # BLOCK is block_size rounded up to a power of two
    for b in range(0, tl.cdiv(context_len, block_size)):  # the sequence's blocks, in order
        block = tl.load(block_tables_ptr + seq * max_blocks + b)
        pos = b * block_size + offs  # (BLOCK,) the positions this block holds
        valid = (offs < block_size) & (pos < context_len)  # the last block may be part full
        slots = block * block_size + offs  # (BLOCK,) rows of the pool
        kv_offs = (slots[:, None] * num_kv_heads + kv_head) * HEAD_DIM + d[None, :]  # (BLOCK, HEAD_DIM)
        k = tl.load(k_cache_ptr + kv_offs, mask=valid[:, None], other=0.0).to(tl.float32)
        v = tl.load(v_cache_ptr + kv_offs, mask=valid[:, None], other=0.0).to(tl.float32)
        scores = tl.sum(q[:, None, :] * k[None, :, :], axis=2) * scale  # (GROUP_PAD, BLOCK)
        scores = tl.where(valid[None, :], scores, float("-inf"))
        m, l, acc = online_softmax_update(m, l, acc, scores, v)

    out = acc / tl.where(l > 0, l, 1.0)[:, None]  # l = 0 only for a context of 0 keys: zeros
    tl.store(out_ptr + q_offs, out.to(out_ptr.dtype.element_ty), mask=g[:, None] < GROUP)


def launch_paged_decode_attention(kernel, q, k_cache, v_cache, block_tables, context_lens, scale) -> torch.Tensor:
    """Run `kernel` (paged_decode_attention_kernel) over q (B, n_heads, head_dim) -> (B, n_heads, head_dim)."""
    B, n_heads, head_dim = q.shape
    num_blocks, block_size, n_kv_heads, _ = k_cache.shape
    assert q.is_contiguous() and k_cache.is_contiguous() and v_cache.is_contiguous()
    assert head_dim == triton.next_power_of_2(head_dim), f"head_dim {head_dim} is not a power of two"
    assert block_tables.shape[0] == context_lens.shape[0] == B and block_tables.is_contiguous()
    group = n_heads // n_kv_heads
    out = torch.empty_like(q)
    kernel[(B, n_kv_heads)](q, k_cache, v_cache, block_tables, context_lens, out,
                            scale, block_size, n_kv_heads, block_tables.shape[1],
                            GROUP=group, GROUP_PAD=triton.next_power_of_2(group), HEAD_DIM=head_dim,
                            BLOCK=triton.next_power_of_2(block_size))
    return out


def paged_decode_attention_torch(q, k_cache, v_cache, block_tables, context_lens, scale) -> torch.Tensor:
    """The twin: each sequence's keys and values gathered into a copy (chapter 3), then chapter 2's
    attention for its one query."""
    out = torch.zeros_like(q)
    for i, context_len in enumerate(context_lens.tolist()):
        if context_len > 0:
            k = gather_kv(k_cache, block_tables[i], context_len)  # (context_len, n_kv_heads, head_dim)
            v = gather_kv(v_cache, block_tables[i], context_len)
            out[i:i + 1] = cached_attention(q[i:i + 1], k, v, context_len, scale)
    return out


def paged_decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_tables: torch.Tensor,
                           context_lens: torch.Tensor, scale: float) -> torch.Tensor:
    """q (B, n_heads, head_dim), one query per sequence, each attending to its first
    context_lens[i] keys -> (B, n_heads, head_dim): the kernel on a GPU, its twin on a CPU."""
    if q.is_cuda:
        return launch_paged_decode_attention(paged_decode_attention_kernel, q, k_cache, v_cache, block_tables,
                                             context_lens, scale)
    return paged_decode_attention_torch(q, k_cache, v_cache, block_tables, context_lens, scale)
