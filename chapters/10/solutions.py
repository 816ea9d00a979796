"""Chapter 10's answer key: the reference of every exercise, in exercises.py's order.

Try each exercise first (chapters/10/exercises.py, with the notebook's hints); open this file
only after your exercises pass. The chapter's modules import these functions from here.
"""

import math

import torch

from ch10.e4m3 import E4M3_MAX, EXPONENT_BIAS, MANTISSA_BITS, NAN_CODE, split_code
from ch10.fp8 import FP8_DTYPE


def decode_e4m3(code: int) -> float:
    """The value of one e4m3 byte (0..255); NaN for the two NaN codes."""
    sign, exponent, mantissa = split_code(code)
    if exponent == 0xF and mantissa == 0x7:
        return math.nan
    if exponent == 0:  # subnormal: no leading 1, and the exponent of the smallest normals
        magnitude = mantissa / 8 * 2.0 ** (1 - EXPONENT_BIAS)
    else:
        magnitude = (1 + mantissa / 8) * 2.0 ** (exponent - EXPONENT_BIAS)
    return -magnitude if sign else magnitude


def encode_e4m3(x: float) -> int:
    """The e4m3 byte nearest to x: ties to the even mantissa, |x| > 448 saturated to 448, NaN to NaN."""
    if math.isnan(x):
        return NAN_CODE
    sign = 0x80 if math.copysign(1.0, x) < 0 else 0
    a = min(abs(x), E4M3_MAX)
    if a == 0:
        return sign
    # The spacing of the grid where a lies: 2^(e - 3) for a in [2^e, 2^(e+1)), and the subnormals'
    # 2^-9 below 2^-6. round() takes a tie to the even count of steps, i.e. to the even mantissa.
    e = max(math.floor(math.log2(a)), 1 - EXPONENT_BIAS)
    steps = round(a / 2.0 ** (e - MANTISSA_BITS))  # 0..16: 16 is the next power of two, rounded up into
    if steps < 8:  # only subnormals have fewer than 8 steps (no leading 1)
        return sign | steps
    e, steps = (e + 1, 8) if steps == 16 else (e, steps)
    return sign | (e + EXPONENT_BIAS) << MANTISSA_BITS | (steps - 8)


def quantize_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (..., n_kv_heads, head_dim), scale (n_kv_heads,) -> e4m3 codes of x / scale, saturated at +-448."""
    return (x.float() / scale[:, None]).clamp(-E4M3_MAX, E4M3_MAX).to(FP8_DTYPE)


def num_blocks_in_budget(budget_bytes: int, hf_config, block_size: int, cache_dtype: torch.dtype) -> int:
    """How many whole KV blocks of block_size tokens fit in budget_bytes, K and V of every layer
    stored in cache_dtype (the scales' few bytes aside)."""
    bytes_per_token = 2 * hf_config.num_hidden_layers * hf_config.num_key_value_heads * hf_config.head_dim \
        * cache_dtype.itemsize  # K and V
    return budget_bytes // (block_size * bytes_per_token)
