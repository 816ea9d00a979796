"""How a number fits in 8 bits: the e4m3 format (torch.float8_e4m3fn), bit by bit.

One byte, read from the left:

    s eeee mmm      sign (1 bit), exponent (4 bits, bias 7), mantissa (3 bits)

    exponent 1..15   a normal number: (-1)^s * (1 + m/8) * 2^(e - 7)
    exponent 0       a subnormal one: (-1)^s * (m/8) * 2^(1 - 7), so the grid reaches 0 evenly
    e = 15, m = 7    not a number (NaN); there is no infinity, which frees the top codes for
                     finite values: the largest is 1.75 * 2^8 = 448

So between two powers of two there are 8 values, evenly spaced: near 1 they are 1/8 apart, near
448 they are 32 apart, and the smallest step, below 2^-6, is 2^-9. A value between two codes
goes to the nearer one; a tie goes to the code whose mantissa is even (round to nearest even).
A value beyond 448 has no code: the cache saturates it at 448 instead.

The engine never calls these per number (torch and Triton cast whole tensors); they are the
format written out so that it can be read and checked, code by code, against torch's cast.
"""

import math

E4M3_MAX = 448.0  # 0 1111 110: the largest finite value
EXPONENT_BIAS = 7
MANTISSA_BITS = 3
NAN_CODE = 0x7F  # 0 1111 111 (and 0xFF with the sign bit)


def split_code(code: int) -> tuple[int, int, int]:
    """The three fields of one byte: (sign, exponent, mantissa)."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"an e4m3 code is one byte, 0..255; got {code}")
    return code >> 7, (code >> MANTISSA_BITS) & 0xF, code & 0x7


# --- Exercise 10.1 and 10.2 meet these two functions first in chapters/10/exercises.py. ------------
# --- Their answers follow; try the exercises before you read on. ----------------------------------


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
