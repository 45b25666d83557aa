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

import math

import numpy as np

from zerograd import cuda
from zerograd.core import Function, Variable, as_dtype, as_variable, names_errors
from zerograd.cuda import get_array_module
from zerograd.functions._arrays import checks_values, clamp, log1p_of_fraction
from zerograd.functions.activation import _sigmoid_array, sigmoid, softmax
from zerograd.functions.array import clip, get_item, sum
from zerograd.functions.gradient import apply
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


def _mean_of(total, n, dtype, xp):
    """``total / n`` as a 0-d array of ``dtype``; NaN for no elements (as NumPy's and
    PyTorch's means), without NumPy's warning about 0 / 0."""
    if n == 0:
        return xp.asarray(np.nan, dtype=dtype)
    return xp.asarray(total / n, dtype=dtype)


# ---- mean squared error --------------------------------------------------------------------
class MeanSquaredError(Function):
    saves = ("inputs",)

    def forward(self, x0, x1):
        xp = get_array_module(x0)
        diff = x0 - x1
        return _mean_of((diff * diff).sum(), diff.size, diff.dtype, xp)

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = apply(MeanSquaredErrorGrad(), x0, x1, gy)  # d/dx0 = 2 (x0 - x1) gy / n
        # Both gradients have the broadcast shape; the engine sums each to its input's.
        return gx0, (-gx0 if x1.requires_grad else None)


class MeanSquaredErrorGrad(Function):
    """``2 (x0 - x1) gy / n``, the gradient of the mean squared error in x0 (n elements of
    the broadcast shape)."""

    saves = ("inputs",)

    def forward(self, x0, x1, gy):
        gx0 = x0 - x1
        gx0 *= gy * (2 / max(gx0.size, 1))
        return as_dtype(gx0, gy.dtype)

    def backward(self, g):
        x0, x1, gy = self.inputs
        n = max(g.size, 1)
        # Linear in (x0 - x1) and in gy: d/dx0 = 2 g gy / n = -d/dx1, d/dgy = <g, 2 diff / n>.
        gx0 = g * (gy * (2 / n)) if x0.requires_grad or x1.requires_grad else None
        gx1 = -gx0 if gx0 is not None and x1.requires_grad else None
        ggy = sum(g * (x0 - x1)) * (2 / n) if gy.requires_grad else None
        return (gx0 if x0.requires_grad else None), gx1, ggy


def _float_operands(x0, x1):
    """Integer (or boolean) operands of a loss take the other one's float dtype, or
    float64 when neither is float, so that a loss is never computed in integers."""
    def cast(v, dtype):
        return as_variable(v.data.astype(dtype))

    f0, f1 = x0.dtype.kind == "f", x1.dtype.kind == "f"
    if f0 and not f1:
        x1 = cast(x1, x0.dtype)
    elif f1 and not f0:
        x0 = cast(x0, x1.dtype)
    elif not f0 and not f1:
        x0, x1 = cast(x0, np.float64), cast(x1, np.float64)
    return x0, x1


def mean_squared_error(x0, x1) -> Variable:
    """The mean over all elements of ``(x0 - x1) ** 2``; x0 and x1 broadcast.

    The gradients have the shapes of x0 and x1 (DeZero's did not, under broadcasting).
    For the book's ``(N, 1)`` predictions this equals DeZero's sum divided by N. Integer
    operands take the other's float dtype (float64 if both are integers); a mean over no
    elements is NaN, as NumPy's.

    Raises:
        ValueError: when the shapes of x0 and x1 do not broadcast.

    Example:
        >>> mean_squared_error(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        variable(2.5)
        >>> mean_squared_error(np.array([1, 2]), np.array([0, 0]))
        variable(2.5)
    """
    x0 = as_variable(x0)
    if isinstance(x1, (int, float)):  # a number target takes x0's dtype (float32 stays)
        dtype = x0.dtype if x0.dtype.kind == "f" else np.float64
        x1 = get_array_module(x0.data).asarray(x1, dtype=dtype)
    x1 = as_variable(x1)
    try:
        np.broadcast_shapes(x0.shape, x1.shape)
    except ValueError:
        raise ValueError(
            f"mean_squared_error: the shapes of x0 and x1 do not broadcast, "
            f"x0.shape={x0.shape}, x1.shape={x1.shape}; pass a target of the "
            f"prediction's shape (e.g. t.reshape({x0.shape}))"
        ) from None
    x0, x1 = _float_operands(x0, x1)
    return MeanSquaredError()(x0, x1)


@names_errors
def mean_squared_error_simple(x0, x1) -> Variable:
    """The book's composed mean squared error (the oracle of :func:`mean_squared_error`).

    Example:
        >>> mean_squared_error_simple(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        variable(2.5)
    """
    x0, x1 = _float_operands(as_variable(x0), as_variable(x1))  # no integer wrap-around
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
    if n and checks_values(xp):  # reads two numbers from the device: see _arrays
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= c:
            raise ValueError(
                f"{op}: labels must lie in [0, {c}) for {c} classes, got values in "
                f"[{lo}, {hi}]"
            )
    return t


class SoftmaxCrossEntropy(Function):
    # the exponentials and their sums for the gradient; x for double backprop
    saves = ("inputs", "_e", "_z")

    def __init__(self, t):
        self.t = t

    def forward(self, x):
        xp = get_array_module(x)
        n = x.shape[0]
        if n == 0:  # a mean over no sample: NaN, with nothing to shift by
            self._e, self._z = x.copy(), xp.ones((0, 1), dtype=x.dtype)
            return _mean_of(0, 0, x.dtype, xp)
        shifted = x - x.max(axis=1, keepdims=True)  # no overflow, exact at the maximum
        self._e = xp.exp(shifted)
        self._z = self._e.sum(axis=1, keepdims=True)
        log_p = shifted[xp.arange(n), self.t] - xp.log(self._z[:, 0])  # at the labels
        return _mean_of(-log_p.sum(), n, x.dtype, xp)

    def backward(self, gy):
        (x,) = self.inputs
        # d/dx = (softmax(x) - onehot(t)) gy / N, from the exponentials forward kept.
        return apply(SoftmaxCrossEntropyGrad(self.t, self._e, self._z), x, gy)


class SoftmaxCrossEntropyGrad(Function):
    """``(softmax(x) - onehot(t)) gy / N``, the gradient of softmax cross entropy.

    ``e`` and ``z`` are what the loss's forward computed at the same x: the shifted
    exponentials and their row sums, so softmax(x) = e / z costs one division.
    """

    saves = ("inputs",)  # (its backward computes softmax(x) again, differentiably)

    def __init__(self, t, e, z):
        self.t = t
        self.e = e
        self.z = z

    def forward(self, x, gy):
        xp = get_array_module(x)
        n, c = x.shape
        coeff = gy / max(n, 1)
        if xp is np:
            gx = self.e / self.z
            gx[np.arange(n), self.t] -= 1
            gx *= coeff
            return gx
        kernel = cuda.elementwise(  # one kernel on the GPU
            "T e, T z, raw S t, T coeff, int64 c", "T gx",
            "gx = (e / z - (T)(i % c == t[i / c])) * coeff",
            "zerograd_softmax_cross_entropy_grad",
        )
        return kernel(self.e, self.z, self.t, coeff, c)

    def backward(self, g):
        x, gy = self.inputs
        xp = get_array_module(x.data)
        n = max(x.shape[0], 1)
        p = softmax(x, axis=1)
        gx = None
        if x.requires_grad:  # softmax's Jacobian is symmetric: J g = p (g - sum(p g))
            gx = (p * g - p * sum(p * g, axis=1, keepdims=True)) * (gy / n)
        ggy = None
        if gy.requires_grad:  # d/dgy = <g, softmax(x) - onehot> / N
            onehot = xp.zeros(x.shape, dtype=x.dtype)
            onehot[xp.arange(x.shape[0]), self.t] = 1
            ggy = sum(g * (p - onehot)) / n
        return gx, ggy


def softmax_cross_entropy(x, t) -> Variable:
    """Cross entropy of softmax(x) against integer labels, averaged over the batch.

    Args:
        x: logits of shape ``(N, C)`` (integer logits are taken as float64).
        t: class indices of shape ``(N,)`` (any integer dtype; the loss keeps x's dtype).

    The range of the labels is checked on the CPU; on the GPU only under
    :func:`zerograd.debug.detect_anomaly` (the check reads from the device).

    Raises:
        ValueError: when the shapes do not match or a label is outside ``[0, C)``.
        TypeError: when the labels are not integers.

    Example:
        >>> x = np.array([[1e4, 0.0], [0.0, 0.0]], dtype=np.float32)
        >>> softmax_cross_entropy(x, np.array([1, 0]))
        variable(5000.3467)
    """
    x = _float_variable(as_variable(x))
    t = _check_labels("softmax_cross_entropy", x, t)
    return SoftmaxCrossEntropy(t)(x)


def _float_variable(x: Variable) -> Variable:
    """x, or for integer (boolean) data a float64 copy: a loss is never computed in
    integers."""
    return x if x.dtype.kind == "f" else as_variable(x.data.astype(np.float64))


def softmax_cross_entropy_simple(x, t) -> Variable:
    """The book's composed softmax cross entropy; the oracle of
    :func:`softmax_cross_entropy`.

    Unlike DeZero's it takes the log of a shifted softmax (``x - max - log sum exp``)
    instead of clipping probabilities at 1e-15, so it stays exact for large logits.

    Example:
        >>> softmax_cross_entropy_simple(np.array([[0.0, 0.0]]), np.array([0]))
        variable(0.6931471805599453)
    """
    x = _float_variable(as_variable(x))
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
    saves = ("inputs",)

    def __init__(self, t):
        self.t = t

    def forward(self, x):
        xp = get_array_module(x)
        # -(t log p + (1 - t) log(1 - p)) with p = sigmoid(x) is softplus(x) - t x;
        # softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows.
        loss = clamp(x, lower=0) - x * self.t + log1p_of_fraction(xp.exp(-xp.abs(x)))
        return _mean_of(loss.sum(), loss.size, x.dtype, xp)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(SigmoidCrossEntropyGrad(self.t), x, gy)  # (sigmoid(x) - t) gy / n


class SigmoidCrossEntropyGrad(Function):
    """``(sigmoid(x) - t) gy / n``, the gradient of the sigmoid cross entropy."""

    saves = ("inputs",)

    def __init__(self, t):
        self.t = t

    def forward(self, x, gy):
        gx = _sigmoid_array(x)
        gx -= self.t
        gx *= gy / max(x.size, 1)
        return as_dtype(gx, gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        n = max(x.size, 1)
        p = sigmoid(x)
        gx = p * (1 - p) * g * (gy / n) if x.requires_grad else None  # sigmoid' = p (1 - p)
        ggy = sum(g * (p - self.t)) / n if gy.requires_grad else None
        return gx, ggy


def sigmoid_cross_entropy(x, t) -> Variable:
    """Binary cross entropy of ``sigmoid(x)`` against targets t in [0, 1], from logits.

    Stable for any logits. The mean is over all elements; for the book's ``(N, 1)``
    logits that is DeZero's sum divided by N. Integer logits are taken as float64.

    Args:
        x: logits.
        t: targets (0 or 1, or soft targets), of x's shape or of as many elements.

    Example:
        >>> sigmoid_cross_entropy(np.array([[1000.0], [-1000.0]]), np.array([1, 0]))
        variable(0.0)
    """
    x = _float_variable(as_variable(x))
    return SigmoidCrossEntropy(_targets("sigmoid_cross_entropy", x, t))(x)


# The floor PyTorch's binary_cross_entropy puts under log p and log(1 - p).
_LOG_FLOOR = -100
# The floor PyTorch puts under p (1 - p) in the gradient's denominator.
_GRAD_EPS = 1e-12


# Clamping a at e^-101 keeps log(0) from warning about a division by zero, and stays
# below the floor after log (e^-100 itself is a coarse float32 subnormal whose log can
# land just above -100).
# (Made per dtype once, here: casting the subnormal at each call would raise NumPy 1.x's
# underflow flag.)
with np.errstate(under="ignore"):
    _FLOOR_ARGUMENT = {
        np.dtype(t): t(math.exp(_LOG_FLOOR - 1)) for t in (np.float32, np.float64)
    }


def _floored_log(a):
    xp = get_array_module(a)
    clamp = _FLOOR_ARGUMENT.get(a.dtype, math.exp(_LOG_FLOOR - 1))
    return xp.maximum(xp.log(xp.maximum(a, clamp)), _LOG_FLOOR)


class BinaryCrossEntropy(Function):
    saves = ("inputs",)

    def __init__(self, t):
        self.t = t

    def forward(self, p):
        xp = get_array_module(p)
        t = self.t
        q = p if p.dtype.itemsize >= 4 else p.astype(np.float32)  # float16: e^-100 is 0
        loss = t * _floored_log(q) + (1 - t) * _floored_log(1 - q)
        return _mean_of(-loss.sum(), loss.size, p.dtype, xp)

    def backward(self, gy):
        (p,) = self.inputs
        return apply(BinaryCrossEntropyGrad(self.t), p, gy)


class BinaryCrossEntropyGrad(Function):
    """``(p - t) / max(p (1 - p), 1e-12) gy / n``, the gradient of the binary cross
    entropy: p = 0 or 1 give a large but finite gradient (as PyTorch's), never 0 or inf."""

    saves = ("inputs",)

    def __init__(self, t):
        self.t = t

    def forward(self, p, gy):
        xp = get_array_module(p)
        gp = p - self.t
        gp /= xp.maximum(p * (1 - p), _GRAD_EPS)
        gp *= gy / max(p.size, 1)
        return as_dtype(gp, gy.dtype)

    def backward(self, g):
        p, gy = self.inputs
        n = max(p.size, 1)
        q = p * (1 - p)
        d = clip(q, _GRAD_EPS, None)  # d/dp of the floor is 0 below it: clip's gradient
        gp = None
        if p.requires_grad:  # d/dp (p - t) / d = (1 - (p - t) d' / d) / d, d' = 1 - 2p
            inside = (q.data >= _GRAD_EPS).astype(p.dtype)
            gp = (1 - (p - self.t) * (1 - 2 * p) * inside / d) / d * g * (gy / n)
        ggy = sum(g * (p - self.t) / d) / n if gy.requires_grad else None
        return gp, ggy


def binary_cross_entropy(p, t) -> Variable:
    """Binary cross entropy of probabilities p against targets t, averaged over elements.

    ``log p`` and ``log(1 - p)`` are floored at -100 (as in PyTorch) instead of clipping
    p (DeZero clipped p at 0.999, which biased the loss and zeroed the gradient): p = 0
    or 1 gives a finite loss and a finite, nonzero gradient. For logits use
    :func:`sigmoid_cross_entropy`, which is exact. Integer p are taken as float64. The
    range of p is checked on the CPU (on the GPU under
    :func:`zerograd.debug.detect_anomaly` only: it reads from the device).

    Raises:
        ValueError: when p has values outside [0, 1] or t's size differs from p's.

    Example:
        >>> binary_cross_entropy(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
        variable(50.0)
    """
    p = _float_variable(as_variable(p))
    t = _targets("binary_cross_entropy", p, t)
    xp = get_array_module(p.data)
    if p.size and checks_values(xp):
        lo, hi = float(p.data.min()), float(p.data.max())
        if not (lo >= 0 and hi <= 1):  # NaN fails too
            raise ValueError(
                f"binary_cross_entropy: p must hold probabilities in [0, 1], got values "
                f"in [{lo}, {hi}]; for logits use sigmoid_cross_entropy"
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
