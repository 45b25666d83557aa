"""Embedding lookup: ``embed_id``, the rows of a table picked by integer ids.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> W = Variable(np.arange(6.0).reshape(3, 2))
    >>> y = embed_id(np.array([2, 0, 2]), W)
    >>> y.backward()
    >>> W.grad
    variable([[1. 1.]
              [0. 0.]
              [2. 2.]])
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the doctests use it)

from zerograd.core import Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions._arrays import checks_values
from zerograd.functions.array import get_item

__all__ = [
    "embed_id",
]


def embed_id(x, W) -> Variable:
    """Look up the rows of ``W`` for the integer ids ``x`` (a word-embedding layer).

    The gradient of a row used several times is the sum of its uses; ``x`` gets none.

    Args:
        x: integer ids of any shape (an array, a Variable of integers, or a list).
        W: the table ``(V, D)``: one row per id.

    Shape: ``x (...)``, ``W (V, D)`` -> ``(..., D)``.

    Raises:
        TypeError: when the ids are not integers.
        IndexError: when an id is outside ``[0, V)`` (negative ids are not allowed:
            they would silently pick rows from the end). The check runs on the CPU, and
            on the GPU under :func:`zerograd.debug.detect_anomaly` only (it reads the ids
            back from the device, which would stall every step).

    Example:
        >>> W = np.array([[0.0, 0.1], [1.0, 1.1], [2.0, 2.1]])
        >>> embed_id(np.array([[1, 2], [0, 1]]), W).shape
        (2, 2, 2)
    """
    W = as_variable(W)
    ids = x.data if isinstance(x, Variable) else x
    if not hasattr(ids, "dtype"):
        ids = get_array_module(W.data).asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"embed_id: ids must be integers, got dtype {ids.dtype}; convert them with "
            "x.astype(np.int64)"
        )
    if W.ndim < 1:
        raise ValueError(f"embed_id: W must be a table (V, D), got W.shape={W.shape}")
    if ids.size and checks_values(get_array_module(ids)):  # reads from the device
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= W.shape[0]:
            raise IndexError(
                f"embed_id: ids must lie in [0, {W.shape[0]}) for W.shape={W.shape}, got "
                f"ids from {lo} to {hi}"
            )
    return get_item(W, ids)

