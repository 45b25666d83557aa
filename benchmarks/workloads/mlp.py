"""Workload 2: MLP training over the bundled MNIST 5k digits, seconds per epoch.

784-1000-10 and 784-1000-1000-10, ReLU, batch 100 (50 steps an epoch), softmax cross
entropy, plain SGD (lr 0.1), float32. Every framework walks the same shuffled order and
indexes its mini-batches out of the same array inside the timed epoch.

The numpy floor does the forward and the backward by hand (no gradient for the input
batch, as a framework should not compute one either) and updates the weights in place.
"""

from __future__ import annotations

import numpy as np
from common import (
    Result,
    Skip,
    import_torch,
    init_weight,
    load_mnist,
    median,
    require_zerograd,
    softmax_cross_entropy_np,
    time_calls,
)

NAME = "mlp"
FRAMEWORKS = ("zerograd", "torch", "numpy")
CASES = ("784-1000-10", "784-1000-1000-10")
GROUPS = [list(CASES)]
# Measured under glibc's default allocator and with its thresholds raised, which is what
# `import zerograd` sets (zerograd.allocator): its 4 MB gradients are otherwise mmapped
# and faulted in again every step.
MALLOC_SETTINGS = ("default", "tuned")

BATCH = 100
LR = 0.1


def hidden_sizes(case: str) -> list[int]:
    """'784-1000-10' -> [1000, 10] (the output sizes of the layers)."""
    return [int(s) for s in case.split("-")[1:]]


# ---- the three implementations: each returns step(x_batch, t_batch) -------------------
def zerograd_model(sizes):
    """An MLP of zerograd Linear layers with ReLU between them (as the book's MLP)."""
    Layer, Linear, relu = require_zerograd("layers.Layer", "layers.Linear", "functions.relu")

    class Net(Layer):
        def __init__(self):
            super().__init__()
            self.n_layers = len(sizes)
            for i, size in enumerate(sizes):
                setattr(self, f"l{i}", Linear(size))

        def forward(self, x):
            for i in range(self.n_layers - 1):
                x = relu(getattr(self, f"l{i}")(x))
            return getattr(self, f"l{self.n_layers - 1}")(x)

    return Net()


def _zerograd(sizes):
    SGD, softmax_cross_entropy = require_zerograd(
        "optimizers.SGD", "functions.softmax_cross_entropy"
    )
    model = zerograd_model(sizes)
    optimizer = SGD(lr=LR).setup(model)

    def step(x, t):
        loss = softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    return step


def _torch(sizes):
    torch = import_torch()
    layers = []
    n_in = 784
    for size in sizes:
        layers += [torch.nn.Linear(n_in, size), torch.nn.ReLU()]
        n_in = size
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    cross_entropy = torch.nn.functional.cross_entropy

    def step(x, t):
        loss = cross_entropy(model(x), t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def numpy_grads(Ws, bs, x, t):
    """The floor's forward and backward: (loss, weight gradients, bias gradients)."""
    hs = [x]  # the input of each layer (after ReLU)
    for W, b in zip(Ws[:-1], bs[:-1]):
        hs.append(np.maximum(hs[-1] @ W + b, 0.0))
    y = hs[-1] @ Ws[-1] + bs[-1]
    loss, gy = softmax_cross_entropy_np(y, t)
    gWs, gbs = [None] * len(Ws), [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        gWs[i] = hs[i].T @ gy  # d/dW (h W + b) = h^T gy
        gbs[i] = gy.sum(axis=0)
        if i > 0:  # no gradient for the input batch
            gy = (gy @ Ws[i].T) * (hs[i] > 0)  # d/dh relu(h W) = gy W^T [h > 0]
    return loss, gWs, gbs


def numpy_params(sizes, seed: int = 0):
    rng = np.random.default_rng(seed)
    dims = [784] + list(sizes)
    Ws = [init_weight(rng, a, b) for a, b in zip(dims[:-1], dims[1:])]
    bs = [np.zeros(b, dtype=np.float32) for b in dims[1:]]
    return Ws, bs


def _numpy(sizes):
    Ws, bs = numpy_params(sizes)

    def step(x, t):
        _, gWs, gbs = numpy_grads(Ws, bs, x, t)
        for W, b, gW, gb in zip(Ws, bs, gWs, gbs):
            W -= LR * gW
            b -= LR * gb

    return step


_IMPLS = {"zerograd": _zerograd, "torch": _torch, "numpy": _numpy}


def make_epoch(framework: str, case: str, x: np.ndarray, t: np.ndarray, seed: int = 0):
    """A callable that trains one epoch (shuffled, batch 100) with ``framework``."""
    step = _IMPLS[framework](hidden_sizes(case))
    rng = np.random.default_rng(seed)
    n_steps = len(x) // BATCH
    if framework == "torch":
        torch = import_torch()
        x, t = torch.from_numpy(x), torch.from_numpy(t)

    def epoch():
        order = rng.permutation(len(x))
        if framework == "torch":
            order = torch.from_numpy(order)
        for i in range(n_steps):
            idx = order[i * BATCH : (i + 1) * BATCH]
            step(x[idx], t[idx])

    return epoch, step


def run(framework: str, cases, quick: bool) -> dict:
    """Seconds per epoch of 5,000 digits for each network."""
    x, t = load_mnist()
    out = {}
    for case in cases:
        try:
            epoch, step = make_epoch(framework, case, x, t)
        except Skip as e:
            out[case] = e
            continue
        # Warm up on a few steps (first-call costs, layer shapes inferred), then epochs.
        xb, tb = (x[:BATCH], t[:BATCH])
        if framework == "torch":
            torch = import_torch()
            xb, tb = torch.from_numpy(xb), torch.from_numpy(tb)
        for _ in range(3):
            step(xb, tb)
        times = time_calls(epoch, 1 if quick else 3, warmup=0)
        out[case] = [Result("epoch", "s", median(times))]
    return out


def zerograd_step(case: str = "784-1000-10"):
    """One epoch of zerograd training (for profiling.py)."""
    x, t = load_mnist()
    epoch, step = make_epoch("zerograd", case, x, t)
    step(x[:BATCH], t[:BATCH])
    return epoch
