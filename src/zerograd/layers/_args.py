"""Checks of the layers' constructor arguments.

A layer refuses a bad argument when it is made, not at its first call (or never, as a
negative size that NumPy would turn into "negative dimensions are not allowed", or an
``in_size`` of 0 that becomes a ZeroDivisionError). Each check raises with the layer,
the argument, the value and what would be accepted: a ``TypeError`` for a value of the
wrong kind (a string, a float where a size goes), a ``ValueError`` for one of the
right kind out of range.

Example:
    >>> size("Linear", "out_size", 100)
    100
    >>> size("Linear", "in_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: Linear: in_size must be a positive integer, got 0
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

__all__ = ["size", "pair", "fraction", "positive_number", "representable", "float_dtype",
           "flag", "function"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def size(layer: str, name: str, value: Any, what: str = "", optional: bool = False
         ) -> int | None:
    """``value`` as an int >= 1 (None passes when ``optional``); ``what`` says what the
    size counts, for the message."""
    if optional and value is None:
        return None
    hint = f" ({what})" if what else ""
    none = " or None (taken from the first input)" if optional else ""
    if not _is_int(value):
        raise TypeError(f"{layer}: {name}{hint} must be a positive integer{none}, got "
                        f"{value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{layer}: {name}{hint} must be a positive integer{none}, got "
                         f"{value!r}")
    return int(value)


def pair(layer: str, name: str, value: Any, minimum: int) -> int | tuple[int, int]:
    """``value``, an int >= ``minimum`` or a pair of them (``(height, width)``), as an
    int or a tuple of two ints."""
    at_least = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    expected = f"{at_least} or a pair of them (height, width)"
    if _is_int(value):
        if value < minimum:
            raise ValueError(f"{layer}: {name} must be {expected}, got {value!r}")
        return int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        if min(value) < minimum:
            raise ValueError(f"{layer}: {name} must be {expected}, got {value!r}")
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{layer}: {name} must be {expected}, got {value!r} "
                    f"({type(value).__name__})")


def _number(layer: str, name: str, value: Any, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{layer}: {name} must be {expected}, got {value!r} "
                        f"({type(value).__name__})")
    return float(value)


def fraction(layer: str, name: str, value: Any, include_one: bool = False,
             hint: str = "") -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``include_one``)."""
    interval = "[0, 1]" if include_one else "[0, 1)"
    expected = f"a number in {interval}"
    number = _number(layer, name, value, expected)
    if not (0 <= number < 1 or (include_one and number == 1)):
        raise ValueError(f"{layer}: {name} must be {expected}, got {value!r}"
                         + (f"; {hint}" if hint else ""))
    return number


def positive_number(layer: str, name: str, value: Any, hint: str = "") -> float:
    """``value`` as a finite float > 0."""
    expected = "a positive finite number"
    number = _number(layer, name, value, expected)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{layer}: {name} must be {expected}, got {value!r}"
                         + (f"; {hint}" if hint else ""))
    return number


def representable(layer: str, name: str, value: float, dtype: np.dtype) -> None:
    """Refuse a positive ``value`` that rounds to 0 in ``dtype`` (an ``eps`` of 1e-50 in
    float32 is 0: a constant row or channel then normalises to 0 / 0 = NaN)."""
    with np.errstate(under="ignore", over="ignore"):  # a huge eps is inf: allowed
        rounded = dtype.type(value)
    if value > 0 and rounded == 0:
        smallest = float(np.finfo(dtype).smallest_subnormal)
        raise ValueError(f"{layer}: {name}={value!r} is 0 in {dtype}; give at least "
                         f"{smallest:.3g} (a normalisation would divide by zero)")


def float_dtype(layer: str, value: Any) -> np.dtype:
    """``value`` (the ``dtype`` argument) as a floating-point NumPy dtype."""
    expected = "a floating-point dtype such as np.float32, np.float64 or np.float16"
    try:
        dtype = None if value is None else np.dtype(value)
    except (TypeError, ValueError):
        dtype = None
    if dtype is None:
        raise TypeError(f"{layer}: dtype must be {expected}, got {value!r}")
    if dtype.kind != "f":
        raise ValueError(f"{layer}: dtype must be {expected}, got {dtype}")
    return dtype


def flag(layer: str, name: str, value: Any) -> bool:
    """``value`` as a bool (True, False, or NumPy's booleans)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer}: {name} must be True or False, got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)


def function(layer: str, name: str, value: Any, optional: bool = True):
    """``value``, a callable (or None when ``optional``)."""
    if (optional and value is None) or callable(value):
        return value
    none = " or None" if optional else ""
    raise TypeError(f"{layer}: {name} must be a function (such as F.relu){none}, got "
                    f"{value!r} ({type(value).__name__})")
