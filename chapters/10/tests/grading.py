"""Chapter 10's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import math

import torch

from ch10 import e4m3, fp8, solutions

REFERENCE = {
    "decode_e4m3": solutions.decode_e4m3,
    "encode_e4m3": solutions.encode_e4m3,
    "quantize_fp8": solutions.quantize_fp8,
    "num_blocks_in_budget": solutions.num_blocks_in_budget,
}


# --- 10.1 decode ---------------------------------------------------------------------------------
def decode_bias_8(code):
    # the bias of a 4-bit exponent taken as 8 (2^(4-1)) instead of 7: every value halved
    s, e, m = e4m3.split_code(code)
    if e == 15 and m == 7:
        return math.nan
    v = m / 8 * 2.0 ** -7 if e == 0 else (1 + m / 8) * 2.0 ** (e - 8)
    return -v if s else v


def decode_subnormals_as_normals(code):
    # exponent 0 read with a leading 1 like the others: the values near zero are wrong
    s, e, m = e4m3.split_code(code)
    if e == 15 and m == 7:
        return math.nan
    v = (1 + m / 8) * 2.0 ** (e - 7)
    return -v if s else v


def decode_top_exponent_as_nan(code):
    # IEEE habits: the whole top exponent taken as inf/NaN, so 256..448 vanish
    s, e, m = e4m3.split_code(code)
    if e == 15:
        return math.nan
    return solutions.decode_e4m3(code)


def decode_mantissa_over_10(code):
    # the mantissa read as a decimal fraction
    s, e, m = e4m3.split_code(code)
    if e == 15 and m == 7:
        return math.nan
    v = m / 10 * 2.0 ** -6 if e == 0 else (1 + m / 10) * 2.0 ** (e - 7)
    return -v if s else v


# --- 10.2 encode ---------------------------------------------------------------------------------
def _encode_with(x, rounding):
    if math.isnan(x):
        return e4m3.NAN_CODE
    sign = 0x80 if math.copysign(1.0, x) < 0 else 0
    a = min(abs(x), e4m3.E4M3_MAX)
    if a == 0:
        return sign
    e = max(math.floor(math.log2(a)), -6)
    steps = rounding(a / 2.0 ** (e - 3))
    if steps < 8:
        return sign | steps
    e, steps = (e + 1, 8) if steps == 16 else (e, steps)
    return sign | (e + 7) << 3 | (steps - 8)


def encode_truncates(x):
    # drops the bits past the mantissa instead of rounding: always towards zero
    return _encode_with(x, math.floor)


def encode_ties_away_from_zero(x):
    # school rounding: a tie always goes up, not to the even mantissa
    return _encode_with(x, lambda s: math.floor(s + 0.5))


def encode_no_saturation(x):
    # no clamp: a value past 448 becomes the NaN code, which poisons attention
    return e4m3.NAN_CODE if abs(x) > e4m3.E4M3_MAX else solutions.encode_e4m3(x)


def encode_nearest_by_search_without_sign(x):
    # nearest code by |x| only: negative values lose their sign
    return solutions.encode_e4m3(abs(x))


# --- 10.3 quantize -------------------------------------------------------------------------------
def quantize_multiplies(x, scale):
    # multiplies by the scale instead of dividing: the codes saturate or vanish
    return (x.float() * scale[:, None]).clamp(-448, 448).to(fp8.FP8_DTYPE)


def quantize_no_clamp(x, scale):
    # a plain cast: large values are not held at +-448 (NaN or wrapped on some devices)
    y = x.float() / scale[:, None]
    return torch.where(y.abs() > 448, torch.nan, y).to(fp8.FP8_DTYPE)


def quantize_first_head_scale(x, scale):
    # one scale for every head: the first head's
    return (x.float() / scale[0]).clamp(-448, 448).to(fp8.FP8_DTYPE)


def quantize_scale_on_head_dim(x, scale):
    # the scale broadcast along head_dim instead of along the heads (a shape that happens to fit)
    return (x.float() / scale).clamp(-448, 448).to(fp8.FP8_DTYPE)


def quantize_clamps_before_scaling(x, scale):
    # clamps x itself to +-448, then scales: the saturation point moves with the scale
    return (x.float().clamp(-448, 448) / scale[:, None]).to(fp8.FP8_DTYPE)


# --- 10.4 blocks in a budget ---------------------------------------------------------------------
def blocks_keys_only(budget_bytes, hf_config, block_size, cache_dtype):
    # forgets V: twice the blocks the memory holds
    per_token = hf_config.num_hidden_layers * hf_config.num_key_value_heads * hf_config.head_dim * cache_dtype.itemsize
    return budget_bytes // (block_size * per_token)


def blocks_in_model_dtype(budget_bytes, hf_config, block_size, cache_dtype):
    # always 2 bytes a number: FP8 buys nothing
    per_token = 2 * hf_config.num_hidden_layers * hf_config.num_key_value_heads * hf_config.head_dim * 2
    return budget_bytes // (block_size * per_token)


def blocks_rounded_up(budget_bytes, hf_config, block_size, cache_dtype):
    # a part block counted as a block: the pool outgrows its budget
    per_token = 2 * hf_config.num_hidden_layers * hf_config.num_key_value_heads * hf_config.head_dim * cache_dtype.itemsize
    return -(-budget_bytes // (block_size * per_token))


def blocks_attention_heads(budget_bytes, hf_config, block_size, cache_dtype):
    # counts the query heads, not the KV heads: grouped-query attention's saving forgotten
    per_token = 2 * hf_config.num_hidden_layers * hf_config.num_attention_heads * hf_config.head_dim * cache_dtype.itemsize
    return budget_bytes // (block_size * per_token)


PLANTED = {
    "decode_e4m3": [decode_bias_8, decode_subnormals_as_normals, decode_top_exponent_as_nan, decode_mantissa_over_10],
    "encode_e4m3": [encode_truncates, encode_ties_away_from_zero, encode_no_saturation, encode_nearest_by_search_without_sign],
    "quantize_fp8": [quantize_multiplies, quantize_no_clamp, quantize_first_head_scale, quantize_scale_on_head_dim,
                     quantize_clamps_before_scaling],
    "num_blocks_in_budget": [blocks_keys_only, blocks_in_model_dtype, blocks_rounded_up, blocks_attention_heads],
}
