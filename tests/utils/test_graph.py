"""zerograd.utils.graph: DOT text, drawing with Graphviz, and the missing-Graphviz path."""

import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from zerograd import Variable
from zerograd.functions import exp, square, tanh
from zerograd.utils import graph
from zerograd.utils.graph import (
    DotGraph,
    GraphvizNotFoundWarning,
    get_dot_graph,
    plot_dot_graph,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")


def _nodes_and_edges(text):
    nodes = dict(re.findall(r'^(\d+) \[label="((?:[^"\\]|\\.)*)"', text, re.M))
    edges = re.findall(r"^(\d+) -> (\d+)$", text, re.M)
    return nodes, [(nodes[a], nodes[b]) for a, b in edges]


def _step9_graph():
    x = Variable(np.array(0.5), name="x")
    a = square(x)
    a.name = "a"
    b = exp(a)
    b.name = "b"
    y = square(b)
    y.name = "y"
    return x, y


# ---- get_dot_graph --------------------------------------------------------------------
def test_dot_text_of_a_chain():
    _, y = _step9_graph()
    text = get_dot_graph(y, verbose=False)
    assert text.startswith("digraph g {\n") and text.endswith("\n}")
    nodes, edges = _nodes_and_edges(text)
    assert sorted(nodes.values()) == sorted(["x", "a", "b", "y", "Square", "Exp", "Square"])
    assert ("x", "Square") in edges and ("Square", "a") in edges
    assert ("a", "Exp") in edges and ("Exp", "b") in edges
    assert ("b", "Square") in edges and ("Square", "y") in edges
    assert len(edges) == 6


def test_variables_are_ellipses_functions_are_boxes():
    _, y = _step9_graph()
    for line in get_dot_graph(y).splitlines()[1:-1]:
        if "->" in line:
            continue
        if "Square" in line or "Exp" in line:
            assert "shape=box" in line and "lightblue" in line
        else:
            assert "shape" not in line and "orange" in line  # DOT's default: ellipse


def test_verbose_labels_show_shape_and_dtype():
    x = Variable(np.ones((2, 3), dtype=np.float32), name="x")
    y = x * 2.0
    nodes, _ = _nodes_and_edges(get_dot_graph(y, verbose=True))
    labels = set(nodes.values())
    assert "x: (2, 3) float32" in labels
    assert "(2, 3) float32" in labels  # unnamed output
    # A Python constant is kept inside its function, not drawn as a Variable.
    assert labels == {"x: (2, 3) float32", "(2, 3) float32", "MulConstant"}
    nodes, _ = _nodes_and_edges(get_dot_graph(y, verbose=False))
    assert "x" in nodes.values()


def test_shared_nodes_appear_once():
    x = Variable(np.array(2.0), name="x")
    a = square(x)
    y = square(a) + square(a)
    nodes, edges = _nodes_and_edges(get_dot_graph(y, verbose=False))
    assert list(nodes.values()).count("x") == 1
    assert list(nodes.values()).count("Square") == 3
    assert list(nodes.values()).count("Add") == 1
    assert len(edges) == 9  # x->Sq->a, a->Sq->b, a->Sq->c, b->Add, c->Add, Add->y


def test_a_leaf_alone():
    x = Variable(np.array(1.0), name="x")
    expected = 'digraph g {\n1 [label="x", color=orange, style=filled]\n}'
    assert get_dot_graph(x, verbose=False) == expected


def test_names_are_escaped():
    x = Variable(np.array(1.0), name='say "hi"\\ now')
    text = get_dot_graph(x * 1.0, verbose=False)
    assert r'label="say \"hi\"\\ now"' in text


def test_deep_graph_without_recursion():
    x = Variable(np.array(0.1))
    y = x
    for _ in range(5000):
        y = y * 1.0
    text = get_dot_graph(y, verbose=False)
    assert text.count("Mul") == 5000


def test_multi_output_function_dead_output_is_skipped():
    from zerograd import Function

    class Two(Function):
        def forward(self, x):
            return x, 2 * x

        def backward(self, g0, g1):
            return g0 + 2 * g1

    x = Variable(np.array(1.0), name="x")
    y0, y1 = Two()(x)
    y0.name, y1.name = "y0", "y1"
    nodes, edges = _nodes_and_edges(get_dot_graph(y0, verbose=False))
    assert ("Two", "y1") in edges  # a living sibling is drawn
    del y1
    nodes, edges = _nodes_and_edges(get_dot_graph(y0, verbose=False))
    assert "y1" not in nodes.values()


@needs_dot
def test_dot_accepts_the_text():
    _, y = _step9_graph()
    source = get_dot_graph(y)
    result = subprocess.run(
        [shutil.which("dot"), "-Tsvg"], input=source.encode(), capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert b"<svg" in result.stdout


# ---- plot_dot_graph ------------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_plot_writes_the_image_and_the_dot_file(tmp_path, fmt, magic):
    _, y = _step9_graph()
    target = tmp_path / "sub" / f"graph.{fmt}"
    assert plot_dot_graph(y, verbose=False, to_file=str(target)) is None
    assert target.read_bytes().startswith(magic)
    assert (tmp_path / "sub" / "graph.dot").read_text().startswith("digraph g {")


def test_plot_to_a_dot_file_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    _, y = _step9_graph()
    target = tmp_path / "graph.dot"
    plot_dot_graph(y, to_file=target)
    assert target.read_text() == get_dot_graph(y) + "\n"


def test_plot_needs_an_extension(tmp_path):
    _, y = _step9_graph()
    with pytest.raises(ValueError, match="no extension"):
        plot_dot_graph(y, to_file=tmp_path / "graph")


@pytest.mark.parametrize("how", ["which", "path"])
def test_missing_graphviz_writes_dot_and_warns(tmp_path, monkeypatch, how):
    if how == "which":
        monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    else:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _, y = _step9_graph()
    target = tmp_path / "graph.png"
    with pytest.warns(GraphvizNotFoundWarning) as record:
        result = plot_dot_graph(y, to_file=target)
    assert result is None
    assert not target.exists()
    assert (tmp_path / "graph.dot").read_text().startswith("digraph g {")
    message = str(record[0].message)
    assert "apt-get install graphviz" in message
    assert "brew install graphviz" in message
    assert "conda install graphviz" in message
    assert str(tmp_path / "graph.dot") in message


def _fake_dot(tmp_path, exit_code, stderr_text):
    """A stand-in `dot` that records its arguments and fails."""
    script = tmp_path / "dot"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/args.txt"\n'
        f'echo "{stderr_text}" >&2\n'
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return script


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as `dot`")
def test_dot_failure_raises_with_its_stderr(tmp_path, monkeypatch):
    fake = _fake_dot(tmp_path, 3, "Error: syntax error in line 1")
    monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake))
    _, y = _step9_graph()
    out = tmp_path / "out dir; rm -rf x" / "graph.png"  # spaces, ';': no shell involved
    with pytest.raises(RuntimeError, match=r"exit code 3.*syntax error in line 1"):
        plot_dot_graph(y, to_file=out)
    args = (tmp_path / "args.txt").read_text().split()
    assert args[0] == "-Tpng"
    assert (tmp_path / "out dir; rm -rf x" / "graph.dot").exists()


# ---- Jupyter -----------------------------------------------------------------------------
@needs_dot
def test_dot_graph_renders_svg():
    _, y = _step9_graph()
    g = DotGraph(get_dot_graph(y))
    svg = g._repr_svg_()
    assert "<svg" in svg and "Square" in svg
    bundle = g._repr_mimebundle_()
    assert bundle["image/svg+xml"] == svg
    assert bundle["text/plain"].startswith("<DotGraph")
    assert g.pipe("png").startswith(b"\x89PNG")
    assert str(g) == g.source


def test_dot_graph_without_graphviz_falls_back_to_text(monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    g = DotGraph("digraph g {\n}")
    assert g._repr_svg_() is None
    assert set(g._repr_mimebundle_()) == {"text/plain"}
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        g.pipe()


@needs_dot
def test_plot_in_ipython_returns_a_displayable(tmp_path, monkeypatch):
    shell = object()
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    _, y = _step9_graph()
    shown = plot_dot_graph(y, to_file=tmp_path / "g.png")
    assert isinstance(shown, DotGraph)
    assert "<svg" in shown._repr_svg_()


def test_outside_ipython_nothing_is_imported(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert graph._in_ipython() is False
    assert "IPython" not in sys.modules


def test_tanh_graph_of_a_higher_derivative():
    # Step 35 draws the graph of the gradient of tanh: it must describe a real graph.
    x = Variable(np.array(1.0), name="x")
    y = tanh(x)
    y.backward(create_graph=True)
    gx = x.grad
    gx.name = "gx"
    nodes, edges = _nodes_and_edges(get_dot_graph(gx, verbose=False))
    assert "x" in nodes.values() and "gx" in nodes.values()
    assert len(edges) > 4
