"""The main job: train an MLP on the bundled MNIST digits, offline.

Run it as ``python -m zerograd train`` (see ``--help``). It prints each epoch's loss and
accuracy on the training digits and on held-out digits, reports progress within each
epoch (a bar on a terminal, periodic lines in a log), writes a checkpoint after every
epoch (``checkpoint.npz``: ``--resume`` continues from it, exactly), saves the weights
(``mlp_mnist.npz``) and, when matplotlib is installed, a loss curve (``loss.png``) into
the output folder. ``--logdir`` adds a JSON-lines log (and TensorBoard event files when
tensorboardX is installed), ``--early-stop N`` stops when the held-out loss has not
improved for N epochs, and ``--dtype float16`` trains in half precision with float32
master weights and dynamic loss scaling.

Ctrl-C (SIGINT) or SIGTERM (what ``kill``, a batch scheduler or a container runtime
sends before killing) stops at the end of the current batch, saves a checkpoint from
which ``--resume`` continues the interrupted epoch, and exits with status 130 (143 for
SIGTERM); a second signal stops at once. A training loss that becomes NaN or infinite
(a learning rate far too large) stops the run with one line and status 1, leaving the
last checkpoint as it was.

Under ``mpiexec -n P`` it trains data-parallel (see ``docs/distributed.md``): each rank
takes its share of the digits and ``batch_size / P`` of every batch, the gradients are
averaged over the ranks before each update, and rank 0 alone prints, draws the progress
bar, logs and saves. The checkpoint records ``P``: a run resumes on as many ranks as it
ran on. Ctrl-C in the terminal of ``mpiexec`` (or SIGTERM sent to it) reaches every
rank: MPICH's ``mpiexec`` forwards the signal. The ranks agree after each batch to stop
after the same one, rank 0 saves the checkpoint, and every rank exits with 130 (143).
A second Ctrl-C makes ``mpiexec`` end every rank at once.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
import time

import numpy as np

import zerograd
import zerograd.functions as F
from zerograd import cuda, distributed, optimizers
from zerograd import random as zrandom
from zerograd.amp import LossScaler
from zerograd.checkpoint import checkpoint_info, load_checkpoint, save_checkpoint
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.early_stopping import EarlyStopping
from zerograd.models import MLP
from zerograd.progress import Progress

CHECKPOINT = "checkpoint.npz"
WEIGHTS = "mlp_mnist.npz"
# The options that define a run: a resumed run takes them from its checkpoint.
DEFAULTS = {"hidden": 1000, "batch_size": 100, "lr": 1e-3, "dtype": "float32", "seed": 0,
            "early_stop": None}
# Those of a new run that a resumed one takes from its checkpoint unless given again
# (the folder: the checkpoint's own).
EPOCHS, OUT = 8, "out"


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM) during training; the checkpoint to resume from is ``path``."""

    def __init__(self, path: str, epoch: int, batch: int, batches: int,
                 signum: int = signal.SIGINT):
        super().__init__(path)
        self.path, self.epoch, self.batch, self.batches = path, epoch, batch, batches
        self.signum = signum


class Diverged(Exception):
    """The training loss became NaN or infinite; the last checkpoint is left as it was."""


class ResumeError(ValueError):
    """The checkpoint to resume from does not fit the run (nothing was loaded)."""


class SaveError(OSError):
    """A checkpoint or the weights could not be written (an older file is intact)."""


class _StopRequest:
    """While active, a first Ctrl-C (SIGINT) or SIGTERM only sets ``requested`` (the
    signal's number): the training loop stops at the end of the current batch, where
    model, optimizer and loader agree, and saves a checkpoint. A second signal raises
    KeyboardInterrupt at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: int = 0
        self._previous: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = signum

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


def evaluate(model, loader, dtype=np.float32, comm=None) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (no graph, test mode); with
    ``comm``, over every rank's loader."""
    total_loss = total_acc = 0.0
    count = 0
    with zerograd.no_grad(), zerograd.test_mode():
        for x, t in loader:
            y = model(x.astype(dtype, copy=False))
            total_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            total_acc += float(F.accuracy(y, t).data) * len(t)
            count += len(t)
    if comm is not None:
        return comm.average((total_loss, total_acc), count)
    return total_loss / count, total_acc / count


def build_model(hidden: int, dtype: np.dtype, gpu: bool):
    """``MLP((hidden, 10))`` with ReLU, its weights drawn in float32 (so a float16 run
    starts from the float32 run's weights, rounded) and then cast to ``dtype``."""
    model = MLP((hidden, 10), activation=F.relu)
    model(np.zeros((1, 784), dtype=np.float32))  # create the weights now
    model.astype(dtype)
    if gpu:
        model.to_gpu()
    return model


def train(epochs: int = 8, batch_size: int = 100, hidden: int = 1000, lr: float = 1e-3,
          out: str = "out", seed: int = 0, gpu: bool = False, dtype: str = "float32",
          resume: str | None = None, logdir: str | None = None,
          early_stop: int | None = None) -> dict:
    """Train ``MLP((hidden, 10))`` with ReLU and Adam; return the history.

    Writes ``out/checkpoint.npz`` after every epoch, and ``out/mlp_mnist.npz`` (the
    weights) and ``out/loss.png`` at the end. ``resume`` continues from a checkpoint
    (made with the same options) up to ``epochs`` epochs in all. The checkpoint also
    records ``epochs`` and ``logdir``, which the command line takes as the defaults of
    a resumed run (see :func:`main`).

    Under mpiexec it trains data-parallel: each rank takes its share of the digits and
    ``batch_size // ranks`` of every batch (``batch_size`` is the global batch), and
    rank 0 alone prints, logs and saves. Without mpiexec it is a world of one.

    Raises:
        TrainingInterrupted: after Ctrl-C or SIGTERM, once the checkpoint is saved.
    """
    comm = distributed.init()  # a world of one without mpiexec
    say = print if comm.rank == 0 else _silent  # print once
    dtype = np.dtype(dtype)
    config = {"hidden": hidden, "batch_size": batch_size, "lr": lr, "dtype": dtype.name,
              "seed": seed, "early_stop": early_stop}
    zerograd.seed(seed)  # the layers' initial weights and dropout
    if comm.size > 1:
        comm.seed(seed)  # the same initial weights on every rank, its own dropout masks
        if gpu:
            comm.select_gpu()
    train_set = MNISTSubset(train=True)
    test_set = MNISTSubset(train=False)
    # Each rank trains on its share of the digits (all of them in a world of one) and
    # evaluates its share of the held-out ones.
    train_part = distributed.scatter_dataset(train_set, comm, seed=seed)
    test_part = distributed.scatter_dataset(test_set, comm, shuffle=False, remainder="keep")
    train_loader = DataLoader(train_part, batch_size // comm.size, shuffle=True, gpu=gpu,
                              seed=seed)
    test_loader = DataLoader(test_part, batch_size, shuffle=False, gpu=gpu)

    model = build_model(hidden, dtype, gpu)
    optimizer = optimizers.Adam(alpha=lr).setup(model)
    if comm.size > 1:
        # update() averages the gradients over the ranks, then runs Adam; checkpoints
        # hold Adam's state (the same on every rank), as without the wrapper.
        optimizer = distributed.DistributedOptimizer(optimizer, comm)
    extras = {}
    scaler = None
    if dtype == np.float16:
        scaler = extras["scaler"] = LossScaler()
    stopper = None
    if early_stop is not None:
        stopper = extras["early_stopping"] = EarlyStopping(early_stop, mode="min")

    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    first_epoch, iteration = 1, 0
    # Sums over every rank for the epoch in progress (of an interrupted one on resume).
    partial = {"loss": 0.0, "acc": 0.0, "count": 0, "batch": 0}
    if resume is not None:
        info = _load(comm, resume, model, optimizer, train_loader, extras)
        first_epoch, iteration = info["epoch"] + 1, info["iteration"]
        history = info["history"]
        partial = info["partial"]
        if comm.rank != 0:  # rank 0 holds the sums of every rank so far
            partial.update(loss=0.0, acc=0.0, count=0)
        say(f"resumed from {resume}: {info['epoch']} epochs done"
            + (f", epoch {first_epoch} at batch {partial['batch']}"
               if partial["batch"] else ""))

    writer = None
    if logdir is not None and comm.rank == 0:
        from zerograd.logs import LogWriter

        # A resumed run drops what the interrupted one logged after its checkpoint: the
        # records up to the checkpoint's iteration (steps are iterations) came before it.
        writer = LogWriter(logdir, purge_step=iteration + 1 if resume is not None else None)

    checkpoint = os.path.join(out, CHECKPOINT)
    # What a resumed run takes as its defaults (its folder is the checkpoint's own).
    run = {"epochs": epochs, "logdir": None if logdir is None else os.path.abspath(logdir)}

    def save(epoch_done: int) -> None:
        sums, ranks = partial, {}
        if comm.size > 1:  # every rank's sums, and random state, into rank 0's file
            totals = comm.allreduce(np.array([partial["loss"], partial["acc"],
                                              partial["count"]], dtype=np.float64))
            sums = {**partial, "loss": float(totals[0]), "acc": float(totals[1]),
                    "count": int(totals[2])}
            ranks = {"rank_random": comm.mpi_comm.gather(zrandom.get_state())}
        error = None
        if comm.rank == 0:
            try:
                save_checkpoint(checkpoint, model, optimizer, loaders={"train": train_loader},
                                extras=extras, epoch=epoch_done, iteration=iteration,
                                config=config, run=run, history=history, partial=sums,
                                ranks=comm.size, **ranks)
            except OSError as e:
                error = (f"cannot write the checkpoint {checkpoint} ({e.strerror or e}); "
                         "an older one there is intact")
        if comm.size > 1:
            error = comm.bcast(error)  # the other ranks stop too
        if error:
            raise SaveError(error)

    ranks = f" on {comm.size} ranks" if comm.size > 1 else ""
    say(f"zerograd {zerograd.__version__}: MLP 784-{hidden}-10 ({dtype.name}) on "
        f"{len(train_set)} bundled MNIST digits, {len(test_set)} held out{ranks}; "
        f"{epochs} epochs")
    start = time.perf_counter()
    try:
        with _StopRequest() as stop:
            for epoch in range(first_epoch, epochs + 1):
                if stopper is not None and stopper.stopped:
                    break
                bar = Progress(len(train_loader), desc=f"epoch {epoch:2d}", unit="batch",
                               initial=partial["batch"], disable=comm.rank != 0)
                for x, t in train_loader:
                    y = model(x.astype(dtype, copy=False))
                    loss = F.softmax_cross_entropy(y, t)
                    model.cleargrads()
                    if scaler is None:
                        loss.backward()
                        optimizer.update()
                    else:  # (over the ranks too: every rank skips the same steps)
                        scaler.backward(loss)
                        scaler.step(optimizer)
                    iteration += 1
                    loss_value = float(loss.data)
                    partial["loss"] += loss_value * len(t)
                    partial["acc"] += float(F.accuracy(y, t).data) * len(t)
                    partial["count"] += len(t)
                    partial["batch"] += 1
                    bar.update(loss=loss_value)
                    if writer is not None:
                        writer.add_scalar("loss/batch", loss_value, iteration)
                    signum, diverged = stop.requested, int(not math.isfinite(loss_value))
                    if comm.size > 1:  # the ranks stop after the same batch
                        signum, diverged = comm.allreduce(
                            np.array([signum, diverged]), "max").tolist()
                    if diverged:
                        bar.close()
                        raise Diverged(
                            f"the training loss became {loss_value} in epoch {epoch}, batch "
                            f"{partial['batch']} (iteration {iteration}): training diverged"
                            f"; {checkpoint}, if there is one, holds the last finished "
                            f"epoch; start a new run with a smaller --lr (this one: {lr:g})")
                    if signum:
                        bar.close()
                        save(epoch - 1)
                        raise TrainingInterrupted(checkpoint, epoch, partial["batch"],
                                                  len(train_loader), signum)
                bar.close()
                train_loss, train_acc = comm.average((partial["loss"], partial["acc"]),
                                                     partial["count"])
                partial = {"loss": 0.0, "acc": 0.0, "count": 0, "batch": 0}
                test_loss, test_acc = evaluate(model, test_loader, dtype, comm)
                for key, value in zip(history, (train_loss, train_acc, test_loss, test_acc)):
                    history[key].append(value)
                say(f"epoch {epoch:2d}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
                    f"held-out loss {test_loss:.4f} acc {test_acc:.4f}  "
                    f"({time.perf_counter() - start:.1f}s)", flush=True)
                if writer is not None:
                    _log_epoch(writer, model, history, iteration, scaler)
                # the held-out loss is the same on every rank: so is the decision
                if stopper is not None and stopper.step(test_loss, model):
                    best = stopper.best_step + 1
                    say(f"early stop: the held-out loss has not improved for {early_stop} "
                        f"epochs; the weights of epoch {best} (loss {stopper.best:.4f}) "
                        "are restored")
                save(epoch)
    finally:
        if writer is not None:
            writer.close()

    history["seconds"] = time.perf_counter() - start
    if comm.rank != 0:
        return history
    weights = os.path.join(out, WEIGHTS)
    try:
        model.save_weights(weights)
    except OSError as e:
        raise SaveError(f"cannot write the weights {weights} ({e.strerror or e}); the "
                        f"checkpoint {checkpoint} holds them") from None
    print(f"weights saved to {weights}; checkpoint {checkpoint}")
    if history["train_loss"]:
        _plot(history, os.path.join(out, "loss.png"))
    if logdir is not None:
        _plot_log(logdir)
    history["seconds"] = time.perf_counter() - start
    return history


def _silent(*args, **kwargs) -> None:
    """``print`` on the ranks other than 0."""


def _load(comm, path: str, model, optimizer, loader, extras: dict) -> dict:
    """``load_checkpoint`` on every rank, which go on only if every rank could.

    Raises:
        ResumeError: when the file does not fit (on any rank); nothing was loaded.
    """
    error = None
    try:  # (the objects are train()'s own: a run on other ranks is dropped, not undone)
        info = load_checkpoint(path, model, optimizer, loaders={"train": loader},
                               extras=extras)
        error = _ranks_mismatch(info, comm.size, path)
    except (OSError, ValueError) as e:
        error = str(e)
    errors = comm.mpi_comm.allgather(error) if comm.size > 1 else [error]
    for rank, error in enumerate(errors):
        if error is not None:  # every rank raises the same error
            where = "" if rank == 0 else f" (on rank {rank})"
            raise ResumeError(f"--resume {path}{where}: {error}")
    if comm.size > 1:
        zrandom.set_state(info["rank_random"][comm.rank])  # each rank's dropout masks
    return info


def _log_epoch(writer, model, history: dict, iteration: int, scaler) -> None:
    """An epoch's curves (and the weights' distributions) in the log, at ``iteration``."""
    writer.add_scalar("loss/train", history["train_loss"][-1], iteration)
    writer.add_scalar("loss/held-out", history["test_loss"][-1], iteration)
    writer.add_scalar("accuracy/train", history["train_acc"][-1], iteration)
    writer.add_scalar("accuracy/held-out", history["test_acc"][-1], iteration)
    if scaler is not None:
        writer.add_scalar("amp/loss-scale", scaler.scale, iteration)
    for name, array in model.state_dict().items():
        writer.add_histogram(f"weights/{name}", array, iteration)


def _plot_log(logdir: str) -> None:
    from zerograd.logs import plot_log

    try:
        print(f"curves of the log saved to {plot_log(logdir)}")
    except ImportError:
        pass  # _plot already said that matplotlib is missing


def _plot(history: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no loss curve (pip install matplotlib)")
        return
    epochs = range(1, len(history["train_loss"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, history["train_loss"], marker="o", label="train")
    ax.plot(epochs, history["test_loss"], marker="o", label="held out")
    ax.set_xlabel("epoch")
    ax.set_ylabel("softmax cross-entropy")
    ax.set_title("zerograd MLP on bundled MNIST digits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"loss curve saved to {path}")


# =========================================================================================
# The command line
# =========================================================================================
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a positive finite number (e.g. 1e-3), got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse's parser; with ``quiet`` (ranks other than 0) its errors and help exit
    without printing, so that a job of several ranks prints them once."""

    quiet = False

    def _print_message(self, message, file=None) -> None:
        if not self.quiet:
            super()._print_message(message, file)


def make_parser(quiet: bool = False) -> argparse.ArgumentParser:
    """The options of ``python -m zerograd train`` (``quiet``: print no errors)."""
    parser = _Parser(
        prog="python -m zerograd train",
        description="Train an MLP (784-HIDDEN-10, ReLU, Adam) on the MNIST digits bundled "
                    "with zerograd, offline. Ctrl-C saves a checkpoint to resume from. "
                    "Under mpiexec -n P it trains data-parallel on P ranks.",
    )
    parser.quiet = quiet
    parser.add_argument("--epochs", type=_positive_int, metavar="N",
                        help="epochs to train in all; a resumed run continues up to N "
                             f"(default: {EPOCHS}; when resuming, the run's own)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help="digits per batch, over all ranks under mpiexec (a multiple "
                             f"of their number) (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--hidden", type=_positive_int, metavar="N",
                        help=f"units of the hidden layer (default: {DEFAULTS['hidden']})")
    parser.add_argument("--lr", type=_rate, metavar="RATE",
                        help="Adam's learning rate, a positive finite number "
                             f"(default: {DEFAULTS['lr']:g})")
    parser.add_argument("--dtype", choices=("float32", "float16"),
                        help="dtype of the parameters; float16 trains with float32 master "
                             "weights and dynamic loss scaling (default: float32)")
    parser.add_argument("--seed", type=_seed, metavar="N",
                        help="seed of the initial weights and of the shuffling "
                             f"(default: {DEFAULTS['seed']})")
    parser.add_argument("--early-stop", type=_positive_int, metavar="N",
                        help="stop when the held-out loss has not improved for N epochs, "
                             "and keep the best weights (default: off)")
    parser.add_argument("--out", metavar="DIR",
                        help=f"folder for the checkpoint ({CHECKPOINT}), the weights "
                             f"({WEIGHTS}) and the loss curve (loss.png); checked before "
                             f"training starts (default: {OUT}; when resuming, the "
                             "checkpoint's folder)")
    parser.add_argument("--resume", metavar="PATH",
                        help="continue the run saved in this checkpoint (e.g. "
                             f"{OUT}/{CHECKPOINT}) with its options, its --epochs and "
                             "--logdir unless given again (default: start a new run)")
    parser.add_argument("--logdir", metavar="DIR",
                        help="also write a JSON-lines log of the curves to DIR/log.jsonl, "
                             "TensorBoard event files when tensorboardX is installed, and "
                             "DIR/curves.png (default: no log; when resuming, the run's "
                             "own)")
    parser.add_argument("--gpu", action="store_true",
                        help="train on the GPU with CuPy (default: on the CPU)")
    return parser


class _Refused(Exception):
    """An option that cannot work: the message for ``parser.error``."""


def _check_folder(option: str, folder: str) -> None:
    """Fail now, not after training, when ``folder`` cannot hold our files."""
    if not folder:
        raise _Refused(f"{option}: give a folder (the name given is empty)")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise _Refused(f"{option} {folder}: this is a file, not a folder; give a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise _Refused(f"{option} {folder}: cannot write there ({e.strerror or e})") from None


def _check_new_log(logdir: str) -> None:
    """A new run does not append its curves to another run's log (its plot would mix
    both); a resumed run continues its own."""
    from zerograd.logs import LOG_NAME

    if os.path.exists(os.path.join(logdir, LOG_NAME)):
        raise _Refused(f"--logdir {logdir}: it holds the log of an earlier run "
                       f"({LOG_NAME}); give another folder, remove that log, or continue "
                       "that run with --resume")


# How each option of a run is checked when it comes from a checkpoint: the kinds of
# value JSON gives (bool is no int here), then the command line's own check.
_CHECKS = {"hidden": (int, _positive_int), "batch_size": (int, _positive_int),
           "lr": ((int, float), _rate), "seed": (int, _seed),
           "early_stop": (int, _positive_int), "epochs": (int, _positive_int)}


def _checked(name: str, value):
    """``value`` of option ``name`` read from a checkpoint, checked and converted as the
    option itself would be (``argparse.ArgumentTypeError`` when it is not one)."""
    kinds, check = _CHECKS[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "a whole number" if kinds is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
    return check(repr(value))


def _run_options(args: argparse.Namespace, ranks: int) -> dict:
    """The run's options: the checkpoint's when resuming (an option given that differs
    is an error), else those given, else the defaults; and its ``epochs``, ``out`` and
    ``logdir``: those given, else (resuming) the checkpoint's, else the defaults."""
    given = {name: getattr(args, name) for name in DEFAULTS}
    if args.resume is None:
        options = {name: DEFAULTS[name] if value is None else value
                   for name, value in given.items()}
        options.update(epochs=EPOCHS if args.epochs is None else args.epochs,
                       out=OUT if args.out is None else args.out, logdir=args.logdir)
        return options
    where = f"--resume {args.resume}"
    if os.path.isdir(args.resume):
        raise _Refused(f"{where}: this is a folder; give the checkpoint file in it (e.g. "
                       f"{os.path.join(args.resume, CHECKPOINT)})")
    try:
        info = checkpoint_info(args.resume)  # the header only: train() loads the rest
    except FileNotFoundError:
        raise _Refused(f"{where}: no such file") from None
    except OSError as e:
        raise _Refused(f"{where}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise _Refused(f"{where}: {e}") from None
    saved = info["values"].get("config")
    if not isinstance(saved, dict) or set(saved) != set(DEFAULTS):
        raise _Refused(f"{where}: this checkpoint was not written by "
                       "`python -m zerograd train`")
    run = info["values"].get("run", {})  # (absent from older checkpoints)
    options = {}
    name = "run"
    try:  # a damaged or edited file must not reach the model as a bad size
        if not isinstance(run, dict):
            raise argparse.ArgumentTypeError(f"expected a dict, got {run!r}")
        for name in ("hidden", "batch_size", "lr", "seed", "early_stop"):
            value = saved[name]
            options[name] = None if value is None and name == "early_stop" else (
                _checked(name, value))
        name = "dtype"
        if saved[name] not in ("float32", "float16"):
            raise argparse.ArgumentTypeError(f"unknown dtype {saved['dtype']!r}")
        options[name] = saved[name]
        name = "epochs"
        options[name] = _checked(name, run.get(name, EPOCHS))
        name = "logdir"
        logdir = run.get(name)
        if logdir is not None and not (isinstance(logdir, str) and logdir):
            raise argparse.ArgumentTypeError(f"expected a folder, got {logdir!r}")
    except argparse.ArgumentTypeError as e:
        raise _Refused(f"{where}: the checkpoint's options are damaged ({name}: {e})"
                       ) from None
    for name, value in given.items():
        if value is not None and value != options[name]:
            option = "--" + name.replace("_", "-")
            was = "off" if options[name] is None else options[name]
            raise _Refused(f"{option} {value} differs from the run being resumed "
                           f"({was}); leave it out, or start a new run")
    message = _ranks_mismatch(info["values"], ranks, args.resume)
    if message:
        raise _Refused(f"{where}: {message}")
    done = info["epoch"]
    if args.epochs is not None:
        options["epochs"] = args.epochs
        if done >= args.epochs:
            raise _Refused(f"--epochs {args.epochs}: the run being resumed has done "
                           f"{done} epochs already; give the new total, e.g. "
                           f"--epochs {done + 1}")
    elif done >= options["epochs"]:
        raise _Refused(f"{where}: the run has done all its {options['epochs']} epochs; "
                       f"give a new total, e.g. --epochs {done + 1}")
    options["out"] = args.out if args.out is not None else (
        os.path.dirname(args.resume) or os.curdir)
    options["logdir"] = args.logdir if args.logdir is not None else logdir
    return options


def _ranks_mismatch(values: dict, ranks: int, path: str) -> str | None:
    """Why a checkpoint written on some number of ranks cannot resume on ``ranks``.

    Each rank's share of the digits, and its place in its shuffled share, depend on
    the number of ranks: on another number the run would not continue the same, so it
    is refused rather than silently changed."""
    saved = values.get("ranks", 1)
    if saved == ranks:
        return None
    launch = (f"mpiexec -n {saved} python -m zerograd train" if saved > 1
              else "python -m zerograd train (without mpiexec)")
    was = f"on {saved} ranks" if saved > 1 else "in one process"
    here = f"on {ranks} ranks" if ranks > 1 else "in one process"
    return (f"this checkpoint was written by a run {was} and cannot continue "
            f"{here}: the ranks' shares of the digits would change; resume it with "
            f"{launch} --resume {path}, or start a new run")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``python -m zerograd train``; returns the exit status.

    Under mpiexec every rank runs it: rank 0 checks the options that touch files and
    tells the others, so every rank stops, or goes on, together.

    A resumed run (``--resume PATH``) takes the options that define the run from the
    checkpoint (giving one that differs is an error), and its ``--epochs`` and
    ``--logdir`` too unless they are given again; it writes into the checkpoint's
    folder unless ``--out`` says otherwise. So the command printed after Ctrl-C,
    ``python -m zerograd train --resume PATH``, continues the same run.
    """
    comm = distributed.init()  # a world of one without mpiexec
    parser = make_parser(quiet=comm.rank != 0)
    args = parser.parse_args(argv)
    if args.gpu and not cuda.gpu_enable:
        if comm.rank == 0:
            print("zerograd train: --gpu: no usable CUDA device (CuPy is missing, there is "
                  "no GPU, or ZEROGRAD_CPU_ONLY is set); run without --gpu", file=sys.stderr)
        return 1
    outcome = None
    if comm.rank == 0:
        try:
            options = _run_options(args, comm.size)
            if options["batch_size"] % comm.size:
                size = options["batch_size"]
                lower = size - size % comm.size
                raise _Refused(
                    f"--batch-size {size} does not split evenly over {comm.size} ranks; "
                    f"give a multiple of {comm.size} (e.g. "
                    + (f"{lower} or " if lower else "") + f"{lower + comm.size})")
            _check_folder("--out", options["out"])
            if options["logdir"] is not None:
                _check_folder("--logdir", options["logdir"])
                if args.resume is None:
                    _check_new_log(options["logdir"])
            outcome = options
        except _Refused as e:
            outcome = str(e)
    outcome = comm.bcast(outcome)
    if isinstance(outcome, str):
        parser.error(outcome)
    options = outcome
    try:
        history = train(options["epochs"], options["batch_size"], options["hidden"],
                        options["lr"], options["out"], options["seed"], args.gpu,
                        options["dtype"], resume=args.resume, logdir=options["logdir"],
                        early_stop=options["early_stop"])
    except TrainingInterrupted as e:
        if comm.rank == 0:
            name = signal.Signals(e.signum).name
            launch = f"mpiexec -n {comm.size} " if comm.size > 1 else ""
            print(f"interrupted ({name}) in epoch {e.epoch} after batch {e.batch}/"
                  f"{e.batches}: checkpoint saved; resume with: {launch}python -m zerograd "
                  f"train --resume {e.path}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        newline = "\n" if sys.stderr.isatty() else ""  # end a progress bar's line
        print(f"{newline}interrupted: {os.path.join(options['out'], CHECKPOINT)}, if there "
              "is one, holds the last finished epoch", file=sys.stderr)
        if comm.size > 1:
            comm.abort(130)  # the other ranks may be waiting for this one: end them all
        return 130
    except (Diverged, ResumeError, SaveError) as e:  # raised on every rank together
        if comm.rank == 0:
            print(f"zerograd train: {e}", file=sys.stderr)
        return 1
    except MemoryError as e:
        if comm.size > 1:
            raise  # the exception hook ends every rank
        print(f"zerograd train: out of memory ({e}); try a smaller --hidden or "
              "--batch-size", file=sys.stderr)
        return 1
    if history["test_acc"] and comm.rank == 0:
        print(f"held-out accuracy {history['test_acc'][-1]:.4f} in "
              f"{history['seconds']:.1f}s")
    return 0
