"""The decode kernel's tiles for the engine's FP8 cache: keys first, read whole.

decode_split_kernel takes these tiles (KEYS_FIRST) where decode_attention.uses_keys_first says so:
an FP8 cache whose V is key-major inside each block (model_runner.allocate_kv_cache), tiles that
never straddle a block, 16-bit queries. What differs from the queries-first tiles of every other
cache (attention_tile.attend_tile):

  * Scores as K q^T (BLOCK_N, M), so that K, the large operand, is the left one of a Hopper
    warpgroup product, and P V with V's codes read along the keys, as the tensor cores take them
    (from a key-major V through ldmatrix, rather than one byte at a time).
  * Every tile read whole, without masks (16-byte copies), the keys past the context given
    probability 0. A context's last tile is then one more turn of the pipelined loop, not a load
    waited for after it, and every program of a decode step has such a tile (its new token is
    not read from the cache). The rows past a context lie in the same block and must hold finite
    codes (a NaN survives a probability of 0): the engine's cache starts zeroed and every code
    written is clamped (kvcache.encode).
  * A split's block-table entries read into registers before the loop (TABLE_PAD of them): an
    address that waits on a load made in the same loop makes Triton's pipeliner keep one tile in
    flight instead of two. A split of more blocks than that reads one entry per tile.
  * K head-major inside each block (model_runner.allocate_kv_cache: a head's keys of a block
    contiguous), and blocks of 128 keys (config.py), one tile: a tile's K and its V are then each
    one run of 16 KB, where with K token-major in 256-key blocks a tile's K was 128 pieces of 128
    bytes, 1 KB apart, and its V 128 pieces 256 bytes apart. The kernel takes either layout by
    its strides; the engine's ran nano-vllm's benchmark 1.5% (head-major) and then 2.4% (128-key
    blocks) faster on an H100 (measurements/large_batch_h100.json).
  * On Hopper (TMA), each tile copied by the tensor memory accelerator through a tensor
    descriptor of each cache (tensor_descriptors): one instruction per tile, where otherwise each
    thread computes the addresses of its own asynchronous copies.
  * The step's token attended and stored after the loop (decode_split_kernel), not before it, so
    that the first tiles' copies are not held up behind the token's loads and stores.

The codes are converted to fp16 (exact for e4m3) and multiplied there; the key scale is folded
into q and the value scale into the output, so no scale enters the loop.
"""

import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor


def tensor_descriptors(k_cache, v_cache, block_n: int, block_d: int):
    """TMA descriptors of the two caches for tiles of block_n keys: K seen as (block, key, head, d)
    whatever its layout (the engine's is head-major), and the key-major V seen as (block, head, d,
    key), keys contiguous."""
    k_desc = TensorDescriptor(k_cache, list(k_cache.shape), list(k_cache.stride()), [1, block_n, 1, block_d])
    v_t = v_cache.permute(0, 2, 3, 1)
    v_desc = TensorDescriptor(v_t, list(v_t.shape), list(v_t.stride()), [1, 1, block_d, block_n])
    return k_desc, v_desc


@triton.jit
def attend_keys_first(qT, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, block, n0, end, offs_d, kv_head,
                      stride_cb, stride_ct, stride_ch, stride_vb, stride_vh, stride_vd,
                      BLOCK_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, DOT_DTYPE: tl.constexpr,
                      k_desc=None, v_desc=None, TMA: tl.constexpr = False):
    """One tile of BLOCK_N keys from n0, all inside cache block `block`: attention_tile's online
    softmax with the scores computed as K q^T. qT (BLOCK_D, M) carries the scales
    (fold_fp8_scales). Only keys < end exist: the others get probability 0."""
    if TMA:
        row = tl.multiple_of(n0 % BLOCK_SIZE, BLOCK_N)
        BLOCK_D: tl.constexpr = offs_d.shape[0]
        k = k_desc.load([block.to(tl.int32), row, kv_head, 0]).reshape(BLOCK_N, BLOCK_D)
        v = tl.trans(v_desc.load([block.to(tl.int32), kv_head, 0, row]).reshape(BLOCK_D, BLOCK_N))
    else:
        offs_t = tl.multiple_of(n0 % BLOCK_SIZE, BLOCK_N) + tl.arange(0, BLOCK_N)  # rows in the block
        k_ptrs = k_cache_ptr + block * stride_cb + kv_head * stride_ch + offs_t[:, None] * stride_ct + offs_d[None, :]
        v_ptrs = v_cache_ptr + block * stride_vb + kv_head * stride_vh + offs_t[:, None] + offs_d[None, :] * stride_vd
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    sT = tl.dot(k.to(DOT_DTYPE), qT)  # (BLOCK_N, M)
    sT = tl.where((n0 + tl.arange(0, BLOCK_N) < end)[:, None], sT, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(sT, axis=0))
    alpha = tl.exp2(m_i - m_new)
    pT = tl.exp2(sT - m_new[None, :])
    l_i = l_i * alpha + tl.sum(pT, axis=0)
    pv = tl.dot(tl.trans(pT).to(DOT_DTYPE), v.to(DOT_DTYPE))  # (M, BLOCK_D)
    return m_new, l_i, acc * alpha[:, None] + pv


@triton.jit
def attend_split_keys_first(q, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, table, start, end, read_end, offs_d, kv_head,
                            stride_cb, stride_ct, stride_ch, stride_vb, stride_vh, stride_vd,
                            BLOCK_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, DOT_DTYPE: tl.constexpr,
                            TABLE_PAD: tl.constexpr, k_desc=None, v_desc=None, TMA: tl.constexpr = False):
    """The keys [start, read_end) of one sequence (its block table at `table`; the split's keys end
    at `end`, and start on a block) in whole tiles of BLOCK_N keys (attend_keys_first), in one
    pipelined loop -> updated (m_i, l_i, acc)."""
    qT = tl.trans(q)
    first = start // BLOCK_SIZE
    if TABLE_PAD:  # the split's block-table entries, read once, before the loop
        offs_b = tl.arange(0, TABLE_PAD)
        blocks = tl.load(table + first + offs_b, mask=first + offs_b <= (end - 1) // BLOCK_SIZE, other=0)
    for n0 in range(start, read_end, BLOCK_N):
        if TABLE_PAD:  # picked out of registers: a tile's address depends on no load in the loop
            block = tl.sum(tl.where(offs_b == n0 // BLOCK_SIZE - first, blocks, 0)).to(tl.int64)
        else:
            block = tl.load(table + n0 // BLOCK_SIZE).to(tl.int64)
        m_i, l_i, acc = attend_keys_first(qT, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, block, n0, read_end, offs_d,
                                          kv_head, stride_cb, stride_ct, stride_ch, stride_vb, stride_vh, stride_vd,
                                          BLOCK_SIZE, BLOCK_N, DOT_DTYPE, k_desc, v_desc, TMA)
    return m_i, l_i, acc
