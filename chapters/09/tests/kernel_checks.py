"""Each kernel against its torch twin, at shapes that reach every mask; run under Triton's
interpreter (interpreter.py sends them to a child process that has it on).

A check takes a kernel's Python function (the chapter's, a learner's, or a planted wrong one),
compiles it with triton.jit, runs it on small CPU tensors and raises an AssertionError that
says which case differs, where, and by how much. The shapes are tiny (the interpreter runs each
program in numpy) but chosen so that every mask matters:

    store       D = n_kv_heads * head_dim not a power of two (lanes past D), slot -1, slots on
                both sides of a block edge, keys that are strided views of one fused projection
    decode      contexts that end inside a block and exactly at its edge, of one key and of
                none (a CUDA graph's padding), block_size not a power of two, GQA groups of
                1, 2 and 3 (3 is padded to 4 query rows), block tables padded with -1
    add + norm  hidden not a power of two, float16 (the rounding of the residual stream)
"""

import torch
import triton

from ch09.kernels import attention, kvcache, rmsnorm


def _compare(what: str, got: torch.Tensor, want: torch.Tensor, tol: float) -> None:
    err = (got.double() - want.double()).abs()
    bad = ~(err <= tol)  # catches NaN too
    if bad.any():
        where = tuple(i.item() for i in bad.nonzero()[0])
        raise AssertionError(
            f"{what}: {bad.sum().item()} of {got.numel()} numbers differ from the torch twin (tolerance {tol:g}); "
            f"the first at index {where}: got {got[where].item():.6g}, expected {want[where].item():.6g}")


# --- store_kvcache -------------------------------------------------------------------------------
STORE_CASES = [  # (n_kv_heads, head_dim, dtype)
    (1, 16, torch.float32),  # D = 16, no masked lane
    (3, 4, torch.float32),  # D = 12: the program's 16 lanes, 4 of them past D
    (3, 8, torch.float16),  # D = 24 in 32 lanes
]


def check_store_kvcache_kernel(fn) -> None:
    kernel = triton.jit(fn)
    num_blocks, block_size = 5, 4
    slots = torch.tensor([3, -1, 4, 19, 0, 9, -1, 8])  # 3 -> 4 crosses a block edge; 19 is the pool's last slot
    for n_kv_heads, head_dim, dtype in STORE_CASES:
        torch.manual_seed(0)
        N, D = len(slots), n_kv_heads * head_dim
        # k and v as the model hands them over: views into one (N, q | k | v) projection, so a
        # token's row starts 3 * D numbers after the previous one's, not D.
        qkv = torch.randn(N, 3 * D, dtype=dtype)
        key = qkv[:, D:2 * D].view(N, n_kv_heads, head_dim)
        value = qkv[:, 2 * D:].view(N, n_kv_heads, head_dim)
        caches = [torch.full((num_blocks, block_size, n_kv_heads, head_dim), -7.0, dtype=dtype) for _ in range(4)]
        kvcache.launch_store_kvcache(kernel, key, value, caches[0], caches[1], slots)
        kvcache.store_kvcache_torch(key, value, caches[2], caches[3], slots)
        case = f"store_kvcache, n_kv_heads={n_kv_heads}, head_dim={head_dim}, slots={slots.tolist()}"
        _compare(f"{case}: k_cache", caches[0], caches[2], 0)
        _compare(f"{case}: v_cache", caches[1], caches[3], 0)


# --- paged_decode_attention ----------------------------------------------------------------------
DECODE_CASES = [  # (n_heads, n_kv_heads, head_dim, block_size, context_lens, dtype)
    (2, 2, 16, 4, [9, 1, 8, 16], torch.float32),  # GROUP 1; 9 ends inside a block, 8 and 16 at an edge
    (4, 2, 8, 4, [5, 0, 12], torch.float32),  # GROUP 2; context 0: a padded row, zeros out
    (6, 2, 16, 3, [7, 3, 10], torch.float16),  # GROUP 3 in 4 rows; blocks of 3 in 4 lanes
]


def _paged_case(n_heads, n_kv_heads, head_dim, block_size, context_lens, dtype, seed=0):
    """Random q and pool, and block tables that take the pool's blocks in shuffled order."""
    g = torch.Generator().manual_seed(seed)
    needed = [-(-n // block_size) for n in context_lens]
    width = max(needed) + 1  # one -1 past the longest table too
    num_blocks = sum(needed) + 2
    k_cache = torch.randn(num_blocks, block_size, n_kv_heads, head_dim, generator=g).to(dtype)
    v_cache = torch.randn(num_blocks, block_size, n_kv_heads, head_dim, generator=g).to(dtype)
    free = torch.randperm(num_blocks, generator=g).tolist()
    block_tables = torch.full((len(context_lens), width), -1, dtype=torch.int32)
    for i, n in enumerate(needed):
        block_tables[i, :n] = torch.tensor(free[:n], dtype=torch.int32)
        free = free[n:]
    q = torch.randn(len(context_lens), n_heads, head_dim, generator=g).to(dtype)
    return q, k_cache, v_cache, block_tables, torch.tensor(context_lens, dtype=torch.int32)


def check_paged_decode_attention_kernel(fn) -> None:
    kernel = triton.jit(fn)
    for n_heads, n_kv_heads, head_dim, block_size, context_lens, dtype in DECODE_CASES:
        q, k_cache, v_cache, block_tables, lens = _paged_case(n_heads, n_kv_heads, head_dim, block_size,
                                                              context_lens, dtype)
        scale = head_dim ** -0.5
        got = attention.launch_paged_decode_attention(kernel, q, k_cache, v_cache, block_tables, lens, scale)
        want = attention.paged_decode_attention_torch(q, k_cache, v_cache, block_tables, lens, scale)
        tol = 1e-5 if dtype == torch.float32 else 2e-3
        _compare(f"paged_decode_attention, {n_heads} query heads on {n_kv_heads} K/V heads, block_size "
                 f"{block_size}, context_lens {context_lens}, {dtype}", got, want, tol)


def check_online_softmax_update(fn) -> None:
    """The decode kernel, with fn as its online-softmax step."""
    chapter_step = attention.online_softmax_update
    attention.online_softmax_update = triton.jit(fn)  # the kernel finds its step by this name when it runs
    try:
        check_paged_decode_attention_kernel(attention.paged_decode_attention_kernel.fn)
    finally:
        attention.online_softmax_update = chapter_step


# --- fused_add_rms_norm --------------------------------------------------------------------------
NORM_CASES = [(3, 32, torch.float32), (2, 24, torch.float32), (4, 40, torch.float16)]  # (rows, hidden, dtype)


def check_fused_add_rms_norm_kernel(fn) -> None:
    kernel = triton.jit(fn)
    for rows, hidden, dtype in NORM_CASES:
        torch.manual_seed(rows)
        x = torch.randn(rows, hidden).to(dtype)
        residual = (torch.randn(rows, hidden) * 4).to(dtype)
        weight = (torch.rand(hidden) + 0.5).to(dtype)
        out, residual_out = rmsnorm.launch_fused_add_rms_norm(kernel, x, residual, weight, 1e-6)
        want_out, want_residual = rmsnorm.fused_add_rms_norm_torch(x, residual, weight, 1e-6)
        tol = 1e-5 if dtype == torch.float32 else 2e-3
        case = f"fused_add_rms_norm, {rows} rows of hidden={hidden}, {dtype}"
        _compare(f"{case}: the residual stream x + residual", residual_out, want_residual, 0)
        _compare(f"{case}: the normalized rows", out, want_out, tol)
