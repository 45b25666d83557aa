"""The define-by-run engine: Variable, Function, backward, and the arithmetic operators.

A :class:`Variable` holds an array (``data``) and, after ``backward()``, its gradient
(``grad``). Calling a :class:`Function` on Variables computes the result on plain arrays
(``forward``) and, while backprop is enabled, records itself as the output's ``creator``,
keeping what its ``backward`` needs (its class declares it in ``saves``). The backward
pass walks those records from the output back to the inputs, newest function first,
and asks each function's ``backward`` to turn the output gradient ``gy`` into input
gradients ``gx``: :func:`grad` returns the gradients, ``Variable.backward`` adds them
to the ``grad`` of the Variables you created. See docs/engine.md.

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

import difflib
import functools
import heapq
import weakref
import zlib
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


def as_dtype(y, dtype):
    """``y`` as an array of the floating ``dtype`` that it lost to NumPy 1.x's promotion.

    The one place for the casts that only NumPy 1.x needs: it promotes 0-d arrays by
    value, so a 0-d float32 array combined with a Python float (``x * 0.5``,
    ``x ** 2.0``, ``1 - s``) gives float64 where NumPy 2 keeps float32, and its ufuncs
    return NumPy scalars for 0-d arrays. A formula that mixes arrays with numbers ends
    in ``as_dtype(result, x.dtype)``: a no-op for an array already of that dtype. For
    an integer or boolean ``dtype`` the result keeps NumPy's dtype (``uint8 / 2`` is
    float64 in both versions), as an array.

    Example:
        >>> x = np.array(2.0, dtype=np.float32)
        >>> as_dtype(x * np.float64(0.5), x.dtype).dtype
        dtype('float32')
        >>> u8 = np.ones(2, dtype=np.uint8)
        >>> as_dtype(u8 / 2, u8.dtype).dtype
        dtype('float64')
    """
    if type(y) is _ndarray and y.dtype == dtype:
        return y
    floating = np.dtype(dtype).kind == "f"
    if isinstance(y, np.generic):
        return np.asarray(y, dtype=dtype if floating else None)
    if not floating or y.dtype == dtype:
        return y
    return y.astype(dtype)


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
    v._name = None
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

    __slots__ = ("data", "_name", "grad", "creator", "generation", "requires_grad", "__weakref__")

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
        self._name = name
        self.grad: Variable | None = None
        self.creator: Function | None = None
        self.generation = 0
        self.requires_grad = requires_grad

    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value
        creator = self.creator
        if creator is not None:
            # Its creator remembers it, so that a drawing of the graph names this
            # output even after the Variable itself is gone.
            try:
                names = creator._names
            except AttributeError:
                names = creator._names = {}
            names[_output_index(creator, self)] = value

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
        """Cut the link to the creator: this Variable becomes a leaf.

        Every function that used it, before or after the cut, sends its gradient to it
        and no further: a backward pass stops here (this Variable gets a ``grad``, as a
        leaf does) and reaches nothing behind it, as in DeZero. The graph behind it is
        left as it was; to cut a whole graph (truncated BPTT), use
        :meth:`unchain_backward`.

        Example:
            >>> x = Variable(np.array(3.0))
            >>> h = x * x
            >>> y = h * 2.0
            >>> h.unchain()
            >>> y.backward()
            >>> x.grad is None, h.grad
            (True, variable(2.0))
        """
        creator = self.creator
        if creator is not None:
            _cut(creator, self)
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every link in the graph behind this Variable (for truncated BPTT).

        Every Variable behind this one still alive becomes a leaf, and the functions
        behind it no longer pass gradients on, so that nothing flows past the cut.
        """
        creator = self.creator
        stack = [creator] if creator is not None else []
        seen = set(stack)
        while stack:
            f = stack.pop()
            for e in f._next:
                creator = _edge_creator(e)
                if creator is not None and creator not in seen:
                    seen.add(creator)
                    stack.append(creator)
            f._next = [_NoGrad(shape, None) for shape in input_shapes(f)]
            for ref in list(f.outputs):
                y = ref()
                if y is not None and y.creator is f:
                    y.unchain()  # (so that functions outside this graph stop here too)
        self.unchain()

    # ---- backprop -------------------------------------------------------------------------
    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Compute the gradient of this Variable with respect to every Variable behind it.

        Args:
            retain_grad: keep ``grad`` on intermediate Variables too (by default only
                leaves, the Variables you created, keep theirs).
            create_graph: record the backward pass itself, so that the gradients can be
                differentiated again (higher-order derivatives).

        The pass (the engine of :func:`grad`) is iterative (no recursion limit) and
        processes functions newest generation first, through a heap. It starts from
        ``grad`` when set (by hand, as the book's step 7 does; it must have this
        Variable's shape), else from ones. Gradients add up in the leaves' ``grad``
        across calls, until ``cleargrad()``.

        A ``grad`` of another floating dtype is used in this Variable's dtype (as
        PyTorch does), so that float32 gradients stay float32.

        Raises:
            ValueError: when a ``grad`` set by hand does not have this Variable's shape.
            TypeError: when it is not floating-point and this Variable is.
        """
        if self.grad is None:
            xp = cuda.get_array_module(self.data)
            seed = _wrap(xp.ones_like(self.data), False)
        else:
            seed = _root_gradient("backward", self.grad, self, "the gradient set on it (grad)")
        self.grad = seed
        if self.creator is None:
            return
        token = enable_backprop_var.set(create_graph)
        try:
            leaf_grads, _ = _backprop((self,), (seed,), create_graph, retain_grad)
            for x, gx in leaf_grads.items():
                if create_graph:
                    gx = _GradOf()(gx, x)
                prev = x.grad
                if prev is None:
                    x.grad = gx
                elif create_graph:
                    x.grad = prev + gx
                else:  # a new array: the old one may be shared with another gradient
                    prev = prev.data if isinstance(prev, Variable) else prev  # user-set array
                    x.grad = _wrap(prev + gx.data, False)
        finally:
            enable_backprop_var.reset(token)
        if not retain_grad:
            self.grad = None

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
    # A Python number or a Variable is the commonest other operand: go straight to the
    # Function (backward formulas such as ``gy * cos(x)`` come through here too).
    def __add__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return AddConstant(other)(self)
        if isinstance(other, Variable):
            return Add()(self, other)
        return add(self, other)

    def __radd__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return AddConstant(other)(self)
        return add(self, other)

    def __sub__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return SubConstant(other)(self)
        if isinstance(other, Variable):
            return Sub()(self, other)
        return sub(self, other)

    def __rsub__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return SubFromConstant(other)(self)
        return rsub(self, other)

    def __mul__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return MulConstant(other)(self)
        if isinstance(other, Variable):
            return Mul()(self, other)
        return mul(self, other)

    def __rmul__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return MulConstant(other)(self)
        return mul(self, other)

    def __truediv__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return DivConstant(other)(self)
        if isinstance(other, Variable):
            return Div()(self, other)
        return div(self, other)

    def __rtruediv__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return DivFromConstant(other)(self)
        return rdiv(self, other)

    def __neg__(self):
        return Neg()(self)

    def __pow__(self, other):
        if other.__class__ is float or other.__class__ is int:
            return Pow(other)(self)
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
_weakref = weakref.ref


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
_KEEP_INPUTS = 1
_KEEP_OUTPUTS = 2

# Marks saved state dropped by a pass with retain_graph=False (see zerograd.grad).
_RELEASED = type("_Released", (), {"__repr__": lambda self: "<released>"})()


def _parse_saves(cls) -> tuple[int, tuple]:
    """Check a class's ``saves`` declaration; return (inputs/outputs flags, other names)."""
    saves = cls.saves
    if isinstance(saves, str):
        saves = (saves,)
    if not isinstance(saves, (tuple, list)) or not all(isinstance(s, str) for s in saves):
        raise TypeError(
            f"{cls.__name__}.saves must be a tuple of names, got {cls.saves!r}; e.g. "
            'saves = ("inputs",), saves = ("outputs",) or saves = ()'
        )
    flags = 0
    names = []
    for name in saves:
        if name == "inputs":
            flags |= _KEEP_INPUTS
        elif name == "outputs":
            flags |= _KEEP_OUTPUTS
        elif name.isidentifier() and not difflib.get_close_matches(
            name, ("inputs", "outputs"), cutoff=0.75
        ):
            names.append(name)
        elif name.isidentifier():
            close = difflib.get_close_matches(name, ("inputs", "outputs"), cutoff=0.75)[0]
            raise ValueError(
                f"{cls.__name__}.saves: {name!r} looks like a typo of {close!r} (any other "
                "name is taken for an attribute that forward sets)"
            )
        else:
            raise ValueError(
                f"{cls.__name__}.saves: {name!r} is neither 'inputs', 'outputs' nor the name "
                "of an attribute that forward sets"
            )
    return flags, tuple(names)


class Function:
    """Base class of every differentiable operation.

    Subclasses implement:
        forward(*xs): on arrays (NumPy or CuPy), returning an array or a tuple of them
            (the call then returns a list of Variables; one Variable for a tuple of one).
        backward(*gys): on Variables, returning one gradient per input (a Variable, an
            array, or None where an input gets no gradient). Because it is written with
            Functions, the backward pass is itself differentiable.

    and declare, in the class attribute ``saves``, what their backward reads:

    - ``"inputs"``: ``self.inputs``, the input Variables with their data;
    - ``"outputs"``: ``self.outputs[k]()``, the output Variables with their data;
    - any other name: an attribute that ``forward`` sets (``self.mask``, ``self.col``).

    ``saves = ()`` says backward needs none of them (``x + y``, ``-x``, ``x * 2.0``): the
    engine then keeps no input or output array alive for this function, and a graph
    costs what its backward needs. A class that declares nothing keeps its inputs and
    outputs, as the book's functions expect. The declaration is read when the class
    is created. ``elementwise = True`` says that backward also works on gradients with
    extra leading axes (a stack of gradients, as ``jacobian`` sends), returning input
    gradients with the same leading axes; the engine otherwise feeds such a stack one
    gradient at a time. See docs/engine.md for the contract.

    After a call with backprop enabled the function records its ``generation`` (its
    depth), links to what produced its inputs (the graph the backward pass walks) and,
    in ``outputs``, weak references to its outputs (so that a graph frees itself when
    its result is dropped). ``inputs`` gives the input Variables; for a function that
    does not save them, the live ones where they still exist and data-less stand-ins
    otherwise (enough to walk or draw the graph, not to compute with).

    Example:
        >>> class Double(Function):
        ...     saves = ()   # d/dx 2x needs neither x nor y
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

    # What the engine records on a call with backprop on (slots: small and fast):
    #   generation  depth in the graph
    #   outputs     weak references to the output Variables (a _CutOutputs, which also
    #               names the outputs cut off, once one of them was unchained)
    #   _next       per input, where its gradient goes: the input Variable itself (a
    #               leaf, or one whose data is kept anyway: saved by this function or
    #               by its creator), else (creator, output index, shape, dtype);
    #               _NoGrad once the link is cut (unchain_backward)
    #   _shapes     the outputs' shapes   } multi-output functions only: the zero
    #   _dtypes     the outputs' dtypes   } gradient of an output that got none
    #   _inputs     the input Variables when saved, else None
    #   _saved      the output arrays when saved, else None
    #   _checks     fingerprints of the saved arrays (under detect_anomaly only)
    #   _names      names given to its outputs, {index: name} (only once one is named)
    #   _standins   the stand-ins ``inputs`` made for inputs not kept (only once asked)
    __slots__ = (
        "generation", "outputs", "_next", "_shapes", "_dtypes", "_inputs", "_saved",
        "_checks", "_names", "_standins", "__weakref__",
    )

    saves: tuple = ("inputs", "outputs")
    elementwise: bool = False
    _keep = _KEEP_INPUTS | _KEEP_OUTPUTS
    _saved_names: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._keep, cls._saved_names = _parse_saves(cls)

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
        except (TypeError, ValueError) as e:  # NumPy's: say which function, on what
            raise _forward_error(self, e, inputs) from e

        record = False
        if enable_backprop_var.get():
            for x in inputs:
                if x.requires_grad:
                    record = True
                    break
        if type(ys) is tuple:
            return self._several_outputs(inputs, ys, record)

        # One output: _wrap and _link inlined (this is the path of almost every call).
        y = _new_variable(Variable)
        y.data = ys if type(ys) is _ndarray else _output_array(ys)
        y._name = None
        y.grad = None
        if record:
            keep = self._keep
            generation = 0
            for x in inputs:
                if x.generation > generation:
                    generation = x.generation
            self.generation = generation
            if keep & 1:  # _KEEP_INPUTS: link to the saved Variables themselves
                self._inputs = self._next = inputs
            else:
                self._inputs = None
                if len(inputs) == 1:
                    x = inputs[0]
                    creator = x.creator
                    if creator is None or creator._saved is not None:
                        self._next = (x,)
                    elif len(creator.outputs) == 1:
                        data = x.data
                        self._next = ((creator, 0, data.shape, data.dtype),)
                    else:
                        self._next = (_edge(x),)
                else:
                    self._next = tuple([_edge(x) for x in inputs])
            y.creator = self
            y.generation = generation + 1
            y.requires_grad = True
            self.outputs = [_weakref(y)]
            self._saved = (y.data,) if keep & 2 else None  # _KEEP_OUTPUTS
        else:
            y.creator = None
            y.generation = 0
            y.requires_grad = False
        if detect_anomaly_var.get():
            self._check_forward(inputs, [y], record)
        return y

    def _several_outputs(self, inputs, ys: tuple, record: bool):
        """The rest of ``__call__`` for a forward that returned a tuple: a list of the
        output Variables, or the Variable itself for a tuple of one (as DeZero)."""
        outputs = [_wrap(_output_array(y), record) for y in ys]
        if record:
            keep = self._keep
            generation = 0
            for x in inputs:
                if x.generation > generation:
                    generation = x.generation
            self.generation = generation
            if keep & 1:
                self._inputs = self._next = inputs
            else:
                self._inputs = None
                self._next = tuple([_edge(x) for x in inputs])
            for y in outputs:
                y.creator = self
                y.generation = generation + 1
            self.outputs = [_weakref(y) for y in outputs]
            self._shapes = tuple([y.data.shape for y in outputs])
            self._dtypes = tuple([y.data.dtype for y in outputs])
            self._saved = tuple([y.data for y in outputs]) if keep & 2 else None
        if detect_anomaly_var.get():
            self._check_forward(inputs, outputs, record)
        return outputs[0] if len(outputs) == 1 else outputs

    def _check_forward(self, inputs, outputs: list, record: bool) -> None:
        """Under detect_anomaly: outputs finite; fingerprints of what was saved."""
        _check_finite(self, "forward", [y.data for y in outputs], [x.shape for x in inputs])
        if record:
            self._checks = _fingerprints(self)

    def forward(self, *xs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys):
        raise NotImplementedError(
            f"{type(self).__name__}.backward is not implemented: this function is not "
            "differentiable"
        )

    @property
    def inputs(self) -> tuple:
        """The input Variables: with their data when this function saves its inputs;
        otherwise the live ones, and data-less stand-ins for those that are gone."""
        try:
            xs = self._inputs
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no inputs: it was not called with backprop on "
                "(a call under no_grad, or on inputs that need no gradient, records nothing)"
            ) from None
        if xs is None or xs is _RELEASED:
            return tuple([_input_standin(self, k, e) for k, e in enumerate(self._next)])
        return xs

    @inputs.setter
    def inputs(self, value) -> None:
        self._inputs = tuple(value)

    def __repr__(self) -> str:
        generation = getattr(self, "generation", 0)
        return f"<{type(self).__name__} generation={generation}>"


class _NoGrad:
    """The link recorded for an input that needs no gradient: only what it looked like."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = shape
        self.dtype = dtype


def _edge(x: Variable):
    """The link a function that does not save its inputs records for input x."""
    creator = x.creator
    if creator is None:
        # A leaf: its gradient goes to the Variable itself (or nowhere, for a constant:
        # kept too, as a graph's constants are part of what it computes, for exporters).
        return x
    if creator._saved is not None:
        return x  # its creator keeps x's data for its own backward anyway
    data = x.data
    if len(creator.outputs) == 1:
        return (creator, 0, data.shape, data.dtype)
    return (creator, _output_index(creator, x), data.shape, data.dtype)


def _edge_creator(e):
    """The function a link leads to (None for a leaf or an input needing no gradient)."""
    if e.__class__ is tuple:
        if e[0].outputs.__class__ is list:
            return e[0]
        e = _past_cut(e)
        if e is None:
            return None
        if e.__class__ is tuple:
            return e[0]
    if e.__class__ is _NoGrad:
        return None
    return e.creator


class _CutOutputs(list):
    """``outputs`` of a function once one of its outputs was unchained: the weak
    references as before, and ``cut``, the indices of the outputs cut off."""

    __slots__ = ("cut",)


def _cut(f: Function, y: Variable) -> None:
    """Record on f that its output y was unchained: the links of functions that used y
    and did not keep it lead to (f, index), and must stop at y (see _past_cut)."""
    outputs = getattr(f, "outputs", None)
    if outputs is None:
        return  # a creator set by hand on a function never called
    for k, ref in enumerate(outputs):
        if ref() is y:
            if outputs.__class__ is not _CutOutputs:
                outputs = f.outputs = _CutOutputs(outputs)
                outputs.cut = set()
            outputs.cut.add(k)
            return


def _past_cut(e: tuple):
    """The link to use instead of e, a link (creator, index, ...) to a function one of
    whose outputs was unchained: e itself when output index is not cut; else the
    Variable cut off (a leaf, unless given a creator since), or None once it is gone."""
    creator, i = e[0], e[1]
    outputs = creator.outputs
    if i not in outputs.cut:
        return e
    y = outputs[i]()
    if y is None or y.creator is creator:  # (one made again from a saved array)
        return None
    return y


def _output_index(f: Function, y: Variable) -> int:
    """Which output of f the Variable y is (0 when y was attached by hand)."""
    for k, ref in enumerate(f.outputs):
        if ref() is y:
            return k
    return 0


def _saved_output(f: Function, k: int) -> Variable:
    """Output k of f, a function that saved its outputs: the live Variable, or one made
    again from the saved array (f its creator), registered as that output from now on."""
    y = f.outputs[k]()
    if y is None:
        y = _wrap(f._saved[k], True)
        y.creator = f
        y.generation = f.generation + 1
        y._name = getattr(f, "_names", {}).get(k)
        f.outputs[k] = _weakref(y)
    return y


class _StandIn(Variable):
    """A Variable whose array no function kept: its shape, dtype, name and creator are
    known (enough to walk or draw the graph), its ``data`` is None."""

    __slots__ = ("_shape", "_dtype")

    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def dtype(self):
        return self._dtype

    def __len__(self) -> int:
        return self._shape[0]

    def __repr__(self) -> str:
        return f"variable(<not kept: shape {self._shape}, {self._dtype}>)"


def _input_standin(f: Function, k: int, edge) -> Variable:
    """Input k of f, which did not save its inputs: the live Variable when there is one,
    else a _StandIn. f holds the stand-ins it made, so that they stay the same objects
    (and the creator's outputs) for as long as f lives."""
    if edge.__class__ is not tuple and edge.__class__ is not _NoGrad:
        return edge  # the Variable itself
    if edge.__class__ is tuple:
        creator, i, shape, dtype = edge
        y = creator.outputs[i]()
        if y is not None:
            return y
        if creator.outputs.__class__ is not list and i in creator.outputs.cut:
            creator = None  # unchained, then gone: a stand-in leaf
    else:
        creator, shape, dtype = None, edge.shape, edge.dtype
    y = _new_variable(_StandIn)
    y.data, y._name, y.grad, y.requires_grad = None, None, None, creator is not None
    y.creator, y.generation = creator, 0
    y._shape, y._dtype = shape, dtype
    if creator is not None:
        y.generation = creator.generation + 1
        y._name = getattr(creator, "_names", {}).get(i)
        creator.outputs[i] = _weakref(y)
    try:
        kept = f._standins
    except AttributeError:
        kept = f._standins = {}
    kept[k] = y
    return y


def input_shapes(f: Function) -> tuple:
    """The shapes of a recorded function's inputs, whether or not it saved them.

    Example:
        >>> x = Variable(np.ones((2, 3)))
        >>> input_shapes((x * 2.0).creator)
        ((2, 3),)
    """
    xs = f._inputs
    if xs is not None and xs is not _RELEASED:
        return tuple([x.shape for x in xs])
    shapes = []
    for e in f._next:
        if e.__class__ is tuple:
            shapes.append(e[2])
        elif e.__class__ is _NoGrad:
            shapes.append(e.shape)
        else:
            shapes.append(e.data.shape)
    return tuple(shapes)


def output_meta(f: Function) -> list:
    """``(shape, dtype)`` of each output of a recorded function, alive or not.

    For graph walkers: an output that no function kept may have no Variable left,
    nor any array.

    Raises:
        AttributeError: for the one output of a function whose output Variable is gone
            and was never seen by a walk (``inputs`` of its users makes a stand-in).

    Example:
        >>> x = Variable(np.ones((2, 3), dtype=np.float32))
        >>> y = x * 2.0
        >>> output_meta(y.creator)
        [((2, 3), dtype('float32'))]
    """
    refs = f.outputs
    out = []
    for k, ref in enumerate(refs):
        y = ref()
        if y is not None:
            out.append((tuple(y.shape), y.dtype))
        elif len(refs) > 1:
            out.append((f._shapes[k], f._dtypes[k]))
        elif f._saved is not None and f._saved is not _RELEASED:
            out.append((f._saved[0].shape, f._saved[0].dtype))
        else:
            raise AttributeError(
                f"{type(f).__name__}: its output is gone and no function kept it"
            )
    return out


def saved_arrays(f: Function) -> list:
    """What a recorded function keeps alive for its backward, as ``(what, array)`` pairs.

    ``what`` is ``"input k"``, ``"output k"`` or the name of a saved attribute (whose
    value may be an array or a tuple/list of arrays).

    Example:
        >>> x = Variable(np.ones(3))
        >>> [what for what, _ in saved_arrays((x * x).creator)]
        ['input 0', 'input 1']
        >>> saved_arrays((x * 2.0).creator)
        []
    """
    out = []
    xs = f._inputs
    if xs is not None and xs is not _RELEASED:
        for k, x in enumerate(xs):
            out.append((f"input {k}", x.data))
    saved = f._saved
    if saved is not None and saved is not _RELEASED:
        for k, y in enumerate(saved):
            out.append((f"output {k}", y))
    for name in type(f)._saved_names:
        value = getattr(f, name, None)
        if isinstance(value, (tuple, list)):
            for k, a in enumerate(value):
                if hasattr(a, "nbytes"):
                    out.append((f"{name}[{k}]", a))
        elif hasattr(value, "nbytes"):
            out.append((name, value))
    return [(what, a) for what, a in out if a is not None]


def graph_functions(outputs) -> list:
    """Every Function in the graph behind ``outputs`` (a Variable or a sequence of them),
    each once, newest generation first (the order a backward pass processes them).

    Example:
        >>> x = Variable(np.array(2.0))
        >>> [type(f).__name__ for f in graph_functions(-(x * 3.0))]
        ['Neg', 'MulConstant']
    """
    if isinstance(outputs, Variable):
        outputs = [outputs]
    stack = [y.creator for y in outputs if y.creator is not None]
    seen = set(stack)
    found = []
    while stack:
        f = stack.pop()
        found.append(f)
        for e in f._next:
            creator = _edge_creator(e)
            if creator is not None and creator not in seen:
                seen.add(creator)
                stack.append(creator)
    found.sort(key=lambda f: -f.generation)
    return found


def _release(f: Function) -> None:
    """Drop what f saved for its backward (a pass with retain_graph=False is done).

    ``_inputs`` becomes the mark that the engine checks; a function that saved
    nothing stays usable, since its backward needs nothing.
    """
    xs = f._inputs
    if xs is None and f._saved is None and not type(f)._saved_names:
        return
    if xs is not None and xs is not _RELEASED:
        f._next = [_bypass(e) for e in f._next]  # no longer hold the inputs' data
    f._inputs = _RELEASED
    if f._saved is not None:
        f._saved = _RELEASED
    for name in type(f)._saved_names:
        if hasattr(f, name):
            setattr(f, name, _RELEASED)


def _bypass(e):
    """A link that does not hold a computed input's Variable (nor its data)."""
    if e.__class__ is tuple or e.__class__ is _NoGrad:
        return e
    creator = e.creator
    if creator is not None:
        i = 0 if len(creator.outputs) == 1 else _output_index(creator, e)
        return (creator, i, e.data.shape, e.data.dtype)
    if e.requires_grad:
        return e
    return _NoGrad(e.data.shape, e.data.dtype)


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


def _forward_error(func: Function, error: Exception, inputs: Sequence) -> Exception:
    """The TypeError or ValueError that ``func.forward`` raised (NumPy's, typically a
    shape that does not broadcast or a dtype a ufunc refuses) as one of the same kind
    that names the Function and the shapes and dtypes of its inputs. (Only on the error
    path: ``__call__`` pays nothing for it until a forward fails.)"""
    if isinstance(error, TypeError):
        _check_same_device(func, [x.data for x in inputs])
    described = ", ".join(
        "None" if x.data is None else f"{x.data.dtype} {tuple(x.data.shape)}" for x in inputs
    )
    kind = TypeError if isinstance(error, TypeError) else ValueError
    return kind(f"{type(func).__name__}: {str(error).rstrip()} (inputs: {described})")


def names_errors(f):
    """Decorate a public function built on Functions so that the TypeError or ValueError
    they raise names it too: ``add: Add: operands could not be broadcast ...``.

    The handler costs nothing until an error passes through it.

    Example:
        >>> @names_errors
        ... def double(x):
        ...     return MulConstant(2.0)(x)
        >>> try:
        ...     double(np.array(["a"]))
        ... except TypeError as e:
        ...     print(str(e)[:30])
        double: MulConstant: ufunc 'mu
    """
    name = f.__name__

    @functools.wraps(f)
    def named(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (TypeError, ValueError) as e:
            if str(e).startswith(f"{name}:"):
                raise
            kind = TypeError if isinstance(e, TypeError) else ValueError
            raise kind(f"{name}: {e}") from e

    return named


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
            shapes = ", ".join(str(s) for s in inputs)
            what = "output" if stage == "forward" else "gradient for input"
            bad = "NaN" if bool(xp.isnan(a).any()) else "Inf"
            raise FloatingPointError(
                f"{type(func).__name__}.{stage} produced {bad} in {what} {i} of shape "
                f"{a.shape} (input shapes: {shapes}); check the values reaching this "
                "function, or its numerical stability"
            )


# ---- anomaly detection: saved arrays changed in place ----------------------------------
def _checksum(a) -> int:
    """A fingerprint of an array's bytes (host copy for a GPU array)."""
    a = np.ascontiguousarray(cuda.as_numpy(a))
    return zlib.crc32(a.view(np.uint8).reshape(-1)) if a.size else 0


def _fingerprints(f: Function) -> list:
    """For each array f saved: (what, the array object, its checksum); see _check_saved."""
    return [(what, a, _checksum(a)) for what, a in saved_arrays(f)]


def _check_saved(f: Function) -> None:
    """Under detect_anomaly: raise if an array f saved at forward time was changed since
    (edited in place, or the Variable's data replaced), which would silently give a
    wrong gradient."""
    checks = getattr(f, "_checks", None)
    if not checks:
        return
    xs = f._inputs if f._inputs is not _RELEASED else None
    for what, a, crc in checks:
        variable = None
        if what.startswith("input ") and xs is not None:
            variable = xs[int(what[6:])]
        elif what.startswith("output "):
            variable = f.outputs[int(what[7:])]()
        replaced = variable is not None and variable.data is not a
        if not replaced and _checksum(a) == crc:
            continue
        name = f"'{variable.name}'" if variable is not None and variable.name else "(unnamed)"
        what_kind = "Variable" if variable is not None else "array"
        change = "had its data replaced" if replaced else "was modified in place"
        raise RuntimeError(
            f"{type(f).__name__}.backward: {what} of {type(f).__name__}, a {what_kind} "
            f"{name} of shape {tuple(a.shape)} and dtype {a.dtype}, {change} after "
            f"{type(f).__name__} saved it for backward (generation {f.generation}); its "
            "gradient would be wrong. Change data only after backward(), or compute "
            "the new value out of place (x = x * 2.0, not x.data *= 2.0)"
        )


# =========================================================================================
# The backward engine
# =========================================================================================
def _root_gradient(op: str, g, y: Variable, what: str) -> Variable:
    """Check a gradient given for an output (``y.grad`` set by hand, or grad_outputs)."""
    if isinstance(g, Variable):
        data = g.data
    elif isinstance(g, _ndarray) or cuda.is_cupy_array(g):
        data = g
        g = _wrap(g, False)
    else:
        raise TypeError(
            f"{op}: {what} must be an array or a Variable, got {type(g).__name__}; e.g. "
            f"np.ones_like(y.data)"
        )
    if data is None or data.shape != y.data.shape:
        shape = None if data is None else data.shape
        raise ValueError(
            f"{op}: {what} has shape {shape}, but the output it is the gradient of has "
            f"shape {y.data.shape}; give a gradient of exactly the output's shape (a "
            "shape that merely broadcasts is not summed for you)"
        )
    return _in_output_dtype(op, g, y, what)


def _in_output_dtype(op: str, g: Variable, y: Variable, what: str) -> Variable:
    """A root gradient in the dtype of its floating output y, as PyTorch casts it: a
    float64 gradient must not turn a float32 graph's gradients into float64."""
    dtype, gdtype = y.data.dtype, g.data.dtype
    if gdtype == dtype or dtype.kind != "f":
        return g
    if gdtype.kind != "f":
        raise TypeError(
            f"{op}: {what} has dtype {gdtype}, but the output it is the gradient of is "
            f"{dtype}; give a floating-point gradient (e.g. np.ones_like(y.data)), which "
            "is used in the output's dtype"
        )
    return _array._as_type(g, dtype)  # (recorded when g is part of a graph itself)


def _add(a: Variable, b: Variable, create_graph: bool) -> Variable:
    """Sum of two gradient contributions (recorded only for create_graph)."""
    if create_graph:
        return a + b
    return _wrap(a.data + b.data, False)


def _backprop(
    roots: Sequence,
    seeds: Sequence,
    create_graph: bool,
    retain_grad: bool = False,
    leaves=None,
    needed=None,
    holders=frozenset(),
    release: bool = False,
    batch: int = 0,
):
    """The backward pass: propagate ``seeds`` (Variables, one per root) from ``roots``.

    Functions are processed newest generation first, each once, through a heap;
    gradients travel along the recorded links and are kept per function (not on the
    Variables) until it is processed. Returns ``(leaf_grads, pending)``: a dict from
    each leaf Variable reached to its gradient, and the gradients still pending per
    function (those of ``holders``, the creators of intermediate targets).

    Args:
        leaves: only these leaves collect gradients (None: every leaf needing one).
        needed: only these functions run their backward (None: all reached).
        holders: functions whose output gradients are wanted: kept in ``pending``.
        retain_grad: also set ``grad`` on the intermediate Variables still alive.
        release: drop each processed function's saved arrays (retain_graph=False).
        batch: 0, or the length of a leading axis of independent gradients that every
            gradient carries (``is_grads_batched``).
    """
    tracer = backward_tracer_var.get()
    anomaly = detect_anomaly_var.get()
    heappush, heappop = heapq.heappush, heapq.heappop
    heap: list = []
    # The gradients that reached each function's outputs, until it is processed: the
    # gradient itself for a single-output function, a list for a multi-output one.
    pending: dict = {}
    leaf_grads: dict = {}
    count = 0  # tie-breaker: functions of equal generation in insertion order
    for y, g in zip(roots, seeds):
        creator = y.creator
        if creator is None:
            if y.requires_grad and (leaves is None or y in leaves):
                prev = leaf_grads.get(y)
                leaf_grads[y] = g if prev is None else _add(prev, g, create_graph)
            continue
        if needed is not None and creator not in needed and creator not in holders:
            continue
        if creator not in pending:
            if needed is None or creator in needed:
                count += 1
                heappush(heap, (-creator.generation, count, creator))
        _accumulate(pending, creator, _output_index(creator, y), g, create_graph)

    special = retain_grad or anomaly or batch or tracer is not None
    filtered = needed is not None
    released, no_grad, variable = _RELEASED, _NoGrad, Variable  # locals: the loop is hot
    while heap:
        f = heappop(heap)[2]
        gys = pending[f] if holders and f in holders else pending.pop(f)
        if f._inputs is released:
            raise RuntimeError(
                f"{type(f).__name__}.backward: the arrays it saved for backward were "
                "released by an earlier pass with retain_graph=False; pass "
                "retain_graph=True to that call to backpropagate through the graph again"
            )
        if gys.__class__ is list:
            if None in gys:
                gys = _zero_fill(f, gys, batch)
        else:
            gys = (gys,)
        # backward reads the outputs it saved as Variables: make again any that is gone
        # (unused, or held only by a function this pass already released)
        if f._saved is not None and (len(gys) > 1 or f.outputs[0]() is None):
            held = [_saved_output(f, i) for i in range(len(gys))]  # noqa: F841
        if special:
            gxs = _backward_special(f, gys, roots, retain_grad, anomaly, tracer, batch,
                                    create_graph)
        else:
            gxs = f.backward(*gys)
            if type(gxs) is not tuple:
                gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
        edges = f._next
        if len(gxs) != len(edges):
            raise ValueError(
                f"{type(f).__name__}.backward returned {len(gxs)} gradient(s) for "
                f"{len(edges)} input(s) (input shapes: "
                f"{', '.join(str(s) for s in input_shapes(f))}); return one per input, "
                "None where an input gets no gradient"
            )
        for e, gx in zip(edges, gxs):
            if gx is None:
                continue
            cls = e.__class__
            if cls is tuple and e[0].outputs.__class__ is not list:
                e = _past_cut(e)  # an output of e's creator was unchained
                if e is None:
                    continue
                cls = e.__class__
            if cls is tuple:
                creator, i, shape, _ = e
                single = i == 0 and len(creator.outputs) == 1
            elif cls is no_grad:
                continue
            else:  # a Variable: a leaf, or computed (then its creator is read now)
                creator = e.creator
                if creator is None:
                    if e.requires_grad and (leaves is None or e in leaves):
                        _to_leaf(f, e, gx, leaf_grads, create_graph, batch)
                    continue
                single = len(creator.outputs) == 1
                i = 0 if single else _output_index(creator, e)
                shape = e.data.shape
            if filtered and creator not in needed and creator not in holders:
                continue
            if not isinstance(gx, variable):
                gx = _wrap(gx, False)
            if batch:
                shape = (batch,) + shape
            if gx.data.shape != shape:
                gx = _fit_to_input(f, e, shape, gx, batch)
            if single:
                prev = pending.get(creator)
                if prev is None:
                    pending[creator] = gx
                    if not filtered or creator in needed:
                        count += 1
                        heappush(heap, (-creator.generation, count, creator))
                else:
                    pending[creator] = _add(prev, gx, create_graph)
            else:
                if creator not in pending and (not filtered or creator in needed):
                    count += 1
                    heappush(heap, (-creator.generation, count, creator))
                _accumulate(pending, creator, i, gx, create_graph)
        if release:
            _release(f)
    return leaf_grads, pending


def _backward_special(f, gys, roots, retain_grad, anomaly, tracer, batch, create_graph):
    """f's backward when the pass does more than compute: retain_grad, anomaly checks,
    a tracer, batched gradients. Returns the input gradients as a tuple."""
    if retain_grad:
        _retain(f, gys, roots)
    if anomaly:
        _check_saved(f)
    if batch and not f.elementwise:
        gxs = _backward_rows(f, gys, batch, create_graph)
    elif anomaly:
        gxs = _backward_checked(f, gys)
    else:
        gxs = f.backward(*gys)
    if type(gxs) is not tuple:
        gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
    if len(gxs) == len(f._next):  # (a wrong count is reported by the caller)
        if anomaly:
            _check_finite(f, "backward", gxs, input_shapes(f))
        if tracer is not None:
            tracer(f, gys, gxs)
    return gxs


def _accumulate(pending: dict, f: Function, i: int, g: Variable, create_graph: bool) -> None:
    """Add g to the gradient pending for output i of f."""
    n = len(f.outputs)
    if n == 1:
        prev = pending.get(f)
        pending[f] = g if prev is None else _add(prev, g, create_graph)
        return
    slot = pending.get(f)
    if slot is None:
        slot = pending[f] = [None] * n
    slot[i] = g if slot[i] is None else _add(slot[i], g, create_graph)


def _to_leaf(f, x, gx, leaf_grads: dict, create_graph: bool, batch: int) -> None:
    """Add gx, the gradient f returned for its input x (a leaf), to x's in this pass."""
    if not isinstance(gx, Variable):
        gx = _wrap(gx, False)
    shape = x.data.shape
    if batch:
        shape = (batch,) + shape
    if gx.data.shape != shape:
        gx = _fit_to_input(f, x, shape, gx, batch)
    prev = leaf_grads.get(x)
    leaf_grads[x] = gx if prev is None else _add(prev, gx, create_graph)


def _zero_fill(f: Function, gys: list, batch: int) -> list:
    """The gradients of a multi-output f's outputs; zeros for one that received none."""
    out = []
    for i, gy in enumerate(gys):
        if gy is None:
            shape = f._shapes[i]
            if batch:
                shape = (batch,) + shape
            like = next(g for g in gys if g is not None).data
            xp = cuda.get_array_module(like)
            gy = _wrap(xp.zeros(shape, dtype=f._dtypes[i]), False)
        out.append(gy)
    return out


def _retain(f: Function, gys: Sequence, roots: Sequence) -> None:
    """retain_grad: give f's live outputs (but the roots, which keep the gradient they
    started from) the gradient of this pass, added to what they had."""
    for ref, gy in zip(f.outputs, gys):
        y = ref()
        if y is None or y.creator is not f or any(y is r for r in roots):
            continue  # (gone, unchained, or a root)
        y.grad = gy if y.grad is None else y.grad + gy


def _backward_checked(f: Function, gys: Sequence):
    """``f.backward`` under anomaly detection: when a function called inside it produced
    NaN or Inf, say that it happened in f's backward (the function to look at)."""
    try:
        return f.backward(*gys)
    except FloatingPointError as e:
        shapes = ", ".join(str(s) for s in input_shapes(f))
        gshapes = ", ".join(str(gy.shape) for gy in gys)
        raise FloatingPointError(
            f"{type(f).__name__}.backward produced NaN or Inf (input shapes: {shapes}; "
            f"output-gradient shapes: {gshapes}): inside it, {e}"
        ) from e


def _fit_to_input(f: Function, edge, shape: tuple, gx: Variable, batch: int) -> Variable:
    """Undo broadcasting: sum gx down to its input's shape, or report a wrong shape.

    ``edge`` is f's link for that input (or its index); with ``batch``, ``shape``
    starts with the batch axis, which gx must keep.
    """
    gshape = gx.data.shape
    xshape, inner = (shape[1:], gshape[1:]) if batch else (shape, gshape)
    try:
        fits = np.broadcast_shapes(xshape, inner) == inner
    except ValueError:
        fits = False
    if batch and (not gshape or gshape[0] != batch):
        fits = False
    if not fits:
        k = edge if isinstance(edge, int) else next(
            j for j, e in enumerate(f._next) if e is edge
        )
        raise ValueError(
            f"{type(f).__name__}.backward returned a gradient of shape {gshape} "
            f"for input {k} of shape {xshape}; a gradient must have its input's "
            "shape (or a shape the input broadcasts to)"
        )
    if not batch:
        return _array.sum_to(gx, shape)
    # Keep the batch axis: sum the broadcast axes behind it, then drop the added ones.
    lead = len(inner) - len(xshape)
    axes = tuple(range(1, 1 + lead)) + tuple(
        1 + lead + j for j, n in enumerate(xshape) if n == 1 and inner[lead + j] != 1
    )
    summed = _array.sum(gx, axes, keepdims=True) if axes else gx
    return _array.reshape(summed, shape)


def _backward_rows(f: Function, gys: Sequence, batch: int, create_graph: bool) -> tuple:
    """Batched gradients through a function whose backward takes one at a time: call it
    once per row and stack the results (a Function without ``elementwise``)."""
    rows = []
    for r in range(batch):
        if create_graph:
            row = [gy[r] for gy in gys]
        else:
            row = [_wrap(gy.data[r], False) for gy in gys]
        gxs = f.backward(*row)
        if type(gxs) is not tuple:
            gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
        if len(gxs) != len(f._next):
            return gxs  # reported by the caller
        rows.append(gxs)
    shapes = input_shapes(f)
    out = []
    for k, shape in enumerate(shapes):
        column = [row[k] for row in rows]
        if all(g is None for g in column):
            out.append(None)
            continue
        like = next(g for g in column if g is not None)
        like = like.data if isinstance(like, Variable) else like
        xp = cuda.get_array_module(like)
        fitted = []
        for g in column:
            if g is None:
                g = xp.zeros(shape, dtype=like.dtype)
            if not isinstance(g, Variable):
                g = _wrap(g, False)
            if g.data.shape != shape:
                g = _fit_to_input(f, k, shape, g, 0)  # k: the input's index
            fitted.append(g)
        if create_graph:
            out.append(_array.stack(fitted))
        else:
            out.append(_wrap(xp.stack([g.data for g in fitted]), False))
    return tuple(out)


def _plan(roots: Sequence, targets: Sequence) -> tuple[set, set, set]:
    """Which functions a pass from ``roots`` must run to reach ``targets``.

    Returns ``(needed, holders, leaves)``: the functions on a path from a root to a
    target, the creators of the intermediate targets, and the leaf targets.
    """
    leaves = set()
    target_edges = set()
    for x in targets:
        if x.creator is None:
            leaves.add(x)
        else:
            target_edges.add((x.creator, _output_index(x.creator, x)))
    holders = {c for c, _ in target_edges}
    reached = graph_functions(list(roots))
    needed = set()
    for f in reversed(reached):  # creators (older generations) before their users
        for e in f._next:
            if e.__class__ is tuple and e[0].outputs.__class__ is not list:
                e = _past_cut(e)  # an output of e's creator was unchained
                if e is None:
                    continue
            creator = _edge_creator(e)
            if creator is None:
                if e in leaves:
                    needed.add(f)
                    break
            elif creator in needed or (creator, _edge_index(e)) in target_edges:
                needed.add(f)
                break
    return needed, holders, leaves


def _edge_index(e) -> int:
    """Which output of its creator a link leads to."""
    if e.__class__ is tuple:
        return e[1]
    creator = e.creator
    return 0 if len(creator.outputs) == 1 else _output_index(creator, e)


def _as_sequence(op: str, value, what: str) -> list:
    if isinstance(value, Variable):
        return [value]
    if isinstance(value, (tuple, list)) and all(isinstance(v, Variable) for v in value):
        return list(value)
    raise TypeError(
        f"{op}: {what} must be a Variable or a sequence of Variables, got "
        f"{type(value).__name__}; wrap arrays with Variable(...)"
    )


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    is_grads_batched: bool = False,
) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, returned, not stored.

    The engine's reverse mode as a function, in the shape of PyTorch's
    ``torch.autograd.grad``: no Variable's ``grad`` is read or written, and the pass
    runs only the functions that lie between the outputs and the inputs.

    Args:
        outputs: a Variable or a sequence of them (the functions to differentiate).
        inputs: a Variable or a sequence of them: leaves or intermediate results, each
            with ``requires_grad``.
        grad_outputs: the gradient to start from for each output (arrays or Variables
            of the output's shape, used in a floating output's dtype; a single one for a
            single output); None, or None for an output, means ones (the gradient of
            the sum of its elements).
        create_graph: record the pass, so that the returned gradients can be
            differentiated again (higher-order derivatives).
        retain_graph: keep the arrays the functions saved for backward, so that the
            graph can be backpropagated again. Defaults to ``create_graph``; with
            False a later pass through the same functions raises. (``backward()``
            always keeps them.)
        is_grads_batched: the first axis of every ``grad_outputs`` entry is a batch of
            independent gradients; each result then has that leading axis too (one
            pass computes several vector-Jacobian products: see ``jacobian``).

    Returns:
        A tuple with one gradient (a Variable) per input. An input that the outputs do
        not depend on gets zeros, never None.

    Raises:
        TypeError: for outputs or inputs that are not Variables, or a gradient in
            ``grad_outputs`` that is not floating-point for a floating output.
        ValueError: for an input without ``requires_grad`` (no gradient flows to it),
            or a gradient in ``grad_outputs`` of a shape other than its output's.

    Example:
        >>> x = Variable(np.array([1.0, 2.0]))
        >>> y = (x ** 3).sum()
        >>> (gx,) = grad(y, x, create_graph=True)
        >>> gx, x.grad
        (variable([ 3. 12.]), None)
        >>> grad(gx.sum(), x)   # d/dx sum(3 x^2) = 6 x
        (variable([ 6. 12.]),)
    """
    ys = _as_sequence("grad", outputs, "outputs")
    xs = _as_sequence("grad", inputs, "inputs")
    if grad_outputs is None:
        given = [None] * len(ys)
    elif isinstance(grad_outputs, (tuple, list)):
        given = list(grad_outputs)
    else:
        given = [grad_outputs]
    if len(given) != len(ys):
        raise ValueError(
            f"grad: {len(ys)} output(s) but {len(given)} grad_outputs; give one per "
            "output (None for ones)"
        )
    batch = 0
    seeds = []
    for k, (y, g) in enumerate(zip(ys, given)):
        if g is None:
            if is_grads_batched:
                raise ValueError(
                    "grad: is_grads_batched=True needs a batch of gradients for every "
                    f"output; grad_outputs[{k}] is None"
                )
            xp = cuda.get_array_module(y.data)
            seeds.append(_wrap(xp.ones_like(y.data), False))
            continue
        if is_grads_batched:
            seed, n = _batched_root_gradient(g, y, k)
            if batch and n != batch:
                raise ValueError(
                    f"grad: batched grad_outputs of different batch sizes ({batch} and {n})"
                )
            batch = n
            seeds.append(seed)
        else:
            seeds.append(_root_gradient("grad", g, y, f"grad_outputs[{k}]"))
    for k, x in enumerate(xs):
        if not x.requires_grad:
            raise ValueError(
                f"grad: inputs[{k}] has requires_grad=False, so no gradient flows to it; "
                "create it with Variable(data) (requires_grad=True is the default)"
            )
    if retain_graph is None:
        retain_graph = create_graph
    needed, holders, leaves = _plan(ys, xs)
    token = enable_backprop_var.set(create_graph)
    try:
        leaf_grads, pending = _backprop(
            ys, seeds, create_graph, leaves=leaves, needed=needed, holders=holders,
            release=not retain_graph, batch=batch,
        )
        out = []
        for x in xs:
            creator = x.creator
            if creator is None:
                g = leaf_grads.get(x)
            else:
                g = pending.get(creator)
                if g.__class__ is list:
                    g = g[_output_index(creator, x)]
            if g is None:
                xp = cuda.get_array_module(x.data)
                shape = ((batch,) if batch else ()) + x.data.shape
                g = _wrap(xp.zeros(shape, dtype=x.data.dtype), False)
            out.append(g)
    finally:
        enable_backprop_var.reset(token)
    return tuple(out)


def _batched_root_gradient(g, y: Variable, k: int) -> tuple[Variable, int]:
    data = g.data if isinstance(g, Variable) else g
    if not (isinstance(data, _ndarray) or cuda.is_cupy_array(data)):
        raise TypeError(
            f"grad: grad_outputs[{k}] must be an array or a Variable, got "
            f"{type(g).__name__}"
        )
    if data.ndim == 0 or data.shape[1:] != y.data.shape:
        raise ValueError(
            f"grad: with is_grads_batched=True, grad_outputs[{k}] must have shape "
            f"(batch,) + {y.data.shape}, got {data.shape}"
        )
    g = g if isinstance(g, Variable) else _wrap(g, False)
    return _in_output_dtype("grad", g, y, f"grad_outputs[{k}]"), data.shape[0]


class _GradOf(Function):
    """Identity on a leaf's gradient that also takes the leaf as an input.

    Used with ``create_graph=True`` so that differentiating a gradient always reaches
    the leaf: a derivative that does not depend on x (of a linear function, say) then
    gives zeros instead of leaving ``x.grad`` as None.
    """

    __slots__ = ("x_meta",)
    saves = ()

    def forward(self, gx, x):
        self.x_meta = (x.shape, x.dtype)
        return gx

    def backward(self, gy):
        shape, dtype = self.x_meta
        xp = cuda.get_array_module(gy.data)
        return gy, xp.zeros(shape, dtype=dtype)  # d/dx of a gradient constant in x is 0


# =========================================================================================
# Arithmetic operators
# =========================================================================================
def _operand(value: Any, like: Variable) -> Variable:
    """Turn the other operand of an operator into a Variable on ``like``'s device.

    Numbers take a floating ``like``'s dtype, so ``2.0 ** x`` keeps float32 float32
    under NumPy 2's promotion rules (a 0-d float64 array would promote the result). For
    an integer ``like`` only a Python int does, as NumPy treats it (``2 ** x`` stays
    uint8; an int out of uint8's range raises there as in NumPy 2, and promotes as in
    NumPy 1.x); a NumPy integer keeps its own dtype and promotes as in NumPy. The
    arithmetic operators keep numbers as numbers instead (``MulConstant`` and co.).
    """
    if isinstance(value, Variable):
        return value
    xp = cuda.get_array_module(like.data)
    if _is_constant(value):
        kind = like.data.dtype.kind
        if kind in "fc":
            return _wrap(xp.asarray(value, dtype=like.data.dtype), False)
        if kind in "iu" and isinstance(value, int):
            # NumPy's own rule for a Python int beside an integer array: its dtype under
            # NumPy 2 (out of range raises), the smallest holding both under NumPy 1.x
            dtype = np.result_type(value, like.data.dtype)
            return _wrap(xp.asarray(value, dtype=dtype), False)
    return _wrap(as_array(value, xp), False)


class Add(Function):
    __slots__ = ()
    saves = ()
    elementwise = True

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy  # d/dx0 = d/dx1 = 1; the engine sums away broadcast axes


class Sub(Function):
    __slots__ = ()
    saves = ()
    elementwise = True

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, -gy  # d/dx0 = 1, d/dx1 = -1


class Mul(Function):
    __slots__ = ()
    saves = ("inputs",)
    elementwise = True

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * x1 if x0.requires_grad else None  # d/dx0 x0*x1 = x1
        gx1 = gy * x0 if x1.requires_grad else None  # d/dx1 x0*x1 = x0
        return gx0, gx1


class Div(Function):
    __slots__ = ()
    saves = ("inputs",)
    elementwise = True

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1  # d/dx0 x0/x1 = 1/x1
        gx1 = -gx0 * x0 / x1 if x1.requires_grad else None  # d/dx1 x0/x1 = -x0/x1^2
        return gx0, gx1


class Neg(Function):
    __slots__ = ()
    saves = ()
    elementwise = True

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy  # d/dx -x = -1


class Pow(Function):
    """x ** c for a constant exponent c (a Python or NumPy number)."""

    __slots__ = ("c",)
    saves = ("inputs",)
    elementwise = True

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return as_dtype(x**self.c, x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        c = self.c
        if c == 0:
            # d/dx x^0 = 0; the general formula would give 0 * inf = NaN at x = 0.
            return gy * 0
        return gy * c * x ** (c - 1)  # d/dx x^c = c x^(c-1)


class PowVariable(Function):
    """x ** y where the exponent is a Variable too."""

    __slots__ = ()
    saves = ("inputs", "outputs")
    elementwise = True

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
    for it (no host-to-GPU copy), and NumPy's rules for a number apply (float32 stays
    float32; ``uint8 - 1`` stays uint8)."""

    __slots__ = ("c",)
    saves = ()
    elementwise = True

    def __init__(self, c):
        self.c = c


class AddConstant(_ConstantOperand):
    __slots__ = ()
    saves = ()

    def forward(self, x):
        return as_dtype(x + self.c, x.dtype)

    def backward(self, gy):
        return gy  # d/dx (x + c) = 1


class SubConstant(_ConstantOperand):
    __slots__ = ()
    saves = ()

    def forward(self, x):
        return as_dtype(x - self.c, x.dtype)

    def backward(self, gy):
        return gy  # d/dx (x - c) = 1


class SubFromConstant(_ConstantOperand):
    __slots__ = ()
    saves = ()

    def forward(self, x):
        return as_dtype(self.c - x, x.dtype)

    def backward(self, gy):
        return -gy  # d/dx (c - x) = -1


class MulConstant(_ConstantOperand):
    __slots__ = ()
    saves = ()

    def forward(self, x):
        return as_dtype(x * self.c, x.dtype)

    def backward(self, gy):
        return gy * self.c  # d/dx cx = c


class DivConstant(_ConstantOperand):
    __slots__ = ()
    saves = ()

    def forward(self, x):
        return as_dtype(x / self.c, x.dtype)

    def backward(self, gy):
        return gy / self.c  # d/dx x/c = 1/c


class DivFromConstant(_ConstantOperand):
    __slots__ = ()
    saves = ("inputs", "outputs")

    def forward(self, x):
        return as_dtype(self.c / x, x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        y = self.outputs[0]()
        return -gy * y / x  # d/dx c/x = -c/x^2 = -y/x


def _is_constant(value) -> bool:
    """A Python or NumPy real number (not a bool), which operators keep as a number."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


@names_errors
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


@names_errors
def sub(x0, x1) -> Variable:
    """x0 - x1."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return SubConstant(x1)(x0)  # not x + (-c): -c does not exist for unsigned ints
    return Sub()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


@names_errors
def rsub(x0, x1) -> Variable:
    """x1 - x0 (the reflected form: ``2.0 - x`` calls ``rsub(x, 2.0)``)."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return SubFromConstant(x1)(x0)
    return Sub()(_operand(x1, x0), x0)


@names_errors
def mul(x0, x1) -> Variable:
    """x0 * x1, elementwise with broadcasting."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return MulConstant(x1)(x0)
    return Mul()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


@names_errors
def div(x0, x1) -> Variable:
    """x0 / x1, elementwise with broadcasting."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return DivConstant(x1)(x0)
    return Div()(x0, x1 if isinstance(x1, Variable) else _operand(x1, x0))


@names_errors
def rdiv(x0, x1) -> Variable:
    """x1 / x0 (the reflected form: ``1.0 / x`` calls ``rdiv(x, 1.0)``)."""
    x0 = as_variable(x0)
    if _is_constant(x1):
        return DivFromConstant(x1)(x0)
    return Div()(_operand(x1, x0), x0)


@names_errors
def neg(x) -> Variable:
    """-x."""
    return Neg()(x)


@names_errors
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
