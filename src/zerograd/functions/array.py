"""Shape functions: reshape, transpose, indexing, broadcasting and reductions.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.arange(6.0).reshape(2, 3))
    >>> y = sum(x, axis=0)
    >>> y.backward()
    >>> x.grad
    variable([[1. 1. 1.]
              [1. 1. 1.]])
"""

from __future__ import annotations

import numpy as np

from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.utils.shape import normalize_axis, reduced_shape
from zerograd.utils.shape import sum_to as sum_to_array


__all__ = [
    "Reshape",
    "reshape",
    "Transpose",
    "transpose",
    "BroadcastTo",
    "broadcast_to",
    "SumTo",
    "sum_to",
    "Sum",
    "sum",
    "Max",
    "Min",
    "max",
    "min",
    "GetItem",
    "GetItemGrad",
    "get_item",
]


# ---- reshape / transpose --------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)  # reshape is linear: undo it


def reshape(x, shape) -> Variable:
    """Give ``x`` a new shape with the same number of elements (-1 allowed once).

    Example:
        >>> reshape(np.arange(6.0), (2, 3)).shape
        (2, 3)
    """
    if isinstance(shape, int):
        shape = (shape,)
    if isinstance(x, Variable) and x.shape == tuple(shape):
        return x
    return Reshape(tuple(shape))(x)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        inverse = tuple(np.argsort([a % len(self.axes) for a in self.axes]))
        return transpose(gy, inverse)  # a permutation is undone by its inverse


def transpose(x, axes=None) -> Variable:
    """Permute the axes (reverse them when ``axes`` is None).

    Example:
        >>> transpose(np.zeros((2, 3, 4)), (1, 0, 2)).shape
        (3, 2, 4)
    """
    if axes is not None:
        axes = tuple(axes)
    return Transpose(axes)(x)


# ---- broadcasting ------------------------------------------------------------------------
class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)  # each input element fed several outputs: add up


def broadcast_to(x, shape) -> Variable:
    """Broadcast ``x`` to ``shape`` as NumPy does.

    Example:
        >>> broadcast_to(np.array([1.0, 2.0]), (2, 2))
        variable([[1. 2.]
                  [1. 2.]])
    """
    shape = tuple(shape)
    if isinstance(x, Variable) and x.shape == shape:
        return x
    return BroadcastTo(shape)(x)


class SumTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)


def sum_to(x, shape) -> Variable:
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting).

    Example:
        >>> sum_to(np.ones((2, 3)), (1, 3))
        variable([[2. 2. 2.]])
    """
    shape = tuple(shape)
    if isinstance(x, Variable) and x.shape == shape:
        return x
    return SumTo(shape)(x)


# ---- reductions ---------------------------------------------------------------------------
class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        # d/dx sum = 1 everywhere: put the reduced axes back and broadcast.
        gy = reshape(gy, reduced_shape(self.x_shape, self.axis, keepdims=True))
        return broadcast_to(gy, self.x_shape)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (an int, a tuple, or None for all).

    Example:
        >>> sum(np.ones((2, 3)), axis=1)
        variable([3. 3.])
    """
    x = as_variable(x)
    return Sum(normalize_axis(axis, x.ndim), keepdims)(x)


class _Extremum(Function):
    """max or min over axes; the gradient goes to the elements equal to the result."""

    def __init__(self, axis, keepdims):
        self.axis = axis
        self.keepdims = keepdims

    def backward(self, gy):
        (x,) = self.inputs
        y = self.outputs[0]()
        shape = reduced_shape(x.shape, self.axis, keepdims=True)
        # Ties share the gradient equally, so that it stays a subgradient that sums to gy.
        mask = x.data == y.data.reshape(shape)
        mask = mask / mask.sum(axis=self.axis, keepdims=True)
        return broadcast_to(reshape(gy, shape), x.shape) * mask.astype(x.dtype, copy=False)


class Max(_Extremum):
    def forward(self, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)


class Min(_Extremum):
    def forward(self, x):
        return x.min(axis=self.axis, keepdims=self.keepdims)


def max(x, axis=None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; ties share the gradient.

    Example:
        >>> max(np.array([[1.0, 5.0], [3.0, 2.0]]), axis=1)
        variable([5. 3.])
    """
    x = as_variable(x)
    return Max(normalize_axis(axis, x.ndim), keepdims)(x)


def min(x, axis=None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; ties share the gradient.

    Example:
        >>> min(np.array([[1.0, 5.0], [3.0, 2.0]]), axis=1)
        variable([1. 2.])
    """
    x = as_variable(x)
    return Min(normalize_axis(axis, x.ndim), keepdims)(x)


# ---- indexing -------------------------------------------------------------------------------
class GetItem(Function):
    def __init__(self, slices):
        self.slices = slices

    def forward(self, x):
        return x[self.slices]

    def backward(self, gy):
        (x,) = self.inputs
        return GetItemGrad(self.slices, x.shape)(gy)


class GetItemGrad(Function):
    """Scatter ``gy`` back into a zero array of the input's shape (repeats add up)."""

    def __init__(self, slices, in_shape):
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if xp is np:
            np.add.at(gx, self.slices, gy)
        else:
            # cupyx.scatter_add is CuPy's unbuffered add (cupy.scatter_add was removed).
            import cupyx

            cupyx.scatter_add(gx, self.slices, gy)
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.slices)  # scattering is linear; its adjoint is gathering


def _as_index(slices):
    """Indices may be Variables (of integers): use their arrays."""
    if isinstance(slices, Variable):
        return slices.data
    if isinstance(slices, tuple):
        return tuple(s.data if isinstance(s, Variable) else s for s in slices)
    if isinstance(slices, list):
        return np.asarray(slices)
    return slices


def get_item(x, slices) -> Variable:
    """``x[slices]`` with ints, slices, None, Ellipsis and integer or boolean arrays.

    Repeated indices accumulate their gradients.

    Example:
        >>> x = Variable(np.array([1.0, 2.0, 3.0]))
        >>> y = get_item(x, np.array([0, 0, 2]))
        >>> y.backward()
        >>> x.grad
        variable([2. 0. 1.])
    """
    return GetItem(_as_index(slices))(x)

