"""Progress reports: a bar on a terminal, plain periodic lines in a log.

One helper for everything in zerograd that takes a while (training epochs, downloads).
On a terminal, :class:`Progress` redraws one line in place::

    epoch 3 [############..................] 16/40  40%  25.3 batch/s  0:01 left  loss 0.41

When the output is a file or a pipe (a log, CI), it writes a plain line when work
starts, then one every ``interval`` seconds (10 by default) and one at the end, so
that a log shows how far a long step got, not only its result::

    epoch 3: 16/40 batch (40%), 25.3 batch/s, 0:01 left, loss 0.41

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> for _ in progress(range(3), desc="work", file=out):
    ...     pass
    >>> print(out.getvalue().splitlines()[-1].split(", in ")[0])
    work: 3/3 it (100%)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from zerograd import _checks

__all__ = ["Progress", "progress"]


def _isatty(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _clock_text(seconds: float) -> str:
    """``seconds`` as M:SS or H:MM:SS."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _amount(n: float, unit: str) -> str:
    """A count in ``unit``; bytes (unit "B") in KiB, MiB, GiB."""
    if unit != "B":
        return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"
    for name in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or name == "GiB":
            return f"{n:.0f} {name}" if name == "B" else f"{n:.1f} {name}"
        n /= 1024
    return f"{n} B"


class Progress:
    """Report the progress of ``total`` steps of work.

    Call :meth:`update` after each step (or each chunk: ``update(len(chunk))``), with
    values to show (``update(loss=0.41)``), and :meth:`close` at the end (or use it as a
    context manager).

    Args:
        total: the number of steps, a finite number >= 0 (a Python or NumPy int or
            float); None when unknown: no bar, no time left.
        desc: what is being done (``"epoch 3"``, a file name).
        unit: the name of a step (``"batch"``); ``"B"`` counts bytes in KiB/MiB/GiB.
        file: where to write (``sys.stderr`` by default).
        interval: seconds between reports: 0.1 on a terminal and 10 elsewhere by
            default.
        tty: draw the bar (True) or write plain lines (False); by default, whether
            ``file`` is a terminal.
        disable: write nothing.
        initial: steps already done before this report started (a resumed epoch); the
            rate counts only the steps done since.
        clock: the time source (seconds), for tests.

    Raises:
        TypeError: when ``total`` or ``interval`` is not a number.
        ValueError: when one is negative, NaN or infinite.
    """

    def __init__(self, total: int | float | None = None, desc: str = "", unit: str = "it",
                 file: TextIO | None = None, interval: float | None = None,
                 tty: bool | None = None, disable: bool = False, initial: float = 0,
                 clock: Callable[[], float] = time.monotonic):
        if total is not None:
            hint = "None when the total is not known"
            total = _checks.real("Progress", "total", total, "rate", hint)
            total = int(total) if total.is_integer() else total
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = sys.stderr if file is None else file
        self.tty = _isatty(self.file) if tty is None else bool(tty)
        if interval is None:
            interval = 0.1 if self.tty else 10.0
        self.interval = _checks.real("Progress", "interval", interval, "rate", "seconds")
        self.disable = disable
        self.clock = clock
        self.n: float = initial
        self.initial = initial
        self.postfix: dict[str, Any] = {}
        self.start = clock()
        self._last: float | None = None  # when the last report was written
        self._width = 0  # of the last bar drawn, to blank what a shorter one leaves
        self.closed = False

    # ---- reporting ------------------------------------------------------------------------
    def update(self, n: float = 1, **postfix: Any) -> None:
        """Count ``n`` more steps done; ``postfix`` values are shown after the counts."""
        self.n += n
        if postfix:
            self.postfix.update(postfix)
        if self.disable or self.closed:
            return
        now = self.clock()
        if self._last is None or now - self._last >= self.interval or self._done():
            if not self.tty and self._done():
                return  # the final line is close()'s
            self._report(now)

    def set_postfix(self, **postfix: Any) -> None:
        """Values to show after the counts (e.g. the running loss)."""
        self.postfix.update(postfix)

    def close(self) -> None:
        """Write the final report (with the time taken)."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        self._report(self.clock(), final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _done(self) -> bool:
        return self.total is not None and self.n >= self.total

    # ---- text -------------------------------------------------------------------------------
    def rate(self, now: float | None = None) -> float | None:
        """Steps per second so far (None before any time has passed)."""
        elapsed = (self.clock() if now is None else now) - self.start
        return (self.n - self.initial) / elapsed if elapsed > 0 else None

    def _parts(self, now: float, final: bool) -> tuple[str, list[str]]:
        """The count text and the rest (rate, time, values)."""
        unit = self.unit
        if self.total is None:
            count = f"{_amount(self.n, unit)} {unit}" if unit != "B" else _amount(self.n, unit)
        else:
            total = _amount(self.total, unit)
            done = _amount(self.n, unit)
            count = f"{done}/{total}" + ("" if unit == "B" else f" {unit}")
        rest = []
        rate = self.rate(now)
        if rate is not None:
            per = f"{_amount(rate, unit)}/s" if unit == "B" else f"{rate:.1f} {unit}/s"
            rest.append(per)
        if final:
            rest.insert(0, f"in {_clock_text(now - self.start)}"
                        if now - self.start >= 60 else f"in {now - self.start:.1f}s")
        elif rate and self.total is not None:
            rest.append(f"{_clock_text(max(self.total - self.n, 0) / rate)} left")
        for key, value in self.postfix.items():
            rest.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
        return count, rest

    def _report(self, now: float, final: bool = False) -> None:
        self._last = now
        count, rest = self._parts(now, final)
        percent = None
        if self.total:
            percent = min(100, int(100 * self.n / self.total))
        if self.tty:
            bar = ""
            if percent is not None:
                filled = 30 * percent // 100
                bar = " [" + "#" * filled + "." * (30 - filled) + "]"
            pct = f" {percent:3d}%" if percent is not None else ""
            text = f"{self.desc}{bar} {count}{pct}  " + "  ".join(rest)
            pad = " " * max(self._width - len(text), 0)
            self._width = len(text)
            self.file.write("\r" + text + pad + ("\n" if final else ""))
        else:
            pct = f" ({percent}%)" if percent is not None else ""
            prefix = f"{self.desc}: " if self.desc else ""
            self.file.write(f"{prefix}{count}{pct}" + "".join(", " + r for r in rest) + "\n")
        self.file.flush()


def progress(iterable: Iterable, total: int | None = None, desc: str = "",
             **kwargs: Any) -> Iterator:
    """Yield the items of ``iterable`` while reporting progress (see :class:`Progress`;
    ``total`` defaults to ``len(iterable)`` when it has one).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> sum(progress([1, 2, 3], desc="adding", file=out, unit="number"))
        6
        >>> out.getvalue().startswith("adding: 1/3 number (33%)")
        True
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    with Progress(total, desc, **kwargs) as bar:
        for item in iterable:
            yield item
            bar.update()
