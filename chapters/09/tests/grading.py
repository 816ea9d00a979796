"""Chapter 9's answer key and the wrong answers its graders must reject (see course/grading.py).

The kernels' entries are Python functions, as a learner writes them in exercises.py: the
graders compile them with triton.jit under the interpreter (ch09/tests/interpreter.py). The
planted ones share their correct parts through small @triton.jit helpers, so that each shows
only its mistake."""

import triton
import triton.language as tl

from ch09 import solutions

REFERENCE = {
    "store_kvcache_kernel": solutions.store_kvcache_kernel.fn,
    "online_softmax_update": solutions.online_softmax_update.fn,
    "fused_add_rms_norm_kernel": solutions.fused_add_rms_norm_kernel.fn,
    "stage_decode_inputs": solutions.stage_decode_inputs,
}


# --- 9.1 the store kernel ------------------------------------------------------------------------
@triton.jit
def _copy_row(src_ptr, dst_ptr, D, BLOCK_D: tl.constexpr):
    offs = tl.arange(0, BLOCK_D)
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=offs < D), mask=offs < D)


def store_reads_rows_d_apart(key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, slot_mapping_ptr,
                             key_stride, value_stride, D, BLOCK_D: tl.constexpr):
    # takes the keys as a packed (N, D) tensor: wrong for a view of the fused q|k|v projection
    token = tl.program_id(0)
    slot = tl.load(slot_mapping_ptr + token)
    if slot != -1:
        _copy_row(key_ptr + token * D, k_cache_ptr + slot * D, D, BLOCK_D)
        _copy_row(value_ptr + token * D, v_cache_ptr + slot * D, D, BLOCK_D)


def store_at_the_token_row(key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, slot_mapping_ptr,
                           key_stride, value_stride, D, BLOCK_D: tl.constexpr):
    # skips the -1 rows, but stores token i in row i of the pool instead of its slot
    token = tl.program_id(0)
    if tl.load(slot_mapping_ptr + token) != -1:
        _copy_row(key_ptr + token * key_stride, k_cache_ptr + token * D, D, BLOCK_D)
        _copy_row(value_ptr + token * value_stride, v_cache_ptr + token * D, D, BLOCK_D)


def store_key_in_both_caches(key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, slot_mapping_ptr,
                             key_stride, value_stride, D, BLOCK_D: tl.constexpr):
    # a copy-paste slip: the value cache gets the keys
    token = tl.program_id(0)
    slot = tl.load(slot_mapping_ptr + token)
    if slot != -1:
        _copy_row(key_ptr + token * key_stride, k_cache_ptr + slot * D, D, BLOCK_D)
        _copy_row(key_ptr + token * key_stride, v_cache_ptr + slot * D, D, BLOCK_D)


# --- 9.2 the online-softmax step -----------------------------------------------------------------
def softmax_without_rescaling(m, l, acc, scores, v):
    # adds the new block's terms, but leaves the old sums at the old max
    m_new = tl.maximum(m, tl.max(scores, axis=1))
    p = tl.exp(scores - m_new[:, None])
    return m_new, l + tl.sum(p, axis=1), acc + tl.sum(p[:, :, None] * v[None, :, :], axis=1)


def softmax_rescales_the_wrong_way(m, l, acc, scores, v):
    # exp(m_new - m) instead of exp(m - m_new): the old sums grow when they should shrink
    m_new = tl.maximum(m, tl.max(scores, axis=1))
    alpha = tl.where(m == float("-inf"), 0.0, tl.exp(m_new - m))
    p = tl.exp(scores - m_new[:, None])
    return m_new, l * alpha + tl.sum(p, axis=1), acc * alpha[:, None] + tl.sum(p[:, :, None] * v[None, :, :], axis=1)


def softmax_rescales_the_sum_only(m, l, acc, scores, v):
    # rescales l to the new max but not acc: the weighted values are off by the max's moves
    m_new = tl.maximum(m, tl.max(scores, axis=1))
    alpha = tl.exp(m - m_new)
    p = tl.exp(scores - m_new[:, None])
    return m_new, l * alpha + tl.sum(p, axis=1), acc + tl.sum(p[:, :, None] * v[None, :, :], axis=1)


# --- 9.3 residual add + RMSNorm ------------------------------------------------------------------
@triton.jit
def _add_rows(x_ptr, residual_ptr, residual_out_ptr, hidden, BLOCK: tl.constexpr):
    """The part the planted kernels get right: this row's x, and h = x + residual, stored."""
    offs = tl.program_id(0) * hidden + tl.arange(0, BLOCK)
    mask = tl.arange(0, BLOCK) < hidden
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    h = (x + tl.load(residual_ptr + offs, mask=mask, other=0.0).to(tl.float32)).to(residual_out_ptr.dtype.element_ty)
    tl.store(residual_out_ptr + offs, h, mask=mask)
    return x, h.to(tl.float32)


@triton.jit
def _store_normed(out_ptr, weight_ptr, normed, hidden, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    w = tl.load(weight_ptr + offs, mask=offs < hidden, other=0.0).to(tl.float32)
    normed = normed.to(out_ptr.dtype.element_ty).to(tl.float32) * w
    tl.store(out_ptr + tl.program_id(0) * hidden + offs, normed.to(out_ptr.dtype.element_ty), mask=offs < hidden)


def norm_of_x_not_of_the_sum(x_ptr, residual_ptr, weight_ptr, out_ptr, residual_out_ptr, hidden, eps,
                             BLOCK: tl.constexpr):
    # stores the sum, but normalizes the sublayer's output alone
    x, h = _add_rows(x_ptr, residual_ptr, residual_out_ptr, hidden, BLOCK)
    _store_normed(out_ptr, weight_ptr, x / tl.sqrt(tl.sum(x * x, axis=0) / hidden + eps), hidden, BLOCK)


def norm_mean_over_the_block(x_ptr, residual_ptr, weight_ptr, out_ptr, residual_out_ptr, hidden, eps,
                             BLOCK: tl.constexpr):
    # the mean of squares over BLOCK lanes: the masked lanes' zeros count, and every row comes out too large
    x, h = _add_rows(x_ptr, residual_ptr, residual_out_ptr, hidden, BLOCK)
    _store_normed(out_ptr, weight_ptr, h / tl.sqrt(tl.sum(h * h, axis=0) / BLOCK + eps), hidden, BLOCK)


def norm_without_the_weight(x_ptr, residual_ptr, weight_ptr, out_ptr, residual_out_ptr, hidden, eps,
                            BLOCK: tl.constexpr):
    # normalizes, but never multiplies by the learned weight
    x, h = _add_rows(x_ptr, residual_ptr, residual_out_ptr, hidden, BLOCK)
    normed = h / tl.sqrt(tl.sum(h * h, axis=0) / hidden + eps)
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr + tl.program_id(0) * hidden + offs, normed.to(out_ptr.dtype.element_ty), mask=offs < hidden)


# --- 9.4 the graph's batch size and padding ------------------------------------------------------
def _stage(buffers, input_ids, positions, slot_mapping, context_lens, block_tables, bs, pad_slot, pad_rows=True):
    n, width = block_tables.shape
    buffers.input_ids[:n], buffers.positions[:n] = input_ids, positions
    buffers.slot_mapping[:n], buffers.context_lens[:n] = slot_mapping, context_lens
    buffers.block_tables[:n, :width] = block_tables
    if pad_rows:
        buffers.slot_mapping[n:bs] = pad_slot
        buffers.context_lens[n:bs] = 0
    return bs


def stage_next_size_up(buffers, input_ids, positions, slot_mapping, context_lens, block_tables, batch_sizes):
    # the first size above n, not at or above it: a batch of exactly 4 runs the graph of 8
    bs = next(b for b in batch_sizes if b > len(input_ids)) if len(input_ids) < batch_sizes[-1] else batch_sizes[-1]
    return _stage(buffers, input_ids, positions, slot_mapping, context_lens, block_tables, bs, -1)


def stage_pads_slots_with_zero(buffers, input_ids, positions, slot_mapping, context_lens, block_tables, batch_sizes):
    # the padding rows store their K/V in slot 0, the first slot of a sequence's block
    bs = next(b for b in batch_sizes if b >= len(input_ids))
    return _stage(buffers, input_ids, positions, slot_mapping, context_lens, block_tables, bs, 0)


def stage_leaves_the_last_steps_rows(buffers, input_ids, positions, slot_mapping, context_lens, block_tables,
                                     batch_sizes):
    # copies the n rows and nothing else: the padding rows keep an earlier, larger step's slots and contexts
    bs = next(b for b in batch_sizes if b >= len(input_ids))
    return _stage(buffers, input_ids, positions, slot_mapping, context_lens, block_tables, bs, -1, pad_rows=False)


PLANTED = {
    "store_kvcache_kernel": [store_reads_rows_d_apart, store_at_the_token_row, store_key_in_both_caches],
    "online_softmax_update": [softmax_without_rescaling, softmax_rescales_the_wrong_way, softmax_rescales_the_sum_only],
    "fused_add_rms_norm_kernel": [norm_of_x_not_of_the_sum, norm_mean_over_the_block, norm_without_the_weight],
    "stage_decode_inputs": [stage_next_size_up, stage_pads_slots_with_zero, stage_leaves_the_last_steps_rows],
}
