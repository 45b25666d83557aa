"""Debugging aids: anomaly detection and a readable trace of a backward pass.

:func:`detect_anomaly` makes every function check what it produces: the first
function whose forward or backward gives NaN or Inf raises ``FloatingPointError``
naming it, with the shapes involved. :func:`trace_backward` records each function the
backward pass processes, in order, with the gradients that went in and came out, and
prints them as a table: a way to watch backpropagation happen.

Example (the book's step 9, traced):
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> from zerograd.functions import square, exp
    >>> x = Variable(np.array(0.5))
    >>> y = square(exp(square(x)))
    >>> with trace_backward() as trace:
    ...     y.backward()
    >>> print(trace)
    step  function  generation  input shapes  output grads (gy)  input grads (gx)
       1  Square             2  ()            1                  2.568
       2  Exp                1  ()            2.568              3.297
       3  Square             0  ()            3.297              3.297
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from zerograd.config import backward_tracer_var, using_config
from zerograd.core import Variable
from zerograd.cuda import as_numpy

__all__ = ["detect_anomaly", "trace_backward", "BackwardTrace", "TraceRecord"]


def detect_anomaly(enabled: bool = True) -> using_config:
    """Check every forward and backward for NaN and Inf while the block runs.

    The first function that produces one raises ``FloatingPointError`` naming the
    function, whether its forward or backward did it, and the shapes. When the NaN
    appears inside a function's backward (in a function that backward calls), the
    error names that backward. Usable as ``with detect_anomaly():`` or as a
    decorator; it slows every call a little, so use it to hunt a bug, not to train.

    Args:
        enabled: False switches checking off inside an outer ``detect_anomaly``.

    Example:
        >>> import numpy as np
        >>> import zerograd.functions as F
        >>> with detect_anomaly(), np.errstate(divide="ignore"):
        ...     F.log(np.array([1.0, 0.0]))
        Traceback (most recent call last):
            ...
        FloatingPointError: Log.forward produced Inf in output 0 of shape (2,) (input shapes: (2,)); check the values reaching this function, or its numerical stability
    """  # noqa: E501
    return using_config("detect_anomaly", bool(enabled))


@dataclass
class TraceRecord:
    """One function processed by the backward pass.

    Attributes:
        step: its position in the pass, from 1.
        function: the Function's class name.
        generation: the function's generation (the pass goes from high to low).
        input_shapes: the shapes of the function's inputs.
        output_grads: summaries of the gradients arriving at its outputs (gy).
        input_grads: summaries of the gradients it returned for its inputs (gx);
            ``"-"`` where it returned None.
    """

    step: int
    function: str
    generation: int
    input_shapes: tuple
    output_grads: tuple
    input_grads: tuple


def _summary(g) -> str:
    """A short text for a gradient: its values when small, statistics otherwise."""
    if g is None:
        return "-"
    a = as_numpy(g.data if isinstance(g, Variable) else g)
    if a.size == 0:
        return f"empty {a.shape}"
    if a.dtype.kind not in "fc":
        return f"{a.dtype} {a.shape}"
    if a.ndim == 0:
        return f"{a.item():.4g}"
    if a.size <= 4:
        text = np.array2string(a, separator=", ", formatter={"all": lambda v: f"{v:.4g}"})
        return " ".join(text.split())
    mean = float(a.mean())
    top = float(np.abs(a).max())
    return f"{a.shape} mean {mean:.4g}, max|.| {top:.4g}"


class BackwardTrace:
    """The records of a traced backward pass (see :func:`trace_backward`).

    Iterate over it for :class:`TraceRecord` objects, print it for a table.

    Attributes:
        records: the list of TraceRecord, in the order the pass processed them.
    """

    _COLUMNS = (
        "step", "function", "generation", "input shapes", "output grads (gy)",
        "input grads (gx)",
    )

    def __init__(self):
        self.records: list[TraceRecord] = []

    def record(self, function, gys: Sequence, gxs: Sequence) -> None:
        """Add a record (the engine calls this through the tracer switch)."""
        self.records.append(
            TraceRecord(
                step=len(self.records) + 1,
                function=type(function).__name__,
                generation=function.generation,
                input_shapes=tuple(tuple(x.shape) for x in function.inputs),
                output_grads=tuple(_summary(gy) for gy in gys),
                input_grads=tuple(_summary(gx) for gx in gxs),
            )
        )

    @property
    def functions(self) -> list[str]:
        """The names of the functions processed, in order."""
        return [r.function for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def table(self) -> str:
        """The records as a text table, one line per function."""
        rows = [self._COLUMNS]
        for r in self.records:
            rows.append((
                str(r.step),
                r.function,
                str(r.generation),
                ", ".join(str(s) for s in r.input_shapes),
                "; ".join(r.output_grads),
                "; ".join(r.input_grads),
            ))
        widths = [max(len(row[k]) for row in rows) for k in range(len(self._COLUMNS))]
        right = (0, 2)  # numbers are right-aligned
        lines = []
        for row in rows:
            cells = [
                cell.rjust(w) if k in right and row is not rows[0] else cell.ljust(w)
                for k, (cell, w) in enumerate(zip(row, widths))
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<BackwardTrace: {len(self.records)} function(s)>"


@contextlib.contextmanager
def trace_backward() -> Iterator[BackwardTrace]:
    """Record every function that a backward pass inside the block processes.

    Yields a :class:`BackwardTrace`; ``print(trace)`` shows the step, the function,
    its generation, its input shapes, the gradients that reached its outputs and the
    ones it returned for its inputs (values when small, mean and largest magnitude
    otherwise). A tracer already active (an outer ``trace_backward``) still receives
    the calls.

    Example:
        >>> import numpy as np
        >>> from zerograd import Variable
        >>> x = Variable(np.array([1.0, 2.0]))
        >>> with trace_backward() as trace:
        ...     (x * x).sum().backward()
        >>> trace.functions
        ['Sum', 'Mul']
        >>> trace.records[1].input_grads   # x * x: each input's share; x.grad adds them
        ('[1, 2]', '[1, 2]')
    """
    trace = BackwardTrace()
    outer = backward_tracer_var.get()

    def tracer(function, gys, gxs):
        trace.record(function, gys, gxs)
        if outer is not None:
            outer(function, gys, gxs)

    with using_config("backward_tracer", tracer):
        yield trace
