"""``load``: read an ONNX file as a zerograd Model that runs, differentiates and trains.

The graph's nodes are kept in order; the Model's forward evaluates them one by one,
each through the handler registered for its operator in :mod:`zerograd.onnx.load_ops`,
which computes it with zerograd's Functions. So gradients flow through the whole graph
to the Parameters, and the loaded model can be fine-tuned with zerograd's optimizers.

What becomes what:

- floating-point initializers with at least one axis become :class:`~zerograd.Parameter`
  s, placed in sub-layers by their dotted names (``l0.W`` becomes ``model.l0.W``), so
  the state_dict of a loaded zerograd export has the original model's names;
- the running mean and variance of ``BatchNormalization`` become buffers (saved with the
  weights, updated in training mode as :class:`~zerograd.layers.BatchNorm` does);
- other initializers (integers, scalars) and ``Constant`` nodes stay constants.
"""

from __future__ import annotations

import keyword
import os
import re
from collections.abc import Mapping

import numpy as np

from zerograd import cuda
from zerograd.core import Parameter, Variable, as_variable
from zerograd.layers import Layer
from zerograd.models import Model

__all__ = ["load", "OnnxModel", "OnnxImportError"]


class OnnxImportError(ValueError):
    """An ONNX file that zerograd cannot read (an unsupported operator or attribute)."""


class Node:
    """One ONNX node, with its attributes decoded to Python and NumPy values."""

    __slots__ = ("op", "name", "inputs", "outputs", "attrs", "opset")

    def __init__(self, op, name, inputs, outputs, attrs, opset):
        self.op = op
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs
        self.opset = opset

    def attr(self, key, default=None):
        return self.attrs.get(key, default)

    def error(self, problem: str) -> OnnxImportError:
        return OnnxImportError(
            f"zerograd.onnx.load: node {self.name!r} ({self.op}): {problem}"
        )

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.name!r})"


def _decode_attribute(onnx, attribute):
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8") for v in value]
    if isinstance(value, onnx.GraphProto):
        return value
    return value


def _identifier(part: str) -> str:
    """A valid attribute name for one part of a dotted ONNX name."""
    name = re.sub(r"\W", "_", part)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "_" + name
    return name


class OnnxModel(Model):
    """A Model that runs an ONNX graph with zerograd's Functions (made by :func:`load`).

    Calling it takes the graph's inputs in order (arrays or Variables) and returns its
    output, or a tuple when the graph has several.

    Attributes:
        input_names, output_names: the graph's input and output names.
        param_names: ``{ONNX initializer name: state_dict name}`` of the Parameters and
            buffers.
    """

    def __init__(self, proto):
        super().__init__()
        import onnx
        from zerograd.onnx.load_ops import handlers

        graph = proto.graph
        opset = 1
        for op in proto.opset_import:
            if op.domain in ("", "ai.onnx"):
                opset = op.version
        self.opset = opset
        table = handlers()
        self._nodes = []
        unknown = []
        for k, n in enumerate(graph.node):
            name = n.name or f"{n.op_type}_{k}"
            if n.domain not in ("", "ai.onnx") or n.op_type not in table:
                unknown.append(f"{n.op_type!r}" + (f" (domain {n.domain!r})" if n.domain else "")
                               + f" at node {name!r}")
                continue
            attrs = {a.name: _decode_attribute(onnx, a) for a in n.attribute}
            self._nodes.append(Node(n.op_type, name, list(n.input), list(n.output), attrs,
                                    opset))
        if unknown:
            raise OnnxImportError(
                "zerograd.onnx.load: unsupported ONNX operator(s): " + "; ".join(unknown)
                + f". zerograd reads: {', '.join(sorted(table))}"
            )
        initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in initializers]
        self.output_names = [o.name for o in graph.output]
        buffers = set()
        for node in self._nodes:
            if node.op == "BatchNormalization":
                buffers.update(node.inputs[3:5])
        self._constants: dict[str, np.ndarray] = {}
        self._slots: dict[str, tuple] = {}  # ONNX name -> (owner layer, attribute)
        self.param_names: dict[str, str] = {}
        for name, array in initializers.items():
            learnt = array.dtype.kind == "f" and array.ndim >= 1
            if name in buffers or learnt:
                self._register(name, np.array(array), buffer=name in buffers)
            else:
                self._constants[name] = np.array(array)
        where = {(id(layer), attr): key for key, layer, attr in self._entries()}
        for onnx_name, (layer, attr) in self._slots.items():
            self.param_names[onnx_name] = where[(id(layer), attr)]
        for node in self._nodes:  # evaluate Constant nodes once
            if node.op == "Constant":
                self._constants[node.outputs[0]] = _constant_value(node)

    def _register(self, onnx_name: str, array: np.ndarray, buffer: bool) -> None:
        parts = [_identifier(p) for p in onnx_name.split(".")]
        layer: Layer = self
        for part in parts[:-1]:
            child = layer.__dict__.get(part)
            if child is None:
                child = Layer()
                setattr(layer, part, child)
            elif not isinstance(child, Layer):  # a name that is also a prefix: go flat
                layer, parts = self, [_identifier(onnx_name)]
                break
            layer = child
        attr = parts[-1]
        while attr in layer.__dict__ or hasattr(type(layer), attr):
            attr = attr + "_"
        if buffer:
            layer.register_buffer(attr, array)
        else:
            setattr(layer, attr, Parameter(array, name=attr))
        self._slots[onnx_name] = (layer, attr)

    def _value_of(self, name: str, on_gpu: bool):
        """A Parameter, a buffer (as a Variable around the buffer's own array) or a
        constant (on the inputs' device)."""
        entry = self._slots.get(name)
        if entry is not None:
            layer, attr = entry
            obj = layer.__dict__[attr]
            return obj if isinstance(obj, Variable) else as_variable(obj)
        array = self._constants[name]
        return as_variable(cuda.as_cupy(array) if on_gpu else array)

    def forward(self, *inputs):
        from zerograd.onnx.load_ops import handlers

        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"OnnxModel: the graph takes {len(self.input_names)} input(s) "
                f"{self.input_names}, got {len(inputs)}"
            )
        table = handlers()
        env: dict[str, Variable] = {}
        for name, x in zip(self.input_names, inputs):
            env[name] = x if isinstance(x, Variable) else as_variable(x)
        on_gpu = any(cuda.get_array_module(x.data) is not np for x in env.values())
        for node in self._nodes:
            if node.op == "Constant":
                env[node.outputs[0]] = self._value_of(node.outputs[0], on_gpu)
                continue
            xs = []
            for name in node.inputs:
                if not name:
                    xs.append(None)
                elif name in env:
                    xs.append(env[name])
                else:
                    if name not in self._slots and name not in self._constants:
                        raise node.error(f"input {name!r} is computed by no earlier node")
                    v = self._value_of(name, on_gpu)
                    env[name] = v
                    xs.append(v)
            ys = table[node.op](node, xs)
            if isinstance(ys, Variable):
                ys = [ys]
            for name, y in zip(node.outputs, ys):
                if name:
                    env[name] = y
        outs = tuple(env[name] for name in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def __repr__(self) -> str:
        return (f"OnnxModel(inputs={self.input_names}, outputs={self.output_names}, "
                f"{len(self._nodes)} nodes, opset {self.opset})")


def _constant_value(node: Node) -> np.ndarray:
    attrs = node.attrs
    if "value" in attrs:
        return np.array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    raise node.error(f"a Constant with attributes {sorted(attrs)} is not supported")


def load(path_or_proto) -> OnnxModel:
    """Read an ONNX model as a zerograd :class:`OnnxModel`.

    Args:
        path_or_proto: the path of an ``.onnx`` file, its bytes, or an
            ``onnx.ModelProto``.

    Returns:
        A Model whose forward evaluates the graph with zerograd's Functions: call it on
        arrays (in test mode for inference: batch normalization then uses the running
        statistics), differentiate it, train its ``params()``.

    Raises:
        OnnxImportError: (a ValueError) naming each operator zerograd cannot read and
            its node, or an attribute it does not support.
        FileNotFoundError: when the file does not exist.

    Example:
        >>> import onnx
        >>> from onnx import helper, TensorProto
        >>> W = onnx.numpy_helper.from_array(np.eye(2, dtype=np.float32), "fc.W")
        >>> graph = helper.make_graph(
        ...     [helper.make_node("MatMul", ["x", "fc.W"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        ...     initializer=[W])
        >>> model = load(helper.make_model(graph))
        >>> list(model.state_dict())
        ['fc.W']
        >>> model(np.array([[1.0, 2.0]], dtype=np.float32))
        variable([[1. 2.]])
    """
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("zerograd.onnx.load needs the onnx package: pip install onnx") from e
    if isinstance(path_or_proto, onnx.ModelProto):
        proto = path_or_proto
    elif isinstance(path_or_proto, (bytes, bytearray)):
        proto = onnx.load_from_string(bytes(path_or_proto))
    elif isinstance(path_or_proto, (str, os.PathLike)):
        path = os.fspath(path_or_proto)
        if not os.path.exists(path):
            raise FileNotFoundError(f"zerograd.onnx.load: no such file: {path!r}")
        try:
            proto = onnx.load(path)
        except Exception as e:
            raise OnnxImportError(
                f"zerograd.onnx.load: cannot read {path!r} as an ONNX model "
                f"({type(e).__name__}: {e})"
            ) from e
    elif isinstance(path_or_proto, Mapping):  # pragma: no cover - a common mistake
        raise TypeError("zerograd.onnx.load: pass a path or an onnx.ModelProto, not a dict")
    else:
        raise TypeError(
            "zerograd.onnx.load: expected a path, bytes or an onnx.ModelProto, got "
            f"{type(path_or_proto).__name__}"
        )
    return OnnxModel(proto)

