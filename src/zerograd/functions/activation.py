"""Activation functions: sigmoid, relu, leaky_relu, softmax, log_softmax, softplus, gelu.

Each is one Function with a forward that cannot overflow (sigmoid for any |x|, softmax
and log_softmax after subtracting the maximum) and a gradient Function (see
:mod:`zerograd.functions.gradient`): one array expression when the backward is not
recorded, differentiable again when it is, so derivatives of any order work. The book's
composed teaching versions, ``sigmoid_simple`` and ``softmax_simple``, stay here as the
fused ones' test oracles.

Forwards that mix x with Python numbers end in ``as_dtype``: NumPy 1.x turns a 0-d
float32 array combined with a Python float into float64 (a no-op everywhere else).
Integer and boolean inputs give float64, as NumPy's ufuncs do.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.array([-1.0, 0.0, 2.0]))
    >>> y = relu(x)
    >>> y.backward()
    >>> y, x.grad
    (variable([0. 0. 2.]), variable([0. 0. 1.]))
"""

from __future__ import annotations

import math

import numpy as np

from zerograd.core import Function, Variable, as_dtype, as_variable, names_errors
from zerograd.cuda import get_array_module
from zerograd.functions._arrays import (
    as_float,
    blockwise,
    check_axes,
    clamp,
    in_place,
    log1p_of_fraction,
    scale_by,
)
from zerograd.functions.array import sum
from zerograd.functions.gradient import apply
from zerograd.functions.math import (
    _SQRT_HALF,
    _by_element,
    _each,
    _erfc_nonnegative,
    exp,
    tanh,
)

__all__ = [
    "Sigmoid",
    "sigmoid",
    "sigmoid_simple",
    "ReLU",
    "relu",
    "LeakyReLU",
    "leaky_relu",
    "Softmax",
    "softmax",
    "softmax_simple",
    "LogSoftmax",
    "log_softmax",
    "Softplus",
    "softplus",
    "GELU",
    "GELUGrad",
    "gelu",
]


# ---- sigmoid ---------------------------------------------------------------------------------
# Where exp(x) is so large that e / (1 + e) rounds to exactly 1, by dtype size in bytes:
# exp(20) > 2^24 (float32), exp(40) > 2^53 (float64), exp(50) > 2^64 (long double).
# Capping x there keeps exp finite.
_SIGMOID_CAP = {4: 20.0, 8: 40.0}


def _sigmoid_array(x):
    """The logistic function of a float array, ``e / (1 + e)`` with ``e = exp(x)``.

    Accurate to a few roundings everywhere, tails included: outputs near 0 keep their
    relative precision (``0.5 tanh(x / 2) + 0.5``, the book's form, rounds them to 0
    below x = -17 in float32), and x is capped where the ratio is 1 anyway, so exp never
    overflows. Three passes over memory: as fast as the tanh form in float32, twice as
    fast in float64. float16 is computed in float32 (1 + e would lose the 1 from e = 2^11
    on), as PyTorch's CPU kernels do.
    """
    if x.dtype.itemsize < 4:
        return _sigmoid_array(x.astype(np.float32)).astype(x.dtype)
    xp = get_array_module(x)
    e = xp.exp(clamp(x, upper=_SIGMOID_CAP.get(x.dtype.itemsize, 50.0)))
    return as_dtype(in_place(xp.divide, e, e + 1), x.dtype)


class Sigmoid(Function):
    saves = ("outputs",)
    elementwise = True

    def forward(self, x):
        return _sigmoid_array(as_float(x))

    def backward(self, gy):
        y = self.outputs[0]()
        return apply(SigmoidGrad(), y, gy)  # d/dx sigmoid(x) = y (1 - y)


class SigmoidGrad(Function):
    """``gy y (1 - y)`` with y = sigmoid(x), the gradient of sigmoid."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, y, gy):
        return as_dtype(scale_by(scale_by(1 - y, y), gy), gy.dtype)

    def backward(self, g):
        y, gy = self.inputs
        gy_ = g * gy * (1 - 2 * y) if y.requires_grad else None  # d/dy = gy (1 - 2y)
        ggy = apply(SigmoidGrad(), y, g) if gy.requires_grad else None  # y (1 - y)
        return gy_, ggy


def sigmoid(x) -> Variable:
    """The logistic function ``1 / (1 + exp(-x))``, elementwise, stable for any x.

    Example:
        >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
        variable([0.  0.5 1. ])
    """
    return Sigmoid()(x)


@names_errors
def sigmoid_simple(x) -> Variable:
    """The book's sigmoid composed from ``exp``, ``+`` and ``/`` (no backward of its own).

    A teaching version and the test oracle of :func:`sigmoid`: ``exp(-x)`` overflows
    (to a harmless inf, with a NumPy warning) for x below about -710 (-88 in float32).

    Example:
        >>> sigmoid_simple(np.array([0.0]))
        variable([0.5])
    """
    x = as_variable(x)
    if x.dtype.kind != "f":  # -x would wrap around in small integer types
        x = as_variable(as_float(x.data))
    return 1 / (1 + exp(-x))


# ---- rectifiers -------------------------------------------------------------------------------
class ReLU(Function):
    # The output, not the input: y > 0 exactly where x > 0, and y is the array the next
    # function (a linear layer) keeps anyway, where x would be kept for relu alone.
    saves = ("outputs",)
    elementwise = True

    def forward(self, x):
        y = clamp(x, lower=0)
        # x's dtype for every dtype, as PyTorch: max(x, 0) of booleans is an integer, and
        # NumPy 1.x makes max(x, 0) of a 0-d int8 x an int64 (of float32, float64)
        return y if y.dtype == x.dtype else y.astype(x.dtype)

    def backward(self, gy):
        y = self.outputs[0]()
        return apply(ReLUGrad(), y, gy)  # d/dx max(x, 0) = 1 if x > 0 else 0


class ReLUGrad(Function):
    """``gy`` where x > 0, else 0: the gradient of relu (x may be relu's input or output:
    both are positive at the same places)."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, x, gy):
        # A float mask, not a boolean one: NumPy multiplies two floats several times
        # faster than a float by a boolean (which it converts element by element).
        return gy * (x > 0).astype(gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        # Piecewise linear: nothing to differentiate in x; linear in gy.
        return None, (apply(ReLUGrad(), x, g) if gy.requires_grad else None)


def relu(x) -> Variable:
    """Rectified linear unit ``max(x, 0)``, elementwise (gradient 0 at x = 0).

    Example:
        >>> relu(np.array([-1.0, 2.0]))
        variable([0. 2.])
    """
    return ReLU()(x)


class LeakyReLU(Function):
    saves = ("inputs",)  # (not the output: a negative slope makes both signs positive)
    elementwise = True

    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        x = as_float(x)
        xp = get_array_module(x)
        # x where x > 0, else slope x, without a branch per element (np.where's is slow on
        # unpredictable signs): max(x, slope x) for slope <= 1, min for a larger slope.
        pick = xp.maximum if self.slope <= 1 else xp.minimum
        return as_dtype(pick(x, x * self.slope), x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(LeakyReLUGrad(self.slope), x, gy)  # d/dx = 1 if x > 0 else slope


class LeakyReLUGrad(Function):
    """``gy`` where x > 0, else ``slope * gy``: the gradient of leaky_relu."""

    saves = ("inputs",)
    elementwise = True

    def __init__(self, slope):
        self.slope = slope

    def forward(self, x, gy):
        # factor = 1 where x > 0, slope elsewhere, both exactly and without a branch per
        # element: max(m, slope) of the mask m for 0 <= slope <= 1, else (1 - m) slope + m.
        positive = (x > 0).astype(gy.dtype)
        if 0 <= self.slope <= 1:
            factor = clamp(positive, lower=self.slope)
        else:
            factor = (1 - positive) * self.slope + positive
        return as_dtype(scale_by(factor, gy), gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        # Piecewise linear: nothing to differentiate in x; linear in gy.
        return None, (apply(LeakyReLUGrad(self.slope), x, g) if gy.requires_grad else None)


def leaky_relu(x, slope: float = 0.2) -> Variable:
    """``x`` where x > 0, ``slope * x`` elsewhere (DeZero's default slope is 0.2).

    Example:
        >>> leaky_relu(np.array([-1.0, 2.0]))
        variable([-0.2  2. ])
    """
    return LeakyReLU(float(slope))(x)


# ---- softmax family -----------------------------------------------------------------------------
def _axis(op: str, axis, ndim: int):
    return check_axes(op, axis, ndim)


# NumPy's reduction over the last axis has a cost per row that dominates short rows
# (3x a pass over the data, measured on rows of 100 float32 values); einsum's loop does
# not. Long rows keep NumPy's pairwise summation.
_EINSUM_MAX_ROW = 1024


def _by_einsum(a, axis) -> bool:
    return (type(a) is np.ndarray and axis == (a.ndim - 1,) and a.shape[-1] <= _EINSUM_MAX_ROW
            and a.dtype.kind == "f" and a.dtype.itemsize >= 4)


def _sum_kept(a, axis):
    """``a.sum(axis=axis, keepdims=True)``, through einsum for short last axes."""
    if _by_einsum(a, axis):
        return np.einsum("...i->...", a)[..., None]
    return a.sum(axis=axis, keepdims=True)


def _shifted(axis: tuple, extra: int) -> tuple:
    """``axis`` of an array, for a stack of gradients with ``extra`` leading axes more."""
    return tuple([a + extra for a in axis]) if extra else axis


def _dot_kept(a, b, axis):
    """``(a * b).sum(axis=axis, keepdims=True)`` for a and b of one shape."""
    if _by_einsum(a, axis) and a.shape == b.shape and a.dtype == b.dtype:
        return np.einsum("...i,...i->...", a, b)[..., None]
    return (a * b).sum(axis=axis, keepdims=True)


class Softmax(Function):
    saves = ("outputs",)
    elementwise = True  # (its backward moves the axis behind a stack's leading axes)

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        x = as_float(x)
        if x.size == 0:  # nothing to normalise (and no maximum to shift by)
            return x.copy()
        e = x - x.max(axis=self.axis, keepdims=True)  # shifted: no overflow
        e = xp.exp(e, out=e) if e.ndim else xp.exp(e)  # (a 0-d x gives a NumPy scalar)
        e /= _sum_kept(e, self.axis)
        return e

    def backward(self, gy):
        y = self.outputs[0]()
        # d/dx softmax: gx_i = y_i (gy_i - sum_j y_j gy_j)
        return apply(SoftmaxGrad(_shifted(self.axis, gy.ndim - y.ndim)), y, gy)


class SoftmaxGrad(Function):
    """``y gy - y sum(y gy)`` along the axis, with y = softmax(x): softmax's gradient.
    (gy may have more leading axes than y: a stack of gradients; the axis counts them.)"""

    saves = ("inputs",)
    elementwise = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, y, gy):
        gx = gy - _dot_kept(y, gy, self.axis)
        gx *= y
        return gx

    def backward(self, g):
        y, gy = self.inputs
        axis = self.axis
        g_axis = _shifted(axis, g.ndim - gy.ndim)  # (g: a stack of gradients, maybe)
        gy_ = None
        if y.requires_grad:  # d/dy = g gy - g sum(y gy) - gy sum(g y)
            gy_ = g * (gy - sum(y * gy, axis, True)) - gy * sum(g * y, g_axis, True)
        ggy = apply(SoftmaxGrad(g_axis), y, g) if gy.requires_grad else None
        return gy_, ggy


def softmax(x, axis=1) -> Variable:
    """Softmax along ``axis`` (an int or a tuple), computed without overflow.

    Example:
        >>> y = softmax(np.array([[0.0, 0.0], [1000.0, 0.0]]))
        >>> y
        variable([[0.5 0.5]
                  [1.  0. ]])
    """
    x = as_variable(x)
    return Softmax(_axis("softmax", axis, x.ndim))(x)


@names_errors
def softmax_simple(x, axis=1) -> Variable:
    """The book's softmax composed from ``exp``, ``sum`` and ``/``; the oracle of
    :func:`softmax`.

    Unlike DeZero's, it subtracts the maximum first (softmax is unchanged by a constant
    shift), so large inputs give no NaN.

    Example:
        >>> softmax_simple(np.array([[1000.0, 1000.0]]))
        variable([[0.5 0.5]])
    """
    x = as_variable(x)
    if x.dtype.kind != "f":  # x - max would wrap around in small integer types
        x = as_variable(as_float(x.data))
    axis = _axis("softmax_simple", axis, x.ndim)
    # the shift is a constant (x's dtype, also for an empty x: NumPy's dtypes follow)
    shift = x.data.max(axis=axis, keepdims=True) if x.size else x.dtype.type(0)
    y = exp(x - shift)
    return y / y.sum(axis=axis, keepdims=True)


class LogSoftmax(Function):
    saves = ("outputs",)
    elementwise = True  # (its backward moves the axis behind a stack's leading axes)

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        x = as_float(x)
        if x.size == 0:
            return x.copy()
        # (x - max) - log(sum(exp(x - max))): subtracting the max first keeps the
        # largest entries exact (x - logsumexp(x) would round at the scale of x).
        shifted = x - x.max(axis=self.axis, keepdims=True)
        shifted -= xp.log(_sum_kept(xp.exp(shifted), self.axis))
        return shifted

    def backward(self, gy):
        y = self.outputs[0]()
        # d/dx log_softmax: gx_i = gy_i - softmax_i sum_j gy_j, with softmax = exp(y)
        return apply(LogSoftmaxGrad(_shifted(self.axis, gy.ndim - y.ndim)), y, gy)


class LogSoftmaxGrad(Function):
    """``gy - exp(y) sum(gy)`` along the axis, with y = log_softmax(x): its gradient.
    (gy may have more leading axes than y: a stack of gradients; the axis counts them.)"""

    saves = ("inputs",)
    elementwise = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, y, gy):
        gx = get_array_module(y).exp(y)
        total = _sum_kept(gy, self.axis)
        if total.ndim == gx.ndim:
            gx *= total
        else:  # a stack of gradients: the product has its leading axes
            gx = gx * total
        return gy - gx

    def backward(self, g):
        y, gy = self.inputs
        g_axis = _shifted(self.axis, g.ndim - gy.ndim)  # (g: a stack of gradients, maybe)
        p = exp(y)
        gy_ = -g * p * sum(gy, self.axis, True) if y.requires_grad else None  # d/dy
        ggy = g - sum(g * p, g_axis, True) if gy.requires_grad else None  # d/dgy
        return gy_, ggy


def log_softmax(x, axis=1) -> Variable:
    """``log(softmax(x))`` along ``axis``, computed as ``x - logsumexp(x)`` (after
    subtracting the maximum): finite even where softmax underflows to 0.

    Example:
        >>> log_softmax(np.array([[0.0, -1000.0]]))
        variable([[    0. -1000.]])
    """
    x = as_variable(x)
    return LogSoftmax(_axis("log_softmax", axis, x.ndim))(x)


# ---- softplus ---------------------------------------------------------------------------------
class Softplus(Function):
    saves = ("inputs",)
    elementwise = True

    def forward(self, x):
        x = as_float(x)
        return as_dtype(_softplus(x), x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(SoftplusGrad(), x, gy)  # d/dx log(1 + e^x) = sigmoid(x)


def _softplus(x):
    # max(x, 0) + log(1 + exp(-|x|)): no overflow, and (in NumPy) several times as fast
    # as logaddexp(0, x)
    xp = get_array_module(x)
    y = log1p_of_fraction(xp.exp(-xp.abs(x)))
    return in_place(xp.add, y, clamp(x, lower=0))


class SoftplusGrad(Function):
    """``gy sigmoid(x)``, the gradient of softplus."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, x, gy):
        return scale_by(_sigmoid_array(as_float(x)), gy)

    def backward(self, g):
        x, gy = self.inputs
        s = apply(Sigmoid(), x) if x.requires_grad else None
        gx = apply(SigmoidGrad(), s, gy * g) if x.requires_grad else None  # gy s (1 - s)
        ggy = apply(SoftplusGrad(), x, g) if gy.requires_grad else None  # sigmoid(x)
        return gx, ggy


def softplus(x) -> Variable:
    """``log(1 + exp(x))``, elementwise, without overflow.

    Example:
        >>> softplus(np.array([0.0, 1000.0]))
        variable([6.93147181e-01 1.00000000e+03])
    """
    return Softplus()(x)


# ---- GELU ---------------------------------------------------------------------------------
_TANH_C = math.sqrt(2 / math.pi)
_TANH_A = 0.044715
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _normal_cdf(x):
    """Phi(x) = P(N(0, 1) <= x) = erfc(-x / sqrt(2)) / 2, with full relative precision in
    the lower tail (where GELU's output is tiny)."""
    if _by_element(x):
        return _each(lambda v: 0.5 * math.erfc(-v * _SQRT_HALF), x)
    xp = get_array_module(x)
    h = _erfc_nonnegative(xp.abs(x) * _SQRT_HALF)
    h *= 0.5  # Phi(-|x|)
    # h where x < 0, else 1 - h: h + [x >= 0] (1 - 2h) is exactly h for x < 0, and
    # needs no branch per element.
    upper = 1 - 2 * h
    upper *= (x >= 0).astype(h.dtype)
    upper += h
    return upper


def _tanh_of_u(x):
    """tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3): the approximate GELU's inner part."""
    return get_array_module(x).tanh(x * (_TANH_C + (_TANH_C * _TANH_A) * (x * x)))


def _gelu_tanh_gradient(x, gy, t):
    k = _TANH_C + (3 * _TANH_A * _TANH_C) * (x * x)  # du/dx
    # (1 + t) / 2 + x (1 - t^2) du/dx / 2 = (1 + t) (1 + x (1 - t) du/dx) / 2
    return scale_by((0.5 + 0.5 * t) * (x * (1 - t) * k + 1), gy)


def _gelu_gradient(x, gy, cdf):
    phi = get_array_module(x).exp((x * x) * -0.5)  # times 1/sqrt(2 pi): the normal density
    return scale_by((x * _INV_SQRT_2PI) * phi + cdf, gy)  # gy (Phi(x) + x phi(x))


class GELU(Function):
    saves = ("inputs", "aux")  # x, and Phi(x) (or tanh(u)) for the gradient
    elementwise = True

    def __init__(self, approximate):
        self.approximate = approximate

    def forward(self, x):
        x = as_float(x)
        if x.dtype.itemsize < 4:  # float16: computed in float32, rounded once
            return self.forward(x.astype(np.float32)).astype(x.dtype)
        if self.approximate == "tanh":
            self.aux = blockwise(_tanh_of_u, x)
            return as_dtype((0.5 * x) * (self.aux + 1), x.dtype)
        self.aux = blockwise(_normal_cdf, x)
        return as_dtype(x * self.aux, x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(GELUGrad(self.approximate, self.aux), x, gy)  # gy * gelu'(x)


class GELUGrad(Function):
    """``gy gelu'(x)``, the gradient of GELU, differentiable again.

    ``aux`` is what GELU's forward computed at the same x: Phi(x) for the exact form,
    tanh(u) for the approximation.
    """

    saves = ("inputs", "aux")
    elementwise = True

    def __init__(self, approximate, aux):
        self.approximate = approximate
        self.aux = aux

    def forward(self, x, gy):
        x = as_float(x)
        if x.dtype.itemsize < 4:
            x = x.astype(np.float32)
        gradient = _gelu_tanh_gradient if self.approximate == "tanh" else _gelu_gradient
        return as_dtype(blockwise(gradient, x, gy, self.aux), gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        gx = None
        if x.requires_grad:
            if self.approximate == "tanh":
                t = tanh(_TANH_C * (x + _TANH_A * x * x * x))
                s = 1 - t * t
                k = _TANH_C * (1 + 3 * _TANH_A * x * x)
                # d2/dx2 of x (1 + tanh u) / 2 = s (k - x t k^2 + 3 a c x^2), s = 1 - tanh^2 u
                d2 = s * (k - x * t * k * k + (3 * _TANH_A * _TANH_C) * x * x)
            else:
                d2 = exp(-0.5 * x * x) * _INV_SQRT_2PI * (2 - x * x)  # phi(x) (2 - x^2)
            gx = g * gy * d2
        ggy = apply(GELUGrad(self.approximate, self.aux), x, g) if gy.requires_grad else None
        return gx, ggy


def gelu(x, approximate: str = "none") -> Variable:
    """Gaussian error linear unit ``x * Phi(x)``, as ``torch.nn.functional.gelu``.

    Args:
        x: the input.
        approximate: ``'none'`` for the exact form with the normal CDF (through an erf
            written for zerograd, accurate to about 1e-15 relative in float64), or
            ``'tanh'`` for ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Raises:
        ValueError: for another value of ``approximate``.

    Example:
        >>> gelu(np.array([-1.0, 0.0, 1.0]))
        variable([-0.15865525  0.          0.84134475])
        >>> gelu(np.array([1.0]), approximate="tanh")
        variable([0.84119199])
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(
            f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}"
        )
    return GELU(approximate)(x)
