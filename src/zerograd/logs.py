"""Training logs: a JSON-lines file always, TensorBoard event files when you have them.

:class:`LogWriter` has the shape of TensorBoard's ``SummaryWriter``
(``add_scalar(tag, value, step)``, ``add_histogram(tag, values, step)``). It always
appends to ``<logdir>/log.jsonl``, one JSON object per line, written and flushed line by
line (so ``tail -f`` shows it as it grows, and a killed run leaves every line it
wrote)::

    {"tag": "loss/train", "step": 40, "value": 0.3412, "time": 1717171717.1}
    {"tag": "weights/l0.W", "step": 40, "histogram": {"count": 784000, "min": -0.2,
     "max": 0.21, "mean": 0.0, "std": 0.036, "edges": [...], "counts": [...]},
     "time": 1717171717.2}

``time`` is seconds since the epoch. NaN and infinite values are written as ``NaN``,
``Infinity`` and ``-Infinity`` (as Python's ``json`` reads and writes them).

When ``tensorboardX`` is installed (``pip install tensorboardX tensorboard``), the same
values also go to TensorBoard event files in ``logdir`` (written by tensorboardX, not
by hand): ``tensorboard --logdir DIR`` shows them. :func:`read_log` reads the JSON
lines back, and :func:`plot_log` draws them as a PNG (with matplotlib).

Example:
    >>> import os, tempfile
    >>> logdir = tempfile.mkdtemp()
    >>> with LogWriter(logdir, tensorboard=False) as writer:
    ...     for step, loss in enumerate([0.9, 0.5, 0.3]):
    ...         writer.add_scalar("loss/train", loss, step)
    >>> [(r["step"], r["value"]) for r in read_log(logdir)]
    [(0, 0.9), (1, 0.5), (2, 0.3)]
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.core import Variable
from zerograd.utils.io import atomic_write

__all__ = ["LogWriter", "read_log", "plot_log"]

LOG_NAME = "log.jsonl"
_writers = itertools.count()  # numbers the event files this process opens


def _array(value: Any) -> np.ndarray:
    """``value`` (a number, a NumPy or CuPy array, a Variable) as a NumPy array."""
    if isinstance(value, Variable):
        value = value.data
    return np.asarray(cuda.as_numpy(value))


def _number(value: Any, where: str) -> float:
    """``value`` (a number, a 0-d array or a one-element Variable) as a float."""
    array = _array(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise TypeError(
            f"{where}: expected a single number, got {type(value).__name__} of shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    return float(array.reshape(()))


class LogWriter:
    """Log scalars and histograms to ``<logdir>/log.jsonl`` (and TensorBoard).

    Args:
        logdir: the folder of the log (created if needed).
        tensorboard: also write TensorBoard event files: None (the default) when
            ``tensorboardX`` is installed, True to require it, False never.
        purge_step: when resuming a run from a checkpoint taken at this step, drop the
            records of steps >= ``purge_step`` that the interrupted run wrote after it
            (in the JSON lines and, through tensorboardX, in TensorBoard).

    Raises:
        ImportError: when ``tensorboard=True`` and tensorboardX is not installed.
        OSError: when ``logdir`` cannot be created or written.
    """

    def __init__(self, logdir: str | os.PathLike, tensorboard: bool | None = None,
                 purge_step: int | None = None):
        self.logdir = os.fspath(logdir)
        if purge_step is not None and (isinstance(purge_step, bool)
                                       or not isinstance(purge_step, int) or purge_step < 0):
            raise ValueError(f"LogWriter: purge_step must be an int >= 0, got {purge_step!r}")
        os.makedirs(self.logdir, exist_ok=True)
        self.path = os.path.join(self.logdir, LOG_NAME)
        if purge_step is not None and os.path.exists(self.path):
            _purge(self.path, purge_step)
        self._tb = None
        if tensorboard is not False:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                if tensorboard:
                    raise ImportError(
                        "LogWriter(tensorboard=True): tensorboardX is not installed; "
                        "pip install tensorboardX tensorboard (or pass tensorboard=None "
                        "to write the JSON lines only)"
                    ) from None
            else:
                # tensorboardX names its file by the second: a writer opened in the
                # same second (a quick resume) would overwrite it without a suffix
                suffix = f".{os.getpid()}.{next(_writers)}"
                self._tb = SummaryWriter(logdir=self.logdir, purge_step=purge_step,
                                         filename_suffix=suffix)
        self._file = open(self.path, "a", encoding="utf-8")
        self._next_step: dict[str, int] = {}

    @property
    def tensorboard(self) -> bool:
        """Whether TensorBoard event files are written too."""
        return self._tb is not None

    def _step(self, tag: str, step: int | None, where: str) -> int:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"{where}: tag must be a non-empty string, got {tag!r}")
        if step is None:
            step = self._next_step.get(tag, 0)
        elif isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"{where}: step must be an int >= 0, got {step!r}")
        self._next_step[tag] = int(step) + 1
        return int(step)

    def _write(self, record: dict) -> None:
        if self._file.closed:
            raise ValueError(f"LogWriter: the log {self.path!r} is closed")
        # one write of a whole line, then a flush: a reader never sees half a record
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        self._file.flush()

    def add_scalar(self, tag: str, value: Any, step: int | None = None) -> None:
        """Log one value (a number, a 0-d array or a one-element Variable) of ``tag``
        at ``step`` (by default, one more than this tag's last step).

        Raises:
            TypeError: when ``value`` is not a single number.
            ValueError: on an empty tag or a negative step.
        """
        step = self._step(tag, step, "LogWriter.add_scalar")
        value = _number(value, f"LogWriter.add_scalar({tag!r})")
        now = time.time()
        self._write({"tag": tag, "step": step, "value": value, "time": now})
        if self._tb is not None:
            self._tb.add_scalar(tag, value, step, walltime=now)

    def add_histogram(self, tag: str, values: Any, step: int | None = None,
                      bins: int = 30) -> None:
        """Log the distribution of ``values`` (an array, a Variable, a Parameter):
        count, min, max, mean, std and a ``bins``-bin histogram of the finite values
        (``nonfinite`` counts the others).

        Raises:
            ValueError: on an empty tag, a negative step or ``bins`` < 1.
        """
        step = self._step(tag, step, "LogWriter.add_histogram")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"LogWriter.add_histogram: bins must be an int >= 1, got {bins!r}")
        array = _array(values).astype(np.float64).ravel()
        finite = array[np.isfinite(array)]
        summary: dict[str, Any] = {"count": int(array.size)}
        if finite.size:
            counts, edges = np.histogram(finite, bins=bins)
            summary.update(min=float(finite.min()), max=float(finite.max()),
                           mean=float(finite.mean()), std=float(finite.std()),
                           edges=edges.tolist(), counts=counts.tolist())
        if finite.size != array.size:
            summary["nonfinite"] = int(array.size - finite.size)
        now = time.time()
        self._write({"tag": tag, "step": step, "histogram": summary, "time": now})
        if self._tb is not None and finite.size:
            self._tb.add_histogram(tag, finite, step, walltime=now)

    def flush(self) -> None:
        """Push everything written so far to disk (the JSON lines already are)."""
        self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close the files (closing twice is harmless)."""
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        extra = " + TensorBoard" if self.tensorboard else ""
        return f"LogWriter({self.path!r}{extra})"


def _purge(path: str, purge_step: int) -> None:
    """Rewrite the log at ``path`` without the records of steps >= ``purge_step``,
    atomically (an interrupted rewrite leaves the old log). Every other complete line is
    kept as it was; a last line without its newline (cut by a crash) is dropped, so that
    the next record does not run into it."""
    kept = []
    for line, record in _lines(path):
        if record is None or record["step"] < purge_step:
            kept.append(line)
    atomic_write(path, lambda f: f.write(b"".join(kept)))


def _lines(path: str) -> Iterator[tuple[bytes, dict | None]]:
    """Each complete line of the log at ``path``, with its record (None when the line
    is not one: see :func:`_record`)."""
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # a line being written (or cut by a crash): not a record yet
            yield line, _record(line)


def _record(line: bytes) -> dict | None:
    """The record on ``line``, or None when it is not a record: not UTF-8 JSON (or
    nested too deeply to read), not an object, without a non-empty string ``tag``, a
    ``step`` that is an int >= 0, and a number ``value`` or a ``histogram`` object."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("tag"), str) and record["tag"]):
        return None
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return None
    value = record.get("value")
    if "value" in record and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return None
    if "value" not in record and not isinstance(record.get("histogram"), dict):
        return None
    return record


def _records(path: str) -> Iterable[dict]:
    for _, record in _lines(path):
        if record is not None:
            yield record


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines log (``path`` is the file or its folder).

    A last line without its newline (still being written, or cut by a crash) and
    lines that are not records are skipped: lines that are not JSON objects, and
    objects without a non-empty string ``tag``, a ``step`` that is an int >= 0 and a
    number ``value`` or a ``histogram`` (a log edited by hand, or written by another
    program).

    Raises:
        FileNotFoundError: when there is no log at ``path``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, LOG_NAME)
    return list(_records(path))


def plot_log(path: str | os.PathLike, to_file: str | os.PathLike | None = None,
             tags: Iterable[str] | None = None) -> str:
    """Draw the scalar curves of a log as a PNG; returns the file's path.

    Tags that share a prefix before ``/`` (``loss/train``, ``loss/test``) share a
    panel, with a legend; the x axis is the step.

    Args:
        path: the log (``log.jsonl``) or its folder.
        to_file: the PNG to write; ``curves.png`` next to the log by default.
        tags: only these tags (all scalar tags by default).

    Raises:
        ImportError: when matplotlib is not installed.
        ValueError: when the log has no scalars (of the given tags).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plot_log needs matplotlib: pip install matplotlib (the log itself is plain "
            "JSON lines, readable with zerograd.logs.read_log)"
        ) from None
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    wanted = None if tags is None else set(tags)
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for record in read_log(path):
        if "value" not in record or (wanted is not None and record["tag"] not in wanted):
            continue
        tag = record["tag"]
        panel, _, name = tag.partition("/")
        steps, values = series.setdefault(panel, {}).setdefault(name or panel, ([], []))
        steps.append(record["step"])
        values.append(record["value"])
    if not series:
        raise ValueError(f"plot_log: no scalars to plot in {path!r}"
                         + ("" if wanted is None else f" for the tags {sorted(wanted)}"))
    columns = min(2, len(series))
    rows = math.ceil(len(series) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.5 * rows), squeeze=False)
    for ax, (panel, curves) in zip(axes.ravel(), series.items()):
        for name, (steps, values) in curves.items():
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3,
                    label=name)
        ax.set_title(panel)
        ax.set_xlabel("step")
        if len(curves) > 1:
            ax.legend()
    for ax in axes.ravel()[len(series):]:
        ax.axis("off")
    fig.tight_layout()
    out = os.fspath(to_file) if to_file is not None else os.path.join(folder, "curves.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
