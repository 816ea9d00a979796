"""Chapter 10's own tests: the format, the store and the attention against references, and the
engine with an FP8 pool against the same engine in the model's dtype."""

import math

import pytest
import torch

from ch09.tests.interpreter import interpreted
from ch10 import e4m3, fp8, solutions
from ch10.kernels import attention, kvcache
from ch10.tests import kernel_checks

ALL_CODES = torch.arange(256, dtype=torch.uint8)


# --- the format ------------------------------------------------------------------------------------
def test_e4m3_numbers_the_chapter_teaches():
    finite = sorted({solutions.decode_e4m3(c) for c in range(256)} - {math.nan}, key=float)
    finite = [x for x in finite if not math.isnan(x)]
    assert max(finite) == e4m3.E4M3_MAX == 448.0 and min(finite) == -448.0
    assert len({x for x in finite}) == 253  # 256 codes: two NaNs, and +0 / -0 are one value
    assert solutions.decode_e4m3(0x39) - solutions.decode_e4m3(0x38) == 1 / 8  # the spacing just above 1
    assert solutions.decode_e4m3(0x7E) - solutions.decode_e4m3(0x7D) == 32  # ... and just below 448
    assert solutions.decode_e4m3(0x01) == 2.0 ** -9  # the smallest step, among the subnormals


def test_store_quantizes_every_code_like_torch():
    """Every finite e4m3 value, stored with scale 1, comes back as its own code: the twin's codes are torch's cast."""
    values = ALL_CODES.view(fp8.FP8_DTYPE).float()
    values = values[~values.isnan()]  # 254 values
    codes = solutions.quantize_fp8(values.view(-1, 1, 1), torch.ones(1))
    assert torch.equal(codes.float().flatten(), values)


def test_quantize_saturates_and_never_gives_nan():
    x = torch.tensor([[[1e6, -1e6, 448.0, 500.0]]])
    assert solutions.quantize_fp8(x, torch.ones(1)).float().tolist() == [[[448.0, -448.0, 448.0, 448.0]]]


def test_scales_are_per_head_with_headroom():
    x = torch.zeros(5, 2, 4)
    x[3, 0, 1], x[1, 1, 2] = 7.0, -0.25
    assert torch.allclose(fp8.fp8_scales(x), torch.tensor([7.0, 0.25]) * fp8.FP8_HEADROOM / 448)
    assert fp8.fp8_scales(torch.zeros(2, 3, 4)).min() > 0, "an all-zero head must not get scale 0 (0/0 = NaN)"


def test_quantization_error_is_within_half_a_step():
    """x -> codes -> x * scale is off by at most half of e4m3's relative step (2^-4) for values in
    the normal range, and at most half the subnormal step (2^-10 * scale) below it."""
    torch.manual_seed(0)
    x = torch.randn(64, 4, 32) * torch.tensor([0.01, 1.0, 30.0, 500.0])[:, None]
    scale = fp8.fp8_scales(x)
    back = fp8.dequantize_fp8(solutions.quantize_fp8(x, scale), scale)
    bound = torch.maximum(x.abs() * 2.0 ** -4, (2.0 ** -10 * scale)[:, None])
    assert ((back - x).abs() <= bound * (1 + 1e-6)).all()


# --- the kernels, through the interpreter ---------------------------------------------------------
def test_store_kernel_equals_its_twin():
    interpreted(kernel_checks.check_store_kvcache_fp8_kernel, kvcache.store_kvcache_fp8_kernel.fn)


def test_decode_kernel_on_codes_equals_the_dequantizing_twin():
    from ch09.kernels.attention import paged_decode_attention_kernel

    interpreted(kernel_checks.check_paged_decode_attention_fp8, paged_decode_attention_kernel.fn)


def test_decode_check_rejects_wrong_scales():
    """Scales applied twice, taken from the wrong head, or forgotten on the values: each is caught."""
    from ch09.kernels.attention import paged_decode_attention_kernel

    interpreted(kernel_checks.check_wrong_launchers_are_caught, paged_decode_attention_kernel.fn)


def test_dequantized_attention_is_close_to_float_attention():
    """The twin over FP8 codes against float32 attention over the original keys and values. e4m3
    rounds a normal value by at most half a step, 2^-4 = 6.25% of it; the outputs, weighted sums
    of such values, stay within that of their largest size (measured on these heads: 2-3.2%)."""
    from ch09.kernels.attention import paged_decode_attention_torch
    from ch09.tests.kernel_checks import _paged_case

    for case in kernel_checks.DECODE_CASES[:2]:
        q, k, v, block_tables, lens = _paged_case(*case)
        k_scale, v_scale = fp8.fp8_scales(k.flatten(0, 1)), fp8.fp8_scales(v.flatten(0, 1))
        exact = paged_decode_attention_torch(q, k, v, block_tables, lens, 0.3)
        got = attention.paged_decode_attention_fp8_torch(q, solutions.quantize_fp8(k, k_scale), solutions.quantize_fp8(v, v_scale),
                                                          block_tables, lens, 0.3, k_scale, v_scale)
        err = (got - exact).abs().max() / exact.abs().max()
        assert err < 2.0 ** -4, f"FP8 attention is {err:.1%} off float attention (bound 6.25%)"


# --- the engine ------------------------------------------------------------------------------------
def test_config_fits_the_default_pool_in_the_same_bytes(tiny_qwen3_dir):
    import ch10

    auto, fp8_engine = ch10.Config(tiny_qwen3_dir), ch10.Config(tiny_qwen3_dir, kv_cache_dtype="fp8")
    ratio = auto.dtype.itemsize  # float32 here: 4 bytes a number against 1
    assert fp8_engine.num_kvcache_blocks == ratio * auto.num_kvcache_blocks
    assert ch10.Config(tiny_qwen3_dir, kv_cache_dtype="fp8", num_kvcache_blocks=7).num_kvcache_blocks == 7
    with pytest.raises(ValueError, match=r"kv_cache_dtype must be one of \('auto', 'fp8'\), got 'int8'"):
        ch10.Config(tiny_qwen3_dir, kv_cache_dtype="int8")


def test_the_pool_holds_codes_and_the_scales_are_set_once(tiny_qwen3_dir):
    """The first step that stores tokens sets each layer's scales; later steps store with them,
    and never change them (a code written earlier must keep its meaning)."""
    import ch10
    from ch07.sampling_params import SamplingParams

    llm = ch10.LLM(tiny_qwen3_dir, kv_cache_dtype="fp8")
    layers = llm.model_runner.fp8_layers()
    assert llm.model_runner.kv_cache.dtype == fp8.FP8_DTYPE and len(layers) > 0
    assert all(attn.k_scale.tolist() == [1.0] * attn.num_kv_heads for attn in layers), "scales start unset"
    llm.generate([[5, 6, 7, 8, 9]], SamplingParams(temperature=0, max_tokens=3, ignore_eos=True), use_tqdm=False)
    first = [(attn.k_scale.clone(), attn.v_scale.clone()) for attn in layers]
    assert all((k != 1).all() and (v != 1).all() for k, v in first), "the first prefill sets every head's scales"
    llm.generate([[(7 * i) % 97 for i in range(40)]], SamplingParams(temperature=0, max_tokens=3, ignore_eos=True),
                 use_tqdm=False)
    assert all(torch.equal(k, a.k_scale) and torch.equal(v, a.v_scale) for (k, v), a in zip(first, layers))


TINY_PROMPTS = [[3, 1, 4, 1, 5, 9, 2, 6], list(range(40, 72)), [7] * 5, [11, 200, 31, 47, 5, 300, 2]]


@pytest.mark.parametrize("family", ["qwen3", "llama"])
def test_fp8_keeps_the_greedy_choice_on_tiny_models(family, tiny_model_factory):
    """Teacher-forced against the same engine in float32. Stated thresholds: the same top-1
    token in at least 90% of steps (measured: 96% qwen3, 92% llama), every logit within 8% of
    the logits' range (measured: 4.6%, 5.6%) and within 1% on average (0.5%, 0.6%). A random
    tiny model's top tokens are close (its top-2 gaps go down to 0.005), a hard case for FP8."""
    from ch10.agreement import compare_fp8

    got = compare_fp8(tiny_model_factory(family), TINY_PROMPTS, max_tokens=24)
    assert got["steps"] == 24 * len(TINY_PROMPTS)
    assert got["top1_agreement"] >= 0.9, f"{family}: FP8 kept the greedy token in {got['top1_agreement']:.0%} of steps"
    assert got["max_logit_error"] <= 0.08 * got["logit_range"], got["max_logit_error"]
    assert got["mean_logit_error"] <= 0.01 * got["logit_range"], got["mean_logit_error"]
