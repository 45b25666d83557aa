"""What every example shares: its command line, seeding, the device, and plotting.

Each example is one script that reads like the book's code; this module keeps the
plumbing out of its way. Run an example from anywhere, e.g.
``python examples/spiral.py --epochs 100 --out out``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

import zerograd
from zerograd import cuda


def at_least(minimum: int):
    """An argparse type: an int of at least ``minimum``."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return check


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1 (so --epochs 0 is a one-line error)."""
    return at_least(1)(text)


def positive_rate(text: str) -> float:
    """An argparse type: a positive finite number (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def seed(text: str) -> int:
    """An argparse type: a seed NumPy takes, 0 to 2**32 - 1."""
    value = at_least(0)(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"must be less than 2**32, got {value}")
    return value


def parser(description: str, epochs: int) -> argparse.ArgumentParser:
    """The options every example takes: --epochs, --seed, --gpu, --out and --limit."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"default {epochs}")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of weights, shuffling, noise (0 to 2**32 - 1)")
    p.add_argument("--gpu", action="store_true", help="train on the GPU (needs CuPy)")
    p.add_argument("--out", default="out", help="folder for figures (default out/)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only the first N samples of each data set (quick runs)")
    return p


def setup(args: argparse.Namespace, distributed: bool = False):
    """Seed every random source an example draws from and check the device.

    With ``distributed``, also join the MPI job when the script runs under mpiexec
    (a world of one otherwise) and return its communicator: every rank gets the same
    initial weights and its own dropout masks, and only rank 0 prints.
    """
    if args.gpu and not cuda.gpu_enable:
        sys.exit("--gpu: no usable CUDA device (CuPy is missing or there is no GPU)")
    np.random.seed(args.seed)  # the examples' own noise (GAN/VAE latents)
    if not distributed:
        zerograd.seed(args.seed)  # initial weights and dropout masks
        return None
    from zerograd import distributed as dist

    comm = dist.init()
    comm.seed(args.seed)  # initial weights (the same on every rank) and dropout masks
    if comm.rank != 0:
        sys.stdout = open(os.devnull, "w")  # print once, from rank 0
    if args.gpu and comm.size > 1:
        comm.select_gpu()  # the ranks of a machine share its GPUs out
    return comm


def to_device(x, gpu: bool):
    """``x`` as a CuPy array on the GPU when ``gpu``, else unchanged."""
    return cuda.as_cupy(x) if gpu else x


def limit(dataset, n: int | None):
    """Keep only the first ``n`` samples of ``dataset`` (all of them when n is None)."""
    if n is not None:
        dataset.data = dataset.data[:n]
        if dataset.label is not None:
            dataset.label = dataset.label[:n]
    return dataset


def pyplot():
    """matplotlib.pyplot on a file-only backend, or None (with a message) if missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping plots (pip install matplotlib)")
        return None
    return plt


def save_figure(fig, args: argparse.Namespace, name: str) -> str:
    """Save ``fig`` as ``<out>/<name>`` and close it."""
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name)
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"saved {path}")
    return path


def save_image_grid(images, args: argparse.Namespace, name: str, rows: int = 8) -> None:
    """Save 28x28 images (values in [0, 1], shape (N, 784) or (N, 1, 28, 28)) as a
    grid PNG, ``rows`` images a row."""
    plt = pyplot()
    if plt is None:
        return
    images = cuda.as_numpy(images).reshape(-1, 28, 28)
    cols = int(np.ceil(len(images) / rows))
    grid = np.ones((cols * 30, rows * 30), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, rows)
        grid[r * 30 + 1:r * 30 + 29, c * 30 + 1:c * 30 + 29] = image
    grid = grid.repeat(2, axis=0).repeat(2, axis=1)  # 2x larger, for viewing
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name)
    plt.imsave(path, np.clip(grid, 0, 1), cmap="gray", vmin=0, vmax=1)
    print(f"saved {path}")


class Timer:
    """Seconds since construction: ``print(f"{timer():.1f}s")``."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
