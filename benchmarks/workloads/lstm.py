"""Workload 4: an LSTM (and a GRU) on a sine curve, truncated BPTT, ms per 30-step chunk.

LSTM(hidden 100, input 1) -> Linear(1), predicting the next value of a noisy sine wave,
as the book's step 60. A chunk is 30 time steps forward (loss summed over the steps),
backward, SGD update, and cutting the graph behind the carried state. Batch 1 and
batch 32 (32 sequences at different offsets, as ``SeqDataLoader`` gives them).

Cases:

- ``batch 1``, ``batch 32``: zerograd calls ``L.LSTM`` once on the whole (30, B, 1)
  chunk (its sequence path, one Function over the time loop);
- ``batch 1, steps``, ``batch 32, steps``: zerograd steps ``L.LSTM`` 30 times, the
  book's API (the other frameworks do what they do in ``batch B``);
- ``GRU batch 1``, ``GRU batch 32``: the same with a GRU(100) (``L.GRU`` on the whole
  chunk; ``nn.GRU``, ``nn.GRUCell``, a NumPy GRU floor).

torch runs ``nn.LSTM``/``nn.GRU`` over the whole chunk at once (its fast path);
``torch-cell`` steps ``nn.LSTMCell``/``nn.GRUCell`` 30 times, the structure of a
define-by-run loop. The numpy floor fuses the gates into one product per step, hoists
the input projection out of the loop, and computes the weight gradients of the chunk in
one product each.
"""

from __future__ import annotations

import re

import numpy as np
from common import Result, Skip, import_torch, median, require_zerograd, time_calls

NAME = "lstm"
FRAMEWORKS = ("zerograd", "torch", "numpy", "torch-cell")
CASES = ("batch 1", "batch 32", "batch 1, steps", "batch 32, steps", "GRU batch 1",
         "GRU batch 32")
GROUPS = [list(CASES[:2]), list(CASES[2:4]), list(CASES[4:])]
# Measured under glibc's default allocator and with its thresholds raised (what
# `import zerograd` sets): a chunk's (T, N, 4H) arrays at batch 32 are 1.5 MB each.
MALLOC_SETTINGS = ("default", "tuned")

HIDDEN = 100
BPTT = 30
LR = 0.01
SEQ_LEN = 1000


def sine_batches(batch: int, seed: int = 0):
    """(inputs, targets) of shape (steps, batch, 1): noisy sine, next value as target."""
    rng = np.random.default_rng(seed)
    curve = np.sin(np.linspace(0, 4 * np.pi, SEQ_LEN + 1))
    curve = (curve + rng.uniform(-0.05, 0.05, curve.shape)).astype(np.float32)
    jump = SEQ_LEN // batch
    starts = np.arange(batch) * jump
    steps = np.arange(SEQ_LEN)
    idx = (starts[None, :] + steps[:, None]) % SEQ_LEN
    return curve[idx][..., None], curve[idx + 1][..., None]


def batch_size(case: str) -> int:
    return int(re.search(r"batch (\d+)", case).group(1))


def cell_kind(case: str) -> str:
    return "GRU" if case.startswith("GRU") else "LSTM"


# ---- implementations: each returns chunk(xs, ts) for xs, ts of shape (30, B, 1) -------
def _zerograd_model(kind: str):
    Layer, RNNLayer, Linear, SGD = require_zerograd(
        "layers.Layer", f"layers.{kind}", "layers.Linear", "optimizers.SGD"
    )

    class Net(Layer):
        def __init__(self):
            super().__init__()
            self.rnn = RNNLayer(HIDDEN, in_size=1)
            self.fc = Linear(1, in_size=HIDDEN)

        def forward(self, x):
            return self.fc(self.rnn(x))

    model = Net()
    # PyTorch's initial weights (and the floor's): uniform in +-1/sqrt(H). With
    # zerograd's default (normal, scaled by 1/sqrt(in_size) = 1 for the input weights)
    # plain SGD on this loss diverges within a few hundred chunks, and a benchmark that
    # computes with inf and NaN measures something else.
    rng = np.random.default_rng(0)
    scale = 1.0 / np.sqrt(HIDDEN)
    for param in model.params():
        param.data = rng.uniform(-scale, scale, param.shape).astype(np.float32)
    return model, SGD(lr=LR).setup(model)


def _zerograd(case: str):
    (mean_squared_error,) = require_zerograd("functions.mean_squared_error")
    model, optimizer = _zerograd_model(cell_kind(case))

    def chunk(xs, ts):
        # One call on the whole chunk; the mean over the chunk times its length is the
        # sum over the steps of each step's mean, as the other frameworks compute.
        loss = mean_squared_error(model(xs), ts) * len(xs)
        model.cleargrads()
        loss.backward()
        loss.unchain_backward()
        optimizer.update()

    def chunk_steps(xs, ts):
        loss = 0
        for x, t in zip(xs, ts):
            loss = loss + mean_squared_error(model(x), t)
        model.cleargrads()
        loss.backward()
        loss.unchain_backward()
        optimizer.update()

    return chunk_steps if case.endswith("steps") else chunk


def _torch(case: str):
    torch = import_torch()
    rnn = getattr(torch.nn, cell_kind(case))(1, HIDDEN)
    fc = torch.nn.Linear(HIDDEN, 1)
    params = list(rnn.parameters()) + list(fc.parameters())
    optimizer = torch.optim.SGD(params, lr=LR)
    state = {}

    def chunk(xs, ts):
        xs, ts = torch.from_numpy(xs), torch.from_numpy(ts)
        hc = state.get("hc")
        out, hc = rnn(xs, hc)
        y = fc(out)
        loss = ((y - ts) ** 2).mean(dim=(1, 2)).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["hc"] = tuple(s.detach() for s in hc) if isinstance(hc, tuple) else hc.detach()

    return chunk


def _torch_cell(case: str):
    torch = import_torch()
    gru = cell_kind(case) == "GRU"
    cell = (torch.nn.GRUCell if gru else torch.nn.LSTMCell)(1, HIDDEN)
    fc = torch.nn.Linear(HIDDEN, 1)
    params = list(cell.parameters()) + list(fc.parameters())
    optimizer = torch.optim.SGD(params, lr=LR)
    state = {}

    def chunk(xs, ts):
        xs, ts = torch.from_numpy(xs), torch.from_numpy(ts)
        hc = state.get("hc")
        loss = 0
        for x, t in zip(xs, ts):
            hc = cell(x, hc)
            h = hc if gru else hc[0]
            loss = loss + ((fc(h) - t) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["hc"] = hc.detach() if gru else (hc[0].detach(), hc[1].detach())

    return chunk


def _sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5


class NumpyLSTM:
    """The floor: an LSTM + linear head with a hand-written backward through time."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        h = HIDDEN
        scale = 1.0 / np.sqrt(h)
        self.p = {
            "Wx": rng.uniform(-scale, scale, (1, 4 * h)).astype(np.float32),
            "Wh": rng.uniform(-scale, scale, (h, 4 * h)).astype(np.float32),
            "b": np.zeros(4 * h, np.float32),
            "Wy": rng.uniform(-scale, scale, (h, 1)).astype(np.float32),
            "by": np.zeros(1, np.float32),
        }
        self.hc = None

    def loss_and_grads(self, xs, ts):
        """Sum over steps of the mean squared error, and the parameters' gradients."""
        p, H = self.p, HIDDEN
        steps, batch, _ = xs.shape
        h, c = self.hc or (np.zeros((batch, H), np.float32), np.zeros((batch, H), np.float32))
        ax = (xs.reshape(steps * batch, -1) @ p["Wx"] + p["b"]).reshape(steps, batch, -1)
        hs = np.empty((steps + 1, batch, H), np.float32)  # h before each step, and last
        cs = np.empty((steps + 1, batch, H), np.float32)
        gates = np.empty((steps, batch, 4 * H), np.float32)  # i, f, o, g after activation
        tcs = np.empty((steps, batch, H), np.float32)
        hs[0], cs[0] = h, c
        for s in range(steps):
            a = ax[s] + hs[s] @ p["Wh"]
            gates[s, :, : 3 * H] = _sigmoid(a[:, : 3 * H])
            gates[s, :, 3 * H :] = np.tanh(a[:, 3 * H :])
            i, f, o, g = np.split(gates[s], 4, axis=1)
            cs[s + 1] = f * cs[s] + i * g
            tcs[s] = np.tanh(cs[s + 1])
            hs[s + 1] = o * tcs[s]
        ys = (hs[1:].reshape(steps * batch, H) @ p["Wy"] + p["by"]).reshape(ts.shape)
        diff = ys - ts
        loss = float((diff**2).mean(axis=(1, 2)).sum())
        gys = diff * (2.0 / batch)  # d/dy sum_s mean_b (y - t)^2
        gys2 = gys.reshape(steps * batch, 1)
        grads = {"Wy": hs[1:].reshape(steps * batch, H).T @ gys2, "by": gys2.sum(axis=0)}
        gh_out = (gys2 @ p["Wy"].T).reshape(steps, batch, H)
        gas = np.empty_like(gates)
        gh = np.zeros((batch, H), np.float32)
        gc = np.zeros((batch, H), np.float32)
        WhT = np.ascontiguousarray(p["Wh"].T)
        for s in range(steps - 1, -1, -1):
            i, f, o, g = np.split(gates[s], 4, axis=1)
            gh = gh + gh_out[s]
            gc = gc + gh * o * (1.0 - tcs[s] * tcs[s])  # d/dc o tanh(c) = o (1 - tanh^2)
            gas[s, :, :H] = gc * g * i * (1.0 - i)  # through i = sigmoid(a_i)
            gas[s, :, H : 2 * H] = gc * cs[s] * f * (1.0 - f)
            gas[s, :, 2 * H : 3 * H] = gh * tcs[s] * o * (1.0 - o)
            gas[s, :, 3 * H :] = gc * i * (1.0 - g * g)  # through g = tanh(a_g)
            gc = gc * f
            gh = gas[s] @ WhT
        ga2 = gas.reshape(steps * batch, 4 * H)
        grads["Wh"] = hs[:-1].reshape(steps * batch, H).T @ ga2
        grads["Wx"] = xs.reshape(steps * batch, -1).T @ ga2
        grads["b"] = ga2.sum(axis=0)
        self.hc = (hs[-1].copy(), cs[-1].copy())  # carried, cut from the graph
        return loss, grads


class NumpyGRU:
    """The GRU floor (PyTorch's equations, gates r, z, n): a GRU + linear head with a
    hand-written backward through time."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        h = HIDDEN
        scale = 1.0 / np.sqrt(h)
        self.p = {
            "Wx": rng.uniform(-scale, scale, (1, 3 * h)).astype(np.float32),
            "Wh": rng.uniform(-scale, scale, (h, 3 * h)).astype(np.float32),
            "bx": np.zeros(3 * h, np.float32),
            "bh": np.zeros(3 * h, np.float32),
            "Wy": rng.uniform(-scale, scale, (h, 1)).astype(np.float32),
            "by": np.zeros(1, np.float32),
        }
        self.hc = None

    def loss_and_grads(self, xs, ts):
        """Sum over steps of the mean squared error, and the parameters' gradients."""
        p, H = self.p, HIDDEN
        steps, batch, _ = xs.shape
        h = self.hc if self.hc is not None else np.zeros((batch, H), np.float32)
        ax = (xs.reshape(steps * batch, -1) @ p["Wx"] + p["bx"]).reshape(steps, batch, -1)
        hs = np.empty((steps + 1, batch, H), np.float32)
        rz = np.empty((steps, batch, 2 * H), np.float32)
        ns = np.empty((steps, batch, H), np.float32)
        ahn = np.empty((steps, batch, H), np.float32)
        hs[0] = h
        for s in range(steps):
            ah = hs[s] @ p["Wh"] + p["bh"]
            rz[s] = _sigmoid(ax[s, :, : 2 * H] + ah[:, : 2 * H])
            ahn[s] = ah[:, 2 * H :]
            ns[s] = np.tanh(ax[s, :, 2 * H :] + rz[s, :, :H] * ahn[s])
            z = rz[s, :, H:]
            hs[s + 1] = (1.0 - z) * ns[s] + z * hs[s]
        ys = (hs[1:].reshape(steps * batch, H) @ p["Wy"] + p["by"]).reshape(ts.shape)
        diff = ys - ts
        loss = float((diff**2).mean(axis=(1, 2)).sum())
        gys = (diff * (2.0 / batch)).reshape(steps * batch, 1)
        grads = {"Wy": hs[1:].reshape(steps * batch, H).T @ gys, "by": gys.sum(axis=0)}
        gh_out = (gys @ p["Wy"].T).reshape(steps, batch, H)
        gax = np.empty((steps, batch, 3 * H), np.float32)
        gah = np.empty((steps, batch, 3 * H), np.float32)
        gh = np.zeros((batch, H), np.float32)
        WhT = np.ascontiguousarray(p["Wh"].T)
        for s in range(steps - 1, -1, -1):
            r, z, n = rz[s, :, :H], rz[s, :, H:], ns[s]
            gh = gh + gh_out[s]
            gn = gh * (1.0 - z) * (1.0 - n * n)  # through n = tanh(ax_n + r ah_n)
            gz = gh * (hs[s] - n) * z * (1.0 - z)
            gr = gn * ahn[s] * r * (1.0 - r)
            gax[s, :, :H] = gah[s, :, :H] = gr
            gax[s, :, H : 2 * H] = gah[s, :, H : 2 * H] = gz
            gax[s, :, 2 * H :] = gn
            gah[s, :, 2 * H :] = gn * r
            gh = gh * z + gah[s] @ WhT
        gax2, gah2 = gax.reshape(steps * batch, -1), gah.reshape(steps * batch, -1)
        grads["Wh"] = hs[:-1].reshape(steps * batch, H).T @ gah2
        grads["Wx"] = xs.reshape(steps * batch, -1).T @ gax2
        grads["bx"] = gax2.sum(axis=0)
        grads["bh"] = gah2.sum(axis=0)
        self.hc = hs[-1].copy()  # carried, cut from the graph
        return loss, grads


def _numpy(case: str):
    net = NumpyGRU() if cell_kind(case) == "GRU" else NumpyLSTM()

    def chunk(xs, ts):
        _, grads = net.loss_and_grads(xs, ts)
        for name, gp in grads.items():
            net.p[name] -= LR * gp

    return chunk


_IMPLS = {"zerograd": _zerograd, "torch": _torch, "torch-cell": _torch_cell, "numpy": _numpy}


def make_chunks(framework: str, case: str):
    """A callable training on the next 30-step chunk of the case's batches."""
    xs, ts = sine_batches(batch_size(case))
    chunk = _IMPLS[framework](case)
    state = {"s": 0}
    n_chunks = len(xs) // BPTT

    def next_chunk():
        s = (state["s"] % n_chunks) * BPTT
        state["s"] += 1
        chunk(xs[s : s + BPTT], ts[s : s + BPTT])

    return next_chunk


def run(framework: str, cases, quick: bool) -> dict:
    """Milliseconds per 30-step chunk (median over chunks)."""
    out = {}
    for case in cases:
        try:
            next_chunk = make_chunks(framework, case)
        except Skip as e:
            out[case] = e
            continue
        times = time_calls(next_chunk, 6 if quick else 25, warmup=2)
        out[case] = [Result("chunk", "ms", median(times) * 1e3)]
    return out


def zerograd_step(case: str = "batch 1"):
    """One zerograd chunk (for profiling.py)."""
    next_chunk = make_chunks("zerograd", case)
    next_chunk()
    return next_chunk
