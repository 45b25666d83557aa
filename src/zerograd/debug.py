"""Debugging aids: anomaly detection, a readable trace of a backward pass, and what a
graph keeps alive.

:func:`detect_anomaly` makes every function check what it produces: the first
function whose forward or backward gives NaN or Inf raises ``FloatingPointError``
naming it, with the shapes involved; it also catches an array saved for backward that
was changed in place before the backward pass (a silently wrong gradient otherwise).
:func:`trace_backward` records each function the backward pass processes, in order,
with the gradients that went in and came out and the bytes it kept for its backward,
and prints them as a table: a way to watch backpropagation happen.
:func:`saved_memory` lists what every function of a graph keeps alive for its backward.

Example (the book's step 9, traced):
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> from zerograd.functions import square, exp
    >>> x = Variable(np.array(0.5))
    >>> y = square(exp(square(x)))
    >>> with trace_backward() as trace:
    ...     y.backward()
    >>> print(trace)
    step  function  generation  input shapes  output grads (gy)  input grads (gx)  saved
       1  Square             2  ()            1                  2.568               8 B
       2  Exp                1  ()            2.568              3.297               8 B
       3  Square             0  ()            3.297              3.297               8 B
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from zerograd.config import backward_tracer_var, using_config
from zerograd.core import Variable, graph_functions, input_shapes, saved_arrays
from zerograd.cuda import as_numpy

__all__ = [
    "detect_anomaly",
    "trace_backward",
    "BackwardTrace",
    "TraceRecord",
    "saved_memory",
    "SavedMemory",
    "SavedRecord",
]


def detect_anomaly(enabled: bool = True) -> using_config:
    """Check every forward and backward for NaN and Inf while the block runs.

    The first function that produces one raises ``FloatingPointError`` naming the
    function, whether its forward or backward did it, and the shapes. When the NaN
    appears inside a function's backward (in a function that backward calls), the
    error names that backward.

    It also fingerprints every array a function saves for its backward (its inputs,
    outputs or other arrays, as the function declares) when the forward runs inside
    the block, and checks them before that function's backward: an array edited in
    place in between (``x.data[0] = 5``, ``x.data *= 2``), or a Variable whose data was
    replaced, raises ``RuntimeError`` naming the variable, its shape and the function
    that saved it, instead of giving a silently wrong gradient.

    Usable as ``with detect_anomaly():`` or as a decorator; it slows every call (it
    reads every array it checks), so use it to hunt a bug, not to train.

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
        saved_bytes: the bytes of the arrays the function kept for its backward.
    """

    step: int
    function: str
    generation: int
    input_shapes: tuple
    output_grads: tuple
    input_grads: tuple
    saved_bytes: int = 0


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


def _nbytes(a) -> int:
    return int(getattr(a, "nbytes", 0))


def _text_table(rows: list, right: tuple = ()) -> str:
    """Rows of strings (the first one the header) as aligned text columns; the columns
    numbered in ``right`` are right-aligned below the header."""
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.rjust(w) if k in right and n else cell.ljust(w)
                 for k, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _format_bytes(n: int) -> str:
    """``8 B``, ``4.0 KiB``, ``1.5 MiB``: a size for a table."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} GiB"  # pragma: no cover


class BackwardTrace:
    """The records of a traced backward pass (see :func:`trace_backward`).

    Iterate over it for :class:`TraceRecord` objects, print it for a table.

    Attributes:
        records: the list of TraceRecord, in the order the pass processed them.
    """

    _COLUMNS = (
        "step", "function", "generation", "input shapes", "output grads (gy)",
        "input grads (gx)", "saved",
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
                input_shapes=tuple(tuple(s) for s in input_shapes(function)),
                output_grads=tuple(_summary(gy) for gy in gys),
                input_grads=tuple(_summary(gx) for gx in gxs),
                saved_bytes=sum(_nbytes(a) for _, a in saved_arrays(function)),
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
                _format_bytes(r.saved_bytes),
            ))
        return _text_table(rows, right=(0, 2, 6))  # numbers are right-aligned

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<BackwardTrace: {len(self.records)} function(s)>"


@contextlib.contextmanager
def trace_backward() -> Iterator[BackwardTrace]:
    """Record every function that a backward pass inside the block processes.

    Yields a :class:`BackwardTrace`; ``print(trace)`` shows the step, the function,
    its generation, its input shapes, the gradients that reached its outputs, the
    ones it returned for its inputs (values when small, mean and largest magnitude
    otherwise), and the bytes it kept alive for its backward. A tracer already
    active (an outer ``trace_backward``) still receives the calls.

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


# ---- what a graph keeps alive ---------------------------------------------------------------
@dataclass
class SavedRecord:
    """What one function of a graph keeps alive for its backward.

    Attributes:
        function: the Function's class name.
        generation: its generation.
        saved: ``(what, shape, dtype, nbytes)`` per array: ``what`` is ``"input k"``,
            ``"output k"`` or the name of a saved attribute.
        nbytes: the bytes of those arrays (an array saved twice counted once here).
    """

    function: str
    generation: int
    saved: tuple
    nbytes: int


class SavedMemory:
    """The report of :func:`saved_memory`: iterate for :class:`SavedRecord` objects,
    print for a table (the functions that keep most first, then a total).

    Attributes:
        records: one SavedRecord per function of the graph, newest generation first.
        nbytes: the total, counting an array that several functions keep once.
        n_functions: the number of functions in the graph.
    """

    def __init__(self, records: list, nbytes: int):
        self.records = records
        self.nbytes = nbytes
        self.n_functions = len(records)

    def by_function(self) -> dict:
        """``{class name: (count, bytes)}``, largest first."""
        totals: dict = {}
        for r in self.records:
            count, size = totals.get(r.function, (0, 0))
            totals[r.function] = (count + 1, size + r.nbytes)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1][1]))

    def __iter__(self) -> Iterator[SavedRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def table(self, top: int = 20) -> str:
        """Per function class: how many, what each keeps, and the bytes."""
        rows = [("function", "count", "keeps", "saved")]
        keeps = {}
        for r in self.records:
            keeps.setdefault(r.function, ", ".join(what for what, *_ in r.saved) or "nothing")
        for name, (count, size) in list(self.by_function().items())[:top]:
            rows.append((name, str(count), keeps[name], _format_bytes(size)))
        rows.append(("total", str(self.n_functions), "", _format_bytes(self.nbytes)))
        return _text_table(rows, right=(1, 3))

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"<SavedMemory: {self.n_functions} function(s) keep "
            f"{_format_bytes(self.nbytes)}>"
        )


def saved_memory(outputs) -> SavedMemory:
    """What the graph behind ``outputs`` keeps alive for its backward pass.

    Each function keeps what its class declares in ``saves`` (its inputs, its outputs,
    arrays such as a mask): that, plus the parameters, is the memory a live graph
    costs. An array that several functions keep (``x * x`` keeps x twice) counts once
    in the total.

    Args:
        outputs: a Variable, or a sequence of them, whose graph to inspect.

    Returns:
        A :class:`SavedMemory`; print it for a table by function class.

    Example:
        >>> import numpy as np
        >>> import zerograd.functions as F
        >>> x = Variable(np.ones(1000))
        >>> y = F.sin(x * 2.0 + 1.0)   # only sin keeps an array: its input
        >>> report = saved_memory(y)
        >>> report.nbytes
        8000
        >>> print(report)
        function     count  keeps    saved
        Sin              1  input 0  7.8 KiB
        AddConstant      1  nothing      0 B
        MulConstant      1  nothing      0 B
        total            3           7.8 KiB
    """
    records = []
    seen: set = set()
    total = 0
    for f in graph_functions(outputs):
        saved = []
        size = 0
        for what, a in saved_arrays(f):
            n = _nbytes(a)
            saved.append((what, tuple(a.shape), str(a.dtype), n))
            if id(a) not in seen:
                seen.add(id(a))
                size += n
        total += size
        records.append(SavedRecord(type(f).__name__, f.generation, tuple(saved), size))
    return SavedMemory(records, total)
