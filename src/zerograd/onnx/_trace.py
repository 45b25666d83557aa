"""Run a model once and read back the graph of Functions it recorded.

A :class:`Trace` holds the model's inputs and outputs, every Function between them in
an order where each comes after the Functions that produced its inputs, and, for error
messages, how each Function was reached from an output. Nothing here knows about ONNX.

Two traces of the same model on batches of different sizes tell which axis of each
value is the batch axis (the axis whose length changed): that is how the exporter
writes a graph whose batch size is free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zerograd import cuda
from zerograd.config import using_config
from zerograd.core import Function, Parameter, Variable

__all__ = ["Trace", "trace"]


class Trace:
    """The Functions recorded by one forward pass, in topological order.

    Attributes:
        inputs: the input Variables given to the model.
        outputs: the output Variables it returned.
        functions: every Function that contributes to an output, each after the
            Functions that produced its inputs.
        reached_from: for each Function, ``(consumer, input index)`` through which
            the walk from the outputs first reached it (None for an output's creator),
            and the output index for those.
    """

    def __init__(self, inputs: list[Variable], outputs: list[Variable]):
        self.inputs = inputs
        self.outputs = outputs
        self.functions: list[Function] = []
        self.reached_from: dict[int, tuple] = {}
        self._walk()

    def _walk(self) -> None:
        # Iterative post-order depth-first walk (deep graphs such as a long unrolled
        # RNN would exceed the recursion limit).
        done: set[int] = set()
        on_stack: set[int] = set()
        for k, y in enumerate(self.outputs):
            if y.creator is None or id(y.creator) in done:
                continue
            self.reached_from.setdefault(id(y.creator), ("output", k))
            stack = [(y.creator, 0)]
            on_stack.add(id(y.creator))
            while stack:
                f, i = stack.pop()
                if i < len(f.inputs):
                    stack.append((f, i + 1))
                    g = f.inputs[i].creator
                    if g is not None and id(g) not in done and id(g) not in on_stack:
                        self.reached_from.setdefault(id(g), (f, i))
                        on_stack.add(id(g))
                        stack.append((g, 0))
                else:
                    on_stack.discard(id(f))
                    done.add(id(f))
                    self.functions.append(f)

    def path(self, f: Function) -> str:
        """Where ``f`` sits: the chain of Functions from a model output down to it,
        with the shapes of the values between them."""
        steps = []
        node = f
        for _ in range(len(self.functions) + 1):
            how = self.reached_from.get(id(node))
            if how is None:
                break
            if how[0] == "output":
                y = self.outputs[how[1]]
                steps.append(f"output {how[1]} {tuple(y.shape)}")
                break
            consumer, i = how
            x = consumer.inputs[i]
            steps.append(f"{type(consumer).__name__} (input {i}: {tuple(x.shape)})")
            node = consumer
        shapes = ", ".join(str(tuple(x.shape)) for x in f.inputs)
        steps.reverse()  # from the output down
        if len(steps) > 8:  # keep the message readable: the ends matter most
            steps = steps[:4] + ["..."] + steps[-4:]
        chain = " <- ".join(steps) if steps else "?"
        return f"{chain} <- {type(f).__name__} (input shapes: {shapes})"


def _as_input(a, k: int) -> Variable:
    if isinstance(a, Variable):
        if a.data is None:
            raise ValueError(f"zerograd.onnx.export: input {k} is a Variable without data")
        return Variable(a.data, name=a.name)
    if not (isinstance(a, np.ndarray) or cuda.is_cupy_array(a)):
        if isinstance(a, (int, float, bool, np.generic, list, tuple)):
            a = np.asarray(a)
        else:
            raise TypeError(
                f"zerograd.onnx.export: input {k} is a {type(a).__name__}; pass arrays or "
                "Variables (a tuple of them for a model with several inputs)"
            )
    return Variable(a)


def _is_state(value) -> bool:
    return isinstance(value, Variable) and not isinstance(value, Parameter)


def _restore_state(layer, before: dict) -> None:
    """Put back the Variables a call left on ``layer`` (a recurrent layer's hidden
    state); what a first call creates for good (weights sized from the input, batch
    norm's statistics) stays."""
    for name, value in list(layer.__dict__.items()):
        old = before.get(name)
        if value is not old and (_is_state(value) or _is_state(old)):
            if name in before:
                object.__setattr__(layer, name, old)
            else:
                object.__delattr__(layer, name)


def trace(model, args: Sequence) -> Trace:
    """Call ``model(*args)`` in test mode with backprop on, and return its trace.

    The state of a :class:`~zerograd.Layer` model (such as an RNN's hidden state) is
    put back as it was afterwards, so tracing leaves the model as it found it (except
    for weights created by a first call, which stay).
    """
    from zerograd.layers import Layer

    inputs = [_as_input(a, k) for k, a in enumerate(args)]
    snapshot = []
    if isinstance(model, Layer):
        snapshot = [(layer, dict(layer.__dict__)) for layer in model._layers()]
    try:
        with using_config("enable_backprop", True), using_config("train", False):
            out = model(*inputs)
    finally:
        for layer, state in snapshot:
            _restore_state(layer, state)
    outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    for k, y in enumerate(outputs):
        if not isinstance(y, Variable):
            raise TypeError(
                f"zerograd.onnx.export: the model returned a {type(y).__name__} as output "
                f"{k}; it must return a Variable (or a tuple of Variables)"
            )
    return Trace(inputs, outputs)

