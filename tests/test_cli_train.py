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
        # (a RecursionError and its traceback)
        (lambda p: np.savez(p, __checkpoint__=np.frombuffer(b"[" * 100_000, np.uint8)),
         [], "has a damaged header (it nests too deeply to be read)"),
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


# ---- a hostile user's sweep (issue 13) ------------------------------------------------------
def _fake_checkpoint(path, **config):
    """A checkpoint whose header says it was written by the train command with
    ``config`` (the weights are a stand-in: only loading would notice)."""
    import zerograd.layers as L
    from zerograd.checkpoint import save_checkpoint

    ranks = config.pop("ranks", 1)
    run = config.pop("run", {"epochs": 8, "logdir": None})
    options = {**demo.DEFAULTS, **config}
    save_checkpoint(path, L.Linear(2, in_size=2), epoch=1, iteration=80, config=options,
                    run=run, history={}, partial={}, ranks=ranks)


@pytest.mark.parametrize("config, args, message", [
    ({"dtype": "float16"}, ["--dtype", "float32"],
     "--dtype float32 differs from the run being resumed (float16)"),
    ({"hidden": -4}, [], "the checkpoint's options are damaged (hidden: must be at least 1"),
    ({"lr": float("nan")}, [], "the checkpoint's options are damaged (lr: must be a positive"),
    ({"dtype": "int8"}, [], "the checkpoint's options are damaged (dtype: unknown dtype"),
    ({"early_stop": 0}, [], "the checkpoint's options are damaged (early_stop: must be"),
    # values of the wrong kind (a string lr reached Adam: a traceback)
    ({"lr": "0.01"}, [], "the checkpoint's options are damaged (lr: expected a number, "
                         "got '0.01')"),
    ({"hidden": 16.0}, [], "(hidden: expected a whole number, got 16.0)"),
    ({"seed": True}, [], "(seed: expected a whole number, got True)"),
    ({"early_stop": "2"}, [], "(early_stop: expected a whole number, got '2')"),
    ({"run": {"epochs": "9"}}, [], "(epochs: expected a whole number, got '9')"),
    ({"run": {"epochs": 4, "logdir": 3}}, [], "(logdir: expected a folder, got 3)"),
    ({"run": {"epochs": 1}}, [], "the run has done all its 1 epochs; give a new total, "
                                 "e.g. --epochs 2"),
    ({}, ["--epochs", "1"], "--epochs 1: the run being resumed has done 1 epochs already; "
                            "give the new total, e.g. --epochs 2"),
])
def test_resume_refuses_a_checkpoint_that_cannot_continue(tmp_path, capsys, config, args,
                                                          message):
    path = tmp_path / "ckpt.npz"
    _fake_checkpoint(path, **config)
    with pytest.raises(SystemExit) as info:
        demo.main(["--resume", str(path), "--out", str(tmp_path / "out"), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_resumed_options_are_the_checked_values(tmp_path):
    path = tmp_path / "ckpt.npz"
    _fake_checkpoint(path, lr=1, hidden=16, run={"epochs": 5, "logdir": None})
    args = demo.make_parser().parse_args(["--resume", str(path)])
    options = demo._run_options(args, 1)
    assert options["lr"] == 1.0 and type(options["lr"]) is float
    assert (options["hidden"], options["epochs"]) == (16, 5)
    assert options["out"] == str(tmp_path) and options["logdir"] is None
    args = demo.make_parser().parse_args(["--resume", str(path), "--epochs", "7", "--out",
                                          str(tmp_path / "o"), "--logdir", "L"])
    options = demo._run_options(args, 1)  # given again: they win
    assert (options["epochs"], options["out"], options["logdir"]) == (
        7, str(tmp_path / "o"), "L")


def test_a_new_run_does_not_mix_its_log_with_an_earlier_one(tmp_path, capsys):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "log.jsonl").write_text('{"tag": "loss/batch", "step": 1, '
                                                 '"value": 2.0, "time": 0}\n')
    with pytest.raises(SystemExit) as info:
        demo.main(["--logdir", str(tmp_path / "logs"), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert f"--logdir {tmp_path / 'logs'}: it holds the log of an earlier run (log.jsonl); " \
           "give another folder, remove that log, or continue that run with --resume" \
        in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main(["--out", ""])
    assert "--out: give a folder (the name given is empty)" in capsys.readouterr().err


def test_resume_of_a_folder_names_the_file_to_give(tmp_path, capsys):
    with pytest.raises(SystemExit):
        demo.main(["--resume", str(tmp_path), "--out", str(tmp_path / "out")])
    assert f"this is a folder; give the checkpoint file in it (e.g. " \
           f"{tmp_path / 'checkpoint.npz'})" in capsys.readouterr().err


def test_resume_of_a_checkpoint_from_more_ranks_is_refused_alone(tmp_path, capsys):
    path = tmp_path / "ckpt.npz"
    _fake_checkpoint(path, ranks=2)
    with pytest.raises(SystemExit):
        demo.main(["--resume", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "this checkpoint was written by a run on 2 ranks and cannot continue in one " \
           "process" in err
    assert f"resume it with mpiexec -n 2 python -m zerograd train --resume {path}" in err


def test_resume_of_another_models_checkpoint_is_one_line_and_changes_nothing(tmp_path,
                                                                             capsys):
    # the header says hidden=16, the weights are those of another model
    path = tmp_path / "ckpt.npz"
    _fake_checkpoint(path, hidden=16)
    before = path.read_bytes()
    assert demo.main(["--resume", str(path), "--epochs", "2", "--out",
                      str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"zerograd train: --resume {path}: load_checkpoint: ")
    assert "does not fit the model" in err and "Traceback" not in err
    assert path.read_bytes() == before
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_a_diverging_run_stops_with_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys):
    # a learning rate absurdly large (but finite and positive, so accepted) overflows
    # the weights within a few batches: stop there instead of training on NaN to exit 0
    out = tmp_path / "out"
    status = demo.main(["--hidden", "16", "--batch-size", "50", "--epochs", "3", "--lr",
                        "1e30", "--out", str(out)])
    assert status == 1
    err = capsys.readouterr().err
    message = [line for line in err.splitlines() if line.startswith("zerograd train:")]
    assert len(message) == 1 and "training diverged" in message[0]
    assert "in epoch 1, batch" in message[0] and "a smaller --lr (this one: 1e+30)" in err
    assert not (out / "checkpoint.npz").exists() and not (out / "mlp_mnist.npz").exists()


def test_sigterm_is_taken_like_ctrl_c():
    stop = demo._StopRequest()
    with stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handler
        stop._handler(signal.SIGTERM, None)
        assert stop.requested == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            stop._handler(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGTERM) is not stop._handler


def _interrupt(process, sig, first_line="epoch  1: 1/80 batch"):
    """Send ``sig`` once training has started (the first progress line is out)."""
    deadline = time.monotonic() + 120
    line = ""
    while not line.startswith(first_line):
        assert time.monotonic() < deadline, "no progress line within 120 s"
        line = process.stderr.readline()
        assert line, f"the process ended early: {process.stdout.read()}"
    process.send_signal(sig)
    return process.communicate(timeout=120)


def test_sigterm_leaves_a_checkpoint_that_resumes_exactly(tmp_path, straight):
    process = subprocess.Popen(
        [sys.executable, "-m", "zerograd", "train", *SMALL, "--epochs", "3", "--out", "out"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env())
    try:
        stdout, stderr = _interrupt(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stderr
    messages = [s for s in stderr.splitlines() if s.startswith("interrupted")]
    assert len(messages) == 1 and messages[0].startswith("interrupted (SIGTERM) in epoch 1")
    resumed = train("--resume", "out/checkpoint.npz", "--epochs", "3", "--out", "out",
                    cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_weights(straight, tmp_path / "out" / "mlp_mnist.npz")


def test_following_the_printed_resume_command_continues_the_same_run(tmp_path, straight):
    # (the command left out --epochs, --out and --logdir: following it trained 8 epochs
    # into ./out and dropped the log)
    env = _env()
    shadow = tmp_path / "shadow"  # hide tensorboardX, as above
    shadow.mkdir()
    (shadow / "tensorboardX.py").write_text("raise ImportError('hidden by the test')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    process = subprocess.Popen(
        [sys.executable, "-m", "zerograd", "train", *SMALL, "--epochs", "3", "--out",
         "elsewhere", "--logdir", "logs"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        stdout, stderr = _interrupt(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stdout + stderr
    message = [s for s in stderr.splitlines() if s.startswith("interrupted")][0]
    command = message.split("resume with: ")[1].split()
    assert command[:4] == ["python", "-m", "zerograd", "train"]
    resumed = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True,
                             timeout=240, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch  3" in resumed.stdout and "epoch  4" not in resumed.stdout
    assert not (tmp_path / "out").exists()
    _assert_same_weights(straight, tmp_path / "elsewhere" / "mlp_mnist.npz")
    losses = [r["step"] for r in read_log(tmp_path / "logs") if r["tag"] == "loss/train"]
    assert losses == [80, 160, 240]


def test_a_checkpoint_of_one_process_holds_adam_and_one_rank(tmp_path):
    from zerograd.checkpoint import checkpoint_info

    result = train("--hidden", "16", "--epochs", "1", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = checkpoint_info(tmp_path / "out" / "checkpoint.npz")
    assert info["optimizer"] == "Adam" and info["values"]["ranks"] == 1
    assert "rank_random" not in info["values"]
    assert "ranks" not in result.stdout  # the header line says nothing of ranks alone


# ---- under mpiexec (real ranks) --------------------------------------------------------------
TRAIN = ["-m", "zerograd", "train"]
MPI_ENV = {"MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def straight_on_two_ranks(tmp_path_factory, mpi_launch):
    """Three epochs on two ranks without a break."""
    folder = tmp_path_factory.mktemp("straight2")
    run = mpi_launch(2, folder, *SMALL, "--epochs", "3", "--out", "out", script=TRAIN,
                     env=MPI_ENV, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_two_ranks_print_and_save_once(straight_on_two_ranks):
    run = straight_on_two_ranks
    lines = run.stdout.splitlines()
    assert lines[0].endswith("held out on 2 ranks; 3 epochs"), lines[0]
    assert sum(line.startswith("epoch ") for line in lines) == 3, lines
    assert sum(line.startswith("weights saved to out/mlp_mnist.npz") for line in lines) == 1
    assert sum(line.startswith("held-out accuracy") for line in lines) == 1
    # one progress report per epoch start and end, from rank 0 only
    assert sum(line.startswith("epoch  1: 80/80 batch") for line in
               run.stderr.splitlines()) == 1, run.stderr
    assert sorted(p.name for p in (run.out / "out").iterdir()) == \
        ["checkpoint.npz", "loss.png", "mlp_mnist.npz"]


def test_two_ranks_reach_the_accuracy_of_one_process(straight_on_two_ranks, tmp_path):
    alone = train(*SMALL, "--epochs", "3", "--out", "out", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr

    def accuracy(stdout):
        return float(stdout.split("held-out accuracy ")[1].split()[0])

    # the same global batches in another order: the same accuracy within noise
    assert abs(accuracy(alone.stdout) - accuracy(straight_on_two_ranks.stdout)) < 0.03


def test_two_ranks_resume_exactly(straight_on_two_ranks, tmp_path, mpi_launch):
    first = mpi_launch(2, tmp_path, *SMALL, "--epochs", "1", "--out", "out", script=TRAIN,
                       env=MPI_ENV, timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    second = mpi_launch(2, tmp_path, "--resume", "out/checkpoint.npz", "--epochs", "3",
                        "--out", "out", script=TRAIN, env=MPI_ENV, timeout=240)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("resumed from out/checkpoint.npz: 1 epochs done") == 1
    _assert_same_weights(straight_on_two_ranks.out / "out" / "mlp_mnist.npz",
                         tmp_path / "out" / "mlp_mnist.npz")
    # the epochs after the resume print what the straight run printed
    tail = [line.split("  (")[0] for line in second.stdout.splitlines()
            if line.startswith("epoch ")]
    straight = [line.split("  (")[0] for line in straight_on_two_ranks.stdout.splitlines()
                if line.startswith("epoch ")]
    assert tail == straight[1:]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_under_mpiexec_stops_every_rank_at_one_batch(
        straight_on_two_ranks, tmp_path, mpi_started, mpi_launch, sig):
    # mpiexec forwards the signal to every rank; they agree to stop after the same
    # batch, rank 0 saves, and the run resumes exactly on two ranks
    with mpi_started(2, tmp_path, *SMALL, "--epochs", "3", "--out", "out", script=TRAIN,
                     env=MPI_ENV) as process:
        stdout, stderr = _interrupt(process, sig)
    assert process.returncode == 128 + sig, stdout + stderr
    assert "Traceback" not in stderr
    messages = [s for s in stderr.splitlines() if s.startswith("interrupted")]
    assert len(messages) == 1, stderr
    assert messages[0].endswith("resume with: mpiexec -n 2 python -m zerograd train "
                                "--resume out/checkpoint.npz")
    resumed = mpi_launch(2, tmp_path, "--resume", "out/checkpoint.npz", "--epochs", "3",
                         "--out", "out", script=TRAIN, env=MPI_ENV, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_same_weights(straight_on_two_ranks.out / "out" / "mlp_mnist.npz",
                         tmp_path / "out" / "mlp_mnist.npz")


@pytest.mark.parametrize("ranks, message", [
    (None, "this checkpoint was written by a run on 2 ranks and cannot continue in one "
           "process"),
    (3, "this checkpoint was written by a run on 2 ranks and cannot continue on 3 ranks"),
])
def test_resume_on_another_number_of_ranks_is_refused_once(straight_on_two_ranks, tmp_path,
                                                           mpi_launch, ranks, message):
    checkpoint = straight_on_two_ranks.out / "out" / "checkpoint.npz"
    run = mpi_launch(ranks, tmp_path, "--resume", str(checkpoint), "--epochs", "4",
                     "--out", "out", script=TRAIN, env=MPI_ENV, timeout=120)
    assert run.returncode == 2
    assert run.stderr.count(message) == 1, run.stderr
    assert "resume it with mpiexec -n 2 python -m zerograd train" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "25"], "--batch-size 25 does not split evenly over 2 ranks; give a "
                             "multiple of 2 (e.g. 24 or 26)"),
    (["--out", "taken"], "--out taken: this is a file, not a folder"),
    (["--lr", "-1"], "--lr: must be a positive finite number"),
])
def test_options_that_cannot_work_are_refused_once_under_mpiexec(tmp_path, mpi_launch, args,
                                                                 message):
    (tmp_path / "taken").write_text("a file")
    run = mpi_launch(2, tmp_path, *args, script=TRAIN, env=MPI_ENV, timeout=120)
    assert run.returncode == 2
    assert run.stderr.count(message) == 1, run.stderr
    assert "Traceback" not in run.stderr and "epoch" not in run.stdout
