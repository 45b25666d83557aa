"""Array helpers on shapes and axes, shared by the functions (no autograd here).

Example:
    >>> import numpy as np
    >>> sum_to(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    >>> pair(3)
    (3, 3)
    >>> get_conv_outsize(28, 3, 1, 1)
    28
"""

from __future__ import annotations

from typing import Any

import numpy as np


def normalize_axis(axis: Any, ndim: int):
    """Turn ``axis`` (None, an int or a sequence, negatives allowed) into None or a
    sorted tuple of non-negative ints, raising a clear error when out of range."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(
                f"axis {a} is out of range for an array of {ndim} dimension(s); "
                f"use an axis in [{-ndim}, {ndim - 1}]"
            )
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(set(out)))


def reduced_shape(shape: tuple, axis, keepdims: bool) -> tuple:
    """The shape a reduction over ``axis`` (normalized) gives, with or without kept dims."""
    if axis is None:
        axis = tuple(range(len(shape)))
    if keepdims:
        return tuple(1 if i in axis else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axis)


def sum_to(x, shape: tuple):
    """Sum the array ``x`` down to ``shape``, undoing NumPy broadcasting.

    Raises:
        ValueError: when ``x``'s shape is not a broadcast of ``shape``.
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(shape, x.shape[lead:])):
        raise ValueError(
            f"sum_to: cannot sum an array of shape {x.shape} to shape {shape}; the "
            "target must be a shape that broadcasts to the array's"
        )
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
    )
    y = x.sum(axis=axes, keepdims=True) if axes else x
    return y.reshape(shape) if lead else y



def logsumexp(x, axis=1):
    """log(sum(exp(x), axis)) with keepdims, computed without overflow."""
    xp = _xp(x)
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    s = xp.exp(x - m).sum(axis=axis, keepdims=True)
    return m + xp.log(s)


def pair(x) -> tuple:
    """``3 -> (3, 3)``; a pair stays a pair.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(x, (int, np.integer)):
        return (int(x), int(x))
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return (int(x[0]), int(x[1]))
    raise ValueError(f"pair: expected an int or a pair of ints, got {x!r}")


def get_conv_outsize(input_size: int, kernel_size: int, stride: int, pad: int) -> int:
    """Output length of a convolution along one axis."""
    return (input_size + pad * 2 - kernel_size) // stride + 1


def get_deconv_outsize(size: int, k: int, s: int, p: int) -> int:
    """Output length of a transposed convolution along one axis."""
    return s * (size - 1) + k - 2 * p


def _xp(x):
    from zerograd.cuda import get_array_module

    return get_array_module(x)
