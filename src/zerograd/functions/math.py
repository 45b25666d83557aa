"""Elementwise math: square, exp, log, sin, cos, tanh, sqrt (and the arithmetic of core).

Every backward is written with these same functions, so derivatives of any order work.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.array(1.0))
    >>> y = tanh(x)
    >>> y.backward(create_graph=True)
    >>> gx = x.grad
    >>> x.cleargrad()
    >>> gx.backward()
    >>> round(float(x.grad.data), 6)   # d2/dx2 tanh(1) = -2 tanh(1) (1 - tanh(1)^2)
    -0.6397
"""

from __future__ import annotations

import math

import numpy as np

from zerograd.core import (  # noqa: F401  (re-exported: F.add, F.mul, ...)
    Add,
    AddConstant,
    Div,
    DivConstant,
    DivFromConstant,
    Function,
    Mul,
    MulConstant,
    Neg,
    Pow,
    PowVariable,
    Sub,
    SubFromConstant,
    Variable,
    add,
    as_dtype,
    div,
    mul,
    neg,
    pow,
    rdiv,
    rsub,
    sub,
)
from zerograd.cuda import get_array_module
from zerograd.functions._arrays import as_float, blockwise, scale_by
from zerograd.functions.gradient import apply

__all__ = [
    "Add",
    "AddConstant",
    "SubFromConstant",
    "MulConstant",
    "DivConstant",
    "DivFromConstant",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Pow",
    "PowVariable",
    "add",
    "sub",
    "rsub",
    "mul",
    "div",
    "rdiv",
    "neg",
    "pow",
    "Square",
    "Exp",
    "Log",
    "Sin",
    "Cos",
    "Tanh",
    "Sqrt",
    "square",
    "exp",
    "log",
    "sin",
    "cos",
    "tanh",
    "sqrt",
    "Erf",
    "erf",
]


class Square(Function):
    saves = ("inputs",)
    elementwise = True

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return apply(SquareGrad(), x, gy)  # d/dx x^2 = 2x


class SquareGrad(Function):
    """``2 x gy``, the gradient of square (bilinear in x and gy)."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, x, gy):
        return (x + x) * gy  # x + x is 2x exactly, and keeps x's dtype

    def backward(self, g):
        x, gy = self.inputs
        gx = apply(SquareGrad(), gy, g) if x.requires_grad else None  # d/dx = 2 gy
        ggy = apply(SquareGrad(), x, g) if gy.requires_grad else None  # d/dgy = 2x
        return gx, ggy


class Exp(Function):
    saves = ("outputs",)
    elementwise = True

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return apply(Mul(), gy, y)  # d/dx e^x = e^x


class Log(Function):
    saves = ("inputs",)
    elementwise = True

    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(Div(), gy, x)  # d/dx log x = 1/x


class Sin(Function):
    saves = ("inputs",)
    elementwise = True

    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(SinGrad(), x, gy)  # d/dx sin x = cos x


class SinGrad(Function):
    """``gy cos(x)``, the gradient of sin."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, x, gy):
        return scale_by(get_array_module(x).cos(x), gy)

    def backward(self, g):
        x, gy = self.inputs
        gx = apply(CosGrad(), x, gy * g) if x.requires_grad else None  # -gy sin(x) g
        ggy = apply(SinGrad(), x, g) if gy.requires_grad else None  # cos(x) g
        return gx, ggy


class Cos(Function):
    saves = ("inputs",)
    elementwise = True

    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(CosGrad(), x, gy)  # d/dx cos x = -sin x


class CosGrad(Function):
    """``-gy sin(x)``, the gradient of cos."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, x, gy):
        gx = scale_by(get_array_module(x).sin(x), gy)
        gx *= -1
        return as_dtype(gx, gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        gx = -apply(SinGrad(), x, gy * g) if x.requires_grad else None  # -gy cos(x) g
        ggy = apply(CosGrad(), x, g) if gy.requires_grad else None  # -sin(x) g
        return gx, ggy


class Tanh(Function):
    saves = ("outputs",)
    elementwise = True

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return apply(TanhGrad(), y, gy)  # d/dx tanh x = 1 - tanh(x)^2


class TanhGrad(Function):
    """``gy (1 - y^2)`` with y = tanh(x), the gradient of tanh."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, y, gy):
        return as_dtype(gy * (1 - y * y), gy.dtype)

    def backward(self, g):
        y, gy = self.inputs
        gy_ = -2 * y * gy * g if y.requires_grad else None  # d/dy = -2 y gy
        ggy = apply(TanhGrad(), y, g) if gy.requires_grad else None  # d/dgy = 1 - y^2
        return gy_, ggy


class Sqrt(Function):
    saves = ("outputs",)
    elementwise = True

    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        y = self.outputs[0]()
        # d/dx sqrt(x) = 1 / (2 sqrt(x)): two one-operation gradients, 2y then gy / 2y
        return apply(Div(), gy, apply(Add(), y, y))


def square(x) -> Variable:
    """x ** 2, elementwise.

    Example:
        >>> square(np.array([3.0]))
        variable([9.])
    """
    return Square()(x)


def exp(x) -> Variable:
    """e ** x, elementwise.

    Example:
        >>> exp(np.array([0.0]))
        variable([1.])
    """
    return Exp()(x)


def log(x) -> Variable:
    """Natural logarithm, elementwise.

    Example:
        >>> log(np.array([1.0]))
        variable([0.])
    """
    return Log()(x)


def sin(x) -> Variable:
    """Sine, elementwise.

    Example:
        >>> sin(np.array([0.0]))
        variable([0.])
    """
    return Sin()(x)


def cos(x) -> Variable:
    """Cosine, elementwise.

    Example:
        >>> cos(np.array([0.0]))
        variable([1.])
    """
    return Cos()(x)


def tanh(x) -> Variable:
    """Hyperbolic tangent, elementwise.

    Example:
        >>> tanh(np.array([0.0]))
        variable([0.])
    """
    return Tanh()(x)


def sqrt(x) -> Variable:
    """Square root, elementwise.

    Example:
        >>> sqrt(np.array([4.0]))
        variable([2.])
    """
    return Sqrt()(x)


# ---- the error function (NumPy has none) ------------------------------------------------------
# erfc(z) for z >= 0 is written t * exp(-z^2 + h(u)) with t = 2 / (2 + z) and
# u = 2t - 1 in (-1, 1]; h is smooth on [-1, 1] (also as z -> inf) and is summed as a
# Chebyshev series. The coefficients were computed for zerograd from 50-digit values of
# erfc (mpmath) at 60 Chebyshev nodes; the 28 kept give h to within 3e-18. Measured
# against mpmath, erfc's relative error in float64 stays below 6e-16 * max(1, 2 z^2)
# on [0, inf): 2 z^2 is erfc's own sensitivity to the rounding of z in its far tail.
# float32 uses the first 12 coefficients (h within 3e-8; the rounding of z^2 in float32
# dominates erfc's error in the tail anyway: measured 7.5e-6 relative at z = 9, as with
# 16 coefficients).
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
# |x| < 0.5 where 1 - erfc(x) would lose relative precision; 13 terms reach 1e-17
# (float64), 8 terms 1e-9 (float32).
_ERF_SERIES = tuple(
    2 / math.sqrt(math.pi) * (-1) ** k / (math.factorial(k) * (2 * k + 1)) for k in range(13)
)
_SQRT_HALF = math.sqrt(0.5)
# The same series expanded in powers of u, for Horner's rule: two passes over memory a
# term where Clenshaw's recurrence takes three. The expansion is well conditioned on
# |u| <= 1 (its coefficients sum to 1.46 in absolute value), so it rounds no worse.
_ERFC_POWERS = {
    8: tuple(float(a) for a in np.polynomial.chebyshev.cheb2poly(_ERFC_CHEBYSHEV)),
    4: tuple(float(a) for a in np.polynomial.chebyshev.cheb2poly(_ERFC_CHEBYSHEV[:12])),
}
# NumPy arrays up to this size are computed element by element with Python's math.erf and
# math.erfc (the C library's, within an ulp in double): a few microseconds on a few
# elements, where the vectorised formulas below make some 50 NumPy calls.
_ELEMENTWISE_MAX_SIZE = 64


def _each(f, x):
    """``f`` (a function of a Python float) of each element of a NumPy float array,
    computed in double and rounded once to x's dtype."""
    values = [f(v) for v in x.ravel().tolist()]
    return np.array(values, dtype=np.float64).reshape(x.shape).astype(x.dtype)


def _by_element(x) -> bool:
    return type(x) is np.ndarray and x.size <= _ELEMENTWISE_MAX_SIZE


def _horner(u, coefs):
    """``sum_k coefs[k] u^k`` (coefs from the lowest power up) by Horner's rule, in place."""
    y = u * coefs[-1]
    y += coefs[-2]
    for c in coefs[-3::-1]:
        y *= u
        y += c
    return y


def _erfc_nonnegative(z):
    """erfc of an array of values >= 0 (NumPy or CuPy), in z's dtype."""
    xp = get_array_module(z)
    t = z + 2
    xp.divide(2, t, out=t)  # t = 2 / (2 + z)
    u = t * 2
    u -= 1
    h = _horner(u, _ERFC_POWERS[8 if z.dtype.itemsize >= 8 else 4])
    h -= z * z
    xp.exp(h, out=h)
    h *= t
    return h


def _erf(x):
    """The error function of a float array (NumPy or CuPy), in x's dtype.

    Accuracy, measured against mpmath: relative error below 1e-15 in float64 over the
    whole real line; float32 results are within about one float32 rounding.
    """
    if _by_element(x):
        return _each(math.erf, x)
    xp = get_array_module(x)
    ax = xp.abs(x)
    # The series for |x| < 0.5, 1 - erfc(|x|) with x's sign elsewhere. Both are computed
    # everywhere (the series on x clipped to [-0.5, 0.5], so it stays finite) and blended
    # as s m + e (1 - m) with m = [|x| < 0.5]: exact for m = 0 or 1, and free of the
    # per-element branch of np.where, which is slow on unpredictable data.
    xs = xp.clip(x, -0.5, 0.5)
    terms = _ERF_SERIES if x.dtype.itemsize >= 8 else _ERF_SERIES[:8]
    series = _horner(xs * xs, terms)
    series *= xs
    tail = _erfc_nonnegative(xp.maximum(ax, 0.5))
    xp.subtract(1, tail, out=tail)
    xp.copysign(tail, x, out=tail)
    small = (ax < 0.5).astype(series.dtype)
    series *= small
    xp.subtract(1, small, out=small)
    tail *= small
    series += tail
    return series


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def _erf_gradient(x, gy):
    gx = scale_by(get_array_module(x).exp(-(x * x)), gy)
    gx *= _TWO_OVER_SQRT_PI
    return gx


class Erf(Function):
    saves = ("inputs",)
    elementwise = True

    def forward(self, x):
        x = as_float(x)  # integers and booleans: float64, as NumPy's ufuncs do
        if x.dtype.itemsize < 4:  # float16: computed in float32, rounded once
            return blockwise(_erf, x.astype(np.float32)).astype(x.dtype)
        return as_dtype(blockwise(_erf, x), x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        return apply(ErfGrad(), x, gy)  # d/dx erf(x) = 2/sqrt(pi) exp(-x^2)


class ErfGrad(Function):
    """``gy 2/sqrt(pi) exp(-x^2)``, the gradient of erf."""

    saves = ("inputs",)
    elementwise = True

    def forward(self, x, gy):
        return as_dtype(blockwise(_erf_gradient, x, gy), gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        gx = -2 * x * apply(ErfGrad(), x, gy * g) if x.requires_grad else None
        ggy = apply(ErfGrad(), x, g) if gy.requires_grad else None
        return gx, ggy


def erf(x) -> Variable:
    """The error function ``2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt``, elementwise.

    NumPy has none; this one is written for zerograd (a Chebyshev series of erfc in the
    tails, the Maclaurin series near 0): relative error below 1e-15 in float64 over the
    whole real line, within about one rounding in float32. Integer inputs give float64.

    Example:
        >>> erf(np.array([0.0, 0.5, 3.0]))
        variable([0.         0.52049988 0.99997791])
    """
    return Erf()(x)
