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
CASES = ("mlp train peak", "graph 10k ops")
GROUPS = [["mlp train peak"], ["graph 10k ops"]]
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


def run(framework: str, cases, quick: bool) -> dict:
    out = {}
    for case in cases:
        try:
            if case == "mlp train peak":
                out[case] = _train_peak(framework, quick)
            else:
                out[case] = _graph(framework)
        except Skip as e:
            out[case] = e
    return out


def zerograd_step(case: str = "graph 10k ops"):
    """Building and dropping the 10,000-op graph in zerograd (for profiling.py)."""
    return lambda: _graph("zerograd")
