"""A small CNN on the bundled MNIST digits: (conv 3x3 - ReLU - max-pool 2) x 2,
then two linear layers.

Trains on the 4,000 training digits that ship with zerograd and reports the accuracy
on the 1,000 held-out digits after every epoch (about 97% after 8 epochs) and the
time taken. Saves the first layer's filters as ``<out>/mnist_cnn_filters.png``.

    python examples/mnist_cnn.py [--epochs 8] [--gpu] [--out out]

Under mpiexec it trains data-parallel, as ``mnist_mlp.py`` does (docs/distributed.md):

    mpiexec -n 2 python examples/mnist_cnn.py
"""

import sys

from common import Timer, limit, parser, positive_int, pyplot, save_figure, setup

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda, optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.distributed import DistributedOptimizer, scatter_dataset
from zerograd.models import Model
from zerograd.progress import progress
from zerograd.transforms import Compose, Normalize, ToFloat


class CNN(Model):
    """(N, 1, 28, 28) images -> (N, 10) class scores."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.conv1 = L.Conv2d(channels, kernel_size=3, pad=1)
        self.conv2 = L.Conv2d(2 * channels, kernel_size=3, pad=1)
        self.fc1 = L.Linear(128)
        self.fc2 = L.Linear(10)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), kernel_size=2, stride=2)  # (N, C, 14, 14)
        x = F.pooling(F.relu(self.conv2(x)), kernel_size=2, stride=2)  # (N, 2C, 7, 7)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(x)


def evaluate(model, loader, comm) -> float:
    """Accuracy over this rank's share of the test digits, added up over every rank."""
    correct = 0.0
    with zerograd.no_grad(), zerograd.test_mode():
        for x, t in loader:
            correct += float(F.accuracy(model(x), t).data) * len(t)
    return comm.average(correct, loader.data_size)


def plot_filters(model, args) -> None:
    plt = pyplot()
    if plt is None:
        return
    W = cuda.as_numpy(model.conv1.W.data)[:, 0]  # (C, 3, 3)
    rows = 2 if len(W) > 1 else 1
    cols = -(-len(W) // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(max(cols, 2), 1.1 * rows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for w, ax in zip(W, axes.ravel()):
        ax.imshow(w, cmap="gray")
    fig.suptitle("first-layer filters")
    save_figure(fig, args, "mnist_cnn_filters.png")


def main(argv=None) -> None:
    p = parser("A small CNN on the bundled MNIST digits.", 8)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--channels", type=positive_int, default=16)
    args = p.parse_args(argv)
    comm = setup(args, distributed=True)  # a world of one without mpiexec
    if args.batch_size < comm.size:
        sys.exit(f"--batch-size {args.batch_size} is smaller than the {comm.size} ranks")

    image = Compose([ToFloat(), Normalize(0.0, 255.0)])  # keep the (1, 28, 28) shape
    train_set = limit(MNISTSubset(train=True, transform=image), args.limit)
    test_set = limit(MNISTSubset(train=False, transform=image), args.limit)
    # Each rank takes its share of the digits and of every batch.
    train_part = scatter_dataset(train_set, comm, seed=args.seed)
    test_part = scatter_dataset(test_set, comm, shuffle=False, remainder="keep")
    train_loader = DataLoader(train_part, args.batch_size // comm.size, gpu=args.gpu,
                              seed=args.seed)
    test_loader = DataLoader(test_part, 100, shuffle=False, gpu=args.gpu)

    model = CNN(args.channels)
    if args.gpu:
        model.to_gpu()
    optimizer = DistributedOptimizer(optimizers.Adam().setup(model), comm)

    timer = Timer()
    for epoch in range(1, args.epochs + 1):
        sum_loss = 0.0
        for x, t in progress(train_loader, desc=f"epoch {epoch}", unit="batch",
                             disable=comm.rank != 0):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
        train_loss = comm.average(sum_loss, train_loader.data_size)
        test_acc = evaluate(model, test_loader, comm)
        print(f"epoch {epoch}  train loss {train_loss:.4f}  "
              f"test accuracy {test_acc:.4f}  ({timer():.1f}s)")

    print(f"result: test accuracy {test_acc:.4f}  ({timer():.1f}s)")
    if comm.rank == 0:
        plot_filters(model, args)


if __name__ == "__main__":
    main()
