"""The kernels' torch references against naive dense attention, and the Triton kernels on CPU.

The references in nanovllm_final/kernels/reference.py are the spec of every Triton kernel, so
they are checked first against the most naive thing possible: each sequence's keys and values
kept densely, stored into a paged cache through store_kvcache, and attention computed in float64
with repeat_interleave'd KV heads and an explicit causal mask.

The Triton kernels themselves are then run on CPU by Triton's interpreter. TRITON_INTERPRET=1
must be set before any @triton.jit runs, and another test in this process may already have
imported the kernels, so test_kernels_interpret.py runs in a subprocess with the variables set.

    python -m pytest tests/final/test_kernels.py -q
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nanovllm_final.kernels import reference

REPO = Path(__file__).resolve().parents[2]


def paged_from_dense(keys, values, block_size, fp8=False, seed=0):
    """Store per-sequence dense K/V (L_i, Hkv, d) into a shuffled paged cache through
    reference.store_kvcache; return the cache pieces and the block tables (padded with -1)."""
    g = torch.Generator().manual_seed(seed)
    Hkv, d = keys[0].shape[1:]
    nblocks = [-(-k.shape[0] // block_size) for k in keys]
    num_blocks = sum(nblocks) + 2
    dtype = reference.FP8_DTYPE if fp8 else keys[0].dtype
    k_cache = torch.zeros(num_blocks, block_size, Hkv, d, dtype=dtype)
    v_cache = torch.zeros_like(k_cache)
    k_scale = reference.fp8_scales(torch.cat(keys)) if fp8 else None  # one scale per head, from all the keys
    v_scale = reference.fp8_scales(torch.cat(values)) if fp8 else None
    free = torch.randperm(num_blocks, generator=g).tolist()
    block_tables = torch.full((len(keys), max(nblocks) + 1), -1, dtype=torch.int32)
    for i, (k, v) in enumerate(zip(keys, values)):
        block_tables[i, :nblocks[i]] = torch.tensor(free[:nblocks[i]])
        free = free[nblocks[i]:]
        pos = torch.arange(k.shape[0])
        slots = block_tables[i, pos // block_size].long() * block_size + pos % block_size
        reference.store_kvcache(k, v, k_cache, v_cache, slots, k_scale, v_scale)
    context_lens = torch.tensor([k.shape[0] for k in keys], dtype=torch.int32)
    return k_cache, v_cache, k_scale, v_scale, block_tables, context_lens


def naive_attention(q, k, v, q_positions, scale):
    """q (n, H, d) at absolute positions q_positions against dense k, v (L, Hkv, d); float64."""
    group = q.shape[1] // k.shape[1]
    k = k.double().repeat_interleave(group, dim=1)  # (L, H, d)
    v = v.double().repeat_interleave(group, dim=1)
    scores = torch.einsum("nhd,lhd->hnl", q.double(), k) * scale
    future = torch.arange(k.shape[0])[None, :] > q_positions[:, None]  # (n, L)
    probs = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    return torch.einsum("hnl,lhd->nhd", probs, v)


@pytest.mark.parametrize("group", [1, 2, 3, 4])
@pytest.mark.parametrize("block_size", [4, 16])
def test_reference_attention_matches_dense(group, block_size):
    torch.manual_seed(group * 100 + block_size)
    Hkv, d, scale = 2, 16, 0.3
    lens = [1, 7, 16, 33]  # inside one block, crossing one boundary, exactly full, several
    keys = [torch.randn(n, Hkv, d) for n in lens]
    values = [torch.randn(n, Hkv, d) for n in lens]
    k_cache, v_cache, _, _, block_tables, context_lens = paged_from_dense(keys, values, block_size)

    q = torch.randn(len(lens), Hkv * group, d)
    out = reference.paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale)
    for i, n in enumerate(lens):
        want = naive_attention(q[i:i + 1], keys[i], values[i], torch.tensor([n - 1]), scale)[0]
        torch.testing.assert_close(out[i].double(), want, atol=1e-5, rtol=1e-5)

    q_lens = [1, 3, 16, 20]  # a decode, a short chunk, a whole prompt, a chunk after a cached prefix
    cu_seqlens_q = torch.tensor([0] + q_lens).cumsum(0).to(torch.int32)
    q = torch.randn(sum(q_lens), Hkv * group, d)
    out = reference.paged_attention_prefill(q, k_cache, v_cache, cu_seqlens_q, context_lens,
                                            block_tables, scale)
    for i, (n, ql) in enumerate(zip(lens, q_lens)):
        rows = slice(int(cu_seqlens_q[i]), int(cu_seqlens_q[i + 1]))
        want = naive_attention(q[rows], keys[i], values[i], torch.arange(n - ql, n), scale)
        torch.testing.assert_close(out[rows].double(), want, atol=1e-5, rtol=1e-5)


def test_reference_store_skips_negative_slots():
    k_cache = torch.full((3, 4, 2, 8), 7.0)
    v_cache = k_cache.clone()
    key, value = torch.randn(3, 2, 8), torch.randn(3, 2, 8)
    reference.store_kvcache(key, value, k_cache, v_cache, torch.tensor([5, -1, 0]))
    flat_k, flat_v = k_cache.view(12, 2, 8), v_cache.view(12, 2, 8)
    assert torch.equal(flat_k[5], key[0]) and torch.equal(flat_k[0], key[2])
    assert torch.equal(flat_v[5], value[0]) and torch.equal(flat_v[0], value[2])
    untouched = [s for s in range(12) if s not in (0, 5)]
    assert (flat_k[untouched] == 7.0).all() and (flat_v[untouched] == 7.0).all()


def test_reference_fp8_round_trip_error_is_bounded():
    """e4m3 keeps 3 mantissa bits: round-to-nearest is off by at most 2^-4 of the value (plus half
    a subnormal step, scale * 2^-10, near zero); each head's scale maps its max onto
    448 / FP8_HEADROOM, and larger values later saturate at 448 * scale instead of turning NaN."""
    torch.manual_seed(0)
    x = torch.randn(64, 4, 32) * torch.logspace(-1, 1, 64)[:, None, None]  # tokens of different sizes
    x[:, 3] = 0.0  # an all-zero head must not divide by zero
    scale = reference.fp8_scales(x)  # (4,)
    q = reference.quantize_fp8(x, scale)
    back = q.float() * scale[:, None]
    assert torch.isfinite(back).all() and (back[:, 3] == 0).all()
    assert torch.allclose(q.float().abs().amax(dim=(0, 2))[:3], torch.tensor(448.0 / reference.FP8_HEADROOM))
    assert ((back - x).abs() <= x.abs() * 2**-4 + scale[:, None] * 2**-10 + 1e-12).all()
    huge = reference.quantize_fp8(x * 100, scale).float()
    assert torch.isfinite(huge).all() and huge.abs().max() == 448.0

    torch.manual_seed(1)
    keys = [torch.randn(n, 2, 16) for n in (5, 19)]
    values = [torch.randn(n, 2, 16) for n in (5, 19)]
    q = torch.randn(2, 4, 16)
    bf = paged_from_dense(keys, values, 4)
    f8 = paged_from_dense(keys, values, 4, fp8=True)
    exact = reference.paged_attention_decode(q, *bf[:2], bf[4], bf[5], 0.25)
    approx = reference.paged_attention_decode(q, f8[0], f8[1], f8[4], f8[5], 0.25, f8[2], f8[3])
    assert ((approx - exact).norm() / exact.norm()) < 0.05  # measured ~0.02


def test_reference_rms_norm_matches_transformers():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    torch.manual_seed(0)
    norm = LlamaRMSNorm(48, eps=1e-5).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(48))
    x, residual = torch.randn(2, 5, 48, dtype=torch.bfloat16), torch.randn(2, 5, 48, dtype=torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(reference.rms_norm(x, norm.weight, 1e-5), norm(x))
        normed, summed = reference.fused_add_rms_norm(x, residual, norm.weight, 1e-5)
        assert torch.equal(summed, x + residual) and torch.equal(normed, norm(x + residual))


@pytest.mark.slow
def test_triton_kernels_under_interpreter():
    """Run test_kernels_interpret.py in a fresh process with the interpreter switched on."""
    env = dict(os.environ, TRITON_INTERPRET="1", NANOVLLM_TRITON_INTERPRET="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:xdist", "-p", "no:randomly",
           str(Path(__file__).with_name("test_kernels_interpret.py"))]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"interpreter tests failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]
