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


def _run(script: str, *args: str, out: Path, timeout: int = 120):
    env = {**os.environ, "MPLBACKEND": "Agg", "ZEROGRAD_CPU_ONLY": "1"}
    # Other test processes may share the cores; OpenBLAS's spinning threads slow down
    # many times over on an oversubscribed machine, so the examples get one thread.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=out.parent,
        env=env,
    )


def run_example(script: str, *args: str, out: Path, timeout: int = 120,
                stderr: bool = False):
    """Run ``examples/<script>`` with ``args`` and ``--out out``; return its stdout (and
    its stderr, with ``stderr``)."""
    result = _run(script, *args, out=out, timeout=timeout)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return (result.stdout, result.stderr) if stderr else result.stdout


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


# The examples whose epochs report progress (spiral's 300 epochs of 10 batches take a
# second or two: its every-10-epoch lines are its progress, as in the book).
PROGRESS = {"mnist_mlp.py", "mnist_cnn.py", "gan.py", "vae.py", "char_transformer.py"}


@pytest.mark.parametrize("script, args, figures, numbers", QUICK,
                         ids=[q[0].removesuffix(".py") for q in QUICK])
def test_example_runs(script, args, figures, numbers, tmp_path):
    out = tmp_path / "out"
    stdout, stderr = run_example(script, "--epochs", "1", "--seed", "1", *args, out=out,
                                 stderr=True)
    for name in numbers:
        assert value(stdout, name) == value(stdout, name)  # a number, not NaN
    if script in PROGRESS:
        # zerograd.progress in a log (stderr is a pipe here): plain lines, the last one
        # at the end of the epoch with the time it took
        ends = [line for line in stderr.splitlines() if line.startswith("epoch 1: ")
                and "batch (100%), in " in line]
        assert len(ends) == 1 and "\r" not in stderr, stderr
    if HAVE_MATPLOTLIB:
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert written == sorted(figures)
    else:
        assert "matplotlib is not installed" in stdout or not figures


# Issue 13, item 17 and its sweep: settings that cannot work are one-line argparse errors
# (status 2), in every example, before any training.
REFUSED = [
    ("spiral.py", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("spiral.py", ["--hidden", "0"], "argument --hidden: must be at least 1, got 0"),
    ("spiral.py", ["--batch-size", "-3"], "argument --batch-size: must be at least 1, got -3"),
    ("spiral.py", ["--lr", "nan"], "argument --lr: must be a positive finite number, got 'nan'"),
    ("spiral.py", ["--lr", "0"], "argument --lr: must be a positive finite number, got '0'"),
    ("spiral.py", ["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    ("spiral.py", ["--seed", str(2**32)], "argument --seed: must be less than 2**32"),
    ("spiral.py", ["--limit", "0"], "argument --limit: must be at least 1, got 0"),
    ("gan.py", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("gan.py", ["--batch-size", "1"], "argument --batch-size: must be at least 2, got 1"),
    ("gan.py", ["--z-size", "0"], "argument --z-size: must be at least 1, got 0"),
    ("gan.py", ["--limit", "1"], "--limit must be at least 2 for the GAN"),
    ("vae.py", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("vae.py", ["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    ("vae.py", ["--latent-size", "0"], "argument --latent-size: must be at least 1, got 0"),
    ("char_transformer.py", ["--epochs", "0"], "argument --epochs: must be at least 1"),
    ("char_transformer.py", ["--seq-len", "0"], "argument --seq-len: must be at least 1"),
    ("char_transformer.py", ["--seq-len", "100000"],
     "--seq-len 100000 leaves no window in the text (6788 characters)"),
    ("char_transformer.py", ["--embed-dim", "16", "--num-heads", "3"],
     "--embed-dim 16 is not a multiple of --num-heads 3"),
    ("char_transformer.py", ["--num-layers", "0"], "argument --num-layers: must be at least 1"),
    ("char_transformer.py", ["--lr", "-1"], "argument --lr: must be a positive finite number"),
    ("char_transformer.py", ["--length", "-1"], "argument --length: must be at least 0"),
    ("char_transformer.py", ["--prompt", ""], "--prompt '': give at least one character"),
    ("char_transformer.py", ["--prompt", "Shall \u00e9"], "not in it: '\u00e9'"),
    ("mnist_mlp.py", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("mnist_mlp.py", ["--seed", "-5"], "argument --seed: must be at least 0, got -5"),
    ("mnist_cnn.py", ["--channels", "0"], "argument --channels: must be at least 1, got 0"),
]


@pytest.mark.parametrize("script, args, message", REFUSED,
                         ids=[f"{s.removesuffix('.py')}{' '.join(a)}" for s, a, _ in REFUSED])
def test_settings_that_cannot_work_are_one_line_errors(script, args, message, tmp_path):
    result = _run(script, *args, out=tmp_path / "out", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{script}: error: ") and message in last, result.stderr
    assert not (tmp_path / "out").exists()


# Small settings that used to fail at the end or in the middle of a run.
EDGES = [
    ("vae.py", ["--limit", "20"], ["vae_reconstructions.png", "vae_samples.png"]),
    ("gan.py", ["--limit", "65"], ["gan_samples.png"]),  # a last batch of one is left out
    ("mnist_cnn.py", ["--limit", "32", "--channels", "1"], ["mnist_cnn_filters.png"]),
    ("char_transformer.py", ["--limit", "8", "--embed-dim", "8", "--length", "0"], []),
]


@pytest.mark.parametrize("script, args, figures", EDGES,
                         ids=[f"{s.removesuffix('.py')}{' '.join(a)}" for s, a, _ in EDGES])
def test_small_settings_run_to_the_end(script, args, figures, tmp_path):
    out = tmp_path / "out"
    stdout = run_example(script, "--epochs", "1", *args, out=out)
    assert result_line(stdout)
    if HAVE_MATPLOTLIB:
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert written == sorted(figures)


def test_progress_comes_from_rank_0_only(tmp_path, mpi_launch):
    run = mpi_launch(2, tmp_path, "--epochs", "2", "--limit", "80", "--hidden", "16",
                     "--batch-size", "20", "--out", str(tmp_path / "out"),
                     script=EXAMPLES / "mnist_mlp.py", env={"MPLBACKEND": "Agg"})
    assert run.returncode == 0, run.stdout + run.stderr
    for epoch in (1, 2):
        ends = [line for line in run.stderr.splitlines()
                if line.startswith(f"epoch {epoch}: 4/4 batch (100%)")]  # 40 digits a rank
        assert len(ends) == 1, run.stderr


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
