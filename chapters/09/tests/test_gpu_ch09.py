"""Chapter 9 on a CUDA GPU: the compiled kernels against their twins at Qwen3-0.6B's shapes, and
the engine's tokens with captured CUDA graphs against its eager tokens.

    python -m pytest chapters/09/tests/test_gpu_ch09.py -q --reference    # skipped without CUDA
"""

import pytest
import torch

import ch09
from ch01.sampling_params import SamplingParams
from ch09.kernels import attention, kvcache, rmsnorm
from ch09.tests.kernel_checks import _paged_case
from ch09.tests.test_graphs_ch09 import MAX_TOKENS, PROMPTS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def assert_close(got, want, dtype, what):
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    err = ((got.float() - want.float()).abs().max() / want.float().abs().max().clamp_min(1e-6)).item()
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_store_kernel(dtype):
    torch.manual_seed(0)
    N, Hkv, d = 37, 8, 128
    qkv = torch.randn(N, 4 * Hkv * d, device="cuda", dtype=dtype)  # q (2 groups of Hkv heads) | k | v
    key = qkv[:, 2 * Hkv * d:3 * Hkv * d].view(N, Hkv, d)
    value = qkv[:, 3 * Hkv * d:].view(N, Hkv, d)
    slots = torch.randperm(64 * 16, device="cuda")[:N]
    slots[::5] = -1
    caches = [torch.zeros(64, 16, Hkv, d, device="cuda", dtype=dtype) for _ in range(4)]
    kvcache.store_kvcache(key, value, caches[0], caches[1], slots)  # CUDA tensors: the kernel
    kvcache.store_kvcache_torch(key, value, caches[2], caches[3], slots)
    assert torch.equal(caches[0], caches[2]) and torch.equal(caches[1], caches[3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_kernel(dtype):
    lens = [1, 15, 16, 17, 300, 0, 129, 64]
    q, k_cache, v_cache, block_tables, context_lens = (t.cuda() for t in _paged_case(16, 8, 128, 16, lens, dtype))
    got = attention.paged_decode_attention(q, k_cache, v_cache, block_tables, context_lens, 128 ** -0.5)
    want = attention.paged_decode_attention_torch(q, k_cache, v_cache, block_tables, context_lens, 128 ** -0.5)
    assert_close(got, want, dtype, "paged_decode_attention")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_add_rms_norm_kernel(dtype):
    torch.manual_seed(0)
    x, residual = (torch.randn(37, 1024, device="cuda", dtype=dtype) for _ in range(2))
    weight = torch.rand(1024, device="cuda", dtype=dtype) + 0.5
    out, h = rmsnorm.fused_add_rms_norm(x, residual, weight, 1e-6)
    want_out, want_h = rmsnorm.fused_add_rms_norm_torch(x, residual, weight, 1e-6)
    assert torch.equal(h, want_h)
    assert_close(out, want_out, dtype, "fused_add_rms_norm")


def test_graph_tokens_equal_eager_tokens(tiny_qwen3_dir, monkeypatch):
    """The same prompts with enforce_eager and with graphs (captured at the first decode step, one
    per batch size, and replayed for every decode step after the prefill)."""
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in MAX_TOKENS]
    replays = []
    replay = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda graph: (replays.append(graph), replay(graph))[1])
    outs = {}
    for eager in (True, False):
        llm = ch09.LLM(tiny_qwen3_dir, device="cuda", max_num_seqs=6, max_model_len=48, kvcache_block_size=4,
                       enforce_eager=eager)
        outs[eager] = [o["token_ids"] for o in llm.generate(PROMPTS, params, use_tqdm=False)]
        graphs = llm.model_runner.graphs
        assert (graphs is None) == eager
        llm.close()
    assert outs[False] == outs[True]
    assert sorted(graphs.graphs) == [1, 2, 4, 6], "one captured graph per batch size"
    sizes = [next(bs for bs, g in graphs.graphs.items() if g is graph) for graph in replays]
    assert len(sizes) == max(MAX_TOKENS) - 1 and {6, 4, 1} <= set(sizes), sizes
