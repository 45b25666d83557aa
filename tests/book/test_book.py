"""The book's step scripts (stages 1-3), written as its readers write them (`import dezero`),
run unchanged on zerograd: through `python -m zerograd run` and through
`zerograd.compat.install()`."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import zerograd.utils
from zerograd import compat

HERE = Path(__file__).parent

NEWTON = [
    "0 variable(2.0)",
    "1 variable(1.4545454545454546)",
    "2 variable(1.1510467893775467)",
    "3 variable(1.0253259289766978)",
    "4 variable(1.0009084519430513)",
    "5 variable(1.0000012353089454)",
    "6 variable(1.000000000002289)",
    "7 variable(1.0)",
    "8 variable(1.0)",
    "9 variable(1.0)",
]

EXPECTED = {
    "step09.py": ["variable(3.297442541400256)"],
    "step24.py": [
        "sphere variable(2.0) variable(2.0)",
        "matyas variable(0.040000000000000036) variable(0.040000000000000036)",
        "goldstein variable(-5376.0) variable(8064.0)",
    ],
    "step27.py": [
        "0.7071067811865475",
        "variable(0.7071067811865476)",
        "0.7071064695751781",
        "variable(0.7071032148228457)",
    ],
    "step28.py": ["variable(0.6837118569138317) variable(0.4659526837427042)"],
    "step29.py": NEWTON,
    "step33.py": NEWTON,
    "step35.py": ["variable(0.6650910447505024)"],
    "step36.py": ["variable(100.0)"],
}


def _needs(script):
    if script == "step35.py" and not hasattr(zerograd.utils, "plot_dot_graph"):
        return pytest.mark.skip(reason="zerograd.utils does not re-export plot_dot_graph yet")
    return ()


SCRIPTS = [pytest.param(name, marks=_needs(name)) for name in sorted(EXPECTED)]


@pytest.mark.parametrize("script", SCRIPTS)
def test_python_m_zerograd_run(script, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "zerograd", "run", str(HERE / script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the repository: `dezero` must come from the alias alone
        env={**os.environ, "ZEROGRAD_CPU_ONLY": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == EXPECTED[script]


@pytest.fixture
def alias():
    installed = compat.is_installed()
    compat.install()
    yield
    if not installed:
        compat.uninstall()


@pytest.mark.parametrize("script", SCRIPTS)
def test_in_process_with_install(script, alias, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script])
    runpy.run_path(str(HERE / script), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == EXPECTED[script]


@pytest.mark.skipif(not hasattr(zerograd.utils, "plot_dot_graph"), reason="not re-exported")
def test_step35_draws_its_graph(tmp_path):
    target = tmp_path / "tanh.dot"  # the DOT text needs no Graphviz
    out = subprocess.run(
        [sys.executable, "-m", "zerograd", "run", str(HERE / "step35.py"), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert text.startswith("digraph g {") and '"gx4"' in text and '"Tanh"' in text
