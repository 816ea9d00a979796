"""FP8 for the KV cache: one scale per KV head, quantize on the way in, dequantize on the way out.

e4m3 (e4m3.py) holds values up to 448 with 3 mantissa bits, so a key of size 0.02 or 900 must
be brought into its range first. Each layer keeps one float32 scale per KV head and per tensor
(k_scale, v_scale: (n_kv_heads,)); the cache holds the codes of x / scale, and attention reads
back code * scale:

    store       x (N, n_kv_heads, head_dim) -> clamp(x / scale, -448, 448) -> e4m3 codes
    attention   codes -> float * scale -> the usual softmax(q k^T) v

A head's scale is set once, from the first tokens the layer stores (the first prefill), so that
their largest |x| lands at 448 / FP8_HEADROOM: later tokens up to 16 times larger still fit, and
anything larger saturates at 448 rather than becoming NaN. Keys differ between heads by orders
of magnitude (some heads carry a few very large dimensions), which is why the scale is per head.
"""

import torch

from ch10.e4m3 import E4M3_MAX

FP8_DTYPE = torch.float8_e4m3fn
FP8_HEADROOM = 16.0  # the calibration maximum lands at 448 / 16 = 28
FP8_MIN_SCALE = 1e-8  # an all-zero head would otherwise get scale 0, and 0 / 0 = NaN


def fp8_scales(x: torch.Tensor) -> torch.Tensor:
    """x (N, n_kv_heads, head_dim) -> (n_kv_heads,) float32: each head's scale from its largest |x|."""
    amax = x.float().abs().amax(dim=(0, 2))  # (n_kv_heads,)
    return (amax * FP8_HEADROOM / E4M3_MAX).clamp_min(FP8_MIN_SCALE)


def dequantize_fp8(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """codes (..., n_kv_heads, head_dim) in e4m3, scale (n_kv_heads,) -> float32 values."""
    return codes.float() * scale[:, None]  # (n_kv_heads, 1) broadcasts over head_dim
