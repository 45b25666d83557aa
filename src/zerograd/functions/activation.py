"""Activation functions: sigmoid, relu, leaky_relu, softmax, log_softmax, softplus, gelu.

Each is one Function with a forward that cannot overflow (sigmoid for any |x|, softmax
and log_softmax after subtracting the maximum) and a backward written with zerograd
functions, so derivatives of any order work. The book's composed teaching versions,
``sigmoid_simple`` and ``softmax_simple``, stay here as the fused ones' test oracles.

Forwards that mix x with Python numbers end in ``astype(x.dtype, copy=False)``: NumPy
1.x turns a 0-d float32 array combined with a Python float into float64 (a no-op cast
everywhere else).

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

from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.math import exp, tanh
from zerograd.utils.shape import normalize_axis

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
class Sigmoid(Function):
    def forward(self, x):
        xp = get_array_module(x)
        # exp of a non-positive number never overflows; both branches keep full
        # relative precision in their tail (1/(1+e) near 1, e/(1+e) near 0).
        e = xp.exp(-xp.abs(x))
        d = 1 + e
        return xp.where(x >= 0, 1 / d, e / d).astype(x.dtype, copy=False)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y * (1 - y)  # d/dx sigmoid(x) = y (1 - y)


def sigmoid(x) -> Variable:
    """The logistic function ``1 / (1 + exp(-x))``, elementwise, stable for any x.

    Example:
        >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
        variable([0.  0.5 1. ])
    """
    return Sigmoid()(x)


def sigmoid_simple(x) -> Variable:
    """The book's sigmoid composed from ``exp``, ``+`` and ``/`` (no backward of its own).

    A teaching version and the test oracle of :func:`sigmoid`: ``exp(-x)`` overflows
    (to a harmless inf, with a NumPy warning) for x below about -710 (-88 in float32).

    Example:
        >>> sigmoid_simple(np.array([0.0]))
        variable([0.5])
    """
    x = as_variable(x)
    return 1 / (1 + exp(-x))


# ---- rectifiers -------------------------------------------------------------------------------
class ReLU(Function):
    def forward(self, x):
        return get_array_module(x).maximum(x, 0).astype(x.dtype, copy=False)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * (x.data > 0).astype(x.dtype)  # d/dx max(x, 0) = 1 if x > 0 else 0


def relu(x) -> Variable:
    """Rectified linear unit ``max(x, 0)``, elementwise (gradient 0 at x = 0).

    Example:
        >>> relu(np.array([-1.0, 2.0]))
        variable([0. 2.])
    """
    return ReLU()(x)


class LeakyReLU(Function):
    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        xp = get_array_module(x)
        y = xp.where(x > 0, x, x * self.slope)
        return y.astype(x.dtype, copy=False) if x.dtype.kind == "f" else y

    def backward(self, gy):
        (x,) = self.inputs
        xp = get_array_module(x.data)
        one = x.dtype.type(1)
        slope = xp.where(x.data > 0, one, x.dtype.type(self.slope))
        return gy * slope  # d/dx = 1 if x > 0 else slope


def leaky_relu(x, slope: float = 0.2) -> Variable:
    """``x`` where x > 0, ``slope * x`` elsewhere (DeZero's default slope is 0.2).

    Example:
        >>> leaky_relu(np.array([-1.0, 2.0]))
        variable([-0.2  2. ])
    """
    return LeakyReLU(float(slope))(x)


# ---- softmax family -----------------------------------------------------------------------------
def _axis(op: str, axis, ndim: int):
    try:
        return normalize_axis(axis, ndim)
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None


class Softmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))  # shifted: no overflow
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, gy):
        y = self.outputs[0]()
        gx = y * gy
        # d/dx softmax: gx_i = y_i (gy_i - sum_j y_j gy_j)
        return gx - y * gx.sum(axis=self.axis, keepdims=True)


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
    axis = _axis("softmax_simple", axis, x.ndim)
    y = exp(x - x.data.max(axis=axis, keepdims=True))  # the shift is a constant
    return y / y.sum(axis=axis, keepdims=True)


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        # (x - max) - log(sum(exp(x - max))): subtracting the max first keeps the
        # largest entries exact (x - logsumexp(x) would round at the scale of x).
        shifted = x - x.max(axis=self.axis, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))

    def backward(self, gy):
        y = self.outputs[0]()
        # d/dx log_softmax: gx_i = gy_i - softmax_i sum_j gy_j, with softmax = exp(y)
        return gy - exp(y) * gy.sum(axis=self.axis, keepdims=True)


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
    def forward(self, x):
        y = get_array_module(x).logaddexp(0, x)  # log(e^0 + e^x), no overflow
        return y.astype(x.dtype, copy=False)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * sigmoid(x)  # d/dx log(1 + e^x) = sigmoid(x)


def softplus(x) -> Variable:
    """``log(1 + exp(x))``, elementwise, without overflow.

    Example:
        >>> softplus(np.array([0.0, 1000.0]))
        variable([6.93147181e-01 1.00000000e+03])
    """
    return Softplus()(x)


# ---- error function (NumPy has none) ----------------------------------------------------------
# erfc(z) for z >= 0 is written t * exp(-z^2 + h(u)) with t = 2 / (2 + z) and
# u = 2t - 1 in (-1, 1]; h is smooth on [-1, 1] (also as z -> inf) and is summed as a
# Chebyshev series. The coefficients were computed for zerograd from 50-digit values of
# erfc (mpmath) at 60 Chebyshev nodes; the 28 kept give h to within 3e-18. Measured
# against mpmath, erfc's relative error in float64 stays below 6e-16 * max(1, 2 z^2)
# on [0, inf): 2 z^2 is erfc's own sensitivity to the rounding of z in its far tail.
# float32 uses the first 16 coefficients (h within 3e-10).
_ERFC_CHEBYSHEV = (
    -0.6513268598908547,
    0.6419697923564902,
    0.019476473204185836,
    -0.009561514786808632,
    -0.0009465953444820369,
    0.00036683949785276145,
    4.252332480690777e-05,
    -2.0278578112534242e-05,
    -1.6242900046470256e-06,
    1.3036558355805232e-06,
    1.5626441722066142e-08,
    -8.523809591492654e-08,
    6.5290544390988515e-09,
    5.059343495551469e-09,
    -9.91364156493033e-10,
    -2.273651222931836e-10,
    9.646791102015527e-11,
    2.3940380830391146e-12,
    -6.886027526497553e-12,
    8.944879273090725e-13,
    3.130921399342958e-13,
    -1.1270822361367252e-13,
    3.810905255189232e-16,
    7.106097613609237e-15,
    -1.5230282014571043e-15,
    -9.457494571291233e-17,
    1.210237189224279e-16,
    -2.816663087747177e-17,
)
# Maclaurin series erf(x) = 2/sqrt(pi) sum_k (-1)^k x^(2k+1) / (k! (2k+1)), used for
# |x| < 0.5 where 1 - erfc(x) would lose relative precision; 13 terms reach 1e-17.
_ERF_SERIES = tuple(
    2 / math.sqrt(math.pi) * (-1) ** k / (math.factorial(k) * (2 * k + 1)) for k in range(13)
)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _erfc_nonnegative(z):
    """erfc of an array of values >= 0 (NumPy or CuPy), in z's dtype."""
    xp = get_array_module(z)
    coefs = _ERFC_CHEBYSHEV if z.dtype.itemsize >= 8 else _ERFC_CHEBYSHEV[:16]
    t = 2 / (2 + z)
    u = 2 * t - 1
    two_u = 2 * u
    b1 = b2 = 0  # Clenshaw's recurrence for sum_k coefs[k] T_k(u)
    for c in coefs[:0:-1]:
        b1, b2 = two_u * b1 - b2 + c, b1
    h = u * b1 - b2 + coefs[0]
    return t * xp.exp(h - z * z)


def _erf(x):
    """The error function of an array (NumPy or CuPy), in x's dtype.

    Accuracy, measured against mpmath: relative error below 1e-15 in float64 over the
    whole real line; float32 results are within about one float32 rounding.
    """
    xp = get_array_module(x)
    ax = xp.abs(x)
    small = ax < 0.5
    xs = xp.where(small, x, 0)  # the series only sees |x| < 0.5
    s = xs * xs
    p = _ERF_SERIES[-1]
    for c in _ERF_SERIES[-2::-1]:
        p = p * s + c
    tail = 1 - _erfc_nonnegative(xp.maximum(ax, 0.5))
    return xp.where(small, xs * p, xp.copysign(tail, x))


def _normal_cdf(x):
    """Phi(x) = P(N(0, 1) <= x) = erfc(-x / sqrt(2)) / 2, with full relative precision in
    the lower tail (where GELU's output is tiny)."""
    xp = get_array_module(x)
    half_tail = 0.5 * _erfc_nonnegative(xp.abs(x) * _SQRT_HALF)  # Phi(-|x|)
    return xp.where(x < 0, half_tail, 1 - half_tail)


# ---- GELU ---------------------------------------------------------------------------------
_TANH_C = math.sqrt(2 / math.pi)
_TANH_A = 0.044715


class GELU(Function):
    def __init__(self, approximate):
        self.approximate = approximate

    def forward(self, x):
        xp = get_array_module(x)
        if self.approximate == "tanh":
            self.aux = xp.tanh(_TANH_C * (x + _TANH_A * x * x * x))
            return (0.5 * x * (1 + self.aux)).astype(x.dtype, copy=False)
        self.aux = _normal_cdf(x)
        return (x * self.aux).astype(x.dtype, copy=False)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * GELUGrad(self.approximate, self.aux)(x)  # d/dx gelu = GELUGrad(x)


class GELUGrad(Function):
    """The derivative of GELU, as a function of x, so that GELU has a second derivative.

    ``aux`` is what GELU's forward computed at the same x: Phi(x) for the exact form,
    tanh(u) for the approximation.
    """

    def __init__(self, approximate, aux):
        self.approximate = approximate
        self.aux = aux

    def forward(self, x):
        xp = get_array_module(x)
        if self.approximate == "tanh":
            t = self.aux
            k = _TANH_C * (1 + 3 * _TANH_A * x * x)  # du/dx
            dy = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k
        else:
            dy = self.aux + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI  # Phi(x) + x phi(x)
        return dy.astype(x.dtype, copy=False)

    def backward(self, gy):
        (x,) = self.inputs
        if self.approximate == "tanh":
            t = tanh(_TANH_C * (x + _TANH_A * x * x * x))
            s = 1 - t * t
            k = _TANH_C * (1 + 3 * _TANH_A * x * x)
            # d2/dx2 of x (1 + tanh u) / 2 = s (k - x t k^2 + 3 a c x^2), s = 1 - tanh^2 u
            return gy * s * (k - x * t * k * k + (3 * _TANH_A * _TANH_C) * x * x)
        pdf = exp(-0.5 * x * x) * _INV_SQRT_2PI
        return gy * pdf * (2 - x * x)  # d/dx (Phi + x phi) = phi (2 - x^2)


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
