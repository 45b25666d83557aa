"""Dropout, with a random state you can seed.

``dropout`` draws its masks from a generator of this module: one NumPy generator for
NumPy arrays and one CuPy generator for CuPy arrays, created on first use.
``F.dropout.seed(n)`` makes every later mask reproducible; ``rng=`` hands a single call
its own generator instead. (``seed`` hangs on the function because the name
``zerograd.functions.dropout`` is the function, which hides this module.)

Example:
    >>> import numpy as np
    >>> from zerograd import test_mode
    >>> dropout.seed(0)
    >>> a = dropout(np.ones(6)).data
    >>> dropout.seed(0)
    >>> b = dropout(np.ones(6)).data
    >>> bool((a == b).all()), sorted(set(a.tolist())) == [0.0, 2.0]
    (True, True)
    >>> with test_mode():
    ...     dropout(np.ones(3))
    variable([1. 1. 1.])
"""

from __future__ import annotations

import numpy as np

from zerograd.config import train_var
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module

__all__ = [
    "Dropout",
    "dropout",
]

# The seed of the module's generators (None: fresh entropy) and the generators made
# from it so far, by array module name ("numpy", "cupy").
_seed: int | None = None
_generators: dict = {}


def seed(n: int | None) -> None:
    """Seed the generators that :func:`dropout` draws its masks from.

    ``seed(None)`` goes back to unpredictable masks. Reached as ``F.dropout.seed``
    (an attribute of the function ``dropout``).

    Example:
        >>> import zerograd.functions as F
        >>> F.dropout.seed(42)
    """
    global _seed
    _seed = None if n is None else int(n)
    _generators.clear()


def _generator(xp):
    gen = _generators.get(xp.__name__)
    if gen is None:
        if xp is np:
            gen = np.random.default_rng(_seed)
        else:
            gen = xp.random.RandomState(_seed)  # CuPy's generator, on the GPU
        _generators[xp.__name__] = gen
    return gen


def _uniform(gen, shape, dtype):
    """Uniform [0, 1) samples of ``dtype`` from a NumPy or CuPy generator."""
    if isinstance(gen, np.random.RandomState):
        return gen.random_sample(shape).astype(dtype, copy=False)
    if hasattr(gen, "random_sample"):  # cupy.random.RandomState
        return gen.random_sample(shape, dtype=dtype)
    return gen.random(shape, dtype=dtype)  # numpy.random.Generator or CuPy's Generator


class Dropout(Function):
    def __init__(self, ratio, rng=None):
        self.ratio = ratio
        self.rng = rng

    def forward(self, x):
        xp = get_array_module(x)
        gen = self.rng if self.rng is not None else _generator(xp)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        keep = _uniform(gen, x.shape, dtype) >= self.ratio
        # Inverted dropout: scale the kept units now, so test mode is the identity.
        self.mask = keep.astype(dtype)
        self.mask *= 1 / (1 - self.ratio)  # in place: stays of x's dtype
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask  # d/dx (x * mask) = mask


def dropout(x, dropout_ratio: float = 0.5, rng=None) -> Variable:
    """Zero each element with probability ``dropout_ratio`` and scale the rest by
    ``1 / (1 - dropout_ratio)`` in training; return x unchanged in test mode.

    Args:
        x: the input.
        dropout_ratio: the probability of dropping an element, in [0, 1).
        rng: a generator for this call: a ``numpy.random.Generator`` (or
            ``RandomState``) for NumPy input, a ``cupy.random.RandomState`` (or
            ``Generator``) for CuPy input. By default the module's generator, seeded
            with ``dropout.seed(n)``.

    Raises:
        ValueError: when ``dropout_ratio`` is not in [0, 1).

    Example:
        >>> y = dropout(np.ones((2, 2)), 0.5, rng=np.random.default_rng(0))
        >>> y.data.dtype, set(y.data.ravel().tolist()) <= {0.0, 2.0}
        (dtype('float64'), True)
    """
    if not 0 <= dropout_ratio < 1:
        raise ValueError(
            f"dropout: dropout_ratio must be in [0, 1), got {dropout_ratio!r}; it is the "
            "probability of dropping an element"
        )
    x = as_variable(x)
    if not train_var.get() or dropout_ratio == 0:
        return x
    return Dropout(float(dropout_ratio), rng)(x)


dropout.seed = seed  # F.dropout.seed(n): the package name hides this module
