"""Chapter 9's answer key: the chapter's own versions of the functions exercises.py asks for.

Try the exercises first (chapters/09/exercises.py, with the hints in
notebooks/09_triton_cuda_graphs.ipynb). The kernel modules (kernels/kvcache.py,
kernels/attention.py, kernels/rmsnorm.py) and cuda_graph.py import these functions, so the engine
runs on exactly this code. The kernels are `@triton.jit` objects; the grader and the notebook
compile a learner's plain Python function the same way (its `.fn` is the reference's).
"""

from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

if TYPE_CHECKING:
    from ch09.cuda_graph import GraphInputs


@triton.jit
def store_kvcache_kernel(key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, slot_mapping_ptr,
                         key_stride, value_stride, D, BLOCK_D: tl.constexpr):
    token = tl.program_id(0)
    slot = tl.load(slot_mapping_ptr + token)
    if slot == -1:  # nothing to store for this row
        return
    offs = tl.arange(0, BLOCK_D)  # BLOCK_D is D rounded up to a power of two (tl.arange needs one)
    mask = offs < D  # ... so the lanes past D must neither read nor write
    key = tl.load(key_ptr + token * key_stride + offs, mask=mask)  # a token's row starts key_stride apart
    value = tl.load(value_ptr + token * value_stride + offs, mask=mask)
    tl.store(k_cache_ptr + slot * D + offs, key, mask=mask)  # the pool's rows are D apart
    tl.store(v_cache_ptr + slot * D + offs, value, mask=mask)


@triton.jit
def online_softmax_update(m, l, acc, scores, v):
    """Fold one block of keys into the running softmax of GROUP query heads.

    m, l: (GROUP,) the largest score so far and the sum of exp(score - m) so far; acc: (GROUP,
    head_dim) the sum of exp(score - m) * value so far; scores: (GROUP, BLOCK) this block's
    scores (-inf where there is no key); v: (BLOCK, head_dim) its values. Returns the new m, l, acc.
    """
    m_new = tl.maximum(m, tl.max(scores, axis=1))  # (GROUP,)
    alpha = tl.exp(m - m_new)  # what the sums so far are worth against the new max (0 at the start, m = -inf)
    p = tl.exp(scores - m_new[:, None])  # (GROUP, BLOCK)
    l = l * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * v[None, :, :], axis=1)  # (GROUP, head_dim)
    return m_new, l, acc


@triton.jit
def fused_add_rms_norm_kernel(x_ptr, residual_ptr, weight_ptr, out_ptr, residual_out_ptr, hidden, eps,
                              BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)  # BLOCK is hidden rounded up to a power of two
    mask = offs < hidden
    x = tl.load(x_ptr + row * hidden + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(residual_ptr + row * hidden + offs, mask=mask, other=0.0).to(tl.float32)
    h = (x + r).to(residual_out_ptr.dtype.element_ty)  # the residual stream keeps the model's dtype
    tl.store(residual_out_ptr + row * hidden + offs, h, mask=mask)
    h = h.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(h * h, axis=0) / hidden + eps)  # the masked lanes add 0 to the sum
    w = tl.load(weight_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    normed = (h * rstd).to(out_ptr.dtype.element_ty).to(tl.float32) * w
    tl.store(out_ptr + row * hidden + offs, normed.to(out_ptr.dtype.element_ty), mask=mask)


def stage_decode_inputs(buffers: "GraphInputs", input_ids: torch.Tensor, positions: torch.Tensor,
                        slot_mapping: torch.Tensor, context_lens: torch.Tensor, block_tables: torch.Tensor,
                        batch_sizes: list[int]) -> int:
    """Copy a decode step of n sequences into the buffers, padded to the graph it runs; return that
    graph's batch size bs. The padding rows store nothing (slot -1) and attend to nothing
    (context 0); block table entries past a context are never read."""
    n, width = block_tables.shape
    bs = next(b for b in batch_sizes if b >= n)
    buffers.input_ids[:n] = input_ids
    buffers.positions[:n] = positions
    buffers.slot_mapping[:n] = slot_mapping
    buffers.slot_mapping[n:bs] = -1
    buffers.context_lens[:n] = context_lens
    buffers.context_lens[n:bs] = 0
    buffers.block_tables[:n, :width] = block_tables
    return bs
