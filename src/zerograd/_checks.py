"""Checks of user arguments, shared by the layers, optimizers, data loaders and transforms.

A bad argument is refused when it is given (at construction, or when a checked
attribute is set), not at the first use, and always the same way:

- a ``TypeError`` when the value is of the wrong kind (a string where a size goes, a
  float where an int goes, a bool where a number goes);
- a ``ValueError`` when it is of the right kind but out of range (a size of 0, a
  negative rate, NaN, a number too large to be a float).

Every message names the owner (the class), the argument, the value given (and its
type, for a ``TypeError``), what would be accepted, and a hint where one helps.

Example:
    >>> size("Linear", "out_size", 100)
    100
    >>> size("DataLoader", "batch_size", "3")
    Traceback (most recent call last):
    ...
    TypeError: DataLoader: batch_size must be a positive integer, got '3' (str)
    >>> real("SGD", "lr", -1)
    Traceback (most recent call last):
    ...
    ValueError: SGD: lr must be a finite number >= 0, got -1
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["is_int", "is_real", "size", "count", "pair", "real", "fraction",
           "positive_number", "representable", "float_dtype", "dtype", "flag", "function",
           "generator", "RULES"]


def is_int(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """A Python or NumPy int or float, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""


# =========================================================================================
# Integers
# =========================================================================================
def size(owner: str, name: str, value: Any, what: str = "", optional: bool = False,
         hint: str = "") -> int | None:
    """``value`` as an int >= 1 (None passes when ``optional``); ``what`` says what the
    size counts, for the message."""
    if optional and value is None:
        return None
    counts = f" ({what})" if what else ""
    none = " or None (taken from the first input)" if optional else ""
    if not is_int(value):
        raise TypeError(f"{owner}: {name}{counts} must be a positive integer{none}, got "
                        f"{_got(value)}{_hint(hint)}")
    if value < 1:
        raise ValueError(f"{owner}: {name}{counts} must be a positive integer{none}, got "
                         f"{value!r}{_hint(hint)}")
    return int(value)


def count(owner: str, name: str, value: Any, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an int of at least ``minimum``.

    Example:
        >>> count("StepDecay", "step_size", 0)
        Traceback (most recent call last):
        ...
        ValueError: StepDecay: step_size must be an int >= 1, got 0
    """
    if not is_int(value):
        raise TypeError(f"{owner}: {name} must be an int, got {_got(value)}{_hint(hint)}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got "
                         f"{value!r}{_hint(hint)}")
    return int(value)


def pair(owner: str, name: str, value: Any, minimum: int) -> int | tuple[int, int]:
    """``value``, an int >= ``minimum`` or a pair of them (``(height, width)``), as an
    int or a tuple of two ints."""
    at_least = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    expected = f"{at_least} or a pair of them (height, width)"
    if is_int(value):
        if value < minimum:
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
        return int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        if min(value) < minimum:
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{owner}: {name} must be {expected}, got {_got(value)}")


# =========================================================================================
# Real numbers
# =========================================================================================
# rule -> (test of the float, what it accepts)
RULES = {
    "rate": (lambda v: v >= 0, "a finite number >= 0"),
    "positive": (lambda v: v > 0, "a finite number > 0"),
    "fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "closed_fraction": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "finite": (lambda v: True, "finite"),
}


def _float(owner: str, name: str, value: Any, expected: str, hint: str) -> float:
    """``value`` as a float; NaN when it is an int too large for one (so that the
    range check refuses it with a ValueError, not an OverflowError)."""
    if not is_real(value):
        raise TypeError(f"{owner}: {name} must be {expected}, got {_got(value)}{_hint(hint)}")
    try:
        return float(value)
    except OverflowError:  # an int beyond 1.8e308
        return math.nan


def real(owner: str, name: str, value: Any, rule: str = "rate", hint: str = "") -> float:
    """``value`` as a finite float that satisfies ``rule``.

    Args:
        owner: who asks (a class name), for the message.
        name: the argument's name.
        value: a real number (a Python or NumPy int or float; not a bool).
        rule: ``"rate"`` (>= 0), ``"positive"`` (> 0), ``"fraction"`` ([0, 1)),
            ``"closed_fraction"`` ([0, 1]) or ``"finite"`` (any finite number).
        hint: what the value means, appended to the message.

    Raises:
        TypeError: when ``value`` is not a real number.
        ValueError: when it is NaN, infinite, too large for a float or outside the
            rule's range.

    Example:
        >>> real("SGD", "lr", 0.1)
        0.1
        >>> real("SGD", "lr", 10**400)
        Traceback (most recent call last):
        ...
        ValueError: SGD: lr must be a finite number >= 0, got 1000...000 (401 digits)
    """
    test, wanted = RULES[rule]
    number = _float(owner, name, value, "a real number", "")
    if not (math.isfinite(number) and test(number)):
        raise ValueError(f"{owner}: {name} must be {wanted}, got {_short(value)}"
                         + (f" ({hint})" if hint else ""))
    return number


def _short(value: Any) -> str:
    """``repr(value)``, with an int of hundreds of digits abbreviated."""
    text = repr(value)
    if is_int(value) and len(text) > 40:
        return f"{text[:4]}...{text[-3:]} ({len(text.lstrip('-'))} digits)"
    return text


def fraction(owner: str, name: str, value: Any, include_one: bool = False,
             hint: str = "") -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``include_one``)."""
    expected = f"a number in {'[0, 1]' if include_one else '[0, 1)'}"
    number = _float(owner, name, value, expected, "")
    if not (0 <= number < 1 or (include_one and number == 1)):
        raise ValueError(f"{owner}: {name} must be {expected}, got {_short(value)}"
                         f"{_hint(hint)}")
    return number


def positive_number(owner: str, name: str, value: Any, hint: str = "") -> float:
    """``value`` as a finite float > 0."""
    expected = "a positive finite number"
    number = _float(owner, name, value, expected, "")
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{owner}: {name} must be {expected}, got {_short(value)}"
                         f"{_hint(hint)}")
    return number


def representable(owner: str, name: str, value: float, dtype: np.dtype) -> None:
    """Refuse a positive ``value`` that rounds to 0 in ``dtype`` (an ``eps`` of 1e-50 in
    float32 is 0: a constant row or channel then normalises to 0 / 0 = NaN)."""
    with np.errstate(under="ignore", over="ignore"):  # a huge eps is inf: allowed
        rounded = dtype.type(value)
    if value > 0 and rounded == 0:
        smallest = float(np.finfo(dtype).smallest_subnormal)
        raise ValueError(f"{owner}: {name}={value!r} is 0 in {dtype}; give at least "
                         f"{smallest:.3g} (a normalisation would divide by zero)")


# =========================================================================================
# Other kinds
# =========================================================================================
def dtype(owner: str, name: str, value: Any, kinds: str, expected: str) -> np.dtype:
    """``value`` as a NumPy dtype whose kind is one of ``kinds`` (``"f"`` floats,
    ``"iu"`` integers, ...): a TypeError when it is no dtype at all, a ValueError when
    it is one of another kind."""
    try:
        result = None if value is None else np.dtype(value)
    except (TypeError, ValueError):
        result = None
    if result is None:
        raise TypeError(f"{owner}: {name} must be {expected}, got {_got(value)}")
    if result.kind not in kinds:
        raise ValueError(f"{owner}: {name} must be {expected}, got {result}")
    return result


def float_dtype(owner: str, value: Any) -> np.dtype:
    """``value`` (the ``dtype`` argument of a layer) as a floating-point NumPy dtype."""
    return dtype(owner, "dtype", value, "f",
                 "a floating-point dtype such as np.float32, np.float64 or np.float16")


def flag(owner: str, name: str, value: Any) -> bool:
    """``value`` as a bool (True, False, or NumPy's booleans)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {_got(value)}")
    return bool(value)


def function(owner: str, name: str, value: Any, optional: bool = True):
    """``value``, a callable (or None when ``optional``)."""
    if (optional and value is None) or callable(value):
        return value
    none = " or None" if optional else ""
    raise TypeError(f"{owner}: {name} must be a function (such as F.relu){none}, got "
                    f"{_got(value)}")


def generator(owner: str, seed: Any) -> np.random.Generator:
    """A NumPy generator from a ``seed=`` argument.

    ``seed`` may be None (fresh entropy from the OS), a non-negative int, a
    ``numpy.random.SeedSequence`` or ``BitGenerator``, or a ``numpy.random.Generator``
    (used as it is, shared with the caller).

    Raises:
        TypeError: for anything else (a float, a string, a bool, a ``RandomState``).
        ValueError: for a negative int.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(seed)
    expected = "None, a non-negative int or a numpy.random.Generator"
    if not is_int(seed):
        raise TypeError(f"{owner}: seed must be {expected}, got {_got(seed)}; for example "
                        "seed=0")
    if seed < 0:
        raise ValueError(f"{owner}: seed must be {expected}, got {_got(seed)}; for example "
                         "seed=0")
    return np.random.default_rng(int(seed))
