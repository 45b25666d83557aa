"""The book's MNIST MLP (step 51): 784-1000-1000-10 with ReLU, Adam, batch 100.

Trains on the 4,000 training digits that ship with zerograd (``MNISTSubset``) and
reports the loss and accuracy on them and on the 1,000 held-out digits after every
epoch; ``--full`` uses the real 60,000/10,000 MNIST instead (downloaded once).
Saves the curves as ``<out>/mnist_mlp.png``.

    python examples/mnist_mlp.py [--epochs 5] [--full] [--gpu] [--out out]

Under mpiexec it trains data-parallel: each rank takes its share of the digits and of
every batch of ``--batch-size``, the gradients are averaged over the ranks, and rank 0
prints and plots (see docs/distributed.md):

    mpiexec -n 2 python examples/mnist_mlp.py
"""

import sys

from common import Timer, limit, parser, positive_int, pyplot, save_figure, setup

import zerograd
import zerograd.functions as F
from zerograd import optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNIST, MNISTSubset
from zerograd.distributed import DistributedOptimizer, scatter_dataset
from zerograd.models import MLP
from zerograd.progress import progress


def evaluate(model, loader, comm) -> tuple[float, float]:
    """Mean loss and accuracy over ``loader`` (this rank's share of the digits, the
    sums then added over every rank), without a graph."""
    sum_loss = sum_acc = 0.0
    with zerograd.no_grad(), zerograd.test_mode():
        for x, t in loader:
            y = model(x)
            sum_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
    return comm.average((sum_loss, sum_acc), loader.data_size)


def plot(history: dict, args) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(history["train"]) + 1)
    for split, marker in (("train", "o"), ("test", "s")):
        ax0.plot(epochs, [loss for loss, _ in history[split]], marker=marker, label=split)
        ax1.plot(epochs, [acc for _, acc in history[split]], marker=marker, label=split)
    ax0.set(xlabel="epoch", ylabel="loss")
    ax1.set(xlabel="epoch", ylabel="accuracy")
    ax0.legend()
    fig.tight_layout()
    save_figure(fig, args, "mnist_mlp.png")


def main(argv=None) -> None:
    p = parser("The book's MNIST MLP (step 51) on the bundled digits.", 5)
    p.add_argument("--hidden", type=positive_int, default=1000)
    p.add_argument("--batch-size", type=positive_int, default=100)
    p.add_argument("--full", action="store_true",
                   help="the full MNIST (60,000/10,000 digits, downloaded once)")
    args = p.parse_args(argv)
    comm = setup(args, distributed=True)  # a world of one without mpiexec
    if args.batch_size < comm.size:
        sys.exit(f"--batch-size {args.batch_size} is smaller than the {comm.size} ranks")

    dataset = MNIST if args.full else MNISTSubset
    train_set = limit(dataset(train=True), args.limit)
    test_set = limit(dataset(train=False), args.limit)
    # Each rank takes its share of the digits and of every batch.
    train_part = scatter_dataset(train_set, comm, seed=args.seed)
    test_part = scatter_dataset(test_set, comm, shuffle=False, remainder="keep")
    train_loader = DataLoader(train_part, args.batch_size // comm.size, gpu=args.gpu,
                              seed=args.seed)
    test_loader = DataLoader(test_part, args.batch_size, shuffle=False, gpu=args.gpu)
    ranks = f" on {comm.size} ranks" if comm.size > 1 else ""
    print(f"{dataset.__name__}: {len(train_set)} training, {len(test_set)} test digits"
          f"{ranks}")

    model = MLP((args.hidden, args.hidden, 10), activation=F.relu)
    if args.gpu:
        model.to_gpu()
    optimizer = DistributedOptimizer(optimizers.Adam().setup(model), comm)

    timer = Timer()
    history = {"train": [], "test": []}
    for epoch in range(1, args.epochs + 1):
        sum_loss = sum_acc = 0.0
        for x, t in progress(train_loader, desc=f"epoch {epoch}", unit="batch",
                             disable=comm.rank != 0):
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
        history["train"].append(comm.average((sum_loss, sum_acc), train_loader.data_size))
        history["test"].append(evaluate(model, test_loader, comm))
        (train_loss, train_acc), (test_loss, test_acc) = history["train"][-1], history["test"][-1]
        print(f"epoch {epoch}  train loss {train_loss:.4f} accuracy {train_acc:.4f}  "
              f"test loss {test_loss:.4f} accuracy {test_acc:.4f}  ({timer():.1f}s)")

    print(f"result: test accuracy {history['test'][-1][1]:.4f}  ({timer():.1f}s)")
    if comm.rank == 0:
        plot(history, args)


if __name__ == "__main__":
    main()
