"""float16 on the CPU: the cost of NumPy's float16 products, and float16 training.

NumPy has no BLAS for float16: ``a @ b`` on float16 arrays runs a plain loop (it does
accumulate in float32, so it is as accurate as casting, only slower). This script
measures, on the shapes of the MNIST MLP and CNN:

    python benchmarks/float16.py products
        float32 products, float16 products as NumPy does them, and float16 products
        computed as float32 products rounded to float16 (cast, BLAS, cast back), with
        the largest error of each float16 way against float64.

    python benchmarks/float16.py train mlp|cnn [--epochs 8] [--fp32-products]
        the held-out accuracy of float32 and float16 training (Adam, dynamic loss
        scaling, float32 master weights), each epoch, and the time taken.
        --fp32-products runs the float16 products of matmul/linear/conv2d as float32
        products rounded to float16 by wrapping those Functions' forwards: it simulates
        the change requested for zerograd/functions/linalg.py and conv.py, to measure
        it before it is made (once it is made, the flag changes nothing).

Timings taken on a busy machine are only indicative.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable, optimizers
from zerograd.amp import LossScaler
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.models import MLP, Model
from zerograd.transforms import Compose, Normalize, ToFloat


def _best_of(f, *args, repeat: int = 3) -> float:
    """The shortest of ``repeat`` timings of ``f(*args)``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def _via_float32(a, b):
    """A float16 product as float32 BLAS computes it, rounded to float16."""
    return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)


def _conv_step(x, W) -> None:
    W.cleargrad()
    F.conv2d(x, W, pad=1).sum().backward()


def products() -> None:
    rng = np.random.default_rng(0)
    print(f"{'product':44s} {'float32':>9s} {'float16':>9s} {'f16 via f32':>11s}"
          f" {'err f16':>9s} {'err via':>9s}")
    shapes = [("matmul (100, 784) @ (784, 1000)", (100, 784), (784, 1000)),
              ("matmul (784, 100) @ (100, 1000) (grad W)", (784, 100), (100, 1000))]
    for name, sa, sb in shapes:
        a = rng.standard_normal(sa)
        b = rng.standard_normal(sb) * 0.05
        exact = a @ b
        a16, b16 = a.astype(np.float16), b.astype(np.float16)
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        t32 = _best_of(np.matmul, a32, b32)
        t16 = _best_of(np.matmul, a16, b16, repeat=1)
        tvia = _best_of(_via_float32, a16, b16)
        err16 = np.abs((a16 @ b16).astype(np.float64) - exact).max()
        errvia = np.abs(_via_float32(a16, b16).astype(np.float64) - exact).max()
        print(f"{name:44s} {t32 * 1e3:7.2f}ms {t16 * 1e3:7.1f}ms {tvia * 1e3:9.2f}ms"
              f" {err16:9.2e} {errvia:9.2e}")
    for name, xs, ws in [("conv2d fwd+bwd (32, 1, 28, 28) * (16, 1, 3, 3)",
                          (32, 1, 28, 28), (16, 1, 3, 3)),
                         ("conv2d fwd+bwd (32, 16, 14, 14) * (32, 16, 3, 3)",
                          (32, 16, 14, 14), (32, 16, 3, 3))]:
        x = rng.random(xs)
        W = rng.standard_normal(ws) * 0.1
        row = []
        for dtype in (np.float32, np.float16):
            row.append(_best_of(_conv_step, x.astype(dtype), Variable(W.astype(dtype)),
                                repeat=3 if dtype == np.float32 else 1))
        print(f"{name:44s} {row[0] * 1e3:7.2f}ms {row[1] * 1e3:7.1f}ms")


def simulate_fp32_products() -> None:
    """Wrap the forwards of the product Functions: float16 inputs are cast to float32,
    multiplied through BLAS, and the result rounded to float16 (measurement only)."""
    import zerograd.functions.conv as conv
    import zerograd.functions.linalg as linalg
    from zerograd.config import using_config

    def wrap(cls):
        forward = cls.forward

        def cast_forward(self, *xs):
            if not any(getattr(x, "dtype", None) == np.float16 for x in xs):
                return forward(self, *xs)
            ys = [x.astype(np.float32) if getattr(x, "dtype", None) == np.float16 else x
                  for x in xs]
            return forward(self, *ys).astype(np.float16)

        cls.forward = cast_forward

    for cls in (linalg.MatMul, linalg.Linear, conv.Conv2d, conv.Deconv2d, conv.Conv2DGradW):
        wrap(cls)
    backward = linalg.Linear.backward

    def linear_backward(self, gy):  # its graph-free branch multiplies arrays directly
        with using_config("enable_backprop", True):
            return backward(self, gy)

    linalg.Linear.backward = linear_backward


class CNN(Model):
    """examples/mnist_cnn.py's network."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.conv1 = L.Conv2d(channels, kernel_size=3, pad=1)
        self.conv2 = L.Conv2d(2 * channels, kernel_size=3, pad=1)
        self.fc1 = L.Linear(128)
        self.fc2 = L.Linear(10)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), kernel_size=2, stride=2)
        x = F.pooling(F.relu(self.conv2(x)), kernel_size=2, stride=2)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(x)


def train(kind: str, dtype, epochs: int) -> None:
    dtype = np.dtype(dtype)
    zerograd.seed(0)
    if kind == "mlp":
        train_set, test_set = MNISTSubset(train=True), MNISTSubset(train=False)
        model, batch_size = MLP((1000, 10), activation=F.relu), 100
    else:
        image = Compose([ToFloat(), Normalize(0.0, 255.0)])
        train_set = MNISTSubset(train=True, transform=image)
        test_set = MNISTSubset(train=False, transform=image)
        model, batch_size = CNN(), 32
    model(np.zeros((1, *train_set[0][0].shape), np.float32))  # same initial weights
    model.astype(dtype)
    optimizer = optimizers.Adam().setup(model)
    scaler = LossScaler() if dtype == np.float16 else None
    loader = DataLoader(train_set, batch_size, seed=0)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x.astype(dtype)), t)
            model.cleargrads()
            if scaler is None:
                loss.backward()
                optimizer.update()
            else:
                scaler.backward(loss)
                scaler.step(optimizer)
        correct = 0.0
        with zerograd.no_grad(), zerograd.test_mode():
            for x, t in DataLoader(test_set, 200, shuffle=False):
                correct += float(F.accuracy(model(x.astype(dtype)), t).data) * len(t)
        print(f"{kind} {dtype.name} epoch {epoch}: held-out accuracy "
              f"{correct / len(test_set):.4f} ({time.perf_counter() - start:.1f}s)"
              + (f", {scaler}" if scaler else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("products", help="time and error of float16 products")
    t = sub.add_parser("train", help="float32 and float16 training of the MLP or CNN")
    t.add_argument("kind", choices=("mlp", "cnn"))
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--fp32-products", action="store_true",
                   help="simulate float16 products accumulated through float32 BLAS")
    args = parser.parse_args()
    if args.command == "products":
        products()
        return
    if args.fp32_products:
        simulate_fp32_products()
    for dtype in (np.float32, np.float16):
        train(args.kind, dtype, args.epochs)


if __name__ == "__main__":
    main()
