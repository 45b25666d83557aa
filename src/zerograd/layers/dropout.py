"""The dropout layer: :class:`Dropout`."""

from __future__ import annotations

import zerograd.functions as F
from zerograd.layers.base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout: zero a ``dropout_ratio`` fraction of the elements in training
    and scale the rest by ``1 / (1 - dropout_ratio)``; identity in test mode.

    Shape:
        any shape, unchanged.

    Example:
        >>> from zerograd import test_mode
        >>> with test_mode():
        ...     Dropout(0.5)(np.ones(3, dtype=np.float32))
        variable([1. 1. 1.])
    """

    def __init__(self, dropout_ratio: float = 0.5):
        super().__init__()
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        return F.dropout(x, self.dropout_ratio)
