"""Numerical gradients (central differences) and DeZero's ``gradient_check``.

For the richer harness that checks an op to second order and against PyTorch, see
:mod:`zerograd.testing`.

Example:
    >>> import numpy as np
    >>> import zerograd.functions as F
    >>> gradient_check(F.sin, np.array([0.1, 0.5]))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _as_host_array(x):
    from zerograd.core import Variable
    from zerograd.cuda import as_numpy

    if isinstance(x, Variable):
        x = x.data
    return as_numpy(x)


_EPS = 1e-4  # the step of the central differences, DeZero's


def numerical_grad(f: Callable, x: Any, *args, **kwargs) -> np.ndarray:
    """Gradient of ``sum(f(x, *args, **kwargs))`` with respect to ``x`` by central
    differences with a step of 1e-4, as DeZero's (``zerograd.testing`` takes a step
    and directions of your choice).

    ``x`` may be an array or a Variable; it is perturbed in place element by element
    and restored. The result is an array of ``x``'s shape and dtype, on ``x``'s
    device. Every extra argument goes to ``f``.

    Example:
        >>> import zerograd.functions as F
        >>> g = numerical_grad(F.square, np.array([3.0]))
        >>> np.allclose(g, [6.0])
        True
    """
    from zerograd.core import Variable
    from zerograd.cuda import get_array_module

    data = x.data if isinstance(x, Variable) else x
    xp = get_array_module(data)
    grad = xp.zeros_like(data)
    flat = data.reshape(-1)  # a view: writing into it perturbs x
    gflat = grad.reshape(-1)

    def value():
        y = f(x, *args, **kwargs)
        return (y.data if isinstance(y, Variable) else xp.asarray(y)).copy()

    for i in range(flat.size):
        old = flat[i].copy()
        flat[i] = old + _EPS
        y1 = value()
        flat[i] = old - _EPS
        y2 = value()
        flat[i] = old
        # Subtract before summing: the two outputs cancel elementwise, not in the sums.
        gflat[i] = (y1 - y2).sum() / (2 * _EPS)
    return grad


def gradient_check(
    f: Callable, x: Any, *args, rtol: float = 1e-4, atol: float = 1e-5, **kwargs
) -> bool:
    """Compare backprop's gradient of ``sum(f(x, *args, **kwargs))`` with the numerical
    one, as DeZero's ``gradient_check``.

    ``x`` (an array or a Variable; it is not changed) is turned into float64 first,
    whatever its dtype, integers included: differences of 1e-4 need float64. Returns
    True when the two gradients agree within ``rtol``/``atol``; otherwise prints where
    they differ and returns False.

    Example:
        >>> import zerograd.functions as F
        >>> gradient_check(F.transpose, np.arange(6).reshape(2, 3))
        True
    """
    from zerograd.core import Variable
    from zerograd.functions import sum as fsum

    data = x.data if isinstance(x, Variable) else x
    x = Variable(data.astype(np.float64))  # a copy, also when already float64
    num = numerical_grad(f, x, *args, **kwargs)
    y = fsum(f(x, *args, **kwargs))
    y.backward()
    name = getattr(f, "__name__", repr(f))
    if x.grad is None:
        print(f"gradient_check: {name} gave no gradient for x")
        return False
    bp = _as_host_array(x.grad)
    num = _as_host_array(num)
    ok = bp.shape == num.shape and np.allclose(bp, num, rtol=rtol, atol=atol)
    if not ok:
        print(
            f"gradient_check: {name} failed for x of shape {data.shape}\n"
            f"  backprop:  {bp.ravel()[:10]}\n  numerical: {num.ravel()[:10]}"
        )
    return ok


def array_equal(a: Any, b: Any) -> bool:
    """True when two arrays or Variables (CPU or GPU) are equal elementwise."""
    return bool(np.array_equal(_as_host_array(a), _as_host_array(b)))


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when two arrays or Variables (CPU or GPU) are close elementwise."""
    return bool(np.allclose(_as_host_array(a), _as_host_array(b), rtol=rtol, atol=atol))
