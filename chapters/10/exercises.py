"""Chapter 10 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/10

The first two check your e4m3 code, byte by byte, against torch's own cast for all 256 codes and
the values between them; the last two are plugged into the chapter-10 engine (its FP8 store and
its pool size) and checked by what the engine then stores and generates. The notebook
notebooks/10_fp8_kv_cache.ipynb walks through every piece, with hints from a nudge to nearly the
answer. The answers are in solutions.py: open it only after your exercises pass.
"""

import torch


def decode_e4m3(code: int) -> float:
    """code: one byte, 0..255, read as s eeee mmm (sign, 4 exponent bits, 3 mantissa bits).
    Return its value as a Python float (math.nan for the two NaN codes). The exponent's bias is
    7; exponent field 0 holds the subnormals."""
    raise NotImplementedError(
        "Exercise 10.1: the value of one e4m3 byte — split it into sign, exponent and mantissa and "
        "treat normal numbers, subnormals and NaN; see notebooks/10_fp8_kv_cache.ipynb, section "
        "'Eight bits, three fields'"
    )


def encode_e4m3(x: float) -> int:
    """x: a Python float. Return the e4m3 byte (0..255) whose value is nearest to x: a tie goes to
    the code with the even mantissa, |x| above the largest finite value saturates to it (keeping
    the sign), -0.0 keeps its sign bit, and NaN gives 0x7F."""
    raise NotImplementedError(
        "Exercise 10.2: the e4m3 byte nearest to a float — find the spacing of the grid where x "
        "lies, round to a whole number of steps (ties to even), then build the fields; see "
        "notebooks/10_fp8_kv_cache.ipynb, section 'Rounding onto the grid'"
    )


def quantize_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x: (..., n_kv_heads, head_dim) keys or values; scale: (n_kv_heads,) float32, one per head.
    Return what the cache stores, a torch.float8_e4m3fn tensor of x's shape: each head's values
    brought into e4m3's range by its own scale, never NaN, however large x is."""
    raise NotImplementedError(
        "Exercise 10.3: the FP8 store's arithmetic — scale each head, keep the result inside e4m3's "
        "range, then cast; see notebooks/10_fp8_kv_cache.ipynb, section 'A scale per head'"
    )


def num_blocks_in_budget(budget_bytes: int, hf_config, block_size: int, cache_dtype: torch.dtype) -> int:
    """budget_bytes: memory for the KV pool; hf_config: the model's numbers (num_hidden_layers,
    num_key_value_heads, head_dim); block_size: tokens per block; cache_dtype: what the pool
    stores (torch.bfloat16, torch.float32 or torch.float8_e4m3fn). Return how many whole KV
    blocks fit (the few bytes of the scales are not counted)."""
    raise NotImplementedError(
        "Exercise 10.4: KV blocks in a memory budget — the bytes of one block, keys and values of "
        "every layer, in the cache's dtype; see notebooks/10_fp8_kv_cache.ipynb, section "
        "'What FP8 buys: twice the blocks'"
    )
