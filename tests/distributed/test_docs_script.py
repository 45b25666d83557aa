"""The training script of docs/distributed.md runs as the page says: alone, and on two
ranks, printing each epoch once and saving the weights once."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "distributed.md"


def page_script() -> str:
    """The page's first ```python block: the whole training script."""
    text = DOCS.read_text(encoding="utf-8")
    return re.search(r"^```python\n(.*?)^```", text, re.S | re.M).group(1)


def check(run) -> None:
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    lines = run.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1"], ["epoch", "2"]], lines
    accuracy = float(lines[-1].split()[-1])
    assert 0.8 < accuracy <= 1.0, lines
    assert (run.out / "mlp.npz").exists()


def test_the_script_runs_alone(tmp_path, launch_alone):
    script = tmp_path / "train.py"
    script.write_text(page_script())
    check(launch_alone(None, tmp_path, script=script))


def test_the_script_runs_on_two_ranks(tmp_path, mpi_launch):
    script = tmp_path / "train.py"
    script.write_text(page_script())
    check(mpi_launch(2, tmp_path, script=script))
