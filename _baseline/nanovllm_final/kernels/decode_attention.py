"""Triton kernel: paged attention for the decode step (one new query token per sequence).

Spec: `reference.paged_attention_decode`. Decode reads every cached key and value of every
sequence once per layer and does only 4 flops per byte it reads, so its speed is memory
bandwidth: the kernel's job is to stream K/V at close to the GPU's ~3 TB/s.

Two ideas make that possible (the flash-decoding recipe):
  * Grouped-query aware: one program handles all `group = H // Hkv` query heads that share a KV
    head, so each K/V row is read from memory once, not `group` times. The group's queries form
    the rows of a small matrix (padded to 16 for tl.dot), and each tile of keys is one matmul.
  * Split-K: a long context is cut into `num_splits` pieces handled by different programs; each
    writes a partial softmax (its output and log-sum-exp), and a second small kernel combines
    them. With few sequences this keeps all SMs busy; with many (B * Hkv >> #SMs) one split is
    enough and the first kernel writes the final output directly. A split's length comes from
    the batch (choose_split_tokens), not from the block table's width: in a CUDA graph the table
    is as wide as max_model_len allows, and pieces cut from it would lie past every real context.

Grid: stage 1 (Hkv, num_splits, B), so programs start sequence by sequence, in batch order: the
engine's scheduler puts the longest contexts first, so that they do not run on alone at the end
(longest-processing-time-first). Stage 2 (B, H), only when num_splits > 1. The launch
configuration depends on shapes only (never on context_lens' values), so it can be captured in a
CUDA graph; a row with context_len 0 (padding of a graph's batch) gets zeros.

The engine's decode steps hand the kernel their new keys and values (new_kv) instead of storing
them first with store_kvcache: the program that holds a context's last key attends to the new
token from registers and writes it into the cache for the next steps (keys-first FP8 tiles: after
its loop, so that the first tiles' copies are not held up behind the token's loads and stores;
one layer of 256 sequences U[100, 1024] 99.2 us against 108.8 when it came first, 188 sequences
U[100, 2048] 132.8 against 135.4; otherwise before the loop, so that q need not live through it). That
saves a launch per layer (H200, FP8, one layer: 16 sequences 26.3 us against 30.1 for the store
and the kernel, 48 sequences 54.6 against 59.6, 188 sequences 153.1 against 152.3; bf16: 22.2
against 25.2, 108.8 against 111.0, 195.9 against 196.3). Writing the token costs an FP8 cache more
than its bytes: V is key-major, so a token's 128 values land in 128 rows 256 bytes apart, and a
layer of 188 sequences then takes 160.7 us instead of 149.0 without the writes (V written in
16-key groups, 128 values in 2 KB: 153.4; token-major: 150.9).

FP8 caches are read as their 1-byte codes and never dequantized in memory. Their scales are per
KV head (kvcache.py), so they fold out of the loop over keys: the key scale into q before it, the
value scale into the output after it, and a tile is a load, a conversion and a dot (e4m3 codes
are exact in fp16, so the tensor cores multiply them in fp16).

The engine keeps an FP8 V key-major inside each block (model_runner.allocate_kv_cache), and then
the tiles take attend_keys_first: scores as K q^T, so that K is the left operand of a Hopper
warpgroup product; every tile read whole, without masks (16-byte copies), the keys past the
context given probability 0; and V's codes reach the tensor cores along the keys through ldmatrix
instead of one byte at a time. Reading a context's last tile whole keeps it inside the pipelined
loop: when it was read masked, after the loop, each program waited a whole memory latency for it
at the end (and every program of a decode step has such a tile, since its new token is not read
from the cache). The rows past a context lie in the same block and hold finite codes, because
the engine's cache starts zeroed and every code written is clamped; a NaN there would survive a
probability of 0. One layer, FP8, with the step's tokens (new_kv), H200: 188 sequences 144.4 us
against 154.3, 256 sequences 192.6 against 205.6, 48 sequences 52.3 against 56.2, 188 sequences
of 1,024 keys 138.7 against 149.4 (16 sequences, split: 27.4 against 26.3).
The split's block-table entries are read into registers before the loop (TABLE_PAD):
an address that waits on a load made in the same loop makes Triton's pipeliner keep one tile in
flight instead of two. Compiled for sm_90 (sass_stats.py) its loop is 489 instructions per thread
per 64-key tile, against 821 for attend_tile on an FP8 cache laid out as K (bf16: 489); a batch
with FP8_LARGE_MIN_PROGRAMS or more programs per SM takes 128-key tiles (812 per tile, under a
register cap).

On Hopper the keys-first tiles are copied by the tensor memory accelerator (TMA, FP8_TMA): a
tensor descriptor of each cache (K as it is; V seen as (block, head, d, key), keys contiguous) and
one copy instruction per tile, where each of the 128 threads issued 24 asynchronous copies and
computed their addresses. The loop drops from 812 to 659 instructions per 128-key tile and no
longer spills under the register cap; one layer of 188 sequences (U[100, 2048], with the step's
tokens) takes 133.1 us instead of 152.7, 256 sequences of 256 keys 54.1 instead of 72.9; the cache
ends up the same bit for bit and the outputs agree within 5e-4. The benchmark (`python -m nanovllm_final.bench
--kv-cache-dtype fp8`, one machine, alternating): 30,076 and 31,538 tok/s against 29,071 and 28,872.

Measured on an H200 (device copy 4.27 TB/s, read + write), Qwen3-0.6B's shapes, 256 sequences
with contexts uniform in [100, 2048], one layer, from a CUDA graph
(`python -m nanovllm_final.kernels.bench_kernels`):
    bf16 cache                                   288 us  4.04 TB/s of K/V read
      the same, longest context first            264 us  4.41 TB/s
    fp8, laid out as K, attend_tile              288 us  2.02 TB/s
    fp8, V key-major, keys first, 64-key tiles   251 us  2.32 TB/s
      128-key tiles                              229 us  2.54 TB/s
      longest context first                      214 us  2.73 TB/s
      a register cap (3 programs per SM)         199 us  2.94 TB/s
      the block table read before the loop       196 us  2.98 TB/s
FP8 halves the bytes but not the time: Nsight Compute finds its warps waiting (1.6 instructions
issued per cycle per SM, DRAM 63% busy, against 92% for bf16). Neither more tiles in flight nor
fewer instructions moved it much: a version that multiplies the e4m3 codes on fp8 tensor cores
straight from shared memory (q and the probabilities each split into two e4m3 terms, so the error
stayed near bf16's: 2.1e-3 against 1.7e-3) issued 17% fewer instructions per tile and ran 203 us.
On an H100 (device copy 3.02 TB/s) the bf16 cache took 403 us; the torch reference 13.2 ms.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k decode` (GPU, real shapes)
Speed: `python -m nanovllm_final.kernels.bench_kernels` (on a GPU)
"""

import math

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from .attention_tile import attend_tile
from .kvcache import encode
from .reference import FP8_MAX, is_fp8, is_key_major

# Tile configuration: bf16 from a sweep on an H100 (tune_kernels.py), fp8 from sweeps on an H200
BLOCK_N, NUM_WARPS, NUM_STAGES = 64, 4, 2  # bf16/fp16/fp32 cache: keys per tile, warps, pipeline depth
# fp8 cache. Registers are capped (maxnreg) so that more programs share an SM: left alone the
# compiler gives a 128-key tile 248 registers per thread, 2 programs per SM, and Nsight Compute
# shows the schedulers idle 67% of cycles waiting on loads (H200, 256 sequences: 212 us; capped at
# 168, 3 programs: 198 us; the 64-key tile capped at 128, 4 programs: 203 us instead of 224).
FP8_BLOCK_N, FP8_NUM_WARPS, FP8_NUM_STAGES, FP8_MAXNREG = 64, 4, 3, 128
# fp8 cache, a batch of at least FP8_LARGE_MIN_PROGRAMS programs per SM: 128-key tiles (H200,
# contexts U[100, 2048]: 256 sequences 226 us against 249 us for 64 keys, 64 sequences 75 against
# 87; with TMA copies (FP8_TMA) 48 sequences 47.6 against 51.1, where the threshold was 3 programs
# per SM). FP8_LARGE_BLOCK_N 0: never. 4 stages instead of 3: 137 us against 130 at 188 sequences.
FP8_LARGE_BLOCK_N, FP8_LARGE_MIN_PROGRAMS, FP8_LARGE_MAXNREG, FP8_LARGE_NUM_STAGES = 128, 2, 168, 3
FP8_DOT = False  # fp8 cache: multiply the e4m3 codes in fp8 instead of converting them to fp16
MIN_SPLIT_TOKENS = 256  # never split a context into pieces shorter than this
# Split length (choose_split_tokens), measured on an H200 with contexts U[100, 2048]: the best
# split grows with the batch, about 320 keys per program per SM (bf16 cache, 16 sequences: splits
# of 320 keys 23.0 us against 50.0 unsplit; 32 sequences, 640 keys: 41.3 against 62.9; FP8: 25.3
# against 39.4, and 38.3 against 47.1).
SPLIT_TOKENS_PER_PROGRAM_PER_SM = 320
# From this many programs per SM a batch is not split: the partial results and the second kernel
# cost about what they balance (the benchmark's FP8 decode steps of 33-64 sequences: 3.23 ms
# split, 3.12 unsplit; of 17-32 sequences: 2.45 split, 2.96 unsplit).
NO_SPLIT_PROGRAMS_PER_SM = 2
# keys-first tiles: a split's block-table entries are read into registers before its loop (up to
# this many; a longer split reads one entry per tile, inside the loop). Then no address in the loop
# waits on a load made in the loop, and Triton's pipeliner keeps two tiles in flight, not one.
MAX_TABLE_PAD = 32
# keys-first tiles copied by the tensor memory accelerator where the GPU has one (has_tma), instead
# of per-thread asynchronous copies: see the module docstring for what it buys
FP8_TMA = True


@triton.jit
def fold_fp8_scales(q, k_scale_ptr, v_scale_ptr, kv_head, qk_scale, M: tl.constexpr, CODE_DTYPE: tl.constexpr,
                    FP8: tl.constexpr, FP8_DOT: tl.constexpr, FP8_MAX: tl.constexpr, DOT_DTYPE: tl.constexpr):
    """q (M, BLOCK_D) as attend_tile wants it -> (q, q_scale (M,), out_scale): with an FP8 cache the
    KV head's key scale and the softmax scale go into q (and with FP8_DOT q itself becomes e4m3
    codes times q_scale per row), and out_scale is the head's value scale."""
    q_scale = tl.full([M], 1.0, tl.float32)
    out_scale = 1.0
    if FP8:
        q = q.to(tl.float32) * (qk_scale * tl.load(k_scale_ptr + kv_head))
        out_scale = tl.load(v_scale_ptr + kv_head)
        if FP8_DOT:
            q_scale = tl.maximum(tl.max(tl.abs(q), axis=1) / FP8_MAX, 1e-30)
            q = (q / q_scale[:, None]).to(CODE_DTYPE)
        else:  # (fp32 for fp32 queries)
            q = q.to(DOT_DTYPE)
    return q, q_scale, out_scale


@triton.jit
def attend_keys_first(qT, m_i, l_i, acc, k_cache_ptr, v_cache_ptr, block, n0, end, offs_d, kv_head,
                      stride_cb, stride_ct, stride_ch, stride_vb, stride_vh, stride_vd,
                      BLOCK_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, DOT_DTYPE: tl.constexpr,
                      k_desc=None, v_desc=None, TMA: tl.constexpr = False):
    """One tile of an FP8 cache whose V is key-major, the tile inside one block: the same online
    softmax as attend_tile, with the scores computed as K q^T (BLOCK_N, M) so that K, the large
    operand, is the left one of a Hopper warpgroup product, and P V reading V's codes along the
    keys, as the tensor cores want them. qT (BLOCK_D, M) carries the scales (fold_fp8_scales).
    Only keys < end exist. The tile is read whole, without masks (16-byte copies; the rows past a
    context lie in the same block and hold finite codes: the engine's cache starts zeroed and
    every code written is clamped), and the keys past end get probability 0. So a context's last
    tile is one more turn of the pipelined loop, not a load waited for after it."""
    if TMA:  # the tensor memory accelerator copies each tile: one instruction, no addresses per thread
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
def attend_new_token(q, m_i, l_i, acc, k, v, qk_scale, FP8: tl.constexpr, DOT_DTYPE: tl.constexpr):
    """The online softmax of attend_tile for one more key, held in registers: k and v (BLOCK_D,) as
    the cache keeps them (kvcache.encode), q as the tiles take it (fold_fp8_scales, without
    FP8_DOT), and the probability rounded as the tiles round it before their second product."""
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
    """This step's token (new_k, new_v as the projection gave them; slot -1: already in the cache,
    nothing to do): encoded as store_kvcache keeps it, attended (attend_new_token) and stored."""
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


@triton.jit(do_not_specialize=["stride_bt", "split_size", "num_splits"])  # they vary step to step: one compile
def _decode_split_kernel(
    q_ptr, k_cache_ptr, v_cache_ptr, k_scale_ptr, v_scale_ptr, block_tables_ptr, context_lens_ptr,
    out_ptr, part_out_ptr, part_lse_ptr,
    new_k_ptr, new_v_ptr, slot_mapping_ptr,  # with STORE: this step's tokens (each context's last key)
    k_desc, v_desc,  # with TMA: tensor descriptors of the caches (K as it is, V as (block, head, d, key))
    qk_scale,  # softmax scale * log2(e): the kernel works in base 2
    stride_qb, stride_qh, stride_ob, stride_oh, stride_nkb, stride_nkh, stride_nvb, stride_nvh,
    stride_cb, stride_ct, stride_ch, stride_vb, stride_vt, stride_vh, stride_vd, stride_bt,
    num_heads, num_kv_heads, head_dim, group, split_size, num_splits,
    BLOCK_SIZE: tl.constexpr, GROUP_PAD: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    FP8: tl.constexpr, FP8_DOT: tl.constexpr, FP8_MAX: tl.constexpr, DOT_DTYPE: tl.constexpr,
    DOT_PRECISION: tl.constexpr, ONE_SPLIT: tl.constexpr, KEYS_FIRST: tl.constexpr, V_KEY_MAJOR: tl.constexpr,
    TABLE_PAD: tl.constexpr, STORE: tl.constexpr, TMA: tl.constexpr,
):
    kv_head = tl.program_id(0)  # the fastest-varying: a sequence's programs start together,
    split = tl.program_id(1)  # and sequences start in batch order (the engine puts the longest first)
    seq = tl.program_id(2)
    context_len = tl.load(context_lens_ptr + seq)
    start = split * split_size
    offs_g = tl.arange(0, GROUP_PAD)
    offs_d = tl.arange(0, BLOCK_D)
    heads = kv_head * group + offs_g  # the query heads that read this KV head
    mask_gd = (offs_g[:, None] < group) & (offs_d[None, :] < head_dim)
    out_ptrs = out_ptr + seq * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
    if start >= context_len:  # this split lies past the end of a short context: nothing to read
        if ONE_SPLIT:  # context_len 0 (a padding row of a CUDA-graph batch): zeros, not garbage
            tl.store(out_ptrs, tl.zeros([GROUP_PAD, BLOCK_D], out_ptr.dtype.element_ty), mask=mask_gd)
        return
    end = tl.minimum(start + split_size, context_len)
    if STORE:  # the split that holds the last key (this step's token) takes it from registers
        last = end == context_len
        slot = tl.load(slot_mapping_ptr + seq, mask=last, other=-1).to(tl.int64)  # -1: already cached
        mask_d = (offs_d < head_dim) & last
        new_k = tl.load(new_k_ptr + seq * stride_nkb + kv_head * stride_nkh + offs_d, mask=mask_d, other=0.0)
        new_v = tl.load(new_v_ptr + seq * stride_nvb + kv_head * stride_nvh + offs_d, mask=mask_d, other=0.0)
        read_end = tl.where(slot >= 0, end - 1, end)  # keys read from the cache: [start, read_end)
    else:
        read_end = end

    q = tl.load(q_ptr + seq * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
                mask=mask_gd, other=0.0)  # (GROUP_PAD, BLOCK_D)

    q, q_scale, out_scale = fold_fp8_scales(q, k_scale_ptr, v_scale_ptr, kv_head, qk_scale, GROUP_PAD,
                                            k_cache_ptr.dtype.element_ty, FP8, FP8_DOT, FP8_MAX, DOT_DTYPE)

    m_i = tl.full([GROUP_PAD], float("-inf"), tl.float32)  # running max of the scores (base 2)
    l_i = tl.zeros([GROUP_PAD], tl.float32)  # running sum of exp2(score - m_i)
    acc = tl.zeros([GROUP_PAD, BLOCK_D], tl.float32)  # running sum of p * v
    if STORE and not KEYS_FIRST:  # this step's token: attended from registers before the loop (so that q
        # is not kept alive through it), then stored for the next steps
        m_i, l_i, acc = attend_and_store_new_token(q, m_i, l_i, acc, new_k, new_v, slot, mask_d, k_cache_ptr,
                                                   v_cache_ptr, k_scale_ptr, v_scale_ptr, kv_head, qk_scale,
                                                   stride_cb, stride_ct, stride_ch, stride_vb, stride_vt, stride_vh,
                                                   stride_vd, offs_d, BLOCK_SIZE, FP8, FP8_MAX, DOT_DTYPE)
    table = block_tables_ptr + seq * stride_bt
    if KEYS_FIRST:  # FP8 with V key-major: every tile read whole, in one pipelined loop
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
                                              kv_head, stride_cb, stride_ct, stride_ch, stride_vb, stride_vh,
                                              stride_vd, BLOCK_SIZE, BLOCK_N, DOT_DTYPE, k_desc, v_desc, TMA)
        if STORE:  # this step's token after the cache's keys: the first tiles' copies start sooner
            m_i, l_i, acc = attend_and_store_new_token(q, m_i, l_i, acc, new_k, new_v, slot, mask_d, k_cache_ptr,
                                                       v_cache_ptr, k_scale_ptr, v_scale_ptr, kv_head, qk_scale,
                                                       stride_cb, stride_ct, stride_ch, stride_vb, stride_vt,
                                                       stride_vh, stride_vd, offs_d, BLOCK_SIZE, FP8, FP8_MAX,
                                                       DOT_DTYPE)
    else:
        for n0 in range(start, read_end, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            mask_n = offs_n < read_end
            m_i, l_i, acc = attend_tile(q, q_scale, m_i, l_i, acc, mask_n[None, :],
                                        k_cache_ptr, v_cache_ptr, table, offs_n, mask_n, offs_d, head_dim,
                                        kv_head, qk_scale, stride_cb, stride_ct, stride_ch,
                                        stride_vb, stride_vt, stride_vh, stride_vd,
                                        BLOCK_SIZE, FP8, FP8_DOT, DOT_DTYPE, DOT_PRECISION, V_KEY_MAJOR)

    out = acc * (out_scale / l_i)[:, None]  # out_scale: an FP8 cache's value scale, else 1
    if ONE_SPLIT:
        tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask_gd)
    else:  # partial result of this split: normalized output and its log2-sum-exp2
        part = (seq * num_heads + heads) * num_splits + split  # (GROUP_PAD,)
        tl.store(part_out_ptr + part[:, None] * head_dim + offs_d[None, :], out, mask=mask_gd)
        tl.store(part_lse_ptr + part, m_i + tl.log2(l_i), mask=offs_g < group)


@triton.jit(do_not_specialize=["split_size", "num_splits"])
def _decode_reduce_kernel(
    part_out_ptr, part_lse_ptr, context_lens_ptr, out_ptr,
    stride_ob, stride_oh, num_heads, head_dim, split_size, num_splits,
    SPLIT_PAD: tl.constexpr, BLOCK_D: tl.constexpr,
):
    seq = tl.program_id(0)
    head = tl.program_id(1)
    used = tl.cdiv(tl.load(context_lens_ptr + seq), split_size)  # splits that saw any token
    offs_s = tl.arange(0, SPLIT_PAD)
    offs_d = tl.arange(0, BLOCK_D)
    part = (seq * num_heads + head) * num_splits + offs_s  # (SPLIT_PAD,)
    lse = tl.load(part_lse_ptr + part, mask=offs_s < used, other=float("-inf"))
    weight = tl.exp2(lse - tl.max(lse, axis=0))  # each split's share of the softmax mass
    o = tl.load(part_out_ptr + part[:, None] * head_dim + offs_d[None, :],
                mask=(offs_s[:, None] < used) & (offs_d[None, :] < head_dim), other=0.0)
    out = tl.sum(weight[:, None] * o, axis=0) / tl.sum(weight, axis=0)
    out = tl.where(used > 0, out, 0.0)  # context_len 0 (CUDA-graph padding): zeros
    tl.store(out_ptr + seq * stride_ob + head * stride_oh + offs_d, out.to(out_ptr.dtype.element_ty),
             mask=offs_d < head_dim)


_NUM_SMS = {}
_HAS_TMA = {}


def _num_sms(device) -> int:
    if device.type != "cuda":
        return 4  # the interpreter on CPU: a small number so tests exercise several splits
    if device not in _NUM_SMS:
        _NUM_SMS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return _NUM_SMS[device]


def choose_split_tokens(batch, num_kv_heads, device) -> int | None:
    """Keys per split for a launch of batch x num_kv_heads programs, or None for one split.

    The length is set from the batch, not from the block table's width: a CUDA graph's table is as
    wide as max_model_len allows, and splits cut from that bound would fall past the end of every
    real context. SPLIT_TOKENS_PER_PROGRAM_PER_SM keys for each program an SM gets without
    splitting: a small batch is cut into short pieces, a batch that fills the GPU is not cut."""
    if batch * num_kv_heads >= NO_SPLIT_PROGRAMS_PER_SM * _num_sms(device):
        return None  # the batch fills the GPU by itself
    tokens = SPLIT_TOKENS_PER_PROGRAM_PER_SM * batch * num_kv_heads // _num_sms(device)
    return max(MIN_SPLIT_TOKENS, tokens)


def has_tma(device) -> bool:
    """Whether the GPU has a tensor memory accelerator (Hopper, compute capability 9, and later);
    True on the CPU, where Triton's interpreter emulates it."""
    if device.type != "cuda":
        return True
    if device not in _HAS_TMA:
        _HAS_TMA[device] = torch.cuda.get_device_capability(device)[0] >= 9
    return _HAS_TMA[device]


def tiles(fp8: bool, batch: int, num_kv_heads: int, block_size: int, device) -> tuple[int, int, int, int | None]:
    """(keys per tile, warps, pipeline stages, register cap or None) for a launch of batch x
    num_kv_heads programs."""
    if not fp8:
        return BLOCK_N, NUM_WARPS, NUM_STAGES, None
    if (FP8_LARGE_BLOCK_N and block_size % FP8_LARGE_BLOCK_N == 0
            and batch * num_kv_heads >= FP8_LARGE_MIN_PROGRAMS * _num_sms(device)):
        return FP8_LARGE_BLOCK_N, FP8_NUM_WARPS, FP8_LARGE_NUM_STAGES, FP8_LARGE_MAXNREG
    return FP8_BLOCK_N, FP8_NUM_WARPS, FP8_NUM_STAGES, FP8_MAXNREG


def uses_keys_first(q, k_cache, v_cache, block_n: int | None = None) -> bool:
    """Whether attend_keys_first runs: an FP8 cache with V key-major (as the engine keeps it),
    tiles that never straddle a block, a power-of-two head_dim and 16-bit queries. block_n: keys
    per tile (default: as tiles() picks for q's batch)."""
    head_dim, (_, block_size, num_kv_heads, _) = q.shape[-1], k_cache.shape
    if block_n is None:
        block_n = tiles(is_fp8(k_cache), q.shape[0], num_kv_heads, block_size, q.device)[0]
    return (is_fp8(k_cache) and not FP8_DOT and is_key_major(v_cache, k_cache) and block_size % block_n == 0
            and head_dim == max(16, triton.next_power_of_2(head_dim)) and q.dtype != torch.float32)


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                           k_scale=None, v_scale=None, new_kv=None, num_splits=None):
    """Same contract as reference.paged_attention_decode. new_kv (key, value, slot_mapping): each
    sequence's token of this step (B, Hkv, d), at position context_len - 1 and to be stored at
    slot_mapping (-1: already in the cache). The program that holds a context's last key attends
    to it from registers and stores it, so a decode step needs no store_kvcache
    launch (not with FP8_DOT, which the engine leaves off). num_splits: cut max_context (the block
    table's width) into that many pieces; None: pieces of choose_split_tokens keys.
    An FP8 cache with V key-major is read in whole tiles, past each context's end inside its last
    block: the slots there must hold finite codes (never NaN), as the engine's do (its cache
    starts zeroed and every code written is clamped); they get probability 0."""
    B, H, head_dim = q.shape
    _, block_size, num_kv_heads, _ = k_cache.shape
    group = H // num_kv_heads
    assert H == group * num_kv_heads and q.stride(-1) == 1 and k_cache.stride(-1) == 1
    assert v_cache.shape == k_cache.shape
    out = torch.empty(B, H, head_dim, dtype=q.dtype, device=q.device)
    if B == 0:
        return out
    max_context = block_tables.shape[1] * block_size  # a bound from shapes: no device sync
    fp8 = is_fp8(k_cache)
    block_n, num_warps, num_stages, maxnreg = tiles(fp8, B, num_kv_heads, block_size, q.device)
    block_d = max(16, triton.next_power_of_2(head_dim))
    keys_first = uses_keys_first(q, k_cache, v_cache, block_n)
    if num_splits is None:
        split_size = min(choose_split_tokens(B, num_kv_heads, q.device) or max_context, max_context)
    else:
        split_size = triton.cdiv(max_context, num_splits)
    split_size = triton.cdiv(split_size, block_n) * block_n
    table_pad = 0
    if keys_first:  # splits start on a block, and the kernel reads a split's block table before its loop
        split_size = triton.cdiv(split_size, block_size) * block_size
        if split_size // block_size <= MAX_TABLE_PAD:
            table_pad = triton.next_power_of_2(split_size // block_size)
    num_splits = triton.cdiv(max_context, split_size)
    if not fp8:
        k_scale, v_scale = k_cache, v_cache  # unused pointers
    if new_kv is not None:
        new_k, new_v, slot_mapping = new_kv
        assert new_k.shape == new_v.shape == (B, num_kv_heads, head_dim) and slot_mapping.shape == (B,)
        assert new_k.stride(-1) == 1 and new_v.stride(-1) == 1, "head_dim must be contiguous"
        assert not (fp8 and FP8_DOT), "new_kv needs the fp16 products on an FP8 cache (FP8_DOT off)"
    else:
        new_k = new_v = slot_mapping = q  # unused pointers
    tma = keys_first and FP8_TMA and has_tma(q.device)
    k_desc = v_desc = None
    if tma:
        k_desc = TensorDescriptor(k_cache, list(k_cache.shape), list(k_cache.stride()), [1, block_n, 1, block_d])
        v_t = v_cache.permute(0, 2, 3, 1)  # key-major: (block, head, d, key), keys contiguous
        v_desc = TensorDescriptor(v_t, list(v_t.shape), list(v_t.stride()), [1, 1, block_d, block_n])
    if num_splits > 1:
        part_out = torch.empty(B, H, num_splits, head_dim, dtype=torch.float32, device=q.device)
        part_lse = torch.empty(B, H, num_splits, dtype=torch.float32, device=q.device)
    else:
        part_out = part_lse = out  # unused pointers
    _decode_split_kernel[(num_kv_heads, num_splits, B)](
        q, k_cache, v_cache, k_scale, v_scale, block_tables, context_lens,
        out, part_out, part_lse, new_k, new_v, slot_mapping, k_desc, v_desc,
        scale * math.log2(math.e),
        q.stride(0), q.stride(1), out.stride(0), out.stride(1),
        new_k.stride(0), new_k.stride(1), new_v.stride(0), new_v.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), v_cache.stride(3), block_tables.stride(0),
        H, num_kv_heads, head_dim, group, split_size, num_splits,
        BLOCK_SIZE=block_size, GROUP_PAD=max(16, triton.next_power_of_2(group)), BLOCK_N=block_n,
        BLOCK_D=block_d, FP8=fp8, FP8_DOT=fp8 and FP8_DOT, ONE_SPLIT=num_splits == 1, KEYS_FIRST=keys_first,
        V_KEY_MAJOR=is_key_major(v_cache, k_cache), TABLE_PAD=table_pad, STORE=new_kv is not None, TMA=tma,
        FP8_MAX=FP8_MAX, DOT_DTYPE=tl.float32 if q.dtype == torch.float32 else tl.float16,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        num_warps=num_warps, num_stages=num_stages, maxnreg=maxnreg,
    )
    if num_splits > 1:
        _decode_reduce_kernel[(B, H)](
            part_out, part_lse, context_lens, out, out.stride(0), out.stride(1),
            H, head_dim, split_size, num_splits,
            SPLIT_PAD=triton.next_power_of_2(num_splits), BLOCK_D=block_d, num_warps=4,
        )
    return out
