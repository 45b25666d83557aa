"""Gradient functions: each gradient written once, cheap when nobody differentiates it.

A Function whose backward needs more than a single array operation gives its gradient a
Function of its own (``TanhGrad``, ``LinearGradW``, ``GELUGrad``, ...), as Chainer does
with its ``LinearGradData``: the gradient Function's ``forward`` is the array formula, in
as few passes over memory as it takes, and its ``backward`` is written with zerograd
functions, so the gradient can be differentiated again.

A backward calls it through :func:`apply`. While the backward pass is being recorded
(``y.backward(create_graph=True)``) that is an ordinary Function call, recorded in the
graph; otherwise (the usual training step) it runs ``forward`` straight on the arrays,
with no Variable made and nothing recorded. Both paths run the one formula, so the fast
path and the double-backward path cannot drift apart.

Example:
    >>> import numpy as np
    >>> from zerograd import Function, Variable
    >>> class Cube(Function):
    ...     def forward(self, x):
    ...         return x * x * x
    ...     def backward(self, gy):
    ...         (x,) = self.inputs
    ...         return apply(CubeGrad(), x, gy)  # d/dx x^3 = 3 x^2
    >>> class CubeGrad(Function):
    ...     def forward(self, x, gy):
    ...         return 3 * x * x * gy
    ...     def backward(self, ggx):
    ...         x, gy = self.inputs
    ...         return 6 * x * gy * ggx, 3 * x * x * ggx
    >>> x = Variable(np.array(2.0))
    >>> y = Cube()(x)
    >>> y.backward(create_graph=True)
    >>> x.grad                      # 3 x^2, recorded, so it can be differentiated again
    variable(12.0)
    >>> gx = x.grad
    >>> x.cleargrad()
    >>> gx.backward()
    >>> x.grad                      # 6 x
    variable(12.0)
"""

from __future__ import annotations

import numpy as np

from zerograd.config import detect_anomaly_var, enable_backprop_var
from zerograd.core import Function, Variable

__all__ = ["apply"]

_ndarray = np.ndarray


def apply(func: Function, *inputs):
    """Call the gradient Function ``func`` on ``inputs`` from inside a backward.

    Returns a Variable (the call is recorded) while a graph of the backward pass is
    built, else the array ``func.forward`` computes from the inputs' arrays. Inputs that
    are not Variables (arrays, numbers) are passed to ``forward`` as they are. Under
    :func:`zerograd.debug.detect_anomaly` it is always a Function call, so that a NaN
    or Inf is traced to the gradient Function that produced it.
    """
    if enable_backprop_var.get() or detect_anomaly_var.get():
        return func(*inputs)
    if len(inputs) == 2:  # the common case (a saved input or output, and gy)
        a, b = inputs
        y = func.forward(
            a.data if isinstance(a, Variable) else a, b.data if isinstance(b, Variable) else b
        )
    else:
        y = func.forward(*[x.data if isinstance(x, Variable) else x for x in inputs])
    if type(y) is tuple:
        return tuple(_array(a) for a in y)
    return _array(y)


def _array(y):
    # A ufunc on 0-d arrays returns a NumPy scalar; the engine stores arrays.
    if type(y) is _ndarray or y is None:
        return y
    if isinstance(y, np.generic):
        return np.asarray(y)
    return y  # a CuPy array
