"""Linear algebra: matmul (2-D and batched) and the fully connected ``linear``.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.ones((2, 3)))
    >>> W = Variable(np.ones((3, 4)))
    >>> y = matmul(x, W)
    >>> y.backward()
    >>> x.grad.shape, W.grad.shape
    ((2, 3), (3, 4))
"""

from __future__ import annotations

from zerograd.config import Config
from zerograd.core import Function, Variable, as_variable
from zerograd.functions.array import reshape, sum_to, transpose
from zerograd.utils.shape import sum_to as sum_to_array

__all__ = [
    "MatMul",
    "matmul",
    "Linear",
    "linear",
    "linear_simple",
]


def _mT(x):
    """Swap the last two axes (the matrix transpose of a batch of matrices)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    def forward(self, x, W):
        return x @ W

    def backward(self, gy):
        x, W = self.inputs
        # d/dx (x W) = gy W^T, d/dW = x^T gy; the engine sums broadcast batch axes away.
        gx = matmul(gy, _mT(W)) if x.requires_grad else None
        gW = matmul(_mT(x), gy) if W.requires_grad else None
        return gx, gW


def matmul(x, W) -> Variable:
    """Matrix product ``x @ W``: 2-D, or batched over leading axes (which broadcast).

    A 1-D operand is treated as NumPy treats it (a row or column vector).

    Raises:
        ValueError: when the inner dimensions differ.

    Example:
        >>> matmul(np.ones((2, 3)), np.ones((3, 4))).shape
        (2, 4)
        >>> matmul(np.ones((5, 2, 3)), np.ones((3, 4))).shape
        (5, 2, 4)
    """
    x, W = as_variable(x), as_variable(W)
    if x.ndim == 0 or W.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least 1 dimension, got x.shape={x.shape}, "
            f"W.shape={W.shape}; use mul (*) for scalars"
        )
    if x.shape[-1] != W.shape[-2 if W.ndim > 1 else 0]:
        k = W.shape[-2 if W.ndim > 1 else 0]
        raise ValueError(
            f"matmul: inner dimensions differ, x.shape={x.shape}, W.shape={W.shape} "
            f"({x.shape[-1]} != {k})"
        )
    if x.ndim > 1 and W.ndim > 1:
        return MatMul()(x, W)
    # NumPy's rule for a vector: make it a matrix, multiply, remove the added axis.
    x2 = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    W2 = reshape(W, W.shape + (1,)) if W.ndim == 1 else W
    y = MatMul()(x2, W2)
    shape = y.shape[:-1] if W.ndim == 1 else y.shape
    if x.ndim == 1:
        shape = shape[:-1] if W.ndim == 1 else shape[:-2] + shape[-1:]
    return reshape(y, shape)


class Linear(Function):
    """``x @ W + b``; inputs ``x, W`` or ``x, W, b``."""

    def forward(self, x, W, b=None):
        y = x @ W
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        need_x, need_W = x.requires_grad, W.requires_grad
        need_b = b is not None and b.requires_grad
        n_in, n_out = W.shape
        if Config.enable_backprop:
            # The graph is recorded (create_graph=True): Functions, differentiable again.
            gx = matmul(gy, W.T) if need_x else None  # d/dx (xW + b) = gy W^T
            # d/dW = x^T gy, over every leading axis of x
            gW = matmul(reshape(x, (-1, n_in)).T, reshape(gy, (-1, n_out))) if need_W else None
            gb = sum_to(gy, b.shape) if need_b else None  # d/db = 1, summed over rows
        else:
            # Nothing to record: the same formulas on arrays, without the dozen Function
            # calls above (they dominate small layers, such as an LSTM step at batch 1).
            gy, x, W = gy.data, x.data, W.data
            gx = gy @ W.T if need_x else None
            gW = x.reshape(-1, n_in).T @ gy.reshape(-1, n_out) if need_W else None
            gb = sum_to_array(gy, b.shape) if need_b else None
        return (gx, gW) if b is None else (gx, gW, gb)


def linear(x, W, b=None) -> Variable:
    """Fully connected layer ``x @ W + b`` with W of shape ``(in, out)``.

    ``x`` may have any number of leading axes: ``(..., in) -> (..., out)``.

    Raises:
        ValueError: when ``x.shape[-1]`` differs from ``W.shape[0]``.

    Example:
        >>> linear(np.ones((4, 3)), np.ones((3, 2)), np.zeros(2)).shape
        (4, 2)
    """
    x, W = as_variable(x), as_variable(W)
    if W.ndim != 2 or x.ndim == 0 or x.shape[-1] != W.shape[0]:
        raise ValueError(
            f"linear: expected x of shape (..., in) and W of shape (in, out), got "
            f"x.shape={x.shape}, W.shape={W.shape}; W is (in, out), not PyTorch's (out, in)"
        )
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


def linear_simple(x, W, b=None) -> Variable:
    """The book's composed ``linear``: ``matmul(x, W) + b``, with no backward of its own.

    Slower than :func:`linear` (two recorded functions instead of one); kept as its test
    oracle and for the book's step 43.

    Example:
        >>> linear_simple(np.ones((4, 3)), np.ones((3, 2)), np.zeros(2))
        variable([[3. 3.]
                  [3. 3.]
                  [3. 3.]
                  [3. 3.]])
    """
    y = matmul(x, W)
    if b is None:
        return y
    return y + b
