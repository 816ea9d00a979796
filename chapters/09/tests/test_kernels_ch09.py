"""Chapter 9's kernels: each against its torch twin under Triton's interpreter, the twins
against plain dense attention and chapter 1's norm, and the dispatch that picks one or the other."""

import pytest
import torch

from ch01.layers import rms_norm
from ch09 import kernels
from ch09.kernels import attention, kvcache, rmsnorm
from ch09.tests import kernel_checks
from ch09.tests.interpreter import interpreted


# --- the kernels, through the interpreter ---------------------------------------------------------
def test_store_kernel_equals_its_twin():
    interpreted(kernel_checks.check_store_kvcache_kernel, kvcache.store_kvcache_kernel.fn)


def test_decode_kernel_equals_its_twin():
    interpreted(kernel_checks.check_paged_decode_attention_kernel, attention.paged_decode_attention_kernel.fn)


def test_fused_add_rms_norm_kernel_equals_its_twin():
    interpreted(kernel_checks.check_fused_add_rms_norm_kernel, rmsnorm.fused_add_rms_norm_kernel.fn)


def test_a_kernel_that_differs_is_reported_where():
    """The checks name the case and the first wrong number (here a planted wrong kernel)."""
    from ch09.tests.grading import norm_without_the_weight

    with pytest.raises(AssertionError, match=r"fused_add_rms_norm, 3 rows of hidden=32.*normalized rows.*index \(0, "):
        interpreted(kernel_checks.check_fused_add_rms_norm_kernel, norm_without_the_weight)


# --- the twins, against the plainest computation -------------------------------------------------
def dense_attention(q, keys, values, scale):
    """q (H, d) of one query against its dense keys, values (L, Hkv, d), in float64."""
    group = q.shape[0] // keys.shape[1]
    k = keys.double().repeat_interleave(group, dim=1)  # (L, H, d)
    v = values.double().repeat_interleave(group, dim=1)
    probs = (torch.einsum("hd,lhd->hl", q.double(), k) * scale).softmax(dim=-1)
    return torch.einsum("hl,lhd->hd", probs, v)


@pytest.mark.parametrize("case", kernel_checks.DECODE_CASES[:2])
def test_decode_twin_is_dense_attention(case):
    n_heads, n_kv_heads, head_dim, block_size, context_lens, dtype = case
    q, k_cache, v_cache, block_tables, lens = kernel_checks._paged_case(n_heads, n_kv_heads, head_dim, block_size,
                                                                        context_lens, dtype)
    out = attention.paged_decode_attention_torch(q, k_cache, v_cache, block_tables, lens, 0.3)
    for i, n in enumerate(context_lens):
        positions = torch.arange(n)
        slots = block_tables[i, positions // block_size].long() * block_size + positions % block_size
        keys = k_cache.flatten(0, 1)[slots]  # (n, Hkv, d), read slot by slot
        values = v_cache.flatten(0, 1)[slots]
        want = dense_attention(q[i], keys, values, 0.3) if n else torch.zeros(n_heads, head_dim)
        torch.testing.assert_close(out[i].double(), want.double(), atol=1e-5, rtol=1e-5)


def test_store_twin_skips_minus_one():
    k = torch.randn(3, 2, 4)
    v = torch.randn(3, 2, 4)
    k_cache, v_cache = torch.zeros(2, 4, 2, 4), torch.zeros(2, 4, 2, 4)
    kvcache.store_kvcache_torch(k, v, k_cache, v_cache, torch.tensor([5, -1, 0]))
    assert torch.equal(k_cache.view(8, 2, 4)[5], k[0]) and torch.equal(v_cache.view(8, 2, 4)[0], v[2])
    assert k_cache.view(8, 2, 4)[7].abs().sum() == 0, "slot -1 must store nothing (torch's index -1 is the last slot)"
    assert (k_cache != 0).flatten(1).any(1).sum() == 2  # two slots' worth, in block 0 and block 1


def test_fused_twin_is_the_add_then_chapter_1s_norm():
    x, residual, weight = torch.randn(5, 24).half(), torch.randn(5, 24).half(), torch.rand(24).half()
    out, h = rmsnorm.fused_add_rms_norm_torch(x, residual, weight, 1e-6)
    assert torch.equal(h, x + residual) and torch.equal(out, rms_norm(x + residual, weight, 1e-6))


# --- the dispatch ---------------------------------------------------------------------------------
def test_cpu_tensors_take_the_twins(monkeypatch):
    """On a CPU the public names never launch a kernel (they would need a GPU or the interpreter)."""
    def no_kernel(*args, **kwargs):
        raise AssertionError("a CPU tensor reached a Triton kernel")

    for module, name in ((kvcache, "launch_store_kvcache"), (attention, "launch_paged_decode_attention"),
                         (rmsnorm, "launch_fused_add_rms_norm")):
        monkeypatch.setattr(module, name, no_kernel)
    q, k_cache, v_cache, block_tables, lens = kernel_checks._paged_case(4, 2, 8, 4, [5, 3], torch.float32)
    kernels.store_kvcache(q[:, :2], q[:, 2:], k_cache, v_cache, torch.tensor([0, 1]))
    out = kernels.paged_decode_attention(q, k_cache, v_cache, block_tables, lens, 0.5)
    normed, h = kernels.fused_add_rms_norm(q, q, torch.ones(8), 1e-6)
    assert out.shape == q.shape and normed.shape == h.shape == q.shape
