"""Checks for user-given numbers: one ValueError that names the field, the value and the fix.

Python's bool is an int and numpy's scalars are not Python numbers, so `isinstance(x, int)`
alone accepts True and refuses np.int64(3). Here numbers.Integral and numbers.Real decide
(numpy registers its scalars with them), bools are refused, and the value comes back as a plain
int or float, so nothing downstream meets a numpy scalar.
"""

import math
from numbers import Integral, Real


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def as_int(name: str, value, minimum: int | None = None, allowed: tuple = (), fix: str = "") -> int:
    """`value` as an int >= minimum (or one of `allowed`); a ValueError naming `name` otherwise."""
    rule = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    rule += "".join(f" or {a}" for a in allowed)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be {rule}, got {_describe(value)}{fix}")
    value = int(value)
    if value not in allowed and minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {rule}, got {value}{fix}")
    return value


def as_real(name: str, value, rule: str, ok) -> float:
    """`value` as a finite float for which ok(value) holds; `rule` says in words what ok checks."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not ok(float(value)):
        raise ValueError(f"{name} must be {rule}, got {_describe(value)}")
    return float(value)


def as_bool(name: str, value) -> bool:
    """True or False (numpy's bool too); a string like "false" would be truthy, so it is refused."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise ValueError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)
