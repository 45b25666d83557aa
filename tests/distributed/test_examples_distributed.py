"""The MNIST examples under mpiexec: they print once, save their figure once, and stop
with a one-line error on settings that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICK = {
    "mnist_mlp.py": ["--hidden", "32", "--batch-size", "20"],
    "mnist_cnn.py": ["--channels", "4", "--batch-size", "8"],
}


@pytest.mark.parametrize("script", sorted(QUICK))
def test_an_example_on_two_ranks_prints_and_saves_once(script, tmp_path, mpi_launch):
    run = mpi_launch(2, tmp_path, "--epochs", "2", "--limit", "120", "--seed", "1",
                     "--out", str(tmp_path / "out"), *QUICK[script],
                     script=EXAMPLES / script, env={"MPLBACKEND": "Agg"})
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    lines = run.stdout.splitlines()
    assert sum(line.startswith("result: test accuracy") for line in lines) == 1, lines
    assert sum(line.startswith("epoch ") for line in lines) == 2, lines
    saved = [line for line in lines if line.startswith("saved ")]
    assert len(saved) <= 1, lines  # none without matplotlib
    if saved:
        assert Path(saved[0].split()[1]).exists()


@pytest.mark.parametrize("args, message", [
    (["--limit", "0"], "argument --limit: must be at least 1, got 0"),
    (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--batch-size", "1"], "--batch-size 1 is smaller than the 2 ranks"),
])
def test_impossible_settings_are_a_one_line_error(args, message, tmp_path, mpi_launch):
    run = mpi_launch(2, tmp_path, *args, script=EXAMPLES / "mnist_cnn.py")
    assert run.returncode != 0
    assert message in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("script", sorted(QUICK))
def test_limit_zero_alone_is_a_one_line_error(script, tmp_path, launch_alone):
    run = launch_alone(None, tmp_path, "--limit", "0", script=EXAMPLES / script)
    assert run.returncode == 2
    assert "argument --limit: must be at least 1, got 0" in run.stderr
    assert "Traceback" not in run.stderr
