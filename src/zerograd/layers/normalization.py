"""Normalisation layers: :class:`BatchNorm` and :class:`LayerNorm`."""

from __future__ import annotations

import numpy as np

import zerograd.functions as F
from zerograd import cuda
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
        decay: weight of the old running average at each update.
        eps: added to the variance.

    Shape:
        ``(N, C) -> (N, C)`` or ``(N, C, H, W) -> (N, C, H, W)``

    Example:
        >>> bn = BatchNorm()
        >>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> bn(x).shape, list(bn.state_dict())
        ((3, 2), ['gamma', 'beta', 'avg_mean', 'avg_var'])
    """

    def __init__(self, decay: float = 0.9, eps: float = 2e-5):
        super().__init__()
        self.decay = decay
        self.eps = eps
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.register_buffer("avg_mean", None)
        self.register_buffer("avg_var", None)

    def _init_params(self, x) -> None:
        xp = cuda.get_array_module(x)
        size, dtype = x.shape[1], x.dtype
        if self.gamma.data is None:
            self.gamma.data = xp.ones(size, dtype=dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(size, dtype=dtype)
        if self.avg_mean is None:
            self.avg_mean = xp.zeros(size, dtype=dtype)
        if self.avg_var is None:
            self.avg_var = xp.ones(size, dtype=dtype)

    def forward(self, x):
        if self.avg_mean is None or self.gamma.data is None:
            self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean, self.avg_var,
                            decay=self.decay, eps=self.eps)


class LayerNorm(Layer):
    """Layer normalisation over the last axis, with learnt ``gamma`` and ``beta``.

    Args:
        size: length of the last axis; None takes it from the first input.
        eps: added to the variance.

    Shape:
        ``(..., size) -> (..., size)``

    Example:
        >>> ln = LayerNorm()
        >>> y = ln(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
        >>> y.shape, y.dtype
        ((1, 3), dtype('float32'))
    """

    def __init__(self, size: int | None = None, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.eps = eps
        self.dtype = dtype
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        if size is not None:
            self._init_params(size, np)

    def _init_params(self, size: int, xp) -> None:
        self.gamma.data = xp.ones(size, dtype=self.dtype)
        self.beta.data = xp.zeros(size, dtype=self.dtype)

    def forward(self, x):
        if self.gamma.data is None:
            self._init_params(x.shape[-1], cuda.get_array_module(x))
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps)
