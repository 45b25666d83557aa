"""Drawing computational graphs with Graphviz.

:func:`get_dot_graph` describes the graph behind a Variable in Graphviz's DOT language:
Variables as ellipses (orange), Functions as boxes (blue), arrows in the direction of
the forward computation. :func:`plot_dot_graph` turns that into an image file with
Graphviz's ``dot`` program, and :class:`DotGraph` shows a graph inline in Jupyter.

Graphviz is a system program, not a Python package. When ``dot`` is missing,
:func:`plot_dot_graph` still writes the ``.dot`` text file, then warns with a
:class:`GraphvizNotFoundWarning` that says how to install Graphviz (it does not raise,
so a training script that plots its model keeps running).

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> from zerograd.functions import square
    >>> x = Variable(np.array(2.0), name="x")
    >>> y = square(x)
    >>> y.name = "y"
    >>> print(get_dot_graph(y, verbose=False))
    digraph g {
    1 [label="y", color=orange, style=filled]
    2 [label="Square", color=lightblue, style=filled, shape=box]
    2 -> 1
    3 [label="x", color=orange, style=filled]
    3 -> 2
    }
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "get_dot_graph",
    "plot_dot_graph",
    "DotGraph",
    "GraphvizNotFoundWarning",
]

_INSTALL_HINT = (
    "install Graphviz, which provides the `dot` program: `sudo apt-get install graphviz` "
    "(Debian/Ubuntu), `brew install graphviz` (macOS), or `conda install graphviz`; on "
    "Windows, the installer from https://graphviz.org/download/ (add it to PATH)"
)


_VARIABLE_STYLE = "color=orange, style=filled"  # DOT's default shape: an ellipse
_FUNCTION_STYLE = "color=lightblue, style=filled, shape=box"


class GraphvizNotFoundWarning(RuntimeWarning):
    """Warned by :func:`plot_dot_graph` when Graphviz's ``dot`` is not on the PATH."""


def _quote(text: str) -> str:
    """A DOT string literal: backslashes and double quotes escaped, newlines kept."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n") + '"'


def _variable_label(v, verbose: bool) -> str:
    name = "" if v.name is None else str(v.name)
    # An intermediate that no function kept is a stand-in without data that still
    # knows its shape and dtype; a Variable whose data is None knows neither.
    shape, dtype = getattr(v, "shape", None), getattr(v, "dtype", None)
    if verbose and shape is not None:
        details = f"{shape} {dtype}"
        name = f"{name}: {details}" if name else details
    return name


def get_dot_graph(output, verbose: bool = True) -> str:
    """The graph that computed ``output``, as Graphviz DOT text.

    Walks the graph from ``output`` back to its leaves without recursion, so graphs of
    any depth work. Each Variable and Function appears once, however often it is used.

    Args:
        output: the Variable whose graph to describe (or a list of Variables, whose
            graphs are drawn together).
        verbose: add each Variable's shape and dtype to its label.

    Returns:
        The DOT text, starting ``digraph g {``.

    Example:
        >>> import numpy as np
        >>> from zerograd import Variable
        >>> x = Variable(np.ones((2, 3), dtype=np.float32), name="x")
        >>> text = get_dot_graph(x * 2.0)
        >>> '[label="x: (2, 3) float32", color=orange, style=filled]' in text
        True
        >>> "shape=box" in text
        True
    """
    outputs = output if isinstance(output, (list, tuple)) else [output]
    ids: dict[int, int] = {}  # id(object) -> node number in the DOT text
    keep: list = []  # keeps the objects alive so that their ids stay unique
    lines = ["digraph g {"]

    def node(obj, label: str, function: bool) -> tuple[int, bool]:
        key = id(obj)
        if key in ids:
            return ids[key], False
        ids[key] = len(ids) + 1
        keep.append(obj)
        style = _FUNCTION_STYLE if function else _VARIABLE_STYLE
        lines.append(f"{ids[key]} [label={_quote(label)}, {style}]")
        return ids[key], True

    stack = []
    for v in outputs:
        node(v, _variable_label(v, verbose), function=False)
        if v.creator is not None:
            stack.append(v.creator)
    while stack:
        f = stack.pop()
        f_id, new = node(f, type(f).__name__, function=True)
        if not new:
            continue
        for ref in f.outputs:
            y = ref()
            if y is not None:
                y_id, _ = node(y, _variable_label(y, verbose), function=False)
                lines.append(f"{f_id} -> {y_id}")
        # Reversed, so that the first input's branch is drawn (popped) first.
        for x in reversed(f.inputs):
            x_id, _ = node(x, _variable_label(x, verbose), function=False)
            lines.append(f"{x_id} -> {f_id}")
            if x.creator is not None and id(x.creator) not in ids:
                stack.append(x.creator)
    lines.append("}")
    return "\n".join(lines)


def _find_dot() -> str | None:
    return shutil.which("dot")


def _run_dot(dot: str, args: list[str], source: str | None = None) -> bytes:
    """Run ``dot`` with an argument list (no shell); raise with its stderr on failure."""
    result = subprocess.run(
        [dot, *args],
        input=None if source is None else source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(
            f"Graphviz `dot` failed with exit code {result.returncode} "
            f"(command: {' '.join([dot, *args])}): {stderr or 'no message'}"
        )
    return result.stdout


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")  # never import IPython just to ask
    get = getattr(ipython, "get_ipython", None)
    return get is not None and get() is not None


def plot_dot_graph(
    output, verbose: bool = True, to_file: str | Path = "graph.png"
) -> DotGraph | None:
    """Draw the graph behind ``output`` into an image file with Graphviz.

    Writes the DOT text next to the image (``graph.png`` gets ``graph.dot``), then runs
    ``dot -T<format>``, the format taken from ``to_file``'s extension (png, svg, pdf,
    ...; ``.dot`` writes the text only).

    When ``dot`` is not installed, only the ``.dot`` file is written and a
    :class:`GraphvizNotFoundWarning` says how to install Graphviz; nothing is raised.

    Args:
        output: the Variable whose graph to draw.
        verbose: show each Variable's shape and dtype.
        to_file: the image to write; its folder is created if needed.

    Returns:
        In IPython/Jupyter, a :class:`DotGraph` that displays the graph inline;
        otherwise None.

    Raises:
        ValueError: when ``to_file`` has no extension to take the format from.
        RuntimeError: when ``dot`` fails; the message carries dot's own error output.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from zerograd import Variable
        >>> x = Variable(np.array(1.0), name="x")
        >>> folder = tempfile.mkdtemp()
        >>> plot_dot_graph(x * x, to_file=os.path.join(folder, "graph.dot"))  # text only
        >>> sorted(os.listdir(folder))
        ['graph.dot']

        With Graphviz installed, ``to_file="graph.png"`` writes ``graph.dot`` and
        ``graph.png``.
    """
    to_file = Path(to_file)
    fmt = to_file.suffix[1:].lower()
    if not fmt:
        raise ValueError(
            f"plot_dot_graph: to_file={str(to_file)!r} has no extension; name the image "
            "with the format you want, e.g. 'graph.png' or 'graph.svg'"
        )
    source = get_dot_graph(output, verbose)
    to_file.parent.mkdir(parents=True, exist_ok=True)
    dot_file = to_file.with_suffix(".dot")
    dot_file.write_text(source + "\n", encoding="utf-8")
    if fmt != "dot":
        dot = _find_dot()
        if dot is None:
            warnings.warn(
                f"plot_dot_graph: Graphviz's `dot` was not found, so only the graph's "
                f"text was written, to {dot_file}; to draw {to_file}, {_INSTALL_HINT}",
                GraphvizNotFoundWarning,
                stacklevel=2,
            )
            return None
        _run_dot(dot, [f"-T{fmt}", str(dot_file), "-o", str(to_file)])
    return DotGraph(source) if _in_ipython() else None


class DotGraph:
    """DOT text that Jupyter displays as a picture (SVG drawn by Graphviz).

    Args:
        source: DOT text, e.g. from :func:`get_dot_graph`.

    Example:
        >>> import numpy as np
        >>> from zerograd import Variable
        >>> x = Variable(np.array(1.0), name="x")
        >>> graph = DotGraph(get_dot_graph(x * x))
        >>> graph
        <DotGraph: 8 lines of DOT>
        >>> graph.source.startswith("digraph g {")
        True
    """

    def __init__(self, source: str):
        self.source = source

    def __repr__(self) -> str:
        lines = self.source.count("\n") + 1
        return f"<DotGraph: {lines} lines of DOT>"

    def __str__(self) -> str:
        return self.source

    def pipe(self, format: str = "svg") -> bytes:
        """Render with Graphviz and return the file's bytes (``format``: svg, png, ...).

        Raises:
            RuntimeError: when Graphviz is not installed or ``dot`` fails.
        """
        dot = _find_dot()
        if dot is None:
            raise RuntimeError(f"DotGraph: Graphviz's `dot` was not found; {_INSTALL_HINT}")
        return _run_dot(dot, [f"-T{format}"], self.source)

    def _repr_svg_(self) -> str | None:
        # None tells Jupyter to fall back to the text representation.
        if _find_dot() is None:
            return None
        return self.pipe("svg").decode("utf-8")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        bundle = {"text/plain": repr(self)}
        svg = self._repr_svg_()
        if svg is not None:
            bundle["image/svg+xml"] = svg
        return bundle
