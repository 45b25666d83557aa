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

Ctrl-C stops at the end of the current batch, saves a checkpoint from which
``--resume`` continues the interrupted epoch, and exits with status 130; a second
Ctrl-C stops at once.
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
from zerograd import cuda, optimizers
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


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the checkpoint to resume from is ``path``."""

    def __init__(self, path: str, epoch: int, batch: int, batches: int):
        super().__init__(path)
        self.path, self.epoch, self.batch, self.batches = path, epoch, batch, batches


class _StopRequest:
    """While active, a first Ctrl-C (SIGINT) only sets ``requested``: the training loop
    stops at the end of the current batch, where model, optimizer and loader agree, and
    saves a checkpoint. A second Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def evaluate(model, loader, dtype=np.float32) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (no graph, test mode)."""
    total_loss = total_acc = 0.0
    count = 0
    with zerograd.no_grad(), zerograd.test_mode():
        for x, t in loader:
            y = model(x.astype(dtype, copy=False))
            total_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            total_acc += float(F.accuracy(y, t).data) * len(t)
            count += len(t)
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
    (made with the same options) up to ``epochs`` epochs in all.

    Raises:
        TrainingInterrupted: after Ctrl-C, once the checkpoint is saved.
    """
    dtype = np.dtype(dtype)
    config = {"hidden": hidden, "batch_size": batch_size, "lr": lr, "dtype": dtype.name,
              "seed": seed, "early_stop": early_stop}
    zerograd.seed(seed)  # the layers' initial weights and dropout
    train_set = MNISTSubset(train=True)
    test_set = MNISTSubset(train=False)
    # distributed: shard train_set here (each process its part of the digits)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, gpu=gpu, seed=seed)
    test_loader = DataLoader(test_set, batch_size, shuffle=False, gpu=gpu)

    model = build_model(hidden, dtype, gpu)
    # distributed: wrap the optimizer here (DistributedOptimizer averages the gradients)
    optimizer = optimizers.Adam(alpha=lr).setup(model)
    extras = {}
    scaler = None
    if dtype == np.float16:
        scaler = extras["scaler"] = LossScaler()
    stopper = None
    if early_stop is not None:
        stopper = extras["early_stopping"] = EarlyStopping(early_stop, mode="min")

    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    first_epoch, iteration = 1, 0
    partial = {"loss": 0.0, "acc": 0.0, "count": 0, "batch": 0}  # of an interrupted epoch
    if resume is not None:
        info = load_checkpoint(resume, model, optimizer, loaders={"train": train_loader},
                               extras=extras)
        first_epoch, iteration = info["epoch"] + 1, info["iteration"]
        history = info["history"]
        partial = info["partial"]
        print(f"resumed from {resume}: {info['epoch']} epochs done"
              + (f", epoch {first_epoch} at batch {partial['batch']}"
                 if partial["batch"] else ""))

    writer = None
    if logdir is not None:
        from zerograd.logs import LogWriter

        # A resumed run drops what the interrupted one logged after its checkpoint: the
        # records up to the checkpoint's iteration (steps are iterations) came before it.
        writer = LogWriter(logdir, purge_step=iteration + 1 if resume is not None else None)

    checkpoint = os.path.join(out, CHECKPOINT)

    def save(epoch_done: int) -> None:
        # distributed: only rank 0 saves
        save_checkpoint(checkpoint, model, optimizer, loaders={"train": train_loader},
                        extras=extras, epoch=epoch_done, iteration=iteration,
                        config=config, history=history, partial=partial)

    print(f"zerograd {zerograd.__version__}: MLP 784-{hidden}-10 ({dtype.name}) on "
          f"{len(train_set)} bundled MNIST digits, {len(test_set)} held out; {epochs} epochs")
    start = time.perf_counter()
    try:
        with _StopRequest() as stop:
            for epoch in range(first_epoch, epochs + 1):
                if stopper is not None and stopper.stopped:
                    break
                bar = Progress(len(train_loader), desc=f"epoch {epoch:2d}", unit="batch",
                               initial=partial["batch"])
                for x, t in train_loader:
                    y = model(x.astype(dtype, copy=False))
                    loss = F.softmax_cross_entropy(y, t)
                    model.cleargrads()
                    if scaler is None:
                        loss.backward()
                        optimizer.update()
                    else:
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
                    if stop.requested:
                        bar.close()
                        save(epoch - 1)
                        raise TrainingInterrupted(checkpoint, epoch, partial["batch"],
                                                  len(train_loader))
                bar.close()
                train_loss = partial["loss"] / partial["count"]
                train_acc = partial["acc"] / partial["count"]
                partial = {"loss": 0.0, "acc": 0.0, "count": 0, "batch": 0}
                test_loss, test_acc = evaluate(model, test_loader, dtype)
                for key, value in zip(history, (train_loss, train_acc, test_loss, test_acc)):
                    history[key].append(value)
                # distributed: only rank 0 prints and logs
                print(f"epoch {epoch:2d}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
                      f"held-out loss {test_loss:.4f} acc {test_acc:.4f}  "
                      f"({time.perf_counter() - start:.1f}s)", flush=True)
                if writer is not None:
                    _log_epoch(writer, model, history, iteration, scaler)
                if stopper is not None and stopper.step(test_loss, model):
                    best = stopper.best_step + 1
                    print(f"early stop: the held-out loss has not improved for {early_stop} "
                          f"epochs; the weights of epoch {best} (loss {stopper.best:.4f}) "
                          "are restored")
                save(epoch)
    finally:
        if writer is not None:
            writer.close()

    weights = os.path.join(out, WEIGHTS)
    model.save_weights(weights)
    print(f"weights saved to {weights}; checkpoint {checkpoint}")
    if history["train_loss"]:
        _plot(history, os.path.join(out, "loss.png"))
    if logdir is not None:
        _plot_log(logdir)
    history["seconds"] = time.perf_counter() - start
    return history


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


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m zerograd train``."""
    parser = argparse.ArgumentParser(
        prog="python -m zerograd train",
        description="Train an MLP (784-HIDDEN-10, ReLU, Adam) on the MNIST digits bundled "
                    "with zerograd, offline. Ctrl-C saves a checkpoint to resume from.",
    )
    parser.add_argument("--epochs", type=_positive_int, default=8, metavar="N",
                        help="epochs to train in all; a resumed run continues up to N "
                             "(default: 8)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help=f"digits per batch (default: {DEFAULTS['batch_size']})")
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
    parser.add_argument("--out", default="out", metavar="DIR",
                        help=f"folder for the checkpoint ({CHECKPOINT}), the weights "
                             f"({WEIGHTS}) and the loss curve (loss.png); checked before "
                             "training starts (default: out)")
    parser.add_argument("--resume", metavar="PATH",
                        help="continue the run saved in this checkpoint (e.g. "
                             f"out/{CHECKPOINT}) with its options; --epochs is the new "
                             "total (default: start a new run)")
    parser.add_argument("--logdir", metavar="DIR",
                        help="also write a JSON-lines log of the curves to DIR/log.jsonl, "
                             "TensorBoard event files when tensorboardX is installed, and "
                             "DIR/curves.png (default: no log)")
    parser.add_argument("--gpu", action="store_true",
                        help="train on the GPU with CuPy (default: on the CPU)")
    return parser


def _check_folder(parser: argparse.ArgumentParser, option: str, folder: str) -> None:
    """Fail now, not after training, when ``folder`` cannot hold our files."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        parser.error(f"{option} {folder}: this is a file, not a folder; give a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        parser.error(f"{option} {folder}: cannot write there ({e.strerror or e})")


def _run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The run's options: the checkpoint's when resuming (an option given that differs
    is an error), else those given, else the defaults."""
    given = {name: getattr(args, name) for name in DEFAULTS}
    if args.resume is None:
        return {name: DEFAULTS[name] if value is None else value
                for name, value in given.items()}
    try:
        info = checkpoint_info(args.resume)
    except FileNotFoundError:
        parser.error(f"--resume {args.resume}: no such file")
    except (OSError, ValueError) as e:
        parser.error(f"--resume {args.resume}: {e}")
    saved = info["values"].get("config")
    if not isinstance(saved, dict) or set(saved) != set(DEFAULTS):
        parser.error(f"--resume {args.resume}: this checkpoint was not written by "
                     "`python -m zerograd train`")
    for name, value in given.items():
        if value is not None and value != saved[name]:
            option = "--" + name.replace("_", "-")
            was = "off" if saved[name] is None else saved[name]
            parser.error(f"{option} {value} differs from the run being resumed "
                         f"({was}); leave it out, or start a new run")
    return saved


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``python -m zerograd train``; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.gpu and not cuda.gpu_enable:
        print("zerograd train: --gpu: no usable CUDA device (CuPy is missing, there is no "
              "GPU, or ZEROGRAD_CPU_ONLY is set); run without --gpu", file=sys.stderr)
        return 1
    options = _run_options(parser, args)
    _check_folder(parser, "--out", args.out)
    if args.logdir is not None:
        _check_folder(parser, "--logdir", args.logdir)
    try:
        history = train(args.epochs, options["batch_size"], options["hidden"], options["lr"],
                        args.out, options["seed"], args.gpu, options["dtype"],
                        resume=args.resume, logdir=args.logdir,
                        early_stop=options["early_stop"])
    except TrainingInterrupted as e:
        print(f"interrupted in epoch {e.epoch} after batch {e.batch}/{e.batches}: "
              f"checkpoint saved; resume with: python -m zerograd train --resume {e.path}",
              file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        newline = "\n" if sys.stderr.isatty() else ""  # end a progress bar's line
        print(f"{newline}interrupted: {os.path.join(args.out, CHECKPOINT)}, if there is "
              "one, holds the last finished epoch", file=sys.stderr)
        return 130
    if history["test_acc"]:
        print(f"held-out accuracy {history['test_acc'][-1]:.4f} in "
              f"{history['seconds']:.1f}s")
    return 0
