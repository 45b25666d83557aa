"""Workload 3: a small CNN training step, milliseconds per step.

conv3x3 1->16 pad 1, ReLU, max-pool 2, conv3x3 16->32 pad 1, ReLU, max-pool 2,
linear 1568->10, softmax cross entropy, SGD; batch 32 of 1x28x28 MNIST digits, float32,
forward + backward + update.

The numpy floor does each convolution as one matrix product over windows taken with
``sliding_window_view`` (and its input gradient as the full convolution of the output
gradient with the flipped kernel, one more product), and max-pooling by reshaping 2x2
windows, remembering each window's argmax for the backward.
"""

from __future__ import annotations

import resource

import numpy as np
from common import (
    Result,
    Skip,
    import_torch,
    load_mnist,
    median,
    require_zerograd,
    softmax_cross_entropy_np,
    time_calls,
)
from numpy.lib.stride_tricks import sliding_window_view

NAME = "cnn"
FRAMEWORKS = ("zerograd", "torch", "numpy")
CASES = ("batch 32",)
GROUPS = [list(CASES)]
# Measured under glibc's default allocator and with its thresholds raised (PERF-NOTES 5).
MALLOC_SETTINGS = ("default", "tuned")

BATCH = 32
LR = 0.01


# ---- zerograd and torch ----------------------------------------------------------------
def _zerograd():
    Layer, Conv2d, Linear, relu, pooling, reshape, softmax_cross_entropy, SGD = (
        require_zerograd(
            "layers.Layer",
            "layers.Conv2d",
            "layers.Linear",
            "functions.relu",
            "functions.pooling",
            "functions.reshape",
            "functions.softmax_cross_entropy",
            "optimizers.SGD",
        )
    )

    class Net(Layer):
        def __init__(self):
            super().__init__()
            self.conv1 = Conv2d(16, 3, pad=1)
            self.conv2 = Conv2d(32, 3, pad=1)
            self.fc = Linear(10)

        def forward(self, x):
            x = pooling(relu(self.conv1(x)), 2, stride=2)
            x = pooling(relu(self.conv2(x)), 2, stride=2)
            return self.fc(reshape(x, (x.shape[0], -1)))

    model = Net()
    optimizer = SGD(lr=LR).setup(model)

    def step(x, t):
        loss = softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    return step


def _torch():
    torch = import_torch()
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc = nn.Linear(32 * 7 * 7, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc(x.reshape(x.shape[0], -1))

    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step(x, t):
        loss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(t))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


# ---- the numpy floor -------------------------------------------------------------------
def _windows3x3(x):
    """Pad by 1 and lay out the 3x3 windows as ``(N, C*9, H*W)`` (one copy)."""
    n, c, h, w = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(xpad, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * 9, h * w)


def conv3x3_forward(x, W, b):
    """3x3 convolution, stride 1, pad 1: ``(N, C, H, W) -> (N, O, H, W)``; returns cols."""
    n, _, h, w = x.shape
    cols = _windows3x3(x)
    y = W.reshape(W.shape[0], -1) @ cols + b[:, None]  # one batched product
    return y.reshape(n, -1, h, w), cols


def conv3x3_backward(gy, W, cols, need_gx: bool):
    """Gradients of :func:`conv3x3_forward` for its input (or None), W and b."""
    n, o, h, w = gy.shape
    gy3 = gy.reshape(n, o, h * w)
    gW = (gy3 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)  # d/dW = gy cols^T
    gb = gy3.sum(axis=(0, 2))
    gx = None
    if need_gx:  # d/dx: gy convolved in full with the kernel flipped, channels swapped
        Wflip = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(W.shape[1], o * 9)
        gx = (Wflip @ _windows3x3(gy)).reshape(n, -1, h, w)
    return gx, gW, gb


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def maxpool2_forward(x):
    """2x2 max-pooling, stride 2; returns the output and each window's argmax (0..3)."""
    a, b, c, d = (x[:, :, i::2, j::2] for i, j in _CORNERS)
    top, bottom = np.maximum(a, b), np.maximum(c, d)
    # First maximum wins, as argmax: strict comparisons send ties to the earlier corner.
    idx = np.where(bottom > top, (d > c) + np.int8(2), (b > a).astype(np.int8))
    return np.maximum(top, bottom), idx


def maxpool2_backward(gy, idx):
    """Route each output gradient to the maximum of its window."""
    n, c, h2, w2 = gy.shape
    gx = np.empty((n, c, 2 * h2, 2 * w2), dtype=gy.dtype)
    for k, (i, j) in enumerate(_CORNERS):
        np.multiply(gy, idx == k, out=gx[:, :, i::2, j::2])
    return gx


def numpy_params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def he(*shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "W1": he(16, 1, 3, 3, fan_in=9),
        "b1": np.zeros(16, np.float32),
        "W2": he(32, 16, 3, 3, fan_in=144),
        "b2": np.zeros(32, np.float32),
        "W3": he(32 * 7 * 7, 10, fan_in=32 * 7 * 7),
        "b3": np.zeros(10, np.float32),
    }


def numpy_loss_and_grads(p: dict, x, t):
    """Forward and backward of the CNN by hand: (loss, {name: gradient})."""
    a1, cols1 = conv3x3_forward(x, p["W1"], p["b1"])
    r1 = np.maximum(a1, 0.0)
    m1, idx1 = maxpool2_forward(r1)
    a2, cols2 = conv3x3_forward(m1, p["W2"], p["b2"])
    r2 = np.maximum(a2, 0.0)
    m2, idx2 = maxpool2_forward(r2)
    flat = m2.reshape(len(x), -1)
    y = flat @ p["W3"] + p["b3"]
    loss, gy = softmax_cross_entropy_np(y, t)
    g = {"W3": flat.T @ gy, "b3": gy.sum(axis=0)}
    gm2 = (gy @ p["W3"].T).reshape(m2.shape)
    ga2 = maxpool2_backward(gm2, idx2) * (a2 > 0)  # d/da relu(a) = [a > 0]
    gm1, g["W2"], g["b2"] = conv3x3_backward(ga2, p["W2"], cols2, need_gx=True)
    ga1 = maxpool2_backward(gm1, idx1) * (a1 > 0)
    _, g["W1"], g["b1"] = conv3x3_backward(ga1, p["W1"], cols1, need_gx=False)
    return loss, g


def _numpy():
    p = numpy_params()

    def step(x, t):
        _, grads = numpy_loss_and_grads(p, x, t)
        for name, gp in grads.items():
            p[name] -= LR * gp

    return step


_IMPLS = {"zerograd": _zerograd, "torch": _torch, "numpy": _numpy}


def make_steps(framework: str):
    """A step function and a callable that runs it on the next batch of digits."""
    x, t = load_mnist()
    x = x.reshape(-1, 1, 28, 28)
    step = _IMPLS[framework]()
    state = {"i": 0}
    n_batches = len(x) // BATCH

    def next_step():
        i = state["i"] % n_batches
        state["i"] += 1
        step(x[i * BATCH : (i + 1) * BATCH], t[i * BATCH : (i + 1) * BATCH])

    return next_step


def run(framework: str, cases, quick: bool) -> dict:
    """Milliseconds per training step (median over steps)."""
    out = {}
    for case in cases:
        try:
            next_step = make_steps(framework)
        except Skip as e:
            out[case] = e
            continue
        for _ in range(3):
            next_step()
        n = 10 if quick else 40
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times = time_calls(next_step, n, warmup=0)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        # Page faults per step show the allocator returning memory to the OS and
        # faulting it in again (PERF-NOTES finding 5).
        out[case] = [
            Result("step", "ms", median(times) * 1e3),
            Result("page faults", "/step", faults / n),
        ]
    return out


def zerograd_step(case: str = "batch 32"):
    """One zerograd training step on the next batch (for profiling.py)."""
    next_step = make_steps("zerograd")
    next_step()
    return next_step
