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


def numerical_grad(f: Callable, x: Any, *args, eps: float = 1e-4, **kwargs) -> np.ndarray:
    """Gradient of ``sum(f(x, *args))`` with respect to ``x`` by central differences.

    ``x`` may be an array or a Variable; it is perturbed in place element by element
    and restored. The result has ``x``'s shape (on the CPU).

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

    def total():
        y = f(x, *args, **kwargs)
        y = y.data if isinstance(y, Variable) else y
        return float(y.sum())

    for i in range(flat.size):
        old = flat[i].copy()
        flat[i] = old + eps
        y1 = total()
        flat[i] = old - eps
        y2 = total()
        flat[i] = old
        gflat[i] = (y1 - y2) / (2 * eps)
    return grad


def gradient_check(
    f: Callable, x: Any, *args, rtol: float = 1e-4, atol: float = 1e-5, **kwargs
) -> bool:
    """Compare backprop's gradient of ``sum(f(x))`` with the numerical one.

    Returns True when they agree within ``rtol``/``atol``; otherwise prints where they
    differ and returns False (as DeZero's does).
    """
    from zerograd.core import Variable
    from zerograd.functions import sum as fsum

    data = x.data if isinstance(x, Variable) else x
    x = Variable(data.copy())
    num = numerical_grad(f, x, *args, **kwargs)
    y = fsum(f(x, *args, **kwargs))
    y.backward()
    if x.grad is None:
        print(f"gradient_check: {getattr(f, '__name__', f)} gave no gradient for x")
        return False
    bp = _as_host_array(x.grad)
    num = _as_host_array(num)
    ok = bp.shape == num.shape and np.allclose(bp, num, rtol=rtol, atol=atol)
    if not ok:
        print(
            f"gradient_check: {getattr(f, '__name__', f)} failed for x of shape "
            f"{data.shape}\n  backprop:  {bp.ravel()[:10]}\n  numerical: {num.ravel()[:10]}"
        )
    return ok


def array_equal(a: Any, b: Any) -> bool:
    """True when two arrays or Variables (CPU or GPU) are equal elementwise."""
    return bool(np.array_equal(_as_host_array(a), _as_host_array(b)))


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when two arrays or Variables (CPU or GPU) are close elementwise."""
    return bool(np.allclose(_as_host_array(a), _as_host_array(b), rtol=rtol, atol=atol))
