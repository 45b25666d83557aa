"""The book's stage 4-5 step scripts (layers, optimizers, dropout, CNN, RNN, LSTM), written
as its readers write them (`import dezero`), run unchanged through `python -m zerograd run`
in a fresh process; the tests check what they print."""

import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run_script(name: str, tmp_path) -> list[str]:
    """Run ``name`` with ``python -m zerograd run``; return its output lines."""
    out = subprocess.run(
        [sys.executable, "-m", "zerograd", "run", str(HERE / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the repository: `dezero` must come from the alias alone
        env={**os.environ, "ZEROGRAD_CPU_ONLY": "1"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def numbers(line: str) -> list[float]:
    """The numbers in a printed array or variable, e.g. ``variable([0. 2. 2.])``."""
    inner = line[line.index("[") + 1:line.rindex("]")]
    return [float(v) for v in inner.split()]


def test_dropout_train_and_test_mode(tmp_path):
    ones, train, test, stats = run_script("stage45_dropout.py", tmp_path)
    assert numbers(ones) == [1.0] * 5
    assert train.startswith("variable(") and set(numbers(train)) <= {0.0, 2.0}
    assert test == "variable([1. 1. 1. 1. 1.])"
    assert stats == "(10000,) 1.0"  # inverted dropout keeps the mean


def test_cnn_mechanics(tmp_path):
    assert run_script("stage45_cnn.py", tmp_path) == [
        "4 4",
        "(9, 75)",
        "(90, 75)",
        "(1, 8, 15, 15)",
        "(1, 5, 15, 15)",
        "True",  # conv2d == conv2d_simple
        "(2, 3, 4, 4) (2, 3, 8, 8)",
        "(2, 16, 8, 8) (16, 3, 3, 3)",
    ]


def test_rnn_step_and_truncated_bptt(tmp_path):
    assert run_script("stage45_rnn.py", tmp_path) == [
        "(1, 10)",
        "(1, 10)",
        "()",
        "True",  # every parameter got a gradient through the two steps
        "True True",  # unchain_backward cut the graph
    ]


def test_lstm_on_sin_curve_learns(tmp_path):
    *epochs, last = run_script("stage45_lstm_sin.py", tmp_path)
    losses = [float(line.split("loss")[1]) for line in epochs]
    assert [line.split("|")[1].strip() for line in epochs] == ["epoch 1", "epoch 2", "epoch 3"]
    assert all(math.isfinite(v) and v > 0 for v in losses)
    assert losses[-1] < losses[0]
    assert last == "1000 True"


def test_mlp_with_optimizer_fits_sin(tmp_path):
    *progress, params = run_script("stage45_mlp.py", tmp_path)
    iters = [int(line.split()[0]) for line in progress]
    losses = [float(line.split("variable(")[1].rstrip(")")) for line in progress]
    assert iters == [0, 1000, 2000, 2999]
    assert losses[-1] < 0.5 * losses[0]
    assert params == "4 [(1, 10), (10,), (10, 1), (1,)]"
