"""Helpers shared by the benchmark workloads: timing, memory, data, and skipping.

Every workload module (``overhead``, ``mlp``, ``cnn``, ``lstm``, ``memory``) defines:

- ``NAME``: the name ``run.py --only`` selects it by;
- ``FRAMEWORKS``: the frameworks it measures (``zerograd``, ``torch``, ``numpy``, and
  extra variants such as ``torch-cell``);
- ``GROUPS``: lists of case names; each group runs in one fresh subprocess;
- ``run(framework, cases, quick)``: measures the cases in this process and returns
  ``{case: [Result, ...]}`` (a case that cannot run raises :class:`Skip`);
- ``zerograd_step(case)``: a zero-argument callable doing one unit of the zerograd
  work (what ``profiling.py`` profiles).

The ``numpy`` framework is the floor: the same matrix products and elementwise work,
forward and backward written out by hand, with no framework around them.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MNIST_FILE = REPO / "src" / "zerograd" / "data" / "mnist_5k.npz"


class Skip(Exception):
    """A case cannot run yet (a zerograd module it needs does not exist)."""


@dataclass
class Result:
    """One measured figure of one case: ``value`` in ``unit`` (lower is better)."""

    metric: str
    unit: str
    value: float

    def as_dict(self) -> dict:
        return asdict(self)


# ---- timing ----------------------------------------------------------------------------
def clock() -> Callable[[], float]:
    """The clock ``run.py --clock`` chose: wall time, or this process's CPU time.

    CPU time (user + system, all threads) ignores the time other processes take the
    cores away, so with one thread it is the figure to trust on a shared, busy machine;
    with several threads it also counts threads spinning while they wait.
    """
    return time.process_time if os.environ.get("ZG_BENCH_CLOCK") == "cpu" else time.perf_counter


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times; seconds per call."""
    now = clock()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = now()
        fn()
        times.append(now() - t0)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---- memory ----------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    """Resident memory of this process now, in MiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Restart the peak-RSS count from the current RSS (Linux 4.0+); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def malloc_trim() -> bool:
    """Ask glibc to hand every free page back to the OS; False where that is not glibc."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


# ---- zerograd availability -------------------------------------------------------------
def require_zerograd(*names: str):
    """Import ``zerograd.<module>`` attributes by ``"module.Name"``; Skip if missing.

    Returns the imported objects in order, so a workload written against the SPEC's
    names reports "not available yet" instead of failing while a module is unwritten.
    """
    import importlib

    found = []
    for name in names:
        module_name, _, attr = name.rpartition(".")
        try:
            module = importlib.import_module(f"zerograd.{module_name}")
            found.append(getattr(module, attr))
        except (ImportError, AttributeError) as e:
            raise Skip(f"zerograd.{name} not available yet ({type(e).__name__})") from None
    return found


def import_torch(threads: int | None = None):
    """Import torch with its intra-op thread count set like the BLAS's (``--threads``)."""
    try:
        import torch
    except ImportError:
        raise Skip("torch is not installed") from None
    n = threads or int(os.environ.get("ZG_BENCH_THREADS", "0") or 0)
    if n > 0:
        torch.set_num_threads(n)
    return torch


# ---- data ------------------------------------------------------------------------------
_DATA_SOURCE: str | None = None


def data_source() -> str | None:
    """Where :func:`load_mnist` took the digits from, once it has been called."""
    return _DATA_SOURCE


def _pick(keys, get):
    """(images, labels) from a mapping whose keys start like x/images and t/labels."""
    xkey = next(k for k in keys if k.startswith(("x", "X", "image", "data")))
    tkey = next(k for k in keys if k.startswith(("t", "y", "label")))
    return get(xkey), get(tkey)


def _unpack_mnist(obj):
    """Find (images, labels) in what ``load_mnist_subset`` returned, whatever its form."""
    if hasattr(obj, "data") and hasattr(obj, "label"):  # a Dataset, as DeZero's
        return obj.data, obj.label
    if hasattr(obj, "files"):  # an NpzFile
        return _pick(list(obj.files), obj.__getitem__)
    if isinstance(obj, dict):
        return _pick(list(obj), obj.__getitem__)
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        a, b = obj
        if isinstance(a, (tuple, list)):  # ((x_train, t_train), (x_test, t_test))
            return a
        return a, b
    raise TypeError(f"cannot read images and labels from {type(obj).__name__}")


def load_mnist(n: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """The bundled 5k MNIST digits as float32 ``(N, 784)`` in [0, 1] and int64 labels.

    Uses ``zerograd.datasets.load_mnist_subset()`` when it exists, else the bundled file
    read directly, else random data of the same shape (and says so in
    :func:`data_source`, which the runner prints).
    """
    global _DATA_SOURCE
    x = t = None
    try:
        from zerograd.datasets import load_mnist_subset

        x, t = _unpack_mnist(load_mnist_subset())
        _DATA_SOURCE = "MNIST 5k subset via zerograd.datasets.load_mnist_subset()"
    except Exception:
        if MNIST_FILE.exists():
            with np.load(MNIST_FILE) as f:
                x, t = _unpack_mnist(f)
            _DATA_SOURCE = f"MNIST 5k subset read from {MNIST_FILE.relative_to(REPO)}"
    if x is None:
        rng = np.random.default_rng(0)
        x = rng.random((n, 784), dtype=np.float32)
        t = rng.integers(0, 10, n)
        _DATA_SOURCE = "RANDOM data of MNIST's shape (the bundled MNIST subset is missing)"
    x = np.asarray(x).reshape(len(x), -1)[:n].astype(np.float32)
    if x.max() > 1.5:
        x /= 255.0
    t = np.asarray(t).reshape(-1)[:n].astype(np.int64)
    return np.ascontiguousarray(x), t


# ---- the numpy floor's shared pieces ---------------------------------------------------
def softmax_cross_entropy_np(y: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross entropy of logits ``y`` (N, K) and labels ``t``, and its gradient."""
    n = y.shape[0]
    z = y - y.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    logp = z[np.arange(n), t] - np.log(s[:, 0])
    p = e / s
    p[np.arange(n), t] -= 1.0
    p *= 1.0 / n  # d/dy mean CE = (softmax(y) - onehot(t)) / N
    return -float(logp.mean()), p


def init_weight(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """A float32 ``(n_in, n_out)`` weight scaled like LeCun's initialisation."""
    return (rng.standard_normal((n_in, n_out)) * np.sqrt(1.0 / n_in)).astype(np.float32)
