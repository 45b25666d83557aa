"""Normalization: batch_norm (with running statistics) and layer_norm.

Both normalise ``x`` to zero mean and unit variance over some axes, then scale by
``gamma`` and shift by ``beta``: ``y = gamma * (x - mean) / sqrt(var + eps) + beta``,
with the biased (population) variance of the normalised axes, as every framework does.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.array([[1.0, 2.0], [3.0, 6.0]]))
    >>> y = layer_norm(x, np.ones(2), np.zeros(2))
    >>> np.round(y.data, 3)
    array([[-1.,  1.],
           [-1.,  1.]])
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the doctests use it)

from zerograd.config import Config
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.array import reshape, sum, sum_to

__all__ = [
    "BatchNorm",
    "LayerNorm",
    "batch_norm",
    "batch_nrom",
    "layer_norm",
]


def _normalize(x, axes, count, eps):
    """``(x - mean) / sqrt(var + eps)`` and ``1 / sqrt(var + eps)`` composed from
    differentiable functions, for the backward pass when it is recorded."""
    xc = x - sum(x, axis=axes, keepdims=True) / count
    inv_std = (sum(xc * xc, axis=axes, keepdims=True) / count + eps) ** -0.5
    return xc * inv_std, inv_std


class _Normalization(Function):
    """Normalise over ``axes`` with batch statistics, then scale and shift.

    Inputs ``x, gamma, beta``; ``gamma`` and ``beta`` broadcast to ``x`` after a
    reshape to ``param_shape``.
    """

    def __init__(self, axes, eps, param_shape):
        self.axes = axes
        self.eps = eps
        self.param_shape = param_shape

    def forward(self, x, gamma, beta):
        xp = get_array_module(x)
        mean = x.mean(axis=self.axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=self.axes, keepdims=True)
        self.inv_std = 1 / xp.sqrt(var + self.eps)
        self.xhat = xc * self.inv_std
        self._batch_stats(x, mean, var)
        return self.xhat * gamma.reshape(self.param_shape) + beta.reshape(self.param_shape)

    def _batch_stats(self, x, mean, var):
        """Hook for batch_norm's running statistics."""

    def backward(self, gy):
        x, gamma, beta = self.inputs
        count = self._count(x.shape)
        if Config.enable_backprop:
            # create_graph: recompute xhat from x so the gradient is differentiable in x.
            xhat, inv_std = _normalize(x, self.axes, count, self.eps)
        else:
            xhat, inv_std = self.xhat, self.inv_std
        gx = None
        if x.requires_grad:
            # d/dx: g - mean(g) - xhat * mean(g * xhat), scaled by 1/std (g = gy * gamma).
            g = gy * reshape(gamma, self.param_shape)
            mean_g = sum(g, axis=self.axes, keepdims=True) / count
            mean_gx = sum(g * xhat, axis=self.axes, keepdims=True) / count
            gx = (g - mean_g - xhat * mean_gx) * inv_std
        ggamma = gbeta = None
        if gamma.requires_grad:  # d/dgamma = xhat, summed where gamma broadcasts
            ggamma = reshape(sum_to(gy * xhat, self.param_shape), gamma.shape)
        if beta.requires_grad:  # d/dbeta = 1
            gbeta = reshape(sum_to(gy, self.param_shape), beta.shape)
        return gx, ggamma, gbeta

    def _count(self, shape):
        n = 1
        for a in self.axes:
            n *= shape[a]
        return n


class BatchNorm(_Normalization):
    """Batch normalization in training mode: batch statistics over every axis but the
    channels (axis 1), and an in-place update of the running statistics."""

    def __init__(self, axes, eps, param_shape, running_mean, running_var, decay):
        super().__init__(axes, eps, param_shape)
        self.running_mean = running_mean
        self.running_var = running_var
        self.decay = decay

    def _batch_stats(self, x, mean, var):
        # running = decay * running + (1 - decay) * batch; the variance is unbiased
        # (times m / (m - 1)), as in DeZero, Chainer and PyTorch.
        m = self._count(x.shape)
        adjust = m / max(m - 1, 1)
        c = self.running_mean.shape
        self.running_mean *= self.decay
        self.running_mean += (1 - self.decay) * mean.reshape(c)
        self.running_var *= self.decay
        self.running_var += (1 - self.decay) * adjust * var.reshape(c)


class LayerNorm(_Normalization):
    """Layer normalization: statistics over the last axis of each sample."""


def _data(a):
    return a.data if isinstance(a, Variable) else a


def batch_norm(x, gamma, beta, mean, var, decay=0.9, eps=2e-5) -> Variable:
    """Batch normalization over the batch (and, for images, the pixels) of each channel.

    In training mode (``Config.train``) ``x`` is normalised by the statistics of this
    batch, and the running statistics ``mean`` and ``var`` (arrays, updated in place)
    become ``decay * running + (1 - decay) * batch``, with the unbiased batch variance
    (times ``m / (m - 1)`` for ``m`` values per channel), as in DeZero, Chainer and
    PyTorch (whose ``momentum`` is ``1 - decay``). In test mode (``test_mode()``) ``x``
    is normalised by ``mean`` and ``var``, which stay unchanged; the backward works in
    both modes.

    Args:
        x: ``(N, C)`` or ``(N, C, H, W)`` (any ``(N, C, ...)``).
        gamma, beta: scale and shift ``(C,)``.
        mean, var: running statistics ``(C,)``, arrays (or Variables, whose data is used).
        decay: weight of the old running statistics.
        eps: added to the variance.

    Shape: ``(N, C, ...) -> (N, C, ...)``.

    Raises:
        ValueError: when ``x`` has fewer than 2 axes or a parameter is not ``(C,)``.

    Example:
        >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> mean, var = np.zeros(2), np.ones(2)
        >>> y = batch_norm(x, np.ones(2), np.zeros(2), mean, var, eps=0.0)
        >>> y.data
        array([[-1., -1.],
               [ 1.,  1.]])
        >>> mean, var
        (array([0.2, 2. ]), array([ 1.1, 20.9]))
    """
    x = as_variable(x)
    if x.ndim < 2:
        raise ValueError(
            f"batch_norm: expected x of shape (N, C) or (N, C, H, W), got x.shape={x.shape}"
        )
    c = x.shape[1]
    mean, var = _data(mean), _data(var)
    for name, p in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if tuple(p.shape) != (c,):
            raise ValueError(
                f"batch_norm: expected {name} of shape ({c},) (one per channel of "
                f"x.shape={x.shape}), got {name}.shape={tuple(p.shape)}"
            )
    axes = (0,) + tuple(range(2, x.ndim))
    param_shape = (1, c) + (1,) * (x.ndim - 2)
    if Config.train:
        return BatchNorm(axes, eps, param_shape, mean, var, decay)(x, gamma, beta)
    # Test mode: a fixed affine map of x, composed from differentiable functions.
    xp = get_array_module(x.data)
    inv_std = (1 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    scale = gamma * inv_std  # (C,)
    shift = beta - scale * mean.astype(x.dtype, copy=False)
    return x * reshape(scale, param_shape) + reshape(shift, param_shape)


batch_nrom = batch_norm  # DeZero's misspelt name, kept so the book's code runs


def layer_norm(x, gamma, beta, eps=1e-5) -> Variable:
    """Layer normalization over the last axis (``torch.nn.functional.layer_norm``).

    Args:
        x: ``(..., D)``.
        gamma, beta: scale and shift ``(D,)``.
        eps: added to the variance.

    Shape: ``(..., D) -> (..., D)``.

    Raises:
        ValueError: when ``gamma`` or ``beta`` is not ``(D,)``.

    Example:
        >>> y = layer_norm(np.array([[0.0, 2.0, 4.0]]), np.ones(3), np.zeros(3), eps=0.0)
        >>> np.round(y.data, 4)
        array([[-1.2247,  0.    ,  1.2247]])
    """
    x = as_variable(x)
    if x.ndim < 1:
        raise ValueError("layer_norm: x must have at least one axis, got a 0-d array")
    d = x.shape[-1]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if tuple(p.shape) != (d,):
            raise ValueError(
                f"layer_norm: expected {name} of shape ({d},) (the last axis of "
                f"x.shape={x.shape}), got {name}.shape={tuple(p.shape)}"
            )
    return LayerNorm((x.ndim - 1,), eps, (d,))(x, gamma, beta)

