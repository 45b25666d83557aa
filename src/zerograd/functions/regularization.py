"""Regularisation by noise: dropout.

The masks come from :mod:`zerograd.random` (:func:`zerograd.random.keep_mask`): from
zerograd's dropout generator, seeded with ``zerograd.random.seed_dropout(n)`` (or
``zerograd.seed(n)``), from a generator handed to one call with ``rng=``, or, in book
mode, from NumPy's global generator exactly as the original DeZero drew them.

Example:
    >>> import numpy as np
    >>> import zerograd.random
    >>> from zerograd import test_mode
    >>> zerograd.random.seed_dropout(0)
    >>> a = dropout(np.ones(6)).data
    >>> zerograd.random.seed_dropout(0)
    >>> b = dropout(np.ones(6)).data
    >>> bool((a == b).all()), sorted(set(a.tolist())) == [0.0, 2.0]
    (True, True)
    >>> with test_mode():
    ...     dropout(np.ones(3))
    variable([1. 1. 1.])
"""

from __future__ import annotations

import numpy as np

from zerograd import random
from zerograd.config import train_var
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module

__all__ = ["dropout"]


class Dropout(Function):
    """``y = x * mask / scale``: the kept elements scaled by ``1 / (1 - ratio)``."""

    saves = ("mask", "scale")
    elementwise = True

    def __init__(self, ratio, rng=None):
        self.ratio = ratio
        self.rng = rng

    def forward(self, x):
        xp = get_array_module(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        keep = random.keep_mask(x.shape, self.ratio, xp, dtype, self.rng)
        if random.book_mode() and self.rng is None:
            # The original's formula, x * mask / scale, rounded as it rounds.
            self.mask = keep
            self.scale = xp.array(1.0 - self.ratio).astype(dtype)
            return x * keep / self.scale
        # Inverted dropout: one scaled mask, so test mode is the identity and the
        # backward pass is a single product.
        self.mask = keep.astype(dtype)
        self.mask *= 1 / (1 - self.ratio)  # in place: stays of x's dtype
        self.scale = None
        return x * self.mask

    def backward(self, gy):
        # d/dx (x * mask / scale) = mask / scale
        if self.scale is None:
            return gy * self.mask
        return gy * self.mask / self.scale


def dropout(x, dropout_ratio: float = 0.5, rng=None) -> Variable:
    """Zero each element with probability ``dropout_ratio`` and scale the rest by
    ``1 / (1 - dropout_ratio)`` in training; return x unchanged in test mode.

    Args:
        x: the input.
        dropout_ratio: the probability of dropping an element, in [0, 1).
        rng: a generator for this call: a ``numpy.random.Generator`` (or
            ``RandomState``) for NumPy input, a ``cupy.random.RandomState`` (or
            ``Generator``) for CuPy input. By default zerograd's dropout generator
            (:func:`zerograd.random.seed_dropout`), or NumPy's global one in book mode.

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
