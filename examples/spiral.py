"""The book's spiral classifier (steps 48-49): a 2-10-3 MLP with sigmoid, plain SGD.

Prints the mean training loss every 10 epochs (the book ends near 0.1-0.2 after 300),
then the accuracy on the training and test spirals, and saves the decision regions
as ``<out>/spiral.png``.

    python examples/spiral.py [--epochs 300] [--gpu] [--out out]
"""

import numpy as np
from common import (
    Timer,
    limit,
    parser,
    positive_int,
    positive_rate,
    pyplot,
    save_figure,
    setup,
    to_device,
)

import zerograd
import zerograd.functions as F
from zerograd import cuda, optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import Spiral
from zerograd.models import MLP


def accuracy(model, dataset, gpu: bool) -> float:
    with zerograd.no_grad():
        y = model(to_device(dataset.data, gpu))
    return float((cuda.as_numpy(y.data).argmax(axis=1) == dataset.label).mean())


def plot_regions(model, dataset, args) -> None:
    plt = pyplot()
    if plt is None:
        return
    x, t = dataset.data, dataset.label
    h = 0.01
    x0, x1 = np.meshgrid(np.arange(x[:, 0].min() - 0.1, x[:, 0].max() + 0.1, h),
                         np.arange(x[:, 1].min() - 0.1, x[:, 1].max() + 0.1, h))
    grid = np.c_[x0.ravel(), x1.ravel()].astype(np.float32)
    with zerograd.no_grad():
        y = model(to_device(grid, args.gpu))
    regions = cuda.as_numpy(y.data).argmax(axis=1).reshape(x0.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    colors = ["C0", "C1", "C2"]
    ax.contourf(x0, x1, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.3)
    for c, marker in zip(range(3), "ox^"):
        ax.scatter(x[t == c, 0], x[t == c, 1], s=30, marker=marker, color=colors[c])
    ax.set_title("spiral: decision regions after training")
    save_figure(fig, args, "spiral.png")


def main(argv=None) -> None:
    p = parser("Spiral classification with a small MLP (the book's steps 48-49).", 300)
    p.add_argument("--hidden", type=positive_int, default=10)
    p.add_argument("--lr", type=positive_rate, default=1.0)
    p.add_argument("--batch-size", type=positive_int, default=30)
    args = p.parse_args(argv)
    setup(args)

    train_set = limit(Spiral(train=True), args.limit)
    test_set = limit(Spiral(train=False), args.limit)
    loader = DataLoader(train_set, args.batch_size, gpu=args.gpu, seed=args.seed)
    model = MLP((args.hidden, 3))  # sigmoid between the layers, as in the book
    if args.gpu:
        model.to_gpu()
    optimizer = optimizers.SGD(args.lr).setup(model)

    timer = Timer()
    for epoch in range(1, args.epochs + 1):
        sum_loss = 0.0
        for x, t in loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
        if epoch % 10 == 0 or epoch == args.epochs:
            print(f"epoch {epoch:3d}  loss {sum_loss / len(train_set):.4f}")

    train_acc = accuracy(model, train_set, args.gpu)
    test_acc = accuracy(model, test_set, args.gpu)
    print(f"result: loss {sum_loss / len(train_set):.4f}  train accuracy {train_acc:.4f}  "
          f"test accuracy {test_acc:.4f}  ({timer():.1f}s)")
    plot_regions(model, train_set, args)


if __name__ == "__main__":
    main()
