"""Workload 5: memory, in MiB of resident memory (RSS).

- ``mlp train peak``: while training the 784-1000-1000-10 MLP (workload 2) for a few
  steps, the rise of the process's peak RSS (``ru_maxrss``) over its value after imports
  and data loading ("peak rise": includes model, optimizer state, and whatever the
  framework allocates on first use, such as BLAS workspaces), and the peak over the RSS
  before a step once three steps have run ("step peak": what one step needs on top).
- ``graph 10k ops``: a chain of 10,000 elementwise operations on a 1,024-element
  float32 array with the graph recorded; RSS above the start while the graph is alive,
  after the result is dropped (with the garbage collector off, so only reference
  counting can free it), and after ``malloc_trim(0)`` asks glibc to return the free
  pages it caches. For zerograd also "live after drop": what tracemalloc (which sees
  every NumPy buffer and Python object) still finds allocated; 0 means the graph was
  freed by reference counting alone, and any RSS left is the allocators' retention;
  and "saved by graph": the arrays the graph's functions keep for their backward, as
  ``zerograd.debug.saved_memory`` counts them (each Function keeps what its ``saves``
  declares: here sin's input and tanh's output, 2 of every 5 arrays, as PyTorch).

- ``model graphs``: the live graph of a real model, with the loss computed and not yet
  backpropagated: the MLP of workload 2 (784-1000-1000-10, ReLU) on a batch of 1,000
  digits, and the LSTM chunk of workload 4 (LSTM(100) -> Linear(1), 30 steps, batch 32).
  RSS above the start while the loss is alive (after ``malloc_trim(0)``, so freed
  temporaries do not count) and, for zerograd, what the graph's functions saved for
  backward (``zerograd.debug.saved_memory``).

Each case runs in its own fresh process, because peak RSS only ever grows.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
from common import (
    Result,
    Skip,
    import_torch,
    load_mnist,
    malloc_trim,
    peak_rss_mib,
    require_zerograd,
    reset_peak_rss,
    rss_mib,
)

NAME = "memory"
FRAMEWORKS = ("zerograd", "torch", "numpy")
CASES = ("mlp train peak", "graph 10k ops", "model graphs")
GROUPS = [["mlp train peak"], ["graph 10k ops"], ["model graphs"]]
MAX_ROUNDS = 3  # memory figures hardly vary: fewer fresh processes

GRAPH_OPS = 10_000
GRAPH_SIZE = 1024


def _train_peak(framework: str, quick: bool) -> list[Result]:
    import mlp

    x, t = load_mnist()
    gc.collect()
    base_peak = peak_rss_mib()
    epoch, step = mlp.make_epoch(framework, "784-1000-1000-10", x, t)
    order = np.random.default_rng(0).permutation(len(x))
    if framework == "torch":
        torch = import_torch()
        x, t, order = torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(order)
    n_steps = 6 if quick else 20
    results = []
    for i in range(n_steps):
        if i == 3:  # after the first steps (lazy buffers, workspaces): one step's needs
            results.append(Result("peak rise", "MiB", peak_rss_mib() - base_peak))
            gc.collect()
            malloc_trim()  # so that the step has to fault in what it uses
            step_base = rss_mib() if reset_peak_rss() else None
        idx = order[i * mlp.BATCH : (i + 1) * mlp.BATCH]
        step(x[idx], t[idx])
    results[0].value = max(results[0].value, peak_rss_mib() - base_peak)
    if step_base is not None:
        results.append(Result("step peak", "MiB", peak_rss_mib() - step_base))
    return results


def _graph(framework: str) -> list[Result]:
    if framework == "numpy":
        raise Skip("no graph to build without a framework")
    if framework == "zerograd":
        Variable, sin, tanh = require_zerograd(
            "core.Variable", "functions.sin", "functions.tanh"
        )
        x = Variable(np.full(GRAPH_SIZE, 0.5, dtype=np.float32))
    else:
        torch = import_torch()
        sin, tanh = torch.sin, torch.tanh
        x = torch.full((GRAPH_SIZE,), 0.5, dtype=torch.float32, requires_grad=True)

    def build(n_ops):
        y = x
        for _ in range(n_ops // 5):
            y = -tanh(sin(y * 0.9 + 0.1))
        return y

    build(100)  # first-call allocations (caches, lazy imports) before the baseline
    gc.collect()
    malloc_trim()
    gc.disable()
    try:
        before = rss_mib()
        y = build(GRAPH_OPS)
        alive = rss_mib() - before
        del y
        after = rss_mib() - before
        # What glibc keeps cached is not a leak: trimmed, RSS shows what is still live.
        malloc_trim()
        trimmed = rss_mib() - before
    finally:
        gc.enable()
    results = [
        Result("graph alive", "MiB", alive),
        Result("after drop", "MiB", after),
        Result("after drop+trim", "MiB", trimmed),
    ]
    if framework == "zerograd":
        # RSS left after a trim is allocator retention (pymalloc arenas, fragmentation)
        # unless tracemalloc, which sees every NumPy buffer, still finds memory live.
        gc.disable()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            y = build(GRAPH_OPS)
            del y
            live = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
            gc.enable()
        results.append(Result("live after drop", "MiB", live / 2**20))
        try:
            (saved_memory,) = require_zerograd("debug.saved_memory")
        except Skip:
            return results
        y = build(GRAPH_OPS)
        results.append(Result("saved by graph", "MiB", saved_memory(y).nbytes / 2**20))
        del y
    return results


def _model_losses(framework: str):
    """{name: a function computing the model's loss (graph recorded)} for the framework."""
    import lstm
    import mlp

    x, t = load_mnist()
    x, t = x[:1000], t[:1000]
    xs, ts = lstm.sine_batches(32)
    xs, ts = xs[:lstm.BPTT], ts[:lstm.BPTT]
    if framework == "zerograd":
        (mean_squared_error, softmax_cross_entropy) = require_zerograd(
            "functions.mean_squared_error", "functions.softmax_cross_entropy")
        net = mlp.zerograd_model([1000, 1000, 10])
        rnn, _ = lstm._zerograd_model("LSTM")

        return {
            "MLP": lambda: softmax_cross_entropy(net(x), t),
            "LSTM chunk": lambda: mean_squared_error(rnn(xs), ts),
        }
    torch = import_torch()
    layers = []
    for n_in, n_out in ((784, 1000), (1000, 1000), (1000, 10)):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    rnn = torch.nn.LSTM(1, lstm.HIDDEN)
    fc = torch.nn.Linear(lstm.HIDDEN, 1)
    tx, tt = torch.from_numpy(x), torch.from_numpy(t).long()
    txs, tts = torch.from_numpy(xs), torch.from_numpy(ts)
    return {
        "MLP": lambda: torch.nn.functional.cross_entropy(net(tx), tt),
        "LSTM chunk": lambda: torch.nn.functional.mse_loss(fc(rnn(txs)[0]), tts),
    }


def _model_graphs(framework: str) -> list[Result]:
    if framework == "numpy":
        raise Skip("no graph to build without a framework")
    results = []
    for name, loss_of in _model_losses(framework).items():
        loss_of()  # first-call allocations (layer shapes, BLAS buffers) before the baseline
        gc.collect()
        malloc_trim()
        before = rss_mib()
        loss = loss_of()
        malloc_trim()  # freed temporaries of the forward do not count
        results.append(Result(f"{name} graph alive", "MiB", rss_mib() - before))
        if framework == "zerograd":
            (saved_memory,) = require_zerograd("debug.saved_memory")
            results.append(Result(f"{name} saved by graph", "MiB",
                                  saved_memory(loss).nbytes / 2**20))
        del loss
    return results


def run(framework: str, cases, quick: bool) -> dict:
    out = {}
    for case in cases:
        try:
            if case == "mlp train peak":
                out[case] = _train_peak(framework, quick)
            elif case == "model graphs":
                out[case] = _model_graphs(framework)
            else:
                out[case] = _graph(framework)
        except Skip as e:
            out[case] = e
    return out


def zerograd_step(case: str = "graph 10k ops"):
    """Building and dropping the 10,000-op graph in zerograd (for profiling.py)."""
    return lambda: _graph("zerograd")
