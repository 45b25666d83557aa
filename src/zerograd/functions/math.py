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
    div,
    mul,
    neg,
    pow,
    rdiv,
    rsub,
    sub,
)
from zerograd.cuda import get_array_module

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
]


class Square(Function):
    saves = ("inputs",)
    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return 2 * x * gy  # d/dx x^2 = 2x


class Exp(Function):
    saves = ("outputs",)
    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y  # d/dx e^x = e^x


class Log(Function):
    saves = ("inputs",)
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / x  # d/dx log x = 1/x


class Sin(Function):
    saves = ("inputs",)
    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * cos(x)  # d/dx sin x = cos x


class Cos(Function):
    saves = ("inputs",)
    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * -sin(x)  # d/dx cos x = -sin x


class Tanh(Function):
    saves = ("outputs",)
    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)  # d/dx tanh x = 1 - tanh(x)^2


class Sqrt(Function):
    saves = ("outputs",)
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy / (2 * y)  # d/dx sqrt(x) = 1 / (2 sqrt(x))


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
