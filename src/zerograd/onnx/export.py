"""``export``: write a zerograd model as an ONNX file.

The model runs once (in test mode) on the example inputs; the Functions it recorded are
walked from the inputs to the outputs, and each is translated into ONNX nodes by the
converter registered for its class in :mod:`zerograd.onnx.export_ops`. Parameters become
initializers named as in ``model.state_dict()`` (``l0.W``, ``res2.a.conv1.W``, ...).

With ``dynamic_batch=True`` (the default) the model runs a second time on a batch one
larger; the axis whose length changed is the batch axis of each value, and the file
leaves it free (``"batch"``), so it accepts any batch size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from zerograd import cuda
from zerograd.core import Function, Parameter, Variable, output_meta
from zerograd.onnx._trace import Trace, trace
from zerograd.utils.io import atomic_write

__all__ = ["export", "ExportError", "MIN_OPSET", "max_opset"]

MIN_OPSET = 17  # LayerNormalization and Shape's start/end attributes need 17


class ExportError(ValueError):
    """A model (or one of its Functions) cannot be written as ONNX."""


def _require_onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "zerograd.onnx needs the onnx package: pip install onnx (or "
            "pip install 'zerograd[onnx]', which adds onnxruntime to run the files)"
        ) from e
    return onnx


def max_opset() -> int:
    """The newest opset that both the installed ``onnx`` and zerograd's converters
    support."""
    onnx = _require_onnx()
    return min(onnx.defs.onnx_opset_version(), 23)


class Builder:
    """The state of one export: the ONNX nodes and initializers made so far, and what
    the converters need to know about the Function being translated.

    A converter is a function ``convert(b, f)`` that reads ``f``'s hyperparameters and
    calls ``b.node(...)`` to add nodes computing ``b.outputs`` from ``b.input(i)``.
    """

    def __init__(self, onnx, t1: Trace, t2: Trace | None, opset: int, param_names: dict,
                 input_names: list[str], output_names: list[str], batch_axes: list[int]):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.trace = t1
        self.nodes: list = []
        self.initializers: list = []
        self._names: dict[int, str] = {}  # id(Variable) -> ONNX value name
        self._taken: set[str] = set()
        self._batch_axes: dict[str, tuple | None] = {}  # value name -> (axis, k) or None
        self._twin_leaf: dict[int, Variable] = {}  # id(leaf in trace 1) -> its twin
        self._consts: dict = {}
        self._count = 0
        self._param_names = param_names
        # The model's state_dict names are kept for its Parameters: no other value takes
        # one of them.
        self._reserved = set(param_names.values())
        self.memo: dict = {}  # for converters: values made once and shared
        self._batch_source: tuple | None = None  # (input name, its batch axis)
        self._batch_dim: str | None = None
        self.f: Function | None = None
        self.outputs: list[str] = []
        self.twin: Function | None = None
        self._n1 = self._n2 = None
        if t2 is not None:
            self._n1 = t1.inputs[0].shape[batch_axes[0]]
            self._n2 = t2.inputs[0].shape[batch_axes[0]]
        for k, (x, name) in enumerate(zip(t1.inputs, input_names)):
            self._claim(name)
            self._names[id(x)] = name
            x2 = t2.inputs[k] if t2 is not None else None
            self._note_batch(name, x.shape, None if x2 is None else x2.shape)
            if self._batch_source is None and self._batch_axes[name] == (batch_axes[k], 1):
                self._batch_source = (name, batch_axes[k])
        self._output_names = output_names
        self._twins = {}
        if t2 is not None:
            for f1, f2 in zip(t1.functions, t2.functions):
                self._twins[id(f1)] = f2
                for x1, x2 in zip(f1.inputs, f2.inputs):
                    if x1.creator is None:
                        self._twin_leaf[id(x1)] = x2

    # ---- names ------------------------------------------------------------------------
    def _claim(self, name: str) -> str:
        if name in self._taken:
            raise ExportError(f"zerograd.onnx.export: the name {name!r} is used twice")
        self._taken.add(name)
        return name

    def _free(self, name: str) -> bool:
        return name not in self._taken and name not in self._reserved

    def fresh(self, hint: str) -> str:
        """A new unique value name based on ``hint``."""
        self._count += 1
        name = f"{hint}_{self._count}"
        while not self._free(name):
            self._count += 1
            name = f"{hint}_{self._count}"
        self._taken.add(name)
        return name

    def _fresh_or(self, name: str) -> str:
        """``name`` itself when free, else a new name based on it."""
        if self._free(name):
            self._taken.add(name)
            return name
        return self.fresh(name)

    # ---- batch axes ---------------------------------------------------------------------
    def _note_batch(self, name: str, shape1, shape2) -> None:
        """Record which axis of value ``name`` follows the batch size (see _axis_of)."""
        self._batch_axes[name] = None if shape2 is None else self._axis_of(shape1, shape2)

    def _axis_of(self, shape1, shape2) -> tuple | None:
        """``(axis, k)`` for a value of shape ``shape1`` in the first trace and
        ``shape2`` in the second, whose axis ``axis`` is ``k`` times the batch size;
        None when the shape does not change."""
        shape1, shape2 = tuple(shape1), tuple(shape2)
        changed = [d for d, (a, b) in enumerate(zip(shape1, shape2)) if a != b]
        if len(shape1) != len(shape2) or len(changed) > 1:
            raise ExportError(
                f"zerograd.onnx.export: a value of shape {shape1} has shape {shape2} when "
                f"the batch grows from {self._n1} to {self._n2}; only one axis may follow "
                f"the batch size (at {self._where()}). Pass dynamic_batch=False to export "
                "for the traced batch size only"
            )
        if not changed:
            return None
        d = changed[0]
        k1, r1 = divmod(shape1[d], self._n1)
        k2, r2 = divmod(shape2[d], self._n2)
        if r1 or r2 or k1 != k2 or k1 == 0:
            raise ExportError(
                f"zerograd.onnx.export: axis {d} of a value of shape {shape1} becomes "
                f"{shape2[d]} when the batch grows from {self._n1} to {self._n2}: not a "
                f"multiple of the batch size (at {self._where()}); pass dynamic_batch=False"
            )
        return (d, k1)

    def batch_axis(self, name: str) -> tuple | None:
        """``(axis, k)`` when axis ``axis`` of value ``name`` is ``k`` times the batch
        size, or None when no axis depends on it."""
        return self._batch_axes.get(name)

    def _where(self) -> str:
        return self.trace.path(self.f) if self.f is not None else "the model's inputs"

    # ---- values ------------------------------------------------------------------------
    def name_of(self, x: Variable) -> str:
        """The ONNX value holding ``x``: a graph input, an initializer (a Parameter or a
        constant, made on first use) or a node output."""
        name = self._names.get(id(x))
        if name is not None:
            return name
        if x.creator is not None:  # pragma: no cover - the walk converts creators first
            raise ExportError(f"internal: {type(x.creator).__name__} was not converted yet")
        if isinstance(x, Parameter):
            name = self._param_name(x)
            self.initializers.append(self._tensor(x.data, name))
            self._batch_axes[name] = None
        else:
            name = self._leaf_constant(x)
        self._names[id(x)] = name
        return name

    def _param_name(self, p: Parameter) -> str:
        name = self._param_names.get(id(p))
        if name is not None and name not in self._taken:
            self._claim(name)
            return name
        return self._fresh_or(name or p.name or "param")

    def param_name(self, x: Variable) -> str | None:
        """The state_dict name of the Parameter ``x`` in the exported model (None for
        other Variables)."""
        return self._param_names.get(id(x))

    def initializer(self, array, hint: str) -> str:
        """A new initializer (something learnt, in a layout of the converter's making),
        named ``hint`` when that name is free."""
        name = self._fresh_or(hint)
        self.initializers.append(self._tensor(array, name))
        self._batch_axes[name] = None
        return name

    def _leaf_constant(self, x: Variable) -> str:
        """A Variable that is neither an input nor a Parameter: a constant of the model.
        With a second trace, check that it does not come from the input's data, and
        give it a free batch axis when its shape follows the batch size."""
        if x.data is None:  # pragma: no cover - a link cut by unchain_backward or release
            raise ExportError(
                f"zerograd.onnx.export: {type(self.f).__name__} takes a value of shape "
                f"{tuple(x.shape)} that no function kept (at {self._where()}); export "
                "a model whose forward keeps its graph (no unchain_backward inside it)"
            )
        data = cuda.as_numpy(x.data)
        twin = self._twin_leaf.get(id(x))
        if twin is None:
            return self.const(data, "const")
        return self.const_pair(data, cuda.as_numpy(twin.data), "const")

    def const_pair(self, a1: np.ndarray, a2: np.ndarray, hint: str) -> str:
        """A constant seen as ``a1`` in the first trace and ``a2`` in the second: the
        same array, or an array repeated along a batch axis (made with Expand)."""
        axis = self._axis_of(a1.shape, a2.shape)
        if axis is None:
            if a1.shape != a2.shape or not np.array_equal(a1, a2, equal_nan=True):
                raise ExportError(
                    "zerograd.onnx.export: a constant differs between two runs on different "
                    f"inputs (at {self._where()}): it was computed from the input's data "
                    "outside zerograd's Functions (through .data or NumPy), and an ONNX "
                    "file would freeze it. Compute it with zerograd functions, or pass "
                    "dynamic_batch=False to freeze it for this input"
                )
            return self.const(a1, hint)
        d = axis[0]
        first = np.take(a1, [0], axis=d)
        if not (np.all(a1 == first) and np.all(a2 == np.take(a2, [0], axis=d))
                and np.array_equal(first, np.take(a2, [0], axis=d))):
            raise ExportError(
                f"zerograd.onnx.export: a constant of shape {a1.shape} follows the batch size "
                f"on axis {d} but differs between samples (at {self._where()}): it was "
                "probably computed from the input's data outside zerograd's Functions "
                "(through .data or NumPy), and an ONNX file would freeze it. Compute it "
                "with zerograd functions, or pass dynamic_batch=False"
            )
        out = self.node("Expand", [self.const(first, hint), self.shape_of(a1.shape, axis)])
        self._batch_axes[out] = axis
        return out

    def _tensor(self, array, name: str):
        array = np.asarray(cuda.as_numpy(array))
        return self.onnx.numpy_helper.from_array(array, name)

    def const(self, array, hint: str = "const") -> str:
        """A Constant node holding ``array``; small ones are shared.

        Constants are nodes and Parameters initializers, so that a reader (such as
        :func:`zerograd.onnx.load`) can tell what is learnt from what is fixed.
        """
        array = np.asarray(cuda.as_numpy(array))
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            name = self._consts.get(key)
            if name is not None:
                return name
        name = self.fresh(hint)
        f, self.f = self.f, None  # (the node is labelled "graph": shared by Functions)
        self.node("Constant", [], [name], value=self._tensor(array, name))
        self.f = f
        self._batch_axes[name] = None
        if key is not None:
            self._consts[key] = name
        return name

    def scalar(self, value, dtype) -> str:
        """A 0-d initializer of ``dtype``."""
        return self.const(np.asarray(value, dtype=dtype), "c")

    def ints(self, values) -> str:
        """A 1-D int64 initializer (shapes, axes, sizes)."""
        return self.const(np.asarray(list(values), dtype=np.int64), "i")

    def batch_size(self) -> str:
        """A 1-D int64 value ``[batch size]`` read from the graph input."""
        if self._batch_dim is None:
            if self._batch_source is None:  # pragma: no cover - no batched input
                raise ExportError("zerograd.onnx.export: no input has a batch axis")
            name, axis = self._batch_source
            self._batch_dim = self.node("Shape", [name], start=axis, end=axis + 1)
        return self._batch_dim

    def shape_of(self, shape, axis: tuple | None) -> str:
        """An int64 shape value: ``shape`` with axis ``axis[0]`` set to ``axis[1]`` times
        the batch size (a constant when ``axis`` is None)."""
        shape = [int(s) for s in shape]
        if axis is None:
            return self.ints(shape)
        d, k = axis
        n = self.batch_size()
        if k != 1:
            n = self.node("Mul", [n, self.ints([k])])
        parts = ([self.ints(shape[:d])] if d else []) + [n]
        if d + 1 < len(shape):
            parts.append(self.ints(shape[d + 1:]))
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, axis=0)

    # ---- the Function being converted ------------------------------------------------------
    def in_var(self, i: int) -> Variable:
        return self.f.inputs[i]

    def in_shape(self, i: int) -> tuple:
        return tuple(self.f.inputs[i].shape)

    def in_dtype(self, i: int) -> np.dtype:
        return self.f.inputs[i].dtype

    def out_shape(self, j: int = 0) -> tuple:
        return output_meta(self.f)[j][0]

    def out_dtype(self, j: int = 0) -> np.dtype:
        return output_meta(self.f)[j][1]

    def input(self, i: int, dtype=None) -> str:
        """The value of input ``i`` of the current Function, cast to ``dtype`` if given."""
        x = self.f.inputs[i]
        name = self.name_of(x)
        if dtype is not None and np.dtype(dtype) != x.dtype:
            name = self.cast(name, dtype)
        return name

    def input_batch_axis(self, i: int) -> tuple | None:
        return self.batch_axis(self.name_of(self.f.inputs[i]))

    def output_batch_axis(self, j: int = 0) -> tuple | None:
        return self.batch_axis(self.outputs[j])

    def cast(self, name: str, dtype) -> str:
        to = self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.node("Cast", [name], to=int(to))

    def node(self, op: str, inputs: Sequence[str], outputs=None, **attrs):
        """Add an ONNX node; returns its output name (or the list of them when
        ``outputs`` is a count or a list of several names)."""
        if outputs is None or isinstance(outputs, int):
            count = 1 if outputs is None else outputs
            names = [self.fresh(f"{op}") for _ in range(count)]
        else:
            names = list(outputs)
        label = type(self.f).__name__ if self.f is not None else "graph"
        self.nodes.append(
            self.helper.make_node(op, list(inputs), names, name=self.fresh(f"/{label}/{op}"),
                                  **attrs)
        )
        return names[0] if outputs is None else names

    def reduce(self, op: str, name: str, axes, keepdims: bool, outputs=None) -> str:
        """ReduceSum/ReduceMax/ReduceMin/ReduceMean over ``axes`` (None: all), written
        for the opset (axes became an input in 13 for ReduceSum, in 18 for the others)."""
        keep = int(bool(keepdims))
        if axes is None:
            out = self.node(op, [name], outputs, keepdims=keep)
        elif op == "ReduceSum" or self.opset >= 18:
            out = self.node(op, [name, self.ints(axes)], outputs, keepdims=keep)
        else:
            out = self.node(op, [name], outputs, axes=[int(a) for a in axes], keepdims=keep)
        return out if outputs is None else out[0]

    def fail(self, problem: str) -> ExportError:
        """An error for the current Function saying where it sits in the model."""
        return ExportError(
            f"zerograd.onnx.export: {type(self.f).__name__} cannot be exported: {problem} "
            f"(at {self._where()})"
        )

    # ---- the graph ---------------------------------------------------------------------------
    def convert_all(self, converters: dict) -> None:
        for f in self.trace.functions:
            self.f = f
            self.twin = self._twins.get(id(f))
            convert = converters.get(type(f))
            if convert is None:
                raise ExportError(
                    f"zerograd.onnx.export: no ONNX converter for the Function "
                    f"{type(f).__module__}.{type(f).__qualname__} (at {self.trace.path(f)}). "
                    "Add one with zerograd.onnx.register_converter, or compute this step "
                    "with functions that have one (see docs/interop.md)"
                )
            metas = output_meta(f)
            twin_metas = output_meta(self.twin) if self.twin is not None else None
            self.outputs = []
            for j, (shape, _dtype) in enumerate(metas):
                y = f.outputs[j]()
                name = self._names.get(id(y)) if y is not None else None
                if name is None:
                    name = self.fresh(f"{type(f).__name__}_out{j}" if len(metas) > 1
                                      else type(f).__name__)
                    if y is not None:
                        self._names[id(y)] = name
                self.outputs.append(name)
                self._note_batch(name, shape, None if twin_metas is None else twin_metas[j][0])
            convert(self, f)
        self.f = None

    def graph_outputs(self, outputs: list[Variable]) -> list[str]:
        """The names of the model outputs, each made its own value (an Identity node
        where an output is also an input, a leaf or another output)."""
        names = []
        for y, want in zip(outputs, self._output_names):
            have = self.name_of(y)
            if have != want:
                self._claim(want)
                self.node("Identity", [have], [want])
                self._batch_axes[want] = self._batch_axes.get(have)
            names.append(want)
        return names

    def value_info(self, name: str, shape, dtype):
        axis = self._batch_axes.get(name)
        dims: list = list(shape)
        if axis is not None:
            dims[axis[0]] = "batch" if axis[1] == 1 else f"batch*{axis[1]}"
        elem = self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.helper.make_tensor_value_info(name, elem, dims)


def _parameter_names(model) -> dict[int, str]:
    """``id(Parameter) -> dotted name`` from a Layer's state_dict names."""
    from zerograd.layers import Layer

    names: dict[int, str] = {}
    if isinstance(model, Layer):
        for key, layer, attr in model._entries():
            obj = layer.__dict__.get(attr)
            if isinstance(obj, Parameter) and id(obj) not in names:
                names[id(obj)] = key
    return names


def _batch_axes(batch_axis, inputs: list[Variable]) -> list[int]:
    """The batch axis of each input, checked (``batch_axis``: one int for all, or one
    per input)."""
    given = list(batch_axis) if isinstance(batch_axis, (tuple, list)) else [batch_axis] * len(
        inputs)
    if len(given) != len(inputs) or not all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in given
    ):
        raise ValueError(
            f"zerograd.onnx.export: batch_axis must be an int or one int per input "
            f"({len(inputs)}), got {batch_axis!r}"
        )
    axes = []
    for k, (a, x) in enumerate(zip(given, inputs)):
        if x.ndim == 0:
            raise ExportError(
                f"zerograd.onnx.export: input {k} is 0-d, so it has no batch axis; pass "
                "dynamic_batch=False"
            )
        if not -x.ndim <= a < x.ndim:
            raise ValueError(
                f"zerograd.onnx.export: batch_axis {a} is out of range for input {k} of "
                f"shape {x.shape}"
            )
        axes.append(int(a) % x.ndim)
    sizes = {x.shape[a] for x, a in zip(inputs, axes)}
    if len(sizes) != 1:
        raise ExportError(
            "zerograd.onnx.export: dynamic_batch=True needs every input to have the same "
            f"batch size on its batch axis {axes}, got shapes {[x.shape for x in inputs]}; "
            "pass batch_axis, or dynamic_batch=False"
        )
    if 0 in sizes:
        raise ExportError("zerograd.onnx.export: the inputs are an empty batch")
    return axes


def _larger_batch(x: Variable, axis: int) -> np.ndarray:
    """A batch one larger than ``x``'s along ``axis``, with different data in each
    position (the samples reversed, then the first again)."""
    data = cuda.get_array_module(x.data).moveaxis(x.data, axis, 0)
    xp = cuda.get_array_module(data)
    return xp.moveaxis(xp.concatenate([data[::-1], data[:1]], axis=0), 0, axis)


def _check_same_structure(t1: Trace, t2: Trace, n1: int, n2: int) -> None:
    same = len(t1.functions) == len(t2.functions) and all(
        type(a) is type(b) and len(a.inputs) == len(b.inputs)
        for a, b in zip(t1.functions, t2.functions)
    )
    if not same:
        raise ExportError(
            "zerograd.onnx.export: the model runs different Functions for batch sizes "
            f"{n1} and {n2} (its control flow depends "
            "on the batch size or the data), so one graph cannot serve every batch size; "
            "pass dynamic_batch=False to export for the traced batch size"
        )


def _live(nodes: list, outputs: list[str], initializers: list) -> tuple[list, list]:
    """The nodes and initializers that the graph outputs depend on (a Function's output
    that nothing uses, such as a recurrent layer's last state, is left out)."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    return kept, [t for t in initializers if t.name in needed]


def _default_names(given, count: int, base: str, what: str) -> list[str]:
    if given is None:
        return [base if i == 0 else f"{base}{i}" for i in range(count)]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != count or len(set(given)) != count or not all(
        isinstance(n, str) and n for n in given
    ):
        raise ValueError(
            f"zerograd.onnx.export: {what} must be {count} distinct non-empty strings, got "
            f"{given!r}"
        )
    return given


def export(model: Callable, args, path: str | os.PathLike, *, input_names=None,
           output_names=None, dynamic_batch: bool = True, batch_axis=0, opset: int = 17):
    """Write ``model`` as an ONNX file at ``path``, tracing it on ``args``.

    The model runs once in test mode (dropout off, batch norm on its running
    statistics) on ``args``; every Function it records becomes ONNX nodes, every
    Parameter an initializer named as in ``model.state_dict()``. The file is written
    atomically: on any error nothing is written.

    Args:
        model: a :class:`~zerograd.Layer` / :class:`~zerograd.models.Model`, or any
            function of Variables (returning a Variable or a tuple of them).
        args: the example input (an array or Variable), or a tuple of them.
        path: the ``.onnx`` file to write.
        input_names, output_names: names of the graph's inputs and outputs (default
            ``input``, ``input1``, ... and ``output``, ``output1``, ...).
        dynamic_batch: leave the batch size free. The model runs a second time on a
            batch one larger to find which axis of each value follows the batch size;
            it must then run the same Functions, and constants must not be computed
            from the input's data.
        batch_axis: the batch axis of the inputs, one int for all or one per input:
            0 (the default), or 1 for a time-major ``(T, N, ...)`` sequence, whose
            length then stays the traced one.
        opset: the ONNX opset to write, from 17 to :func:`max_opset`.

    Returns:
        The ``onnx.ModelProto`` written.

    Raises:
        ExportError: (a ValueError) naming a Function that cannot be exported and where
            it sits in the model (the chain of Functions from an output down to it), or
            why the batch size cannot be left free.

    Example:
        >>> import os, tempfile
        >>> import zerograd.layers as L
        >>> from zerograd.models import MLP
        >>> L.seed(0)
        >>> model = MLP((8, 2))
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
        >>> proto = export(model, np.zeros((4, 3), dtype=np.float32), path)
        >>> [node.op_type for node in proto.graph.node]
        ['Gemm', 'Sigmoid', 'Gemm']
        >>> [i.name for i in proto.graph.initializer]
        ['l0.W', 'l0.b', 'l1.W', 'l1.b']
    """
    onnx = _require_onnx()
    from zerograd import __version__
    from zerograd.onnx.export_ops import converters

    top = max_opset()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= top:
        raise ValueError(
            f"zerograd.onnx.export: opset must be an int from {MIN_OPSET} to {top}, got "
            f"{opset!r}"
        )
    args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    t1 = trace(model, args)
    t2 = None
    axes = [0] * len(t1.inputs)
    if dynamic_batch:
        axes = _batch_axes(batch_axis, t1.inputs)
        t2 = trace(model, [_larger_batch(x, a) for x, a in zip(t1.inputs, axes)])
        n1 = t1.inputs[0].shape[axes[0]]
        _check_same_structure(t1, t2, n1, n1 + 1)
    input_names = _default_names(input_names, len(t1.inputs), "input", "input_names")
    output_names = _default_names(output_names, len(t1.outputs), "output", "output_names")
    if set(input_names) & set(output_names):
        raise ValueError(
            "zerograd.onnx.export: input_names and output_names share "
            f"{sorted(set(input_names) & set(output_names))}"
        )
    b = Builder(onnx, t1, t2, opset, _parameter_names(model), input_names, output_names,
                axes)
    # Model outputs keep their given names where they are plain node outputs.
    for y, name in zip(t1.outputs, output_names):
        if y.creator is not None and id(y) not in b._names:
            b._claim(name)
            b._names[id(y)] = name
    b.convert_all(converters())
    outs = b.graph_outputs(t1.outputs)
    nodes, initializers = _live(b.nodes, outs, b.initializers)
    graph = onnx.helper.make_graph(
        nodes,
        "zerograd",
        [b.value_info(n, x.shape, x.dtype) for n, x in zip(input_names, t1.inputs)],
        [b.value_info(n, y.shape, y.dtype) for n, y in zip(outs, t1.outputs)],
        initializer=initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="zerograd",
                                   producer_version=__version__)
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    size = proto.ByteSize()
    if size >= 2**31:
        raise ExportError(
            f"zerograd.onnx.export: the model needs {size / 2**30:.1f} GiB, over the 2 GiB "
            "that one ONNX (protobuf) file can hold; files with external weights are not "
            "written yet"
        )
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return proto
