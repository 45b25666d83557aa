"""The main job: train an MLP on the bundled MNIST digits, offline.

Run it as ``python -m zerograd train`` (see ``--help``). It prints each epoch's loss and
accuracy on the training digits and on held-out digits, shows a progress bar when a
terminal is attached, saves the weights (``mlp_mnist.npz``) and, when matplotlib is
installed, a loss curve (``loss.png``) into the output folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import zerograd
import zerograd.functions as F
from zerograd import optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.models import MLP


def _progress(done: int, total: int, prefix: str) -> None:
    """A one-line progress bar on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    print(f"\r{prefix} [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)


def evaluate(model, loader) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (no graph, test mode)."""
    total_loss = total_acc = 0.0
    count = 0
    with zerograd.no_grad(), zerograd.test_mode():
        for x, t in loader:
            y = model(x)
            total_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            total_acc += float(F.accuracy(y, t).data) * len(t)
            count += len(t)
    return total_loss / count, total_acc / count


def train(epochs: int = 8, batch_size: int = 100, hidden: int = 1000, lr: float = 1e-3,
          out: str = "out", seed: int = 0, gpu: bool = False) -> dict:
    """Train ``MLP((hidden, 10))`` with ReLU and Adam; return the history."""
    zerograd.seed(seed)  # the layers' initial weights
    train_set = MNISTSubset(train=True)
    test_set = MNISTSubset(train=False)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, gpu=gpu, seed=seed)
    test_loader = DataLoader(test_set, batch_size, shuffle=False, gpu=gpu)

    model = MLP((hidden, 10), activation=F.relu)
    if gpu:
        model.to_gpu()
    optimizer = optimizers.Adam(alpha=lr).setup(model)

    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    print(f"zerograd {zerograd.__version__}: MLP 784-{hidden}-10 on {len(train_set)} "
          f"bundled MNIST digits, {len(test_set)} held out; {epochs} epochs")
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        sum_loss = sum_acc = 0.0
        for i, (x, t) in enumerate(train_loader, 1):
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
            _progress(i, len(train_loader), f"epoch {epoch:2d}")
        train_loss, train_acc = sum_loss / len(train_set), sum_acc / len(train_set)
        test_loss, test_acc = evaluate(model, test_loader)
        for key, value in zip(history, (train_loss, train_acc, test_loss, test_acc)):
            history[key].append(value)
        print(f"epoch {epoch:2d}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
              f"held-out loss {test_loss:.4f} acc {test_acc:.4f}  "
              f"({time.perf_counter() - start:.1f}s)")

    os.makedirs(out, exist_ok=True)
    weights = os.path.join(out, "mlp_mnist.npz")
    model.save_weights(weights)
    print(f"weights saved to {weights}")
    _plot(history, os.path.join(out, "loss.png"))
    history["seconds"] = time.perf_counter() - start
    return history


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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``python -m zerograd train``."""
    parser = argparse.ArgumentParser(
        prog="python -m zerograd train",
        description="Train an MLP on the MNIST digits bundled with zerograd (offline).",
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="out", help="folder for weights and the plot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu", action="store_true", help="train on the GPU (CuPy)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.hidden < 1:
        parser.error("--epochs, --batch-size and --hidden must be at least 1")
    history = train(args.epochs, args.batch_size, args.hidden, args.lr, args.out,
                    args.seed, args.gpu)
    print(f"held-out accuracy {history['test_acc'][-1]:.4f} in {history['seconds']:.1f}s")
    return 0
