"""Graders for chapter 10's exercises. `pytest chapters/10` checks chapters/10/exercises.py;
`pytest chapters/10 --reference` checks the chapter's own code. The e4m3 exercises are checked
against torch's own cast (torch.float8_e4m3fn) for every one of the 256 codes and for the values
between them; the store and the pool size are then plugged into the chapter-10 engine."""

import math
from types import SimpleNamespace

import pytest
import torch

from ch01.config import ModelConfig

FP8 = torch.float8_e4m3fn
ALL_CODES = torch.arange(256, dtype=torch.uint8)


def torch_value(code: int) -> float:
    return ALL_CODES[code:code + 1].view(FP8).float().item()


def torch_code(x: float) -> int:
    """torch's cast of a float32 x, with |x| held at 448 first (how the cache stores a value)."""
    return torch.tensor([x], dtype=torch.float32).clamp(-448, 448).to(FP8).view(torch.uint8).item()


def float32s(values) -> list[float]:
    """The values as float32 numbers (what the cache is given), each with its two neighbours."""
    t = torch.tensor(values, dtype=torch.float32)
    return torch.stack([t, t.nextafter(t.new_tensor(-math.inf)), t.nextafter(t.new_tensor(math.inf))], 1).flatten().tolist()


def describe(code: int) -> str:
    return f"code {code:#04x} (s={code >> 7} e={(code >> 3) & 15:04b} m={code & 7:03b})"


FINITE = sorted({torch_value(c) for c in range(256) if not math.isnan(torch_value(c))})


# --- 10.1 decode ---------------------------------------------------------------------------------
@pytest.mark.exercise("decode_e4m3")
def test_decode_by_hand(solution):
    """A few codes worked out on paper:

        0 0111 000 = +(1 + 0/8) * 2^(7-7)  = 1.0
        0 0111 001 = +(1 + 1/8) * 2^0      = 1.125     the spacing near 1 is 1/8
        1 1000 100 = -(1 + 4/8) * 2^1      = -3.0
        0 1111 110 = +(1 + 6/8) * 2^8      = 448.0     the largest finite value
        0 0000 001 = +(1/8) * 2^(1-7)      = 2^-9      the smallest subnormal
        0 0001 000 = +1 * 2^(1-7)          = 2^-6      the smallest normal
        0 1111 111                          = NaN       (no infinity in e4m3)
    """
    for code, value in [(0x38, 1.0), (0x39, 1.125), (0xC4, -3.0), (0x7E, 448.0), (0x01, 2.0**-9), (0x08, 2.0**-6),
                        (0x00, 0.0)]:
        got = solution(code)
        assert got == value, f"decode_e4m3 of {describe(code)}: got {got!r}, expected {value!r}"
    assert math.isnan(solution(0x7F)) and math.isnan(solution(0xFF)), "codes 0x7F and 0xFF are NaN"


@pytest.mark.exercise("decode_e4m3")
def test_decode_every_code_like_torch(solution):
    for code in range(256):
        got, want = solution(code), torch_value(code)
        same = (math.isnan(got) and math.isnan(want)) if math.isnan(want) else got == want
        assert same, f"decode_e4m3 of {describe(code)}: got {got!r}, torch.float8_e4m3fn says {want!r}"


# --- 10.2 encode ---------------------------------------------------------------------------------
@pytest.mark.exercise("encode_e4m3")
def test_encode_by_hand(solution):
    """1.0 is a code; 1.0625 lies halfway between 1.0 (mantissa 000) and 1.125 (001): the even one
    wins; 1.1875 halfway between 1.125 (001) and 1.25 (010): up to the even one. 500 is past 448."""
    for x, code in [(1.0, 0x38), (1.0625, 0x38), (1.1875, 0x3A), (-3.0, 0xC4), (500.0, 0x7E), (-1e6, 0xFE),
                    (0.0, 0x00), (-0.0, 0x80), (2.0**-9, 0x01), (2.0**-11, 0x00)]:
        got = solution(x)
        assert got == code, f"encode_e4m3({x!r}): got {got!r}, expected {describe(code)}"
    assert solution(math.nan) in (0x7F, 0xFF), "encode_e4m3(nan) is a NaN code"


@pytest.mark.exercise("encode_e4m3")
def test_encode_every_code_and_every_tie_like_torch(solution):
    for code in range(256):
        value = torch_value(code)
        if not math.isnan(value):
            got = solution(value)
            assert got == code, f"encode_e4m3({value!r}) (the value of {describe(code)}): got {got!r}"
    midpoints = [(lo + hi) / 2 for lo, hi in zip(FINITE, FINITE[1:])]
    for x in float32s(midpoints):  # every tie, and the float32 numbers either side of it
        got, want = solution(x), torch_code(x)
        assert got == want, f"encode_e4m3({x!r}) (at or next to a tie): got {got!r}, torch gives {describe(want)}"


@pytest.mark.exercise("encode_e4m3")
def test_encode_random_values_like_torch(solution):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(3000, generator=g) * torch.exp(4 * torch.randn(3000, generator=g))  # float32, 1e-7 .. 1e7
    for x in xs.tolist():
        got, want = solution(x), torch_code(x)
        assert got == want, f"encode_e4m3({x!r}): got {got!r}, torch gives {describe(want)}"


# --- 10.3 quantize -------------------------------------------------------------------------------
def expected_codes(x, scale):
    return (x.double() / scale.double()[:, None]).clamp(-448, 448).float().to(FP8)


@pytest.mark.exercise("quantize_fp8")
def test_quantize_by_hand(solution):
    """Two tokens, two heads of four numbers, heads scaled by 0.5 and 2. Head 0's 1.0 becomes 2.0
    (a code); head 1's 600 becomes 300, which lies between 288 and 320 (steps of 32): 288; 1e4
    saturates at 448 either way; nothing becomes NaN."""
    x = torch.tensor([[[1.0, -3.0, 0.01, 1e4], [600.0, -600.0, 2.0, 0.5]],
                      [[0.25, 7.0, -1e4, 0.0], [1.0, 3.0, -5.0, 1e5]]])
    scale = torch.tensor([0.5, 2.0])
    got = solution(x, scale)
    assert isinstance(got, torch.Tensor) and got.dtype == FP8, f"expected a torch.float8_e4m3fn tensor, got {got!r:.80}"
    assert got.shape == x.shape, f"expected shape {tuple(x.shape)}, got {tuple(got.shape)}"
    assert not got.float().isnan().any(), "a code is NaN: values past 448 after scaling must be held at ±448"
    want = expected_codes(x, scale)
    bad = (got.view(torch.uint8) != want.view(torch.uint8)).nonzero()
    assert len(bad) == 0, (f"{len(bad)} codes differ; the first at (token, head, i) = {tuple(bad[0].tolist())}: "
                           f"x = {x[tuple(bad[0])].item()}, scale {scale[bad[0][1]].item()}: got "
                           f"{got[tuple(bad[0])].float().item()}, expected {want[tuple(bad[0])].float().item()}")
    assert solution(x, scale).float()[0, 1, 0].item() == 288.0


@pytest.mark.exercise("quantize_fp8")
def test_quantize_in_the_engines_store(solution, monkeypatch, tiny_qwen3_dir):
    """Plugged into chapter 10's store (the CPU twin), the FP8 engine stores the same codes and
    generates the same tokens as with the chapter's quantize."""
    import ch10
    from ch07.sampling_params import SamplingParams

    from ch10 import solutions

    params = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    prompts = [[3, 1, 4, 1, 5, 9, 2, 6], list(range(40, 60))]

    def run():
        llm = ch10.LLM(tiny_qwen3_dir, kv_cache_dtype="fp8", num_kvcache_blocks=16)
        tokens = [o["token_ids"] for o in llm.generate(prompts, params, use_tqdm=False)]
        return tokens, llm.model_runner.kv_cache.view(torch.uint8).clone()

    want_tokens, want_pool = run()
    monkeypatch.setattr(solutions, "quantize_fp8", solution)
    got_tokens, got_pool = run()
    assert torch.equal(got_pool, want_pool), "the engine's pool holds other codes with your quantize_fp8"
    assert got_tokens == want_tokens, f"the FP8 engine generates {got_tokens} with your quantize_fp8, expected {want_tokens}"


# --- 10.4 blocks in a budget ---------------------------------------------------------------------
QWEN3_0_6B = SimpleNamespace(num_hidden_layers=28, num_key_value_heads=8, num_attention_heads=16, head_dim=128)


@pytest.mark.exercise("num_blocks_in_budget")
def test_blocks_by_hand(solution):
    """Qwen3-0.6B: 2 (K and V) x 28 layers x 8 KV heads x 128 = 57,344 numbers a token; a block of
    16 tokens is 917,504 numbers: 1,835,008 bytes in bf16, 917,504 in FP8, 3,670,016 in float32."""
    gib = 2**30
    for dtype, want in ((torch.bfloat16, 585), (FP8, 1170), (torch.float32, 292)):
        got = solution(gib, QWEN3_0_6B, 16, dtype)
        assert got == want, f"1 GiB for Qwen3-0.6B's KV blocks of 16 tokens in {dtype}: got {got!r}, expected {want}"
    assert solution(1_835_007, QWEN3_0_6B, 16, torch.bfloat16) == 0, "a byte short of one bf16 block fits no block"
    assert solution(4 * 917_504, QWEN3_0_6B, 16, FP8) == 4


@pytest.mark.exercise("num_blocks_in_budget")
def test_blocks_in_the_engines_config(solution, monkeypatch, tiny_qwen3_dir):
    """Plugged into chapter 10's Config: the default FP8 pool takes the default float32 pool's bytes,
    so it holds four times its blocks."""
    import ch10
    from ch10 import solutions

    monkeypatch.setattr(solutions, "num_blocks_in_budget", solution)
    auto, fp8_config = ch10.Config(tiny_qwen3_dir), ch10.Config(tiny_qwen3_dir, kv_cache_dtype="fp8")
    assert fp8_config.num_kvcache_blocks == 4 * auto.num_kvcache_blocks, (
        f"the FP8 pool gets {fp8_config.num_kvcache_blocks} blocks in the memory of {auto.num_kvcache_blocks} float32 "
        f"blocks; expected {4 * auto.num_kvcache_blocks}")
