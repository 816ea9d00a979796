"""Chapter 10 on a CUDA GPU: the FP8 store kernel against torch's cast, byte for byte (a GPU
rounds float32 to e4m3 exactly as torch does), the decode kernel on codes against the
dequantizing twin at Qwen3-0.6B's shapes, and the engine with an FP8 pool and CUDA graphs.

    python -m pytest chapters/10/tests/test_gpu_ch10.py -q --reference    # skipped without CUDA
"""

import pytest
import torch

import ch10
from ch07.sampling_params import SamplingParams
from ch09.tests.kernel_checks import _paged_case
from ch10 import fp8, solutions
from ch10.kernels import attention, kvcache
from ch10.tests.test_fp8_ch10 import TINY_PROMPTS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_store_kernel_codes_are_torchs(dtype):
    torch.manual_seed(0)
    N, Hkv, d = 37, 8, 128
    qkv = torch.randn(N, 4 * Hkv * d, device="cuda") * torch.logspace(-3, 2, 4 * Hkv * d, device="cuda")
    qkv[3, 2 * Hkv * d] = 1e5  # saturates
    qkv = qkv.to(dtype)
    key, value = qkv[:, 2 * Hkv * d:3 * Hkv * d].view(N, Hkv, d), qkv[:, 3 * Hkv * d:].view(N, Hkv, d)
    k_scale, v_scale = fp8.fp8_scales(key[:8]), fp8.fp8_scales(value[:8])
    slots = torch.randperm(64 * 16, device="cuda")[:N]
    slots[::5] = -1
    caches = [torch.zeros(64, 16, Hkv, d, device="cuda", dtype=fp8.FP8_DTYPE) for _ in range(4)]
    kvcache.store_kvcache_fp8(key, value, caches[0], caches[1], k_scale, v_scale, slots)  # the kernel
    kvcache.store_kvcache_fp8_torch(key, value, caches[2], caches[3], k_scale, v_scale, slots)
    for got, want in ((caches[0], caches[2]), (caches[1], caches[3])):
        assert torch.equal(got.view(torch.uint8), want.view(torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_on_codes_equals_the_dequantizing_twin(dtype):
    lens = [1, 15, 16, 17, 300, 0, 129, 64]
    q, k, v, block_tables, context_lens = (t.cuda() for t in _paged_case(16, 8, 128, 16, lens, dtype))
    k_scale, v_scale = fp8.fp8_scales(k.flatten(0, 1)), fp8.fp8_scales(v.flatten(0, 1))
    k_cache, v_cache = solutions.quantize_fp8(k, k_scale), solutions.quantize_fp8(v, v_scale)
    args = (q, k_cache, v_cache, block_tables, context_lens, 128 ** -0.5, k_scale, v_scale)
    got, want = attention.paged_decode_attention_fp8(*args), attention.paged_decode_attention_fp8_torch(*args)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    err = ((got.float() - want.float()).abs().max() / want.float().abs().max()).item()
    assert err <= tol, f"relative error {err:.3g} > {tol}"


def test_fp8_engine_with_graphs(tiny_qwen3_dir):
    """An FP8 pool with CUDA graphs gives the eager FP8 engine's tokens, and keeps the model-dtype
    engine's greedy choice in at least 90% of teacher-forced steps (chapter 10's stated tolerance)."""
    from ch10.agreement import compare_fp8

    params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    outs = {}
    for eager in (True, False):
        llm = ch10.LLM(tiny_qwen3_dir, device="cuda", kv_cache_dtype="fp8", enforce_eager=eager)
        outs[eager] = [o["token_ids"] for o in llm.generate(TINY_PROMPTS, params, use_tqdm=False)]
        assert (llm.model_runner.graphs is None) == eager
        llm.close()
    assert outs[False] == outs[True]
    got = compare_fp8(tiny_qwen3_dir, TINY_PROMPTS, max_tokens=24, device="cuda")
    assert got["top1_agreement"] >= 0.9, got["top1_agreement"]
