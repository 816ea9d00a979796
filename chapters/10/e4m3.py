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

Exercises 10.1 and 10.2 write the format out, decoding and encoding one byte (their answers are
in solutions.py): the engine never converts one number at a time (torch and Triton cast whole
tensors), but a learner who has written both can read any code, and checks them against torch's
cast for all 256 codes.
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
