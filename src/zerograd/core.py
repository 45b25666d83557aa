"""The define-by-run engine: Variable, Function, backward, and the arithmetic operators.

A :class:`Variable` holds an array (``data``) and, after ``backward()``, its gradient
(``grad``). Calling a :class:`Function` on Variables computes the result on plain arrays
(``forward``) and, while backprop is enabled, records itself as the output's ``creator``.
``Variable.backward`` walks those records from the output back to the inputs, newest
function first, and asks each function's ``backward`` to turn the output gradient
``gy`` into input gradients ``gx``.

Example (the first thing a reader of the book computes, step 9):
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> from zerograd.functions import square, exp
    >>> x = Variable(np.array(0.5))
    >>> y = square(exp(square(x)))
    >>> y.backward()
    >>> float(x.grad.data)
    3.297442541400256
"""

from __future__ import annotations

import heapq
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.config import (
    backward_tracer_var,
    detect_anomaly_var,
    enable_backprop_var,
)

_ndarray = np.ndarray


# =========================================================================================
# Conversions
# =========================================================================================
def as_array(x: Any, array_module=np, dtype=None):
    """Return ``x`` as an array of ``array_module``; scalars become 0-d arrays.

    Example:
        >>> as_array(2.0)
        array(2.)
    """
    if isinstance(x, _ndarray) and array_module is np and dtype in (None, x.dtype):
        return x
    return array_module.asarray(x, dtype=dtype)


def as_variable(obj: Any) -> Variable:
    """Return ``obj`` if it is a Variable, else wrap it in one.

    A Variable made here is an anonymous input (nobody holds it), so it does not
    require a gradient: no function spends time computing one for it.

    Example:
        >>> v = as_variable(np.array([1.0, 2.0]))
        >>> v
        variable([1. 2.])
    """
    if isinstance(obj, Variable):
        return obj
    if not isinstance(obj, _ndarray) and not cuda.is_cupy_array(obj):
        obj = as_array(obj)
    return _wrap(obj, False)


def _wrap(data, requires_grad: bool) -> Variable:
    """Make a Variable without the checks of ``Variable.__init__`` (engine use only)."""
    v = _new_variable(Variable)
    v.data = data
    v.name = None
    v.grad = None
    v.creator = None
    v.generation = 0
    v.requires_grad = requires_grad
    return v


# =========================================================================================
# Variable
# =========================================================================================
class Variable:
    """An array that remembers how it was computed, so it can be differentiated.

    Args:
        data: a NumPy or CuPy ndarray, or None. Python numbers are rejected so that
            dtypes stay explicit: write ``Variable(np.array(1.0))``.
        name: an optional name, shown in graphs.
        requires_grad: whether ``backward`` computes ``grad`` for this Variable. True
            by default; set False for data (an input batch) to skip work.

    Attributes:
        data: the array.
        grad: the gradient, a Variable of the same shape, or None before ``backward``.
        creator: the Function that produced this Variable, or None for a leaf.
        generation: depth in the graph, used to order the backward pass.

    Example:
        >>> x = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> x.shape, x.ndim, x.size, x.dtype
        ((2, 2), 2, 4, dtype('float64'))
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        variable([[2. 4.]
                  [6. 8.]])
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "requires_grad", "__weakref__")

    # NumPy defers to our reflected operators: ``ndarray * Variable`` gives a Variable.
    __array_priority__ = 200
    __array_ufunc__ = None

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool = True):
        if data is not None and not isinstance(data, _ndarray) and not cuda.is_cupy_array(
            data
        ):
            if isinstance(data, np.generic):  # a NumPy scalar, e.g. from x.data.sum()
                hint = "np.asarray(data)"
            elif np.isscalar(data):
                hint = f"np.array({data!r})"
            else:
                hint = "np.asarray(data)"
            raise TypeError(
                f"Variable: data must be a NumPy or CuPy ndarray or None, got "
                f"{type(data).__name__}; wrap it first, e.g. Variable({hint})"
            )
        self.data = data
        self.name = name
        self.grad: Variable | None = None
        self.creator: Function | None = None
        self.generation = 0
        self.requires_grad = requires_grad

    # ---- array-like properties ----------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        if self.data is None:
            return "variable(None)"
        body = str(self.data).replace("\n", "\n" + " " * 9)
        return f"variable({body})"

    def item(self):
        """The value of a one-element Variable as a Python number."""
        return self.data.item()

    def tolist(self):
        """The data as nested Python lists."""
        return self.data.tolist()

    def argmax(self, axis=None):
        """Indices of the maximum values (an array: argmax is not differentiable)."""
        return self.data.argmax(axis=axis)

    # ---- graph bookkeeping --------------------------------------------------------------
    def set_creator(self, func: Function) -> None:
        """Record ``func`` as the function that produced this Variable."""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self) -> None:
        """Forget the accumulated gradient (gradients add up across backward calls)."""
        self.grad = None

    def unchain(self) -> None:
        """Cut the link to the creator: this Variable becomes a leaf."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every link in the graph behind this Variable (for truncated BPTT)."""
        stack = [self.creator] if self.creator is not None else []
        seen = set()
        while stack:
            f = stack.pop()
            for x in f.inputs:
                if x.creator is not None and x.creator not in seen:
                    seen.add(x.creator)
                    stack.append(x.creator)
                x.unchain()
        self.unchain()

    # ---- backprop -------------------------------------------------------------------------
    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Compute the gradient of this Variable with respect to every Variable behind it.

        Args:
            retain_grad: keep ``grad`` on intermediate Variables too (by default only
                leaves, the Variables you created, keep theirs).
            create_graph: record the backward pass itself, so that the gradients can be
                differentiated again (higher-order derivatives).

        The pass is iterative (no recursion limit) and processes functions newest
        generation first, through a heap. If ``grad`` is unset it starts as ones.
        """
        if self.grad is None:
            xp = cuda.get_array_module(self.data)
            self.grad = _wrap(xp.ones_like(self.data), False)
        elif not isinstance(self.grad, Variable):  # the book's step 7: y.grad = np.array(1.0)
            self.grad = _wrap(self.grad, False)
        if self.creator is None:
            return
        token = enable_backprop_var.set(create_graph)
        try:
            _run_backward(self, retain_grad, create_graph)
        finally:
            enable_backprop_var.reset(token)

    # ---- shape and reduction methods (Functions from zerograd.functions) ---------------
    def reshape(self, *shape) -> Variable:
        """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _array.reshape(self, tuple(shape))

    def transpose(self, *axes) -> Variable:
        """``x.transpose()``, ``x.transpose(1, 0, 2)`` or ``x.transpose((1, 0, 2))``."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _array.transpose(self, axes)

    @property
    def T(self) -> Variable:
        return _array.transpose(self)

    def sum(self, axis=None, keepdims: bool = False) -> Variable:
        return _array.sum(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Variable:
        return _array.max(self, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False) -> Variable:
        return _array.min(self, axis, keepdims)

    def matmul(self, other) -> Variable:
        return _linalg.matmul(self, other)

    dot = matmul

    # ---- devices ------------------------------------------------------------------------
    def to_cpu(self) -> Variable:
        """Move data (and grad) to host memory; returns self."""
        if self.data is not None:
            self.data = cuda.as_numpy(self.data)
        if self.grad is not None:
            self.grad.to_cpu()
        return self

    def to_gpu(self) -> Variable:
        """Move data (and grad) to the current GPU; returns self."""
        if self.data is not None:
            self.data = cuda.as_cupy(self.data)
        if self.grad is not None:
            self.grad.to_gpu()
        return self

    # ---- operators ----------------------------------------------------------------------
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(self, other)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return rsub(self, other)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(self, other)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return rdiv(self, other)

    def __neg__(self):
        return neg(self)

    def __pow__(self, other):
        return pow(self, other)

    def __rpow__(self, other):
        return pow(_operand(other, self), self)

    def __matmul__(self, other):
        return _linalg.matmul(self, other)

    def __rmatmul__(self, other):
        return _linalg.matmul(_operand(other, self), self)

    def __getitem__(self, slices):
        return _array.get_item(self, slices)


_new_variable = object.__new__


class Parameter(Variable):
    """A Variable that a Layer learns. Layers register every Parameter assigned to them.

    Example:
        >>> W = Parameter(np.zeros((2, 3), dtype=np.float32), name="W")
        >>> isinstance(W, Variable)
        True
    """

    __slots__ = ()


# =========================================================================================
# Function
# =========================================================================================
class Function:
    """Base class of every differentiable operation.

    Subclasses implement:
        forward(*xs): on arrays (NumPy or CuPy), returning an array or a tuple of them.
        backward(*gys): on Variables, returning one gradient per input (a Variable, an
            array, or None where an input gets no gradient). Because it is written with
            Functions, the backward pass is itself differentiable.

    After a call with backprop enabled, ``inputs`` holds the input Variables, ``outputs``
    weak references to the outputs (so a graph frees itself when its result is
    dropped), and ``generation`` the function's depth.

    Example:
        >>> class Double(Function):
        ...     def forward(self, x):
        ...         return 2 * x
        ...     def backward(self, gy):
        ...         return 2 * gy  # d/dx 2x = 2
        >>> x = Variable(np.array(3.0))
        >>> y = Double()(x)
        >>> y.backward()
        >>> y, x.grad
        (variable(6.0), variable(2.0))
    """

    inputs: tuple
    outputs: list
    generation: int = 0

    def __call__(self, *inputs):
        # The hot path of every model: plain loops, no comprehensions (each costs a
        # function object in Python 3.11), and a separate branch for one output.
        for x in inputs:
            if not isinstance(x, Variable):
                inputs = tuple([as_variable(x) for x in inputs])
                break
        try:
            if len(inputs) == 1:
                ys = self.forward(inputs[0].data)
            elif len(inputs) == 2:
                ys = self.forward(inputs[0].data, inputs[1].data)
            else:
                ys = self.forward(*[x.data for x in inputs])
        except TypeError:
            _check_same_device(self, [x.data for x in inputs])
            raise

        record = False
        if enable_backprop_var.get():
            for x in inputs:
                if x.requires_grad:
                    record = True
                    break
        if type(ys) is tuple:
            outputs = [_wrap(_output_array(y), record) for y in ys]
        else:
            outputs = [_wrap(ys if type(ys) is _ndarray else _output_array(ys), record)]

        if record:
            generation = 0
            for x in inputs:
                if x.generation > generation:
                    generation = x.generation
            self.generation = generation
            for y in outputs:
                y.creator = self
                y.generation = generation + 1
            self.inputs = inputs
            if len(outputs) == 1:
                self.outputs = [weakref.ref(outputs[0])]
            else:
                self.outputs = [weakref.ref(y) for y in outputs]
                self._output_meta = [(y.data.shape, y.data.dtype) for y in outputs]
        if detect_anomaly_var.get():
            _check_finite(self, "forward", [y.data for y in outputs], inputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def forward(self, *xs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys):
        raise NotImplementedError(
            f"{type(self).__name__}.backward is not implemented: this function is not "
            "differentiable"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} generation={self.generation}>"


def _output_array(y):
    """Turn what forward returned (a NumPy scalar, a CuPy array) into an array."""
    if type(y) is _ndarray:
        return y
    if isinstance(y, np.generic):  # NumPy ufuncs return scalars for 0-d inputs
        return np.asarray(y)
    if cuda.is_cupy_array(y):
        return y
    if y is None or not (isinstance(y, (int, float, bool, complex))):
        raise TypeError(
            f"forward must return arrays, got {type(y).__name__}; return xp arrays "
            "(np.asarray(...)) from forward"
        )
    return np.asarray(y)


def _check_same_device(func: Function, xs: Sequence) -> None:
    """Called when forward raised TypeError: explain it if inputs live on two devices."""
    devices = [cuda.device_name(x) for x in xs if x is not None]
    if len(set(devices)) > 1:
        raise TypeError(
            f"{type(func).__name__}: inputs are on different devices ({', '.join(devices)}); "
            "move them to one device with to_gpu() or to_cpu() first"
        )


def _check_finite(func: Function, stage: str, arrays: Sequence, inputs: Sequence) -> None:
    """Anomaly detection: raise at the first function that produced NaN or Inf."""
    for i, a in enumerate(arrays):
        if a is None:
            continue
        if isinstance(a, Variable):  # (an ndarray's .data is its memoryview)
            a = a.data
        if a.dtype.kind not in "fc":
            continue
        xp = cuda.get_array_module(a)
        if not bool(xp.isfinite(a).all()):
            shapes = ", ".join(str(x.shape) for x in inputs)
            what = "output" if stage == "forward" else "gradient for input"
            bad = "NaN" if bool(xp.isnan(a).any()) else "Inf"
            raise FloatingPointError(
                f"{type(func).__name__}.{stage} produced {bad} in {what} {i} of shape "
                f"{a.shape} (input shapes: {shapes}); check the values reaching this "
                "function, or its numerical stability"
            )


def _backward_checked(f: Function, gys: Sequence):
    """``f.backward`` under anomaly detection: when a function called inside it produced
    NaN or Inf, say that it happened in f's backward (the function to look at)."""
    try:
        return f.backward(*gys)
    except FloatingPointError as e:
        shapes = ", ".join(str(x.shape) for x in f.inputs)
        gshapes = ", ".join(str(gy.shape) for gy in gys)
        raise FloatingPointError(
            f"{type(f).__name__}.backward produced NaN or Inf (input shapes: {shapes}; "
            f"output-gradient shapes: {gshapes}): inside it, {e}"
        ) from e


# =========================================================================================
# The backward engine
# =========================================================================================
def _run_backward(root: Variable, retain_grad: bool, create_graph: bool) -> None:
    tracer = backward_tracer_var.get()
    anomaly = detect_anomaly_var.get()
    heappush, heappop = heapq.heappush, heapq.heappop
    heap: list = []
    seen = {root.creator}
    count = 0  # tie-breaker: functions of equal generation in insertion order
    heappush(heap, (-root.creator.generation, count, root.creator))
    while heap:
        f = heappop(heap)[2]
        outputs = f.outputs
        if len(outputs) == 1:
            # The output we reached f through is alive and has a gradient.
            gys = (outputs[0]().grad,)
        else:
            gys = _output_grads(f)
        gxs = _backward_checked(f, gys) if anomaly else f.backward(*gys)
        if type(gxs) is not tuple:
            gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
        inputs = f.inputs
        if len(gxs) != len(inputs):
            raise ValueError(
                f"{type(f).__name__}.backward returned {len(gxs)} gradient(s) for "
                f"{len(inputs)} input(s) (input shapes: "
                f"{', '.join(str(x.shape) for x in inputs)}); return one per input, "
                "None where an input gets no gradient"
            )
        if anomaly:
            _check_finite(f, "backward", gxs, inputs)
        if tracer is not None:
            tracer(f, gys, gxs)
        for x, gx in zip(inputs, gxs):
            if gx is None or not x.requires_grad:
                continue
            if not isinstance(gx, Variable):
                gx = _wrap(gx, False)
            if gx.data.shape != x.data.shape:
                gx = _fit_to_input(f, x, gx)
            creator = x.creator
            if creator is None:
                if create_graph:
                    gx = _GradOf()(gx, x)
            elif creator not in seen:
                seen.add(creator)
                count += 1
                heappush(heap, (-creator.generation, count, creator))
            if x.grad is None:
                x.grad = gx
            elif create_graph:
                x.grad = x.grad + gx
            else:
                prev = x.grad.data if isinstance(x.grad, Variable) else x.grad  # user-set array
                x.grad = _wrap(prev + gx.data, False)
        if not retain_grad:
            for y in outputs:
                y = y()
                if y is not None:
                    y.grad = None


def _output_grads(f: Function) -> list:
    """The gradients of a multi-output f's outputs; zeros for one that received none."""
    gys = []
    for i, ref in enumerate(f.outputs):
        y = ref()
        gy = None if y is None else y.grad
        if gy is None:
            shape, dtype = f._output_meta[i]
            xp = cuda.get_array_module(f.inputs[0].data)
            gy = _wrap(xp.zeros(shape, dtype=dtype), False)
        gys.append(gy)
    return gys


def _fit_to_input(f: Function, x: Variable, gx: Variable) -> Variable:
    """Undo broadcasting: sum gx down to x's shape, or report a wrong-shaped gradient."""
    i = next(k for k, xk in enumerate(f.inputs) if xk is x)
    try:
        broadcastable = np.broadcast_shapes(x.data.shape, gx.data.shape) == gx.data.shape
    except ValueError:
        broadcastable = False
    if not broadcastable:
        raise ValueError(
            f"{type(f).__name__}.backward returned a gradient of shape {gx.data.shape} "
            f"for input {i} of shape {x.data.shape}; a gradient must have its input's "
            "shape (or a shape the input broadcasts to)"
        )
    return _array.sum_to(gx, x.data.shape)


class _GradOf(Function):
    """Identity on a leaf's gradient that also takes the leaf as an input.

    Used with ``create_graph=True`` so that differentiating a gradient always reaches
    the leaf: a derivative that does not depend on x (of a linear function, say) then
    gives zeros instead of leaving ``x.grad`` as None.
    """

    def forward(self, gx, x):
        return gx

    def backward(self, gy):
        x = self.inputs[1]
        xp = cuda.get_array_module(x.data)
        return gy, xp.zeros_like(x.data)  # d/dx of a gradient constant in x is 0


# =========================================================================================
# Arithmetic operators
# =========================================================================================
def _operand(value: Any, like: Variable) -> Variable:
    """Turn the other operand of an operator into a Variable on ``like``'s device.

    Python numbers take ``like``'s dtype, so ``2.0 ** x`` keeps float32 float32 under
    NumPy 2's promotion rules (a 0-d float64 array would promote the result). The
    arithmetic operators keep numbers as numbers instead (``MulConstant`` and co.).
    """
    if isinstance(value, Variable):
        return value
    xp = cuda.get_array_module(like.data)
    if _is_constant(value):
        kind = like.data.dtype.kind
        if kind in "fc" or (kind in "iu" and isinstance(value, (int, np.integer))):
            return _wrap(xp.asarray(value, dtype=like.data.dtype), False)
    return _wrap(as_array(value, xp), False)


class Add(Function):
    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy  # d/dx0 = d/dx1 = 1; the engine sums away broadcast axes


class Sub(Function):
    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, -gy  # d/dx0 = 1, d/dx1 = -1


class Mul(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * x1 if x0.requires_grad else None  # d/dx0 x0*x1 = x1
        gx1 = gy * x0 if x1.requires_grad else None  # d/dx1 x0*x1 = x0
        return gx0, gx1


class Div(Function):
    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1  # d/dx0 x0/x1 = 1/x1
        gx1 = -gx0 * x0 / x1 if x1.requires_grad else None  # d/dx1 x0/x1 = -x0/x1^2
        return gx0, gx1


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy  # d/dx -x = -1


class Pow(Function):
    """x ** c for a constant exponent c (a Python or NumPy number)."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        y = x**self.c
        # NumPy 1.x makes a 0-d float32 array to a Python power float64: keep x's dtype.
        return y.astype(x.dtype, copy=False) if x.dtype.kind == "f" else y

    def backward(self, gy):
        (x,) = self.inputs
        c = self.c
        if c == 0:
            # d/dx x^0 = 0; the general formula would give 0 * inf = NaN at x = 0.
            return gy * 0
        return gy * c * x ** (c - 1)  # d/dx x^c = c x^(c-1)


class PowVariable(Function):
    """x ** y where the exponent is a Variable too."""

    def forward(self, x, y):
        return x**y

    def backward(self, gz):
        from zerograd.functions.array import where
        from zerograd.functions.math import log

        x, y = self.inputs
        z = self.outputs[0]()
        gx = gz * y * x ** (y - 1) if x.requires_grad else None  # d/dx x^y = y x^(y-1)
        gy = None
        if y.requires_grad:
            # d/dy x^y = x^y log x, taken as 0 where x = 0 (as PyTorch does) instead of
            # 0 * -inf = NaN: log is evaluated at 1 there.
            xp = cuda.get_array_module(x.data)
            safe_x = where(x.data == 0, xp.ones_like(x.data), x)
            gy = gz * z * log(safe_x)
        return gx, gy


class _ConstantOperand(Function):
    """Base of ``x op c`` where c is a Python number, kept as a number: no array is made
    for it (no host-to-GPU copy) and it cannot change x's dtype."""

    def __init__(self, c):
        self.c = c

    @staticmethod
    def _keep_dtype(y, x):
        # NumPy 1.x promotes a 0-d float32 array with a Python float to float64.
        if y.dtype != x.dtype and x.dtype.kind == "f":
            return y.astype(x.dtype)
        return y


class AddConstant(_ConstantOperand):
    def forward(self, x):
        return self._keep_dtype(x + self.c, x)

    def backward(self, gy):
        return gy  # d/dx (x + c) = 1


class SubFromConstant(_ConstantOperand):
    def forward(self, x):
        return self._keep_dtype(self.c - x, x)

    def backward(self, gy):
        return -gy  # d/dx (c - x) = -1


class MulConstant(_ConstantOperand):
    def forward(self, x):
        return self._keep_dtype(x * self.c, x)

    def backward(self, gy):
        return gy * self.c  # d/dx cx = c


class DivConstant(_ConstantOperand):
    def forward(self, x):
        return self._keep_dtype(x / self.c, x)

    def backward(self, gy):
        return gy / self.c  # d/dx x/c = 1/c


class DivFromConstant(_ConstantOperand):
    def forward(self, x):
        return self._keep_dtype(self.c / x, x)

    def backward(self, gy):
        (x,) = self.inputs
        y = self.outputs[0]()
        return -gy * y / x  # d/dx c/x = -c/x^2 = -y/x


def _is_constant(value) -> bool:
    """A Python or NumPy real number (not a bool), which operators keep as a number."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def add(x0, x1) -> Variable:
    """x0 + x1, with NumPy broadcasting.

    Example:
        >>> add(Variable(np.array(1.0)), 2.0)
        variable(3.0)
    """
    x0 = as_variable(x0)
    if _is_constant(x1):
        return AddConstant(x1)(x0)
    return Add()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


def sub(x0, x1) -> Variable:
    """x0 - x1."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return AddConstant(-x1)(x0)  # exact: x - c and x + (-c) round alike
    return Sub()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


def rsub(x0, x1) -> Variable:
    """x1 - x0 (the reflected form: ``2.0 - x`` calls ``rsub(x, 2.0)``)."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return SubFromConstant(x1)(x0)
    return Sub()(_operand(x1, x0), x0)


def mul(x0, x1) -> Variable:
    """x0 * x1, elementwise with broadcasting."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return MulConstant(x1)(x0)
    return Mul()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


def div(x0, x1) -> Variable:
    """x0 / x1, elementwise with broadcasting."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return DivConstant(x1)(x0)
    return Div()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


def rdiv(x0, x1) -> Variable:
    """x1 / x0 (the reflected form: ``1.0 / x`` calls ``rdiv(x, 1.0)``)."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return DivFromConstant(x1)(x0)
    return Div()(_operand(x1, x0), x0)


def neg(x) -> Variable:
    """-x."""
    return Neg()(x)


def pow(x, c) -> Variable:
    """x ** c, where c is a constant number or a Variable.

    Example:
        >>> x = Variable(np.array(2.0))
        >>> y = pow(x, 3)
        >>> y.backward()
        >>> y, x.grad
        (variable(8.0), variable(12.0))
    """
    if isinstance(c, Variable):
        x = x if isinstance(x, Variable) else _operand(x, c)
        return PowVariable()(x, c)
    if isinstance(c, (int, float, np.number)):
        return Pow(c)(x)
    x = as_variable(x)
    return PowVariable()(x, _operand(c, x))


# Shape and linear-algebra operators behind Variable's methods live in zerograd.functions,
# which builds on the classes above: import them last.
from zerograd.functions import array as _array  # noqa: E402
from zerograd.functions import linalg as _linalg  # noqa: E402
