"""Normalisation layers: :class:`BatchNorm` and :class:`LayerNorm`."""

from __future__ import annotations

import math

import numpy as np

import zerograd.functions as F
from zerograd import _checks, cuda
from zerograd.config import Config
from zerograd.core import Parameter
from zerograd.layers.base import Layer

__all__ = ["BatchNorm", "LayerNorm"]


class BatchNorm(Layer):
    """Batch normalisation over axis 1 (features of ``(N, C)``, channels of
    ``(N, C, H, W)``), with learnt scale ``gamma`` and shift ``beta``.

    In training (``Config.train``) it normalises with the batch statistics and updates
    the running averages ``avg_mean`` and ``avg_var``; in test mode it uses those
    averages. The averages are buffers: saved with the weights and moved by ``to_gpu``.
    Sizes are taken from the first input.

    Args:
        decay: weight of the old running average at each update, in [0, 1].
        eps: added to the variance, a positive number.

    Shape:
        ``(N, C) -> (N, C)`` or ``(N, C, H, W) -> (N, C, H, W)``

    Raises:
        TypeError, ValueError: at construction, when ``decay`` is not in [0, 1] or
            ``eps`` not a positive finite number; in training, when the input is not
            ``(N, C, ...)`` or holds fewer than 2 values per channel (a batch of 0, or
            of 1 without pixels), whose variance is undefined. Nothing (the running
            averages included) changes then.

    Example:
        >>> bn = BatchNorm()
        >>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> bn(x).shape, list(bn.state_dict())
        ((3, 2), ['gamma', 'beta', 'avg_mean', 'avg_var'])
        >>> bn
        BatchNorm(size=2, decay=0.9, eps=2e-05)
    """

    def __init__(self, decay: float = 0.9, eps: float = 2e-5):
        super().__init__()
        name = type(self).__name__
        self.decay = _checks.fraction(name, "decay", decay, include_one=True,
                                    hint="the weight of the old running average")
        self.eps = _checks.positive_number(name, "eps", eps, hint="e.g. 2e-5")
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.register_buffer("avg_mean", None)
        self.register_buffer("avg_var", None)

    def _init_params(self, x) -> None:
        xp = cuda.get_array_module(x)
        size, dtype = x.shape[1], x.dtype
        if dtype.kind == "f":
            _checks.representable(type(self).__name__, "eps", self.eps, dtype)
        if self.gamma.data is None:
            self.gamma.data = xp.ones(size, dtype=dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(size, dtype=dtype)
        if self.avg_mean is None:
            self.avg_mean = xp.zeros(size, dtype=dtype)
        if self.avg_var is None:
            self.avg_var = xp.ones(size, dtype=dtype)

    @property
    def size(self) -> int | None:
        """The number of features or channels, None before the first input."""
        return None if self.gamma.data is None else int(self.gamma.data.shape[0])

    # Loaded before the first input: four float vectors of one common size.
    def _expected_shape(self, name):
        return ("C",)

    def _expected_kinds(self, name):
        return "f"

    def extra_repr(self) -> str:
        return f"size={self.size}, decay={self.decay}, eps={self.eps}"

    def _check_input(self, x) -> None:
        """Refuse, before any state is made or changed, an input whose batch statistics
        do not exist; checked here so that the message names the layer."""
        name = type(self).__name__
        if x.ndim < 2:
            raise ValueError(f"{name}: expected an input of shape (N, C) or (N, C, H, W), "
                             f"got shape {tuple(x.shape)}")
        count = x.shape[0] * math.prod(x.shape[2:])  # values per channel
        if Config.train and count < 2:
            raise ValueError(
                f"{name}: training needs at least 2 values per channel for the batch "
                f"statistics, got an input of shape {tuple(x.shape)} ({count} per "
                "channel); use batches of 2 or more, or evaluate in zerograd.test_mode() "
                "(the running averages are unchanged)"
            )

    def forward(self, x):
        self._check_input(x)
        if self.avg_mean is None or self.gamma.data is None:
            self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean, self.avg_var,
                            decay=self.decay, eps=self.eps)


class LayerNorm(Layer):
    """Layer normalisation over the last axis, with learnt ``gamma`` and ``beta``.

    Args:
        size: length of the last axis; None takes it from the first input.
        eps: added to the variance, a positive number.
        dtype: dtype of ``gamma`` and ``beta``.

    Shape:
        ``(..., size) -> (..., size)``

    Raises:
        TypeError, ValueError: when ``size`` is not a positive integer (or None),
            ``eps`` not a positive finite number or ``dtype`` not a floating-point dtype.

    Example:
        >>> ln = LayerNorm()
        >>> y = ln(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
        >>> y.shape, y.dtype
        ((1, 3), dtype('float32'))
        >>> ln
        LayerNorm(size=3, eps=1e-05)
    """

    def __init__(self, size: int | None = None, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        size = _checks.size(name, "size", size, "the length of the last axis", optional=True)
        self.eps = _checks.positive_number(name, "eps", eps, hint="e.g. 1e-5")
        self.dtype = _checks.float_dtype(name, dtype)
        _checks.representable(name, "eps", self.eps, self.dtype)
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        if size is not None:
            self._init_params(size, np)

    @property
    def size(self) -> int | None:
        """The length of the normalised axis, None before the first input."""
        return None if self.gamma.data is None else int(self.gamma.data.shape[0])

    def _expected_shape(self, name):
        return ("C",)  # loaded before the first input: two vectors of one common size

    def extra_repr(self) -> str:
        dtype = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        return f"size={self.size}, eps={self.eps}{dtype}"

    def _init_params(self, size: int, xp) -> None:
        self.gamma.data = xp.ones(size, dtype=self.dtype)
        self.beta.data = xp.zeros(size, dtype=self.dtype)

    def forward(self, x):
        if self.gamma.data is None:
            self._init_params(x.shape[-1], cuda.get_array_module(x))
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps)
