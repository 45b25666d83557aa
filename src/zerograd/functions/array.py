"""Shape functions: reshape, transpose, indexing, broadcasting, reductions, clipping,
joining and splitting, and selection with ``where``.

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

from zerograd.core import Function, Variable, _operand, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions._arrays import check_axes, named_error
from zerograd.functions.gradient import apply
from zerograd.utils.shape import reduced_shape
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
    "expand_dims",
    "flatten",
    "average",
    "mean",
    "Clip",
    "clip",
    "Concat",
    "concat",
    "stack",
    "Split",
    "split",
    "Where",
    "where",
]


def _leading(gy, ndim: int) -> tuple:
    """The leading axes that a stack of gradients has beyond a function's output of
    ``ndim`` axes (``jacobian`` sends such a stack through ``elementwise`` Functions);
    () for one gradient. The backward of a shape function keeps them in front."""
    return gy.shape[:gy.ndim - ndim]


# ---- reshape / transpose --------------------------------------------------------------
class Reshape(Function):
    saves = ()  # (the input's shape only)
    elementwise = True  # (its backward keeps a stack's leading axes)

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        lead = _leading(gy, len(self.shape))
        return apply(Reshape(lead + self.x_shape), gy)  # reshape is linear: undo it


def reshape(x, shape) -> Variable:
    """Give ``x`` a new shape with the same number of elements (-1 allowed once).

    Example:
        >>> reshape(np.arange(6.0), (2, 3)).shape
        (2, 3)
    """
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(shape)
    if isinstance(x, Variable) and x.shape == shape:
        return x
    try:
        return Reshape(shape)(x)
    except (TypeError, ValueError) as e:
        raise named_error("reshape", e, x=np.shape(_data(x))) from None


class Transpose(Function):
    saves = ()
    elementwise = True  # (its backward keeps a stack's leading axes)

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.ndim = x.ndim
        return x.transpose(self.axes)

    def backward(self, gy):
        n = self.ndim
        extra = gy.ndim - n
        if self.axes is None and not extra:
            return transpose(gy)
        axes = range(n - 1, -1, -1) if self.axes is None else self.axes
        inverse = [0] * n
        for k, a in enumerate(axes):
            inverse[a % n] = extra + k  # a permutation is undone by its inverse
        return transpose(gy, tuple(range(extra)) + tuple(inverse))


def transpose(x, axes=None) -> Variable:
    """Permute the axes (reverse them when ``axes`` is None).

    Example:
        >>> transpose(np.zeros((2, 3, 4)), (1, 0, 2)).shape
        (3, 2, 4)
    """
    x = as_variable(x)
    if axes is not None:
        axes = tuple(axes)
        n = x.ndim
        valid = (len(axes) == n and _all_ints(axes) and all(-n <= a < n for a in axes)
                 and sorted(a % n for a in axes) == list(range(n)))
        if not valid:
            raise ValueError(
                f"transpose: axes must be a permutation of the {x.ndim} axes of "
                f"x.shape={x.shape}, got {axes}"
            )
    return Transpose(axes)(x)


def _all_ints(values) -> bool:
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)


def _data(x):
    return x.data if isinstance(x, Variable) else x


# ---- broadcasting ------------------------------------------------------------------------
class BroadcastTo(Function):
    saves = ()
    elementwise = True  # (its backward keeps a stack's leading axes)

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        # Each input element fed several outputs: add their gradients up.
        lead = _leading(gy, len(self.shape))
        if not lead:
            return apply(SumTo(self.x_shape), gy) if gy.shape != self.x_shape else gy
        # A stack: the axes broadcasting added are behind its leading axes, not in front.
        padded = (1,) * (len(self.shape) - len(self.x_shape)) + self.x_shape
        gx = apply(SumTo(lead + padded), gy)
        return apply(Reshape(lead + self.x_shape), gx) if padded != self.x_shape else gx


def broadcast_to(x, shape) -> Variable:
    """Broadcast ``x`` to ``shape`` as NumPy does.

    Example:
        >>> broadcast_to(np.array([1.0, 2.0]), (2, 2))
        variable([[1. 2.]
                  [1. 2.]])
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if isinstance(x, Variable) and x.shape == shape:
        return x
    try:
        return BroadcastTo(shape)(x)
    except (TypeError, ValueError) as e:
        raise named_error("broadcast_to", e, x=np.shape(_data(x))) from None


class SumTo(Function):
    saves = ()
    elementwise = True  # (its backward keeps a stack's leading axes)

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        lead = _leading(gy, len(self.shape))
        if not lead:
            return apply(BroadcastTo(self.x_shape), gy) if gy.shape != self.x_shape else gy
        # A stack: the axes summed away come back behind its leading axes.
        padded = (1,) * (len(self.x_shape) - len(self.shape)) + self.shape
        if padded != self.shape:
            gy = apply(Reshape(lead + padded), gy)
        return apply(BroadcastTo(lead + self.x_shape), gy)


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
    saves = ()
    elementwise = True  # (its backward keeps a stack's leading axes)

    def __init__(self, axis, keepdims):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        # d/dx sum = 1 everywhere: put the reduced axes back and broadcast.
        kept = reduced_shape(self.x_shape, self.axis, keepdims=True)
        ndim = len(kept)  # the output's
        if not self.keepdims:
            ndim -= ndim if self.axis is None else len(self.axis)
        lead = _leading(gy, ndim)
        gy = apply(Reshape(lead + kept), gy)
        return apply(BroadcastTo(lead + self.x_shape), gy)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (an int, a tuple, or None for all).

    Example:
        >>> sum(np.ones((2, 3)), axis=1)
        variable([3. 3.])
    """
    x = as_variable(x)
    return Sum(check_axes("sum", axis, x.ndim), keepdims)(x)


class _Extremum(Function):
    """max or min over axes; the gradient goes to the elements equal to the result."""

    saves = ("inputs", "outputs")  # which elements equal the result: found in backward

    def __init__(self, axis, keepdims):
        self.axis = axis
        self.keepdims = keepdims

    def backward(self, gy):
        (x,) = self.inputs
        y = self.outputs[0]()
        shape = reduced_shape(x.shape, self.axis, keepdims=True)
        # Ties share the gradient equally, so that it stays a subgradient that sums to gy.
        # A slice whose extremum is NaN matches nothing: its gradient is NaN (as PyTorch's
        # amax and amin give), through a count of NaN rather than a division by 0.
        mask = x.data == y.data.reshape(shape)
        xp = get_array_module(mask)
        count = xp.asarray(mask.sum(axis=self.axis, keepdims=True), dtype=gy.dtype)
        if y.dtype.kind == "f":
            count[count == 0] = np.nan
        return apply(ExtremumGrad(self.axis, mask, count), gy)


class ExtremumGrad(Function):
    """max's (or min's) gradient: ``gy / count`` at the elements equal to the extremum
    (``mask``; ``count`` of them per slice), 0 elsewhere. Linear in gy."""

    saves = ("mask", "count")

    def __init__(self, axis, mask, count):
        self.axis = axis
        self.mask = mask
        self.count = count

    def forward(self, gy):
        self.gy_shape = gy.shape
        gx = self.mask.astype(gy.dtype)  # (a float mask multiplies faster than a boolean)
        gx *= gy.reshape(self.count.shape) / self.count
        return gx

    def backward(self, g):
        # The adjoint: gather the masked gradient back over each slice.
        picked = sum(g * self.mask.astype(g.dtype), axis=self.axis, keepdims=True)
        return reshape(picked / self.count, self.gy_shape)


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
    return _extremum(Max, "max", x, axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; ties share the gradient.

    Example:
        >>> min(np.array([[1.0, 5.0], [3.0, 2.0]]), axis=1)
        variable([1. 2.])
    """
    return _extremum(Min, "min", x, axis, keepdims)


def _extremum(cls, op, x, axis, keepdims):
    x = as_variable(x)
    axis = check_axes(op, axis, x.ndim)
    reduced = range(x.ndim) if axis is None else axis
    if any(x.shape[a] == 0 for a in reduced):
        raise ValueError(
            f"{op}: the reduction over axis={axis} of x.shape={x.shape} covers no element, "
            f"and an empty set has no {op}imum"
        )
    return cls(axis, keepdims)(x)


# ---- indexing -------------------------------------------------------------------------------
class GetItem(Function):
    saves = ("slices",)  # (index arrays are kept; the input only for its shape)

    def __init__(self, slices):
        self.slices = slices

    def forward(self, x):
        self.x_shape = x.shape
        return x[self.slices]

    def backward(self, gy):
        return apply(GetItemGrad(self.slices, self.x_shape), gy)


class GetItemGrad(Function):
    """Scatter ``gy`` back into a zero array of the input's shape (repeats add up)."""

    saves = ("slices",)

    def __init__(self, slices, in_shape):
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if hasattr(xp.add, "at"):  # NumPy, and CuPy from version 13
            xp.add.at(gx, self.slices, gy)
        else:
            # Older CuPy's unbuffered add (cupy.scatter_add was removed).
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
    try:
        return GetItem(_as_index(slices))(x)
    except (IndexError, TypeError, ValueError) as e:
        raise named_error("get_item", e, x=np.shape(_data(x))) from None



# ---- shapes built on reshape ------------------------------------------------------------
def expand_dims(x, axis) -> Variable:
    """Insert axes of length 1 at ``axis`` (an int or a tuple), as ``np.expand_dims``.

    Raises:
        ValueError: when an axis is out of range or repeated.

    Example:
        >>> expand_dims(np.zeros((2, 3)), 1).shape
        (2, 1, 3)
        >>> expand_dims(np.zeros(3), (0, -1)).shape
        (1, 3, 1)
    """
    x = as_variable(x)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = x.ndim + len(axes)
    new_axes = check_axes("expand_dims", axes, ndim)
    dims = iter(x.shape)
    shape = tuple(1 if i in new_axes else next(dims) for i in range(ndim))
    return reshape(x, shape)


def flatten(x) -> Variable:
    """Keep the first axis and flatten the rest: ``(N, ...) -> (N, -1)``.

    Raises:
        ValueError: for a 0-d ``x``, which has no first axis to keep.

    Example:
        >>> flatten(np.zeros((2, 3, 4))).shape
        (2, 12)
    """
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError(
            "flatten: expected an array with a batch axis (N, ...), got a 0-d array; "
            "use reshape(x, (1, 1)) for a scalar"
        )
    return reshape(x, (x.shape[0], int(np.prod(x.shape[1:]))))


# ---- averages -----------------------------------------------------------------------------
def average(x, axis=None, keepdims: bool = False) -> Variable:
    """Arithmetic mean over ``axis`` (an int, a tuple, or None for all elements).

    Example:
        >>> average(np.array([[1.0, 2.0], [3.0, 6.0]]), axis=1)
        variable([1.5 4.5])
    """
    return _average("average", x, axis, keepdims)


def _average(op, x, axis, keepdims):
    x = as_variable(x)
    axis = check_axes(op, axis, x.ndim)
    axes = range(x.ndim) if axis is None else axis
    count = int(np.prod([x.shape[a] for a in axes]))
    if x.dtype == np.float16:  # as NumPy: accumulate float16 in float32
        return _as_type(_average(op, _as_type(x, np.float32), axis, keepdims), np.float16)
    if x.dtype.kind in "biu":  # as NumPy: the mean of integers in float64 (no wrapping)
        x = _as_type(x, np.float64)
    return sum(x, axis, keepdims) / count  # d/dx mean = 1/count, through sum and div


class _AsType(Function):
    """A change of dtype; the gradient changes back."""

    saves = ()
    elementwise = True

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return apply(_AsType(self.x_dtype), gy)


def _as_type(x, dtype):
    return _AsType(np.dtype(dtype))(x)


def mean(x, axis=None, keepdims: bool = False) -> Variable:
    """The same as :func:`average` (NumPy's other name for it).

    Example:
        >>> mean(np.array([1.0, 2.0, 6.0]))
        variable(3.0)
    """
    return _average("mean", x, axis, keepdims)


# ---- clip ------------------------------------------------------------------------------------
class Clip(Function):
    saves = ("inputs",)
    elementwise = True

    def __init__(self, x_min, x_max):
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        if x.ndim == 0:  # NumPy 1.x promotes a 0-d array with Python bounds; 2.x does not
            return self.forward(x.reshape(1)).reshape(())
        # (integers clipped to float bounds become floats, as in NumPy: not truncated)
        return get_array_module(x).clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        (x,) = self.inputs
        # d/dx clip = 1 inside [x_min, x_max], else 0
        return apply(ClipGrad(self.x_min, self.x_max), x, gy)


class ClipGrad(Function):
    """``gy`` where ``x_min <= x <= x_max`` (bounds included, as PyTorch's clamp), else 0:
    clip's gradient. Piecewise linear."""

    saves = ("inputs",)
    elementwise = True

    def __init__(self, x_min, x_max):
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x, gy):
        if self.x_min is None:
            inside = x <= self.x_max
        elif self.x_max is None:
            inside = x >= self.x_min
        else:
            inside = x >= self.x_min
            inside &= x <= self.x_max
        # A float mask: NumPy multiplies floats by floats faster than by booleans.
        return gy * inside.astype(gy.dtype)

    def backward(self, g):
        x, gy = self.inputs
        # Nothing to differentiate in x (piecewise constant); linear in gy.
        return None, (apply(ClipGrad(self.x_min, self.x_max), x, g) if gy.requires_grad else None)


def clip(x, x_min, x_max) -> Variable:
    """Limit ``x`` to ``[x_min, x_max]``; either bound may be None (no limit).

    The gradient is 1 where ``x_min <= x <= x_max`` (bounds included, as PyTorch's
    ``clamp``) and 0 where a bound was applied.

    Raises:
        ValueError: when both bounds are None.

    Example:
        >>> clip(np.array([-2.0, 0.5, 3.0]), 0.0, 1.0)
        variable([0.  0.5 1. ])
    """
    if x_min is None and x_max is None:
        raise ValueError("clip: x_min and x_max are both None; give at least one bound")
    try:
        return Clip(x_min, x_max)(x)
    except (TypeError, ValueError, OverflowError) as e:  # a bound the dtype cannot hold
        raise named_error("clip", e, x=np.shape(_data(x))) from None


# ---- joining and splitting ------------------------------------------------------------------
class Concat(Function):
    saves = ()  # (the sizes of the pieces)

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        # Concatenation is linear: its adjoint cuts gy back into the input pieces.
        return tuple(split(gy, np.cumsum(self.sizes[:-1]).tolist(), self.axis))


def _check_joinable(op: str, xs, axis) -> None:
    """Raise unless ``xs`` is a non-empty sequence of arrays of one shape except ``axis``."""
    if len(xs) == 0:
        raise ValueError(f"{op}: needs at least one array, got an empty sequence")
    first = xs[0].shape
    for i, x in enumerate(xs[1:], start=1):
        same = len(x.shape) == len(first) and all(
            a == b for k, (a, b) in enumerate(zip(x.shape, first)) if k != axis
        )
        if not same:
            where_ = "except along the joined axis " if axis is not None else ""
            raise ValueError(
                f"{op}: arrays must have the same shape {where_}(axis={axis}), got "
                f"xs[0].shape={first} and xs[{i}].shape={x.shape}"
            )


def concat(xs, axis: int = 0) -> Variable:
    """Join a sequence of arrays along an existing axis, as ``np.concatenate``.

    Raises:
        ValueError: for an empty sequence, or shapes that differ off ``axis``.

    Example:
        >>> concat([np.zeros((2, 3)), np.ones((1, 3))]).shape
        (3, 3)
        >>> concat([np.zeros((2, 3)), np.ones((2, 1))], axis=1).shape
        (2, 4)
    """
    if isinstance(xs, (Variable, np.ndarray)):
        raise TypeError(
            f"concat: expected a sequence of arrays, got a single {type(xs).__name__}; "
            "write concat([x0, x1], axis)"
        )
    xs = [as_variable(x) for x in xs]
    if len(xs) and xs[0].ndim == 0:
        raise ValueError("concat: 0-d arrays cannot be concatenated; use stack")
    _int_axis("concat", axis)
    axis = check_axes("concat", axis, xs[0].ndim)[0] if xs else 0
    _check_joinable("concat", xs, axis)
    return Concat(axis)(*xs)


def stack(xs, axis: int = 0) -> Variable:
    """Join arrays of one shape along a new axis, as ``np.stack``.

    Raises:
        ValueError: for an empty sequence or arrays of different shapes.

    Example:
        >>> stack([np.zeros(3), np.ones(3)]).shape
        (2, 3)
        >>> stack([np.zeros(3), np.ones(3)], axis=1).shape
        (3, 2)
    """
    if isinstance(xs, (Variable, np.ndarray)):
        raise TypeError(
            f"stack: expected a sequence of arrays, got a single {type(xs).__name__}; "
            "write stack([x0, x1], axis)"
        )
    xs = [as_variable(x) for x in xs]
    _check_joinable("stack", xs, None)
    _int_axis("stack", axis)
    check_axes("stack", axis, xs[0].ndim + 1)
    return concat([expand_dims(x, axis) for x in xs], axis)


def _int_axis(op: str, axis) -> None:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")


class Split(Function):
    saves = ()

    def __init__(self, indices_or_sections, axis):
        self.indices_or_sections = indices_or_sections
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        return tuple(xp.split(x, self.indices_or_sections, axis=self.axis))

    def backward(self, *gys):
        # The engine gives zeros for pieces that received no gradient: join them all.
        return concat(gys, self.axis)  # splitting is linear: its adjoint is concatenation


def split(x, indices_or_sections, axis: int = 0) -> list:
    """Cut ``x`` along ``axis`` into a list of pieces, as ``np.split``.

    Args:
        x: the array to cut.
        indices_or_sections: an int N (N equal pieces) or a sorted list of indices
            where the cuts go.
        axis: the axis to cut along.

    Raises:
        ValueError: when N equal pieces are asked for and the axis length is not a
            multiple of N.

    Example:
        >>> a, b = split(np.arange(6.0), 2)
        >>> a, b
        (variable([0. 1. 2.]), variable([3. 4. 5.]))
        >>> [y.shape for y in split(np.zeros((2, 5)), [1, 4], axis=1)]
        [(2, 1), (2, 3), (2, 1)]
    """
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError("split: cannot split a 0-d array; it has no axis")
    _int_axis("split", axis)
    axis = check_axes("split", axis, x.ndim)[0]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0 or x.shape[axis] % n != 0:
            raise ValueError(
                f"split: cannot cut axis {axis} of length {x.shape[axis]} into {n} equal "
                f"pieces (x.shape={x.shape}); pass a list of cut indices instead"
            )
    else:
        indices_or_sections = [int(i) for i in indices_or_sections]
    ys = Split(indices_or_sections, axis)(x)
    return list(ys) if isinstance(ys, (list, tuple)) else [ys]


# ---- selection ----------------------------------------------------------------------------------
class Where(Function):
    saves = ("condition",)  # (x and y only for whether they need a gradient)
    elementwise = True

    def __init__(self, condition):
        self.condition = condition

    def forward(self, x, y):
        return get_array_module(x).where(self.condition, x, y)

    def backward(self, gz):
        x, y = self.inputs
        xp = get_array_module(gz.data)
        zero = xp.zeros((), dtype=gz.dtype)
        # d/dx = 1 where the condition holds, d/dy = 1 elsewhere; the engine sums the
        # gradients down to the shapes of x and y.
        gx = apply(Where(self.condition), gz, zero) if x.requires_grad else None
        gy = apply(Where(self.condition), zero, gz) if y.requires_grad else None
        return gx, gy


def where(condition, x, y) -> Variable:
    """Take ``x`` where ``condition`` is true and ``y`` elsewhere, with broadcasting.

    ``condition`` is a boolean array (not differentiated); ``x`` and ``y`` may be
    Variables, arrays or Python numbers (which take the other operand's dtype).

    Raises:
        TypeError: when ``condition`` is not boolean.

    Example:
        >>> x = Variable(np.array([1.0, -2.0, 3.0]))
        >>> y = where(x.data > 0, x, 0.0)
        >>> y.backward()
        >>> y, x.grad
        (variable([1. 0. 3.]), variable([1. 0. 1.]))
    """
    cond = condition.data if isinstance(condition, Variable) else condition
    if not isinstance(x, Variable) and isinstance(y, Variable):
        x = _operand(x, y)
    x = as_variable(x)
    y = _operand(y, x)
    xp = get_array_module(x.data)
    cond = xp.asarray(cond)
    if cond.dtype != bool:
        raise TypeError(
            f"where: condition must be a boolean array, got dtype {cond.dtype}; "
            "compare first (x > 0) or use condition.astype(bool)"
        )
    return Where(cond)(x, y)
