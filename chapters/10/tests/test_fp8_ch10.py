"""Chapter 10's own tests: the format, the store and the attention against references, and the
engine with an FP8 pool against the same engine in the model's dtype."""

import math

import pytest
import torch

from ch09.tests.interpreter import interpreted
from ch10 import e4m3, fp8
from ch10.kernels import attention, kvcache
from ch10.tests import kernel_checks

ALL_CODES = torch.arange(256, dtype=torch.uint8)


# --- the format ------------------------------------------------------------------------------------
def test_e4m3_numbers_the_chapter_teaches():
    finite = sorted({e4m3.decode_e4m3(c) for c in range(256)} - {math.nan}, key=float)
    finite = [x for x in finite if not math.isnan(x)]
    assert max(finite) == e4m3.E4M3_MAX == 448.0 and min(finite) == -448.0
    assert len({x for x in finite}) == 253  # 256 codes: two NaNs, and +0 / -0 are one value
    assert e4m3.decode_e4m3(0x39) - e4m3.decode_e4m3(0x38) == 1 / 8  # the spacing just above 1
    assert e4m3.decode_e4m3(0x7E) - e4m3.decode_e4m3(0x7D) == 32  # ... and just below 448
    assert e4m3.decode_e4m3(0x01) == 2.0 ** -9  # the smallest step, among the subnormals


def test_store_quantizes_every_code_like_torch():
    """Every finite e4m3 value, stored with scale 1, comes back as its own code: the twin's codes are torch's cast."""
    values = ALL_CODES.view(fp8.FP8_DTYPE).float()
    values = values[~values.isnan()]  # 254 values
    codes = fp8.quantize_fp8(values.view(-1, 1, 1), torch.ones(1))
    assert torch.equal(codes.float().flatten(), values)


def test_quantize_saturates_and_never_gives_nan():
    x = torch.tensor([[[1e6, -1e6, 448.0, 500.0]]])
    assert fp8.quantize_fp8(x, torch.ones(1)).float().tolist() == [[[448.0, -448.0, 448.0, 448.0]]]


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
    back = fp8.dequantize_fp8(fp8.quantize_fp8(x, scale), scale)
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
    """The twin over FP8 codes against float32 attention over the original keys and values: the
    stated bound is 3% of the outputs' size for these random heads (measured: about 1%)."""
    from ch09.kernels.attention import paged_decode_attention_torch
    from ch09.tests.kernel_checks import _paged_case

    for case in kernel_checks.DECODE_CASES[:2]:
        q, k, v, block_tables, lens = _paged_case(*case)
        k_scale, v_scale = fp8.fp8_scales(k.flatten(0, 1)), fp8.fp8_scales(v.flatten(0, 1))
        exact = paged_decode_attention_torch(q, k, v, block_tables, lens, 0.3)
        got = attention.paged_decode_attention_fp8_torch(q, fp8.quantize_fp8(k, k_scale), fp8.quantize_fp8(v, v_scale),
                                                          block_tables, lens, 0.3, k_scale, v_scale)
        err = (got - exact).abs().max() / exact.abs().max()
        assert err < 0.03, f"FP8 attention is {err:.1%} off float attention (bound 3%)"
