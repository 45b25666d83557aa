"""Losses and metrics: mean squared error, cross entropies, accuracy.

The fused losses are numerically stable: logits of any size give finite losses and
gradients, and probabilities of exactly 0 or 1 give a finite loss and a nonzero, finite
gradient. Each returns a 0-d Variable of the input's dtype (integer labels never
promote float32, under NumPy 1.x either); every loss is a mean over the elements (over
the batch for ``softmax_cross_entropy``). The book's composed versions (``*_simple``)
stay here as test oracles.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.array([[2.0, 0.0, 0.0]]))
    >>> loss = softmax_cross_entropy(x, np.array([0]))
    >>> round(float(loss.data), 6)
    0.239545
    >>> loss.backward()
    >>> x.grad.shape
    (1, 3)
"""

from __future__ import annotations

import numpy as np

from zerograd import cuda
from zerograd.config import Config
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.activation import sigmoid, softmax
from zerograd.functions.array import clip, get_item
from zerograd.functions.math import exp, log

__all__ = [
    "MeanSquaredError",
    "mean_squared_error",
    "mean_squared_error_simple",
    "SoftmaxCrossEntropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_simple",
    "SigmoidCrossEntropy",
    "sigmoid_cross_entropy",
    "BinaryCrossEntropy",
    "binary_cross_entropy",
    "accuracy",
]


def _data(x):
    return x.data if isinstance(x, Variable) else x


# ---- mean squared error --------------------------------------------------------------------
class MeanSquaredError(Function):
    def forward(self, x0, x1):
        xp = get_array_module(x0)
        diff = x0 - x1
        return xp.asarray((diff * diff).sum() / diff.size, dtype=diff.dtype)

    def backward(self, gy):
        x0, x1 = self.inputs
        diff = x0 - x1  # a Variable, so the gradient can be differentiated again
        gx0 = diff * (gy * (2 / diff.size))  # d/dx0 mean((x0 - x1)^2) = 2 (x0 - x1) / n
        # Both gradients have the broadcast shape; the engine sums each to its input's.
        return gx0, (-gx0 if x1.requires_grad else None)


def mean_squared_error(x0, x1) -> Variable:
    """The mean over all elements of ``(x0 - x1) ** 2``; x0 and x1 broadcast.

    The gradients have the shapes of x0 and x1 (DeZero's did not, under broadcasting).
    For the book's ``(N, 1)`` predictions this equals DeZero's sum divided by N.

    Example:
        >>> mean_squared_error(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        variable(2.5)
    """
    x0 = as_variable(x0)
    if isinstance(x1, (int, float)):  # a number target takes x0's dtype (float32 stays)
        x1 = get_array_module(x0.data).asarray(x1, dtype=x0.dtype)
    return MeanSquaredError()(x0, x1)


def mean_squared_error_simple(x0, x1) -> Variable:
    """The book's composed mean squared error (the oracle of :func:`mean_squared_error`).

    Example:
        >>> mean_squared_error_simple(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        variable(2.5)
    """
    x0 = as_variable(x0)
    diff = x0 - x1
    return (diff * diff).sum() / diff.size


# ---- softmax cross entropy --------------------------------------------------------------------
def _check_labels(op: str, x, t):
    """Labels ``t`` (array or Variable) for logits ``x`` of shape (N, C): return the array."""
    xp = get_array_module(x.data)
    t = xp.asarray(_data(t))
    if x.ndim != 2:
        raise ValueError(
            f"{op}: expected logits x of shape (N, C), got x.shape={x.shape}; reshape "
            "to (N, C) first"
        )
    n, c = x.shape
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: labels t must be integers (class indices), got dtype {t.dtype}; use "
            "t.astype(np.int64)"
        )
    if t.shape != (n,):
        raise ValueError(
            f"{op}: labels t must have shape (N,)={(n,)} for x.shape={x.shape}, got "
            f"t.shape={t.shape}; use t.reshape(-1)"
        )
    # The range check reads two numbers back from the device: on the GPU that would
    # stall the queue of kernels once per step, so it runs on the CPU only.
    if n and xp is np and (int(t.min()) < 0 or int(t.max()) >= c):
        raise ValueError(
            f"{op}: labels must lie in [0, {c}) for {c} classes, got values in "
            f"[{int(t.min())}, {int(t.max())}]"
        )
    return t


class SoftmaxCrossEntropy(Function):
    def __init__(self, t):
        self.t = t

    def forward(self, x):
        xp = get_array_module(x)
        n = x.shape[0]
        shifted = x - x.max(axis=1, keepdims=True)  # no overflow, exact at the maximum
        self._e = xp.exp(shifted)
        self._z = self._e.sum(axis=1, keepdims=True)
        log_p = shifted[xp.arange(n), self.t] - xp.log(self._z[:, 0])  # at the labels
        return xp.asarray(-log_p.sum() / n, dtype=x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        xp = get_array_module(x.data)
        n, c = x.shape
        if not Config.enable_backprop:
            # No graph to record (create_graph=False): work on the arrays saved by
            # forward, in one fused kernel on the GPU.
            coeff = gy.data / n
            if xp is np:
                gx = self._e / self._z
                gx[np.arange(n), self.t] -= 1
                gx *= coeff
                return gx
            kernel = cuda.elementwise(
                "T e, T z, raw S t, T coeff, int64 c", "T gx",
                "gx = (e / z - (T)(i % c == t[i / c])) * coeff",
                "zerograd_softmax_cross_entropy_grad",
            )
            return kernel(self._e, self._z, self.t, coeff, c)
        onehot = xp.zeros(x.shape, dtype=x.dtype)
        onehot[xp.arange(n), self.t] = 1
        return (softmax(x, axis=1) - onehot) * (gy / n)  # d/dx = (softmax(x) - onehot) / N


def softmax_cross_entropy(x, t) -> Variable:
    """Cross entropy of softmax(x) against integer labels, averaged over the batch.

    Args:
        x: logits of shape ``(N, C)``.
        t: class indices of shape ``(N,)`` (any integer dtype; the loss keeps x's dtype).

    Raises:
        ValueError: when the shapes do not match or a label is outside ``[0, C)``.
        TypeError: when the labels are not integers.

    Example:
        >>> x = np.array([[1e4, 0.0], [0.0, 0.0]], dtype=np.float32)
        >>> softmax_cross_entropy(x, np.array([1, 0]))
        variable(5000.3467)
    """
    x = as_variable(x)
    t = _check_labels("softmax_cross_entropy", x, t)
    return SoftmaxCrossEntropy(t)(x)


def softmax_cross_entropy_simple(x, t) -> Variable:
    """The book's composed softmax cross entropy; the oracle of
    :func:`softmax_cross_entropy`.

    Unlike DeZero's it takes the log of a shifted softmax (``x - max - log sum exp``)
    instead of clipping probabilities at 1e-15, so it stays exact for large logits.

    Example:
        >>> softmax_cross_entropy_simple(np.array([[0.0, 0.0]]), np.array([0]))
        variable(0.6931471805599453)
    """
    x = as_variable(x)
    t = _check_labels("softmax_cross_entropy_simple", x, t)
    xp = get_array_module(x.data)
    n = x.shape[0]
    shifted = x - x.data.max(axis=1, keepdims=True)  # the shift is a constant
    log_p = shifted - log(exp(shifted).sum(axis=1, keepdims=True))
    return -get_item(log_p, (xp.arange(n), t)).sum() / n


# ---- binary cross entropies -----------------------------------------------------------
def _targets(op: str, x, t):
    """Targets ``t`` as an array of x's dtype and shape (a same-sized shape is reshaped)."""
    xp = get_array_module(x.data)
    t = xp.asarray(_data(t))
    if t.shape != x.shape:
        if t.size != x.size:
            raise ValueError(
                f"{op}: targets t must have the shape of x, x.shape={x.shape}, "
                f"t.shape={t.shape}"
            )
        t = t.reshape(x.shape)
    return t.astype(x.dtype, copy=False)


class SigmoidCrossEntropy(Function):
    def __init__(self, t):
        self.t = t

    def forward(self, x):
        xp = get_array_module(x)
        # -(t log p + (1 - t) log(1 - p)) with p = sigmoid(x) is softplus(x) - t x;
        # softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows.
        loss = xp.maximum(x, 0) - x * self.t + xp.log1p(xp.exp(-xp.abs(x)))
        return xp.asarray(loss.sum() / loss.size, dtype=x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        return (sigmoid(x) - self.t) * (gy / x.size)  # d/dx = (sigmoid(x) - t) / n


def sigmoid_cross_entropy(x, t) -> Variable:
    """Binary cross entropy of ``sigmoid(x)`` against targets t in [0, 1], from logits.

    Stable for any logits. The mean is over all elements; for the book's ``(N, 1)``
    logits that is DeZero's sum divided by N.

    Args:
        x: logits.
        t: targets (0 or 1, or soft targets), of x's shape or of as many elements.

    Example:
        >>> sigmoid_cross_entropy(np.array([[1000.0], [-1000.0]]), np.array([1, 0]))
        variable(0.0)
    """
    x = as_variable(x)
    return SigmoidCrossEntropy(_targets("sigmoid_cross_entropy", x, t))(x)


# The floor PyTorch's binary_cross_entropy puts under log p and log(1 - p).
_LOG_FLOOR = -100
# The floor PyTorch puts under p (1 - p) in the gradient's denominator.
_GRAD_EPS = 1e-12


def _floored_log(a):
    xp = get_array_module(a)
    positive = a > 0
    safe = xp.where(positive, a, 1)  # log(0) would warn; its value is replaced anyway
    return xp.where(positive, xp.maximum(xp.log(safe), _LOG_FLOOR), _LOG_FLOOR)


class BinaryCrossEntropy(Function):
    def __init__(self, t):
        self.t = t

    def forward(self, p):
        xp = get_array_module(p)
        t = self.t
        loss = t * _floored_log(p) + (1 - t) * _floored_log(1 - p)
        return xp.asarray(-loss.sum() / loss.size, dtype=p.dtype)

    def backward(self, gy):
        (p,) = self.inputs
        t = self.t
        # d/dp = (p - t) / (p (1 - p)) / n; the denominator is kept >= 1e-12, so p = 0
        # or 1 give a large but finite gradient (as PyTorch's), never 0 or inf.
        denominator = clip(p * (1 - p), _GRAD_EPS, None)
        return (p - t) / denominator * (gy / p.size)


def binary_cross_entropy(p, t) -> Variable:
    """Binary cross entropy of probabilities p against targets t, averaged over elements.

    ``log p`` and ``log(1 - p)`` are floored at -100 (as in PyTorch) instead of clipping
    p (DeZero clipped p at 0.999, which biased the loss and zeroed the gradient): p = 0
    or 1 gives a finite loss and a finite, nonzero gradient. For logits use
    :func:`sigmoid_cross_entropy`, which is exact.

    Raises:
        ValueError: when p has values outside [0, 1] or t's size differs from p's.

    Example:
        >>> binary_cross_entropy(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
        variable(50.0)
    """
    p = as_variable(p)
    t = _targets("binary_cross_entropy", p, t)
    if p.size and (float(p.data.min()) < 0 or float(p.data.max()) > 1):
        raise ValueError(
            f"binary_cross_entropy: p must hold probabilities in [0, 1], got values in "
            f"[{float(p.data.min())}, {float(p.data.max())}]; for logits use "
            "sigmoid_cross_entropy"
        )
    return BinaryCrossEntropy(t)(p)


# ---- metrics ------------------------------------------------------------------------------------
def accuracy(y, t) -> Variable:
    """The fraction of rows of scores ``y`` (N, C) whose argmax equals the label in t.

    Not differentiable: the result is a Variable with no creator, of y's float dtype.

    Raises:
        ValueError: when y does not have one row per label.

    Example:
        >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 0, 0]))
        variable(0.6666666666666666)
    """
    y, t = _data(y), _data(t)
    xp = get_array_module(y)
    t = xp.asarray(t)
    if y.ndim != 2 or y.shape[0] != t.size:
        raise ValueError(
            f"accuracy: expected scores y of shape (N, C) and N labels, got "
            f"y.shape={y.shape}, t.shape={t.shape}"
        )
    pred = y.argmax(axis=1).reshape(t.shape)
    dtype = y.dtype if y.dtype.kind == "f" else "float64"
    return Variable(xp.asarray((pred == t).mean(), dtype=dtype), requires_grad=False)
