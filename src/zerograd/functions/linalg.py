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

import numpy as np

from zerograd.core import Function, Variable, as_variable, names_errors
from zerograd.functions.array import SumTo, reshape, transpose
from zerograd.functions.gradient import apply

__all__ = [  # (matmul_array, on arrays, is imported from here: not a function of F)
    "MatMul",
    "matmul",
    "Linear",
    "linear",
    "linear_simple",
]


_FLOAT16 = np.dtype(np.float16)


def matmul_array(a, b):
    """``a @ b`` on arrays (NumPy's ``matmul`` rules: 2-D, batched, 1-D operands), with
    float16 products on NumPy computed in float32 and rounded once to float16.

    NumPy has no BLAS routine for float16: its own float16 product is a plain loop that
    accumulates in float32 anyway, 80 to 200 times slower than float32's BLAS for the
    same accuracy. Every product of float16 operands in zerograd goes through here
    (linear layers, matmul, convolutions); CuPy multiplies float16 itself (cuBLAS).

    Example:
        >>> a = np.full((2, 4), 0.5, dtype=np.float16)
        >>> matmul_array(a, a.T)
        array([[1., 1.],
               [1., 1.]], dtype=float16)
    """
    if a.dtype == _FLOAT16 and b.dtype == _FLOAT16 and type(a) is np.ndarray:
        product = a.astype(np.float32) @ b.astype(np.float32)
        return product.astype(np.float16)  # (a 0-d product is a NumPy scalar: astype works)
    return a @ b


def _mT(x):
    """Swap the last two axes (the matrix transpose of a batch of matrices)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    saves = ("inputs",)
    # backward's products broadcast over extra leading axes of gy: a stack of gradients
    # goes through in one pass (jacobian)
    elementwise = True

    def forward(self, x, W):
        return matmul_array(x, W)

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

    saves = ("inputs",)

    def forward(self, x, W, b=None):
        y = matmul_array(x, W)
        if b is not None:
            if b.dtype == y.dtype:
                y += b  # in place: no second output-sized array
            else:
                y = y + b  # NumPy's promotion (integer x and W, a float b)
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = apply(LinearGradX(), gy, W) if x.requires_grad else None  # gy W^T
        gW = apply(LinearGradW(), x, gy) if W.requires_grad else None  # x^T gy
        if len(self.inputs) == 2:
            return gx, gW
        b = self.inputs[2]
        gb = apply(SumTo(b.shape), gy) if b.requires_grad else None  # d/db = 1, summed
        return gx, gW, gb


class LinearGradX(Function):
    """``gy @ W^T``: linear's gradient with respect to x, ``(..., out) -> (..., in)``."""

    saves = ("inputs",)

    def forward(self, gy, W):
        return matmul_array(gy, W.T)

    def backward(self, ggx):
        gy, W = self.inputs
        # <ggx, gy W^T> is bilinear: d/dgy = ggx W, d/dW = ggx^T gy (over every row).
        ggy = apply(Linear(), ggx, W) if gy.requires_grad else None
        gW = apply(LinearGradW(), ggx, gy) if W.requires_grad else None
        return ggy, gW


class LinearGradW(Function):
    """``x^T @ gy`` over every leading axis: linear's gradient with respect to W,
    ``(in, out)``."""

    saves = ("inputs",)

    def forward(self, x, gy):
        return matmul_array(x.reshape(-1, x.shape[-1]).T, gy.reshape(-1, gy.shape[-1]))

    def backward(self, ggW):
        x, gy = self.inputs
        # <ggW, x^T gy> is bilinear: d/dx = gy ggW^T, d/dgy = x ggW.
        gx = apply(LinearGradX(), gy, ggW) if x.requires_grad else None
        ggy = apply(Linear(), x, ggW) if gy.requires_grad else None
        return gx, ggy


def linear(x, W, b=None) -> Variable:
    """Fully connected layer ``x @ W + b`` with W of shape ``(in, out)``.

    ``x`` may have any number of leading axes: ``(..., in) -> (..., out)``. ``b`` is
    ``(out,)`` (any shape that broadcasts onto the output without enlarging it works).

    Raises:
        ValueError: when ``x.shape[-1]`` differs from ``W.shape[0]``, or ``b`` does not
            fit the output.

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
    b = as_variable(b)
    y_shape = x.shape[:-1] + W.shape[1:]
    if not _fits(b.shape, y_shape):
        raise ValueError(
            f"linear: expected b of shape ({W.shape[1]},) (one per output, W.shape="
            f"{W.shape}), got b.shape={b.shape}, which does not broadcast onto the output "
            f"{y_shape}; use b.reshape({W.shape[1]})"
        )
    return Linear()(x, W, b)


def _fits(shape, target) -> bool:
    """Whether an array of ``shape`` broadcasts onto ``target`` without enlarging it."""
    if len(shape) > len(target):
        return False
    return all(n == 1 or n == m for n, m in zip(shape[::-1], target[::-1]))


@names_errors
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
