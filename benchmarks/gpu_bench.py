"""GPU benchmark: zerograd on CuPy against PyTorch on CUDA, the same work in one run.

Workloads (median of interleaved rounds, device synchronised around each timing):
  per-op   a chain of 1,000 elementwise ops on a size-1 array, forward+backward (µs/op)
  mlp      784-1000-10 ReLU MLP step, batch 100, softmax cross-entropy, SGD (ms/step)
  cnn      conv3x3 1->16, relu, pool2, conv3x3 16->32, relu, pool2, linear->10,
           batch 32 of 1x28x28, forward+backward+update (ms/step)

Run on a machine with a CUDA device: ``python benchmarks/gpu_bench.py [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def _timeit(fn, sync, steps: int) -> float:
    fn()  # warm-up (kernel compilation, allocator)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - start) / steps


# ---- zerograd ------------------------------------------------------------------------
def zerograd_workloads():
    import cupy

    import zerograd.functions as F
    import zerograd.layers as L
    from zerograd import Variable, optimizers
    from zerograd.models import Model

    def per_op():
        x = Variable(cupy.asarray(np.array([0.5], dtype=np.float32)))
        y = x
        for _ in range(250):
            y = -(F.sin(y) * 1.0001 + 0.1)
        y.backward()

    rng = np.random.default_rng(0)
    xm = cupy.asarray(rng.random((100, 784), dtype=np.float32))
    tm = cupy.asarray(rng.integers(0, 10, 100))

    class MLP2(Model):
        def __init__(self):
            super().__init__()
            self.l1 = L.Linear(1000, in_size=784)
            self.l2 = L.Linear(10, in_size=1000)

        def forward(self, x):
            return self.l2(F.relu(self.l1(x)))

    mlp = MLP2()
    mlp.to_gpu()
    opt_m = optimizers.SGD(lr=0.01).setup(mlp)

    def mlp_step():
        loss = F.softmax_cross_entropy(mlp(xm), tm)
        mlp.cleargrads()
        loss.backward()
        opt_m.update()

    class CNN(Model):
        def __init__(self):
            super().__init__()
            self.c1 = L.Conv2d(16, 3, pad=1, in_channels=1)
            self.c2 = L.Conv2d(32, 3, pad=1, in_channels=16)
            self.fc = L.Linear(10, in_size=32 * 7 * 7)

        def forward(self, x):
            h = F.pooling(F.relu(self.c1(x)), 2, 2)
            h = F.pooling(F.relu(self.c2(h)), 2, 2)
            return self.fc(F.reshape(h, (h.shape[0], -1)))

    cnn = CNN()
    cnn.to_gpu()
    opt_c = optimizers.SGD(lr=0.01).setup(cnn)
    xc = cupy.asarray(rng.random((32, 1, 28, 28), dtype=np.float32))
    tc = cupy.asarray(rng.integers(0, 10, 32))

    def cnn_step():
        loss = F.softmax_cross_entropy(cnn(xc), tc)
        cnn.cleargrads()
        loss.backward()
        opt_c.update()

    def sync():
        cupy.cuda.Device().synchronize()

    return {"per-op": per_op, "mlp": mlp_step, "cnn": cnn_step}, sync


# ---- PyTorch -------------------------------------------------------------------------
def torch_workloads():
    import torch

    dev = torch.device("cuda")

    def per_op():
        x = torch.tensor([0.5], device=dev, requires_grad=True)
        y = x
        for _ in range(250):
            y = -(torch.sin(y) * 1.0001 + 0.1)
        y.backward()

    rng = np.random.default_rng(0)
    xm = torch.tensor(rng.random((100, 784), dtype=np.float32), device=dev)
    tm = torch.tensor(rng.integers(0, 10, 100), device=dev)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(784, 1000), torch.nn.ReLU(), torch.nn.Linear(1000, 10)
    ).to(dev)
    opt_m = torch.optim.SGD(mlp.parameters(), lr=0.01)
    lossf = torch.nn.CrossEntropyLoss()

    def mlp_step():
        loss = lossf(mlp(xm), tm)
        opt_m.zero_grad()
        loss.backward()
        opt_m.step()

    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10),
    ).to(dev)
    opt_c = torch.optim.SGD(cnn.parameters(), lr=0.01)
    xc = torch.tensor(rng.random((32, 1, 28, 28), dtype=np.float32), device=dev)
    tc = torch.tensor(rng.integers(0, 10, 32), device=dev)

    def cnn_step():
        loss = lossf(cnn(xc), tc)
        opt_c.zero_grad()
        loss.backward()
        opt_c.step()

    return {"per-op": per_op, "mlp": mlp_step, "cnn": cnn_step}, torch.cuda.synchronize


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import cupy
    import torch

    zg, zg_sync = zerograd_workloads()
    th, th_sync = torch_workloads()
    steps = {"per-op": 5, "mlp": 50, "cnn": 50}
    scale = {"per-op": 1e6 / 1000, "mlp": 1e3, "cnn": 1e3}
    unit = {"per-op": "us/op", "mlp": "ms/step", "cnn": "ms/step"}
    results = {}
    for name in zg:
        a, b = [], []
        for _ in range(args.rounds):  # interleaved rounds
            a.append(_timeit(zg[name], zg_sync, steps[name]) * scale[name])
            b.append(_timeit(th[name], th_sync, steps[name]) * scale[name])
        results[name] = {"zerograd": statistics.median(a), "torch": statistics.median(b)}

    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"device: {device}; cupy {cupy.__version__}, torch {torch.__version__}, "
          f"numpy {np.__version__}, python {sys.version.split()[0]}")
    print(f"{'workload':10s} {'zerograd':>12s} {'torch':>12s} {'ratio':>7s}")
    for name, r in results.items():
        ratio = r["zerograd"] / r["torch"]
        r["ratio"] = ratio
        print(f"{name:10s} {r['zerograd']:9.3f} {unit[name]:>5s} {r['torch']:9.3f} "
              f"{unit[name]:>5s} {ratio:6.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": device, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
