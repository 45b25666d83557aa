"""Convolution layers: :class:`Conv2d` and :class:`Deconv2d` (transposed)."""

from __future__ import annotations

import math

import numpy as np

import zerograd.functions as F
from zerograd import _checks, cuda
from zerograd.core import Parameter
from zerograd.layers.base import Layer
from zerograd.random import normal
from zerograd.utils.shape import pair

__all__ = ["Conv2d", "Deconv2d"]


class _Convolution(Layer):
    """What Conv2d and Deconv2d share: hyperparameters, a lazily sized ``W``, ``b``."""

    def __init__(self, out_channels: int, kernel_size, stride=1, pad=0, nobias: bool = False,
                 dtype=np.float32, in_channels: int | None = None):
        super().__init__()
        name = type(self).__name__
        self.out_channels = _checks.size(name, "out_channels", out_channels,
                                       "the number of output channels")
        self.kernel_size = _checks.pair(name, "kernel_size", kernel_size, minimum=1)
        self.stride = _checks.pair(name, "stride", stride, minimum=1)
        self.pad = _checks.pair(name, "pad", pad, minimum=0)
        self.nobias = _checks.flag(name, "nobias", nobias)
        self.dtype = _checks.float_dtype(name, dtype)
        self.in_channels = _checks.size(name, "in_channels", in_channels,
                                      "the number of input channels", optional=True)
        self.W = Parameter(None, name="W")
        if self.in_channels is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(self.out_channels, dtype=self.dtype),
                                               name="b")

    def extra_repr(self) -> str:
        parts = [f"{name}={getattr(self, name)}" for name in
                 ("in_channels", "out_channels", "kernel_size", "stride", "pad")]
        if self.nobias:
            parts.append("nobias=True")
        if self.dtype != np.float32:
            parts.append(f"dtype={self.dtype}")
        return ", ".join(parts)

    def _W_shape(self, in_channels: int | None, kh: int, kw: int) -> tuple:
        raise NotImplementedError

    def _expected_shape(self, name):
        return self._W_shape(self.in_channels, *pair(self.kernel_size)) if name == "W" else None

    def _after_load(self):
        if self.W.data is not None:
            self.in_channels = self.W.data.shape[self._W_shape(None, 1, 1).index(None)]

    def _init_W(self, xp=np) -> None:
        kh, kw = pair(self.kernel_size)
        c = self.in_channels
        scale = math.sqrt(1.0 / (c * kh * kw))
        self.W.data = normal(self._W_shape(c, kh, kw), scale, self.dtype, xp)

    def forward(self, x):
        if self.W.data is None:
            if x.ndim != 4 or x.shape[1] == 0:
                raise ValueError(
                    f"{type(self).__name__}: cannot take in_channels from an input of shape "
                    f"{tuple(x.shape)}; expected (N, C, H, W) with C >= 1")
            self.in_channels = x.shape[1]
            self._init_W(cuda.get_array_module(x))
        return self._function(x, self.W, self.b, self.stride, self.pad)


class Conv2d(_Convolution):
    """2-D convolution with ``W`` of shape ``(out_channels, in_channels, kh, kw)``.

    Args:
        out_channels: number of output channels.
        kernel_size: an int or a pair ``(kh, kw)``.
        stride: an int or a pair.
        pad: an int or a pair (zero padding on each side).
        nobias: leave out ``b``.
        dtype: dtype of the parameters.
        in_channels: None takes ``x.shape[1]`` at the first call.

    ``W`` starts as normal samples scaled by ``sqrt(1 / (in_channels * kh * kw))``.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H_out, W_out)``

    Raises:
        TypeError, ValueError: when a channel count is not a positive integer,
            ``kernel_size`` or ``stride`` not a positive integer (or pair of them),
            ``pad`` not an integer >= 0 (or pair), ``nobias`` not a bool or ``dtype``
            not a floating-point dtype.

    Example:
        >>> conv = Conv2d(8, kernel_size=3, pad=1)
        >>> conv(np.zeros((2, 3, 5, 5), dtype=np.float32)).shape
        (2, 8, 5, 5)
        >>> conv
        Conv2d(in_channels=3, out_channels=8, kernel_size=3, stride=1, pad=1)
    """

    _function = staticmethod(F.conv2d)

    def _W_shape(self, in_channels, kh, kw):
        return (self.out_channels, in_channels, kh, kw)


class Deconv2d(_Convolution):
    """2-D transposed convolution with ``W`` of shape ``(in_channels, out_channels, kh, kw)``.

    Args:
        out_channels: number of output channels.
        kernel_size: an int or a pair ``(kh, kw)``.
        stride: an int or a pair.
        pad: an int or a pair.
        nobias: leave out ``b``.
        dtype: dtype of the parameters.
        in_channels: None takes ``x.shape[1]`` at the first call.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, s*(H-1)+kh-2p, s*(W-1)+kw-2p)``

    Raises:
        TypeError, ValueError: on the same arguments as :class:`Conv2d`.

    Example:
        >>> deconv = Deconv2d(4, kernel_size=2, stride=2)
        >>> deconv(np.zeros((1, 3, 5, 5), dtype=np.float32)).shape
        (1, 4, 10, 10)
    """

    _function = staticmethod(F.deconv2d)

    def _W_shape(self, in_channels, kh, kw):
        return (in_channels, self.out_channels, kh, kw)
