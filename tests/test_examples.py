"""The scripts in examples/ run end to end: each in a fresh process, offline.

The quick tests use tiny settings (one epoch on a few samples) and check that a script
finishes, prints its result and writes its figures; the full-length runs, marked slow,
check the results the README reports.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def run_example(script: str, *args: str, out: Path, timeout: int = 120) -> str:
    """Run ``examples/<script>`` with ``args`` and ``--out out``; return its stdout."""
    env = {**os.environ, "MPLBACKEND": "Agg", "ZEROGRAD_CPU_ONLY": "1"}
    # Other test processes may share the cores; OpenBLAS's spinning threads slow down
    # many times over on an oversubscribed machine, so the examples get one thread.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=out.parent,
        env=env,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def result_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("result:")]
    assert len(lines) == 1, stdout
    return lines[0]


def value(stdout: str, name: str) -> float:
    """The number printed after ``name`` on the result line."""
    match = re.search(rf"{re.escape(name)} (-?[0-9.]+(?:e-?[0-9]+)?)", result_line(stdout))
    assert match, f"no {name!r} in {result_line(stdout)!r}"
    return float(match.group(1))


# script, tiny arguments, figures it writes, numbers on its result line
QUICK = [
    ("spiral.py", ["--limit", "60"], ["spiral.png"], ["loss", "test accuracy"]),
    ("mnist_mlp.py", ["--limit", "200", "--hidden", "32"], ["mnist_mlp.png"],
     ["test accuracy"]),
    ("mnist_cnn.py", ["--limit", "64", "--channels", "4"], ["mnist_cnn_filters.png"],
     ["test accuracy"]),
    ("sin_rnn.py", ["--limit", "100", "--hidden", "10"], ["sin_rnn.png"],
     ["loss", "cos next-value MSE"]),
    ("sin_lstm.py", ["--limit", "100", "--hidden", "10"], ["sin_lstm.png"],
     ["loss", "cos next-value MSE"]),
    ("gan.py", ["--limit", "128"], ["gan_samples.png"], ["D loss", "G loss"]),
    ("vae.py", ["--limit", "200"], ["vae_reconstructions.png", "vae_samples.png"],
     ["loss", "test loss"]),
    ("char_transformer.py", ["--limit", "64", "--length", "20", "--embed-dim", "16"], [],
     ["loss"]),
]


@pytest.mark.parametrize("script, args, figures, numbers", QUICK,
                         ids=[q[0].removesuffix(".py") for q in QUICK])
def test_example_runs(script, args, figures, numbers, tmp_path):
    out = tmp_path / "out"
    stdout = run_example(script, "--epochs", "1", "--seed", "1", *args, out=out)
    for name in numbers:
        assert value(stdout, name) == value(stdout, name)  # a number, not NaN
    if HAVE_MATPLOTLIB:
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert written == sorted(figures)
    else:
        assert "matplotlib is not installed" in stdout or not figures


def test_examples_are_reproducible(tmp_path):
    runs = [run_example("spiral.py", "--epochs", "2", "--seed", "3", out=tmp_path / "out")
            for _ in range(2)]
    assert result_line(runs[0]).split("(")[0] == result_line(runs[1]).split("(")[0]


def test_char_transformer_prints_a_sample(tmp_path):
    stdout = run_example("char_transformer.py", "--epochs", "1", "--limit", "32",
                         "--embed-dim", "16", "--length", "30", "--prompt", "Love ",
                         out=tmp_path / "out")
    sample = stdout.split("sample:\n", 1)[1]
    assert sample.startswith("Love ") and len(sample.rstrip("\n")) == len("Love ") + 30


def test_gpu_flag_without_a_gpu_is_a_clear_error(tmp_path):
    from zerograd import cuda

    if cuda.gpu_enable:
        pytest.skip("a GPU is usable here")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "spiral.py"), "--gpu", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "no usable CUDA device" in result.stderr


# Full-length runs with the scripts' defaults: what examples/README.md reports.
@pytest.mark.slow
@pytest.mark.parametrize("script, check", [
    ("spiral.py", lambda out: value(out, "loss") < 0.25 and value(out, "train accuracy") > 0.9),
    ("mnist_mlp.py", lambda out: value(out, "test accuracy") > 0.93),
    ("mnist_cnn.py", lambda out: value(out, "test accuracy") >= 0.96),
    ("sin_rnn.py", lambda out: value(out, "cos next-value MSE") < 0.01),
    ("sin_lstm.py", lambda out: value(out, "cos next-value MSE") < 0.01),
    ("gan.py", lambda out: value(out, "D loss") < 1.5),
    ("vae.py", lambda out: value(out, "test loss") < 140),
    ("char_transformer.py", lambda out: value(out, "loss") < 0.6),
], ids=lambda v: v.removesuffix(".py") if isinstance(v, str) else "")
def test_example_full_run(script, check, tmp_path):
    # Minutes of training: deselected by default (pyproject's addopts); `pytest -m slow`.
    stdout = run_example(script, out=tmp_path / "out", timeout=900)
    assert check(stdout), stdout
