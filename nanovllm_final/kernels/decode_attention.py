"""Triton kernel: paged attention for the decode step (one new query token per sequence).

Spec: `reference.paged_attention_decode`. Decode reads every cached key and value of every
sequence once per layer and does only 4 flops per byte it reads, so its speed is memory
bandwidth: the kernel's job is to stream K/V at close to the GPU's copy bandwidth. This file
decides how a step's work is cut into programs, and launches them; the kernels are in
decode_split.py.

Two ideas make the streaming possible (the flash-decoding recipe):
  * Grouped-query aware: one program handles all `group = H // Hkv` query heads that share a KV
    head, so each K/V row is read from memory once, not `group` times. The group's queries form
    the rows of a small matrix (padded to 16 for tl.dot), and each tile of keys is one matmul.
  * Split-K: a long context is cut into `num_splits` pieces handled by different programs; each
    writes a partial softmax (its output and log-sum-exp), and a second small kernel combines
    them. With few sequences this keeps all SMs busy; with many (B * Hkv >> #SMs) one split is
    enough and the first kernel writes the final output directly. A split's length comes from
    the batch (choose_split_tokens), not from the block table's width: in a CUDA graph the table
    is as wide as max_model_len allows, and pieces cut from it would lie past every real context.

Grid: (Hkv, num_splits, B), so programs start sequence by sequence, in batch order: the engine's
scheduler puts the longest contexts first, so that they do not run on alone at the end
(longest-processing-time-first). The reduce kernel's grid is (B, H), launched only when
num_splits > 1. The launch depends on shapes only (never on context_lens' values), so it can be
captured in a CUDA graph; a row with context_len 0 (padding of a graph's batch) gets zeros.

The engine's decode steps hand the kernel their new keys and values (new_kv) instead of storing
them first with store_kvcache: the program that holds a context's last key attends to the new
token from registers and writes it into the cache for the next steps, which saves a launch per
layer.

The kernel reads its tiles one of two ways (uses_keys_first picks):
  * queries first (decode_split.py), masked at the context's end: bf16, fp16 and fp32 caches,
    and FP8 caches in any other layout or with fp32 queries;
  * keys first (decode_split_fp8.py): the engine's FP8 cache (V key-major), tiles read whole,
    copied by Hopper's tensor memory accelerator where there is one (has_tma).
FP8 caches are read as their 1-byte codes and never dequantized in memory: their scales are per
KV head (kvcache.py), so they fold out of the loop over keys.

What each choice here bought, measured: docs/kernels.md.
Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k decode` (GPU, real shapes)
Speed: `python -m tools.bench_kernels` (on a GPU)
"""

import math

import torch
import triton
import triton.language as tl

from .decode_split import decode_reduce_kernel, decode_split_kernel
from .decode_split_fp8 import tensor_descriptors
from .pdl import pdl
from .reference import FP8_MAX, is_fp8, is_key_major
from .rotary import qk_norm_rope

# Tiles: keys per tile, warps, pipeline stages (and for FP8 a register cap), from sweeps
# (tools/tune_kernels.py). bf16, fp16 and fp32 caches:
BLOCK_N, NUM_WARPS, NUM_STAGES = 64, 4, 2
# FP8 caches. Registers are capped (maxnreg) so that more programs share an SM: left alone, the
# compiler gives each program so many that the SM's schedulers sit idle waiting on loads.
FP8_BLOCK_N, FP8_NUM_WARPS, FP8_NUM_STAGES, FP8_MAXNREG = 64, 4, 3, 128
# FP8 caches, a launch of at least FP8_LARGE_MIN_PROGRAMS programs per SM: 128-key tiles.
FP8_LARGE_BLOCK_N, FP8_LARGE_MIN_PROGRAMS, FP8_LARGE_MAXNREG, FP8_LARGE_NUM_STAGES = 128, 2, 168, 3
# Never split a context into pieces shorter than this: one sequence's token took 1% less time with
# 64 than with 128 (H100, PDL), 5% more with 256.
MIN_SPLIT_TOKENS = 64
# Split length (choose_split_tokens): the best split grows with the batch, about this many keys
# per program per SM.
SPLIT_TOKENS_PER_PROGRAM_PER_SM = 320
# From this many programs per SM a batch is not split: the partial results and the second kernel
# cost about what they balance.
NO_SPLIT_PROGRAMS_PER_SM = 2
# Keys-first tiles: a split's block-table entries are read into registers before its loop, up to
# this many (a longer split reads one entry per tile, inside the loop).
MAX_TABLE_PAD = 32

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
    if block_size % FP8_LARGE_BLOCK_N == 0 and batch * num_kv_heads >= FP8_LARGE_MIN_PROGRAMS * _num_sms(device):
        return FP8_LARGE_BLOCK_N, FP8_NUM_WARPS, FP8_LARGE_NUM_STAGES, FP8_LARGE_MAXNREG
    return FP8_BLOCK_N, FP8_NUM_WARPS, FP8_NUM_STAGES, FP8_MAXNREG


def uses_keys_first(q, k_cache, v_cache, block_n: int | None = None) -> bool:
    """Whether the kernel reads its tiles keys first (decode_split_fp8.py): an FP8 cache with V
    key-major (as the engine keeps it), tiles that never straddle a block, a power-of-two head_dim
    and 16-bit queries. block_n: keys per tile (default: as tiles() picks for q's batch)."""
    head_dim, (_, block_size, num_kv_heads, _) = q.shape[-1], k_cache.shape
    if block_n is None:
        block_n = tiles(is_fp8(k_cache), q.shape[0], num_kv_heads, block_size, q.device)[0]
    return (is_fp8(k_cache) and is_key_major(v_cache, k_cache) and block_size % block_n == 0
            and head_dim == max(16, triton.next_power_of_2(head_dim)) and q.dtype != torch.float32)


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                           k_scale=None, v_scale=None, new_kv=None, rope=None, num_splits=None):
    """Same contract as reference.paged_attention_decode. new_kv (key, value, slot_mapping): each
    sequence's token of this step (B, Hkv, d), at position context_len - 1 and to be stored at
    slot_mapping (-1: already in the cache). The program that holds a context's last key attends
    to it from registers and stores it, so a decode step needs no store_kvcache launch.
    rope (positions, cos_sin_cache, q_weight, k_weight, eps), with new_kv: q and the new keys as
    the projection gave them, at positions (B,) (context_len - 1 in the engine); every program
    normalizes (q_weight not None) and rotates the queries it reads, and the one that stores the
    key that key, as qk_norm_rope would have: no launch for it.
    (Keys-first tiles instead rotate q and the new keys in place with qk_norm_rope's kernel first.)
    num_splits: cut max_context (the block table's width) into that many pieces; None: pieces of
    choose_split_tokens keys.
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
    else:
        new_k = new_v = slot_mapping = q  # unused pointers
    if rope is not None:
        assert new_kv is not None, "rope needs new_kv: the keys it rotates are the step's new ones"
        positions, cos_sin, q_norm, k_norm, rope_eps = rope
        assert positions.shape == (B,) and cos_sin.dtype == torch.float32 and cos_sin.is_contiguous() and cos_sin.shape[-1] == head_dim
        assert head_dim % 2 == 0
    if rope is not None and keys_first:
        # Keys-first tiles run under a register cap: q and the new keys are rotated by qk_norm_rope's
        # kernel first (in place). Rotated inside the tiles, nano-vllm's FP8 workload was 2% slower;
        # this way, within 0.5% of the engine before (H100, measurements/one_sequence_h100.json).
        q, new_k = qk_norm_rope(q, new_k, positions, cos_sin, q_norm, k_norm, rope_eps)
        rope = None
    if rope is None:
        positions, cos_sin, q_norm, k_norm, rope_eps = q, q, None, None, 0.0
    if q_norm is None:
        q_norm = k_norm = q  # unused pointers
    if num_splits > 1:
        part_out = torch.empty(B, H, num_splits, head_dim, dtype=torch.float32, device=q.device)
        part_lse = torch.empty(B, H, num_splits, dtype=torch.float32, device=q.device)
    else:
        part_out = part_lse = out  # unused pointers
    tma = keys_first and has_tma(q.device)
    split_pdl = pdl(q.device) and not keys_first  # PDL cost the FP8 workload another 0.6%
    k_desc, v_desc = tensor_descriptors(k_cache, v_cache, block_n, block_d) if tma else (None, None)
    decode_split_kernel[(num_kv_heads, num_splits, B)](
        q, k_cache, v_cache, k_scale, v_scale, block_tables, context_lens,
        out, part_out, part_lse, new_k, new_v, slot_mapping, k_desc, v_desc,
        scale * math.log2(math.e),
        q.stride(0), q.stride(1), out.stride(0), out.stride(1),
        new_k.stride(0), new_k.stride(1), new_v.stride(0), new_v.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), v_cache.stride(3), block_tables.stride(0),
        H, num_kv_heads, head_dim, group, split_size, num_splits, positions, cos_sin, q_norm, k_norm, rope_eps,
        BLOCK_SIZE=block_size, GROUP_PAD=max(16, triton.next_power_of_2(group)), BLOCK_N=block_n,
        BLOCK_D=block_d, FP8=fp8, FP8_MAX=FP8_MAX, DOT_DTYPE=tl.float32 if q.dtype == torch.float32 else tl.float16,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32", ONE_SPLIT=num_splits == 1,
        STORE=new_kv is not None, V_KEY_MAJOR=is_key_major(v_cache, k_cache), KEYS_FIRST=keys_first,
        TABLE_PAD=table_pad, TMA=tma, ROPE=rope is not None, QK_NORM=rope is not None and rope[2] is not None,
        PDL=split_pdl, num_warps=num_warps, num_stages=num_stages, maxnreg=maxnreg, launch_pdl=split_pdl,
    )
    if num_splits > 1:
        decode_reduce_kernel[(B, H)](
            part_out, part_lse, context_lens, out, out.stride(0), out.stride(1),
            H, head_dim, split_size, num_splits,
            SPLIT_PAD=triton.next_power_of_2(num_splits), BLOCK_D=block_d, PDL=pdl(q.device), num_warps=4,
            launch_pdl=pdl(q.device),
        )
    return out
