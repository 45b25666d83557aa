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

import numpy as np

from zerograd.config import Config
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.array import broadcast_to, reshape, sum, sum_to
from zerograd.functions.gradient import apply
from zerograd.utils.shape import sum_to as sum_to_array

__all__ = [
    "BatchNorm",
    "batch_norm",
    "batch_nrom",
    "layer_norm",
]


def _normalize(x, axes, count, eps):
    """``(x - mean) / sqrt(var + eps)`` and ``1 / sqrt(var + eps)`` composed from
    differentiable functions (for the second derivatives)."""
    xc = x - sum(x, axis=axes, keepdims=True) / count
    inv_std = (sum(xc * xc, axis=axes, keepdims=True) / count + eps) ** -0.5
    return xc * inv_std, inv_std


class _Normalization(Function):
    """Normalise over ``axes`` with batch statistics, then scale and shift.

    Inputs ``x, gamma, beta``; ``gamma`` and ``beta`` broadcast to ``x`` after a
    reshape to ``param_shape``.
    """

    saves = ("inputs", "xhat", "inv_std")

    def __init__(self, axes, eps, param_shape):
        self.axes = axes
        self.eps = eps
        self.param_shape = param_shape

    def forward(self, x, gamma, beta):
        xp = get_array_module(x)
        mean = x.mean(axis=self.axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=self.axes, keepdims=True)
        inv_std = var + self.eps
        xp.sqrt(inv_std, out=inv_std)
        self.inv_std = xp.reciprocal(inv_std, out=inv_std)
        xc *= self.inv_std
        self.xhat = xc
        self._batch_stats(x, mean, var)
        y = self.xhat * gamma.reshape(self.param_shape)
        y += beta.reshape(self.param_shape)
        return y

    def _batch_stats(self, x, mean, var):
        """Hook for batch_norm's running statistics."""

    def backward(self, gy):
        x, gamma, beta = self.inputs
        stats = _Statistics(self.axes, self.eps, self.param_shape, self.xhat, self.inv_std)
        # d/dx: (g - mean(g) - xhat mean(g xhat)) / std with g = gy gamma
        gx = apply(NormalizationGradX(stats), x, gamma, gy) if x.requires_grad else None
        # d/dgamma = xhat and d/dbeta = 1, summed where the parameters broadcast
        ggamma = apply(NormalizationGradGamma(stats), x, gy) if gamma.requires_grad else None
        gbeta = apply(_ParameterSum(self.param_shape), gy) if beta.requires_grad else None
        return gx, ggamma, gbeta


class _Statistics:
    """What a normalization's forward computed (``xhat``, ``inv_std``) and how (axes, eps,
    the parameters' broadcast shape): its gradient Functions share it."""

    def __init__(self, axes, eps, param_shape, xhat, inv_std):
        self.axes = axes
        self.eps = eps
        self.param_shape = param_shape
        self.xhat = xhat
        self.inv_std = inv_std

    def count(self, shape) -> int:
        n = 1
        for a in self.axes:
            n *= shape[a]
        return n

    def mean(self, v):
        """The mean over the normalised axes of a Variable (kept dims), differentiable."""
        return sum(v, axis=self.axes, keepdims=True) / self.count(v.shape)

    def recompute(self, x):
        """xhat and inv_std as Variables, differentiable in x (for double backprop)."""
        return _normalize(x, self.axes, self.count(x.shape), self.eps)

    def project(self, v, xhat):
        """``v - mean(v) - xhat mean(v xhat)``: the normalization's Jacobian (times std),
        a symmetric projection."""
        return v - self.mean(v) - xhat * self.mean(v * xhat)


class NormalizationGradX(Function):
    """``(g - mean(g) - xhat mean(g xhat)) / std`` with g = gy gamma: the gradient of a
    normalization (batch or layer) with respect to x."""

    saves = ("inputs",)

    def __init__(self, stats: _Statistics):
        self.stats = stats

    def forward(self, x, gamma, gy):
        s = self.stats
        xhat = s.xhat
        g = gy * gamma.reshape(s.param_shape)
        mean_g = g.mean(axis=s.axes, keepdims=True)
        mean_gx = (g * xhat).mean(axis=s.axes, keepdims=True)
        g -= mean_g
        g -= xhat * mean_gx
        g *= s.inv_std
        return g

    def backward(self, a):
        x, gamma, gy = self.inputs
        s = self.stats
        xhat, inv_std = s.recompute(x)
        gam = reshape(gamma, s.param_shape)
        g = gy * gam
        pa = s.project(a, xhat)
        # The output is inv_std P(g), P a symmetric projection: d/dgy = gamma inv_std P(a),
        # d/dgamma = sum(gy inv_std P(a)); d/dx differentiates inv_std and xhat:
        # -inv_std^2 (xhat (<ag> - <a><g> - <a xhat><g xhat>) + P(a)<g xhat> + P(g)<a xhat>)
        # with <v> the mean over the normalised axes.
        gx = None
        if x.requires_grad:
            m_ax, m_gx = s.mean(a * xhat), s.mean(g * xhat)
            cov = s.mean(a * g) - s.mean(a) * s.mean(g) - m_ax * m_gx
            gx = -(inv_std * inv_std) * (xhat * cov + pa * m_gx + s.project(g, xhat) * m_ax)
        ggamma = None
        if gamma.requires_grad:
            ggamma = reshape(sum_to(gy * inv_std * pa, s.param_shape), gamma.shape)
        ggy = gam * inv_std * pa if gy.requires_grad else None
        return gx, ggamma, ggy


class NormalizationGradGamma(Function):
    """``sum(gy xhat)`` where gamma broadcasts: a normalization's gradient in gamma."""

    saves = ("inputs",)

    def __init__(self, stats: _Statistics):
        self.stats = stats

    def forward(self, x, gy):
        s = self.stats
        return sum_to_array(gy * s.xhat, s.param_shape).reshape(-1)

    def backward(self, b):
        x, gy = self.inputs
        s = self.stats
        xhat, inv_std = s.recompute(x)
        bb = reshape(b, s.param_shape)
        # <b, sum(gy xhat)>: d/dgy = b xhat; d/dx = inv_std P(b gy) (xhat's own Jacobian)
        gx = inv_std * s.project(bb * gy, xhat) if x.requires_grad else None
        ggy = bb * xhat if gy.requires_grad else None
        return gx, ggy


class _ParameterSum(Function):
    """``gy`` summed to the parameters' broadcast shape and flattened: a normalization's
    gradient in beta."""

    saves = ()

    def __init__(self, param_shape):
        self.param_shape = param_shape

    def forward(self, gy):
        self.gy_shape = gy.shape
        return sum_to_array(gy, self.param_shape).reshape(-1)

    def backward(self, g):
        return broadcast_to(reshape(g, self.param_shape), self.gy_shape)  # adjoint of a sum


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
        # (times m / (m - 1)), as in DeZero, Chainer and PyTorch. batch_norm has checked
        # that m >= 2.
        m = 1
        for a in self.axes:
            m *= x.shape[a]
        adjust = m / (m - 1)
        c = self.running_mean.shape
        self.running_mean *= self.decay
        self.running_mean += (1 - self.decay) * mean.reshape(c)
        self.running_var *= self.decay
        self.running_var += (1 - self.decay) * adjust * var.reshape(c)


class _LayerNorm(_Normalization):
    """Layer normalization: statistics over the last axis of each sample (private: the
    layer is ``zerograd.layers.LayerNorm``; the function, :func:`layer_norm`)."""


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
        ValueError: when ``x`` has fewer than 2 axes or a parameter is not ``(C,)``; in
            training mode, when x holds fewer than 2 values per channel (``N = 1`` for
            ``(N, C)``, ``N * H * W = 1`` for images, or an empty batch).

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
        m = 1
        for a in axes:
            m *= x.shape[a]
        if m < 2:
            # A batch of one value per channel has no variance to normalise by (the
            # output would be beta alone), and none at all would put NaN into the
            # running statistics for good: refuse both, as PyTorch does.
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got "
                f"x.shape={x.shape} ({m} per channel); use a larger batch, or normalise "
                "with the running statistics under zerograd.test_mode()"
            )
        return BatchNorm(axes, eps, param_shape, mean, var, decay)(x, gamma, beta)
    # Test mode: a fixed affine map of x, composed from differentiable functions.
    if x.dtype.kind != "f":  # integers: float64, not statistics truncated to integers
        x = as_variable(x.data.astype(np.float64))
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
    return _LayerNorm((x.ndim - 1,), eps, (d,))(x, gamma, beta)

