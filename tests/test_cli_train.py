"""``python -m zerograd train``: options, early failures, checkpoints, resume, Ctrl-C.

The runs are real processes (each wait bounded by a timeout); the option checks that
fail before any training also run in-process, which is quicker.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from zerograd import demo
from zerograd.logs import read_log

SMALL = ["--hidden", "64", "--batch-size", "50"]  # 80 batches an epoch, quick


def _env():
    env = {**os.environ, "ZEROGRAD_CPU_ONLY": "1", "MPLBACKEND": "Agg",
           "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


def train(*args, cwd, timeout=240, env=None):
    """Run ``python -m zerograd train ARGS``; return the completed process."""
    return subprocess.run([sys.executable, "-m", "zerograd", "train", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env or _env())


def _weights(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _assert_same_weights(a, b):
    a, b = _weights(a), _weights(b)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Three epochs in one go: the weights every interrupted-and-resumed run must match."""
    folder = tmp_path_factory.mktemp("straight")
    result = train(*SMALL, "--epochs", "3", "--out", "out", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "out" / "mlp_mnist.npz"


# ---- help and option checks -----------------------------------------------------------------
def test_help_says_what_each_option_does_and_its_default(capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ["--epochs", "--batch-size", "--hidden", "--lr", "--dtype", "--seed",
                   "--early-stop", "--out", "--resume", "--logdir", "--gpu"]:
        assert option in text
    for action in demo.make_parser()._actions:
        if action.dest != "help":
            assert action.help and "(default:" in action.help, action.dest


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "nan"], "--lr: must be a positive finite number"),
        (["--lr", "-1"], "--lr: must be a positive finite number"),
        (["--lr", "0"], "--lr: must be a positive finite number"),
        (["--lr", "inf"], "--lr: must be a positive finite number"),
        (["--lr", "fast"], "--lr: expected a number"),
        (["--epochs", "0"], "--epochs: must be at least 1"),
        (["--batch-size", "-5"], "--batch-size: must be at least 1"),
        (["--hidden", "1.5"], "--hidden: expected a whole number"),
        (["--seed", "-1"], "--seed: must be 0 or more"),
        (["--early-stop", "0"], "--early-stop: must be at least 1"),
        (["--dtype", "float64"], "--dtype: invalid choice"),
    ],
)
def test_bad_option_values_are_refused_before_anything_runs(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        demo.main([*args, "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_or_cannot_be_made_fails_at_once(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    for out, message in [(tmp_path / "taken", "this is a file, not a folder"),
                         (tmp_path / "taken" / "sub", "cannot write there")]:
        with pytest.raises(SystemExit) as info:
            demo.main(["--out", str(out)])
        assert info.value.code == 2
        captured = capsys.readouterr()
        assert f"--out {out}: {message}" in captured.err and "epoch" not in captured.out
    with pytest.raises(SystemExit):
        demo.main(["--logdir", str(tmp_path / "taken"), "--out", str(tmp_path / "o")])
    assert "--logdir" in capsys.readouterr().err


def test_an_unwritable_out_fails_within_seconds_in_a_real_process(tmp_path):
    (tmp_path / "taken").write_text("a file")
    start = time.monotonic()
    result = train("--out", "taken/weights", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "cannot write there" in result.stderr
    assert "Traceback" not in result.stderr and "epoch" not in result.stdout
    assert time.monotonic() - start < 60


def test_gpu_without_a_device_is_one_clear_line(tmp_path):
    result = train("--gpu", "--out", "out", cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no usable CUDA device" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda p: None, [], "no such file"),
        (lambda p: p.write_bytes(b"junk" * 10), [], "cannot read"),
        (lambda p: np.savez(p, x=np.zeros(2)), [], "not a zerograd checkpoint"),
    ],
)
def test_resume_from_a_bad_file_fails_at_once(tmp_path, capsys, make, args, message):
    path = tmp_path / "ckpt.npz"
    make(path)
    with pytest.raises(SystemExit) as info:
        demo.main(["--resume", str(path), "--out", str(tmp_path / "out"), *args])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_stop_request_waits_for_the_batch_then_a_second_ctrl_c_stops_at_once():
    stop = demo._StopRequest()
    stop._handler(signal.SIGINT, None)
    assert stop.requested
    with pytest.raises(KeyboardInterrupt):
        stop._handler(signal.SIGINT, None)
    previous = signal.getsignal(signal.SIGINT)
    with demo._StopRequest():
        assert signal.getsignal(signal.SIGINT) is not previous
    assert signal.getsignal(signal.SIGINT) is previous


# ---- checkpoints and resume -------------------------------------------------------------------
def test_one_epoch_then_resume_for_two_more_matches_three_in_a_row(tmp_path, straight):
    first = train(*SMALL, "--epochs", "1", "--out", "out", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out" / "checkpoint.npz").exists()
    second = train("--resume", "out/checkpoint.npz", "--epochs", "3", "--out", "out",
                   cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "resumed from out/checkpoint.npz: 1 epochs done" in second.stdout
    assert "epoch  3" in second.stdout and "epoch  1 " not in second.stdout
    _assert_same_weights(straight, tmp_path / "out" / "mlp_mnist.npz")


def test_resume_refuses_options_that_change_the_run(tmp_path):
    first = train(*SMALL, "--epochs", "1", "--out", "out", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    result = train("--resume", "out/checkpoint.npz", "--hidden", "32", "--out", "out",
                   cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "--hidden 32 differs from the run being resumed (64)" in result.stderr


def test_ctrl_c_leaves_a_checkpoint_that_resumes_exactly(tmp_path, straight):
    process = subprocess.Popen(
        [sys.executable, "-m", "zerograd", "train", *SMALL, "--epochs", "3", "--out", "out"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env())
    try:
        # training has started once the first progress line is out (after batch 1)
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("epoch  1: 1/80 batch"):
            assert time.monotonic() < deadline, "no progress line within 120 s"
            line = process.stderr.readline()
            assert line, f"the process ended early: {process.stdout.read()}"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # 0 would mean that the three epochs ended before the signal came
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    messages = [s for s in stderr.splitlines() if s.startswith("interrupted")]
    assert len(messages) == 1
    assert "checkpoint saved; resume with: python -m zerograd train --resume " \
           f"{os.path.join('out', 'checkpoint.npz')}" in messages[0]
    resumed = train("--resume", "out/checkpoint.npz", "--epochs", "3", "--out", "out",
                    cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from out/checkpoint.npz: 0 epochs done, epoch 1 at batch" in resumed.stdout
    assert "epoch  3" in resumed.stdout
    _assert_same_weights(straight, tmp_path / "out" / "mlp_mnist.npz")


def test_logdir_gets_the_curves_and_a_resumed_run_continues_the_log(tmp_path):
    # Hide tensorboardX (its import loads torch: seconds per run); test_logs.py checks the
    # event files. The JSON lines are written either way.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "tensorboardX.py").write_text("raise ImportError('hidden by the test')\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    first = train(*SMALL, "--epochs", "1", "--out", "out", "--logdir", "logs", cwd=tmp_path,
                  env=env)
    assert first.returncode == 0, first.stderr
    with open(tmp_path / "logs" / "log.jsonl", "a") as f:  # as if logged after the checkpoint
        f.write('{"tag": "loss/batch", "step": 81, "value": 99.0, "time": 0}\n')
    second = train("--resume", "out/checkpoint.npz", "--epochs", "2", "--out", "out",
                   "--logdir", "logs", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    records = read_log(tmp_path / "logs")
    train_loss = [(r["step"], r["value"]) for r in records if r["tag"] == "loss/train"]
    assert [step for step, _ in train_loss] == [80, 160]
    batches = [r["step"] for r in records if r["tag"] == "loss/batch"]
    assert batches == list(range(1, 161))  # the stray record is gone
    assert all(r.get("value") != 99.0 for r in records)
    assert any(r["tag"] == "weights/l0.W" and "histogram" in r for r in records)
    assert not any(name.startswith("events.out") for name in os.listdir(tmp_path / "logs"))


def test_early_stop_ends_the_run_and_keeps_the_best_weights(tmp_path):
    # a rate far too large: the held-out loss gets worse after the first epochs
    result = train(*SMALL, "--epochs", "8", "--lr", "0.5", "--early-stop", "2", "--out",
                   "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "early stop: the held-out loss has not improved for 2 epochs" in result.stdout
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) < 8
    losses = [float(line.split("held-out loss ")[1].split()[0]) for line in epochs]
    best = int(np.argmin(losses))
    assert len(epochs) == best + 3  # two epochs without improvement after the best
    assert f"the weights of epoch {best + 1} " in result.stdout


def test_float16_training_runs_and_saves_float16_weights(tmp_path):
    result = train("--hidden", "16", "--epochs", "1", "--dtype", "float16", "--out", "out",
                   cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(float16)" in result.stdout
    weights = _weights(tmp_path / "out" / "mlp_mnist.npz")
    assert all(w.dtype == np.float16 for w in weights.values())
    accuracy = float(result.stdout.split("held-out accuracy ")[1].split()[0])
    assert accuracy > 0.5
