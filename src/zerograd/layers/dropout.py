"""The dropout layer: :class:`Dropout`."""

from __future__ import annotations

import zerograd.functions as F
from zerograd import _checks
from zerograd.layers.base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout: zero a ``dropout_ratio`` fraction of the elements in training
    and scale the rest by ``1 / (1 - dropout_ratio)``; identity in test mode.

    Args:
        dropout_ratio: the fraction of elements zeroed, in [0, 1).

    Shape:
        any shape, unchanged.

    Raises:
        TypeError, ValueError: when ``dropout_ratio`` is not a number in [0, 1).

    Example:
        >>> from zerograd import test_mode
        >>> with test_mode():
        ...     Dropout(0.5)(np.ones(3, dtype=np.float32))
        variable([1. 1. 1.])
        >>> Dropout(0.25)
        Dropout(dropout_ratio=0.25)
    """

    def __init__(self, dropout_ratio: float = 0.5):
        super().__init__()
        self.dropout_ratio = _checks.fraction(
            type(self).__name__, "dropout_ratio", dropout_ratio,
            hint="1 would drop every element")

    def extra_repr(self) -> str:
        return f"dropout_ratio={self.dropout_ratio}"

    def forward(self, x):
        return F.dropout(x, self.dropout_ratio)
