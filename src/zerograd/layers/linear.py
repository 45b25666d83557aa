"""Fully connected and embedding layers: :class:`Linear`, :class:`EmbedID`."""

from __future__ import annotations

import math

import numpy as np

import zerograd.functions as F
from zerograd import _checks, cuda
from zerograd.core import Parameter
from zerograd.layers.base import Layer
from zerograd.random import normal

__all__ = ["Linear", "EmbedID"]


class Linear(Layer):
    """Fully connected layer ``y = x W + b``, with ``W`` of shape ``(in_size, out_size)``.

    Args:
        out_size: number of output features.
        nobias: leave out ``b``.
        dtype: dtype of the parameters.
        in_size: number of input features; None takes ``x.shape[-1]`` at the first call.

    ``W`` starts as normal samples scaled by ``sqrt(1 / in_size)``, ``b`` as zeros.

    Shape:
        ``(..., in_size) -> (..., out_size)``

    Raises:
        TypeError, ValueError: when a size is not a positive integer, ``nobias`` not a
            bool or ``dtype`` not a floating-point dtype.

    Example:
        >>> layer = Linear(4)
        >>> layer(np.zeros((2, 3), dtype=np.float32)).shape
        (2, 4)
        >>> layer
        Linear(in_size=3, out_size=4)
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype=np.float32,
                 in_size: int | None = None):
        super().__init__()
        name = type(self).__name__
        self.out_size = _checks.size(name, "out_size", out_size, "the number of output features")
        self.in_size = _checks.size(name, "in_size", in_size, "the number of input features",
                                  optional=True)
        self.nobias = _checks.flag(name, "nobias", nobias)
        self.dtype = _checks.float_dtype(name, dtype)
        self.W = Parameter(None, name="W")
        if self.in_size is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(self.out_size, dtype=self.dtype),
                                               name="b")

    def _init_W(self, xp=np) -> None:
        self.W.data = normal((self.in_size, self.out_size), math.sqrt(1.0 / self.in_size),
                              self.dtype, xp)

    def _expected_shape(self, name):
        return (self.in_size, self.out_size) if name == "W" else None

    def extra_repr(self) -> str:
        return _sizes_repr(self, "in_size", "out_size")

    def _after_load(self):
        if self.W.data is not None:
            self.in_size = self.W.data.shape[0]

    def forward(self, x):
        if self.W.data is None:
            if x.ndim == 0 or x.shape[-1] == 0:
                raise ValueError(
                    f"{type(self).__name__}: cannot take in_size from an input of shape "
                    f"{tuple(x.shape)}; its last axis must hold the input features (at "
                    "least one)")
            self.in_size = x.shape[-1]
            self._init_W(cuda.get_array_module(x))
        return F.linear(x, self.W, self.b)


class EmbedID(Layer):
    """A lookup table: row ``i`` of ``W`` (shape ``(in_size, out_size)``) for each id ``i``.

    Args:
        in_size: number of ids (the vocabulary size).
        out_size: length of each embedding vector.
        dtype: dtype of ``W``, which starts as standard normal samples.

    Shape:
        integer ids ``(...) -> (..., out_size)``

    Raises:
        TypeError, ValueError: when a size is not a positive integer or ``dtype`` not a
            floating-point dtype.

    Example:
        >>> embed = EmbedID(10, 4)
        >>> embed(np.array([[1, 2, 3]])).shape
        (1, 3, 4)
        >>> embed
        EmbedID(in_size=10, out_size=4)
    """

    def __init__(self, in_size: int, out_size: int, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.in_size = _checks.size(name, "in_size", in_size, "the number of ids")
        self.out_size = _checks.size(name, "out_size", out_size,
                                   "the length of each embedding vector")
        self.dtype = _checks.float_dtype(name, dtype)
        self.W = Parameter(normal((self.in_size, self.out_size), 1.0, self.dtype), name="W")

    def extra_repr(self) -> str:
        return _sizes_repr(self, "in_size", "out_size")

    def forward(self, x):
        return F.embed_id(x, self.W)


def _sizes_repr(layer: Layer, *names: str) -> str:
    """``name=value`` for each of ``names``, then ``nobias=True`` and a dtype other than
    float32 when they apply: the parts of a layer's repr."""
    parts = [f"{name}={getattr(layer, name)}" for name in names]
    if getattr(layer, "nobias", False):
        parts.append("nobias=True")
    if np.dtype(layer.dtype) != np.float32:
        parts.append(f"dtype={np.dtype(layer.dtype)}")
    return ", ".join(parts)
