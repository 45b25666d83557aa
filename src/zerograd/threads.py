"""How many threads the BLAS library behind NumPy (and any OpenMP runtime) may use.

NumPy hands matrix products to a BLAS library (OpenBLAS in NumPy's wheels; MKL, BLIS or
FlexiBLAS in some distributions), which runs them on a pool of threads sized, by
default, to the machine's cores. When several processes share a machine (MPI ranks,
test workers, a benchmark beside other jobs), each starts that many threads and they
fight over the cores: a product can become ten times slower than on one thread.

This module finds the libraries the process has actually loaded, in its memory map
(``/proc/self/maps`` on Linux, the dynamic loader's image list on macOS), and calls
their own functions through ``ctypes`` to read and set their thread counts at run
time: no dependency, and no need to set ``OPENBLAS_NUM_THREADS`` before Python starts.
(threadpoolctl does the same in general; zerograd does not depend on it.)

- :func:`get_num_threads` / :func:`set_num_threads`: NumPy's BLAS (and, when setting,
  every BLAS and OpenMP runtime loaded).
- :func:`blas_threads`: a context manager that sets a count and restores the previous
  ones on exit.
- :func:`libraries` / :func:`info`: what was found (API, path, version, threads).
- :func:`env_threads`: the count the user asked for through the environment
  (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ...), if any.
- :func:`adapt_to_load`: follow the machine's load, using fewer BLAS threads while other
  processes keep the cores busy (off unless asked for; see below).

Sharing the machine. A multi-threaded matrix product returns only when its last thread
is done, and OpenBLAS's threads wait for work by spinning (for about 0.1 s after each
product). On a machine whose cores other processes keep busy, a product's second
thread often waits a whole scheduler time slice for a core, and its spinning steals
the cores from everyone: measured on 2 cores with 2 busy processes and other jobs
beside it, a 30x100 @ 100x400 float32 product took 35-44 us (median and mean alike)
on one thread, and a mean of 14-16 ms over 300 products on two (most stay fast; some
wait whole time slices); the book's LSTM (step 60) went from 1.8 s to 80 s. One thread
per product is immune. So, on Linux, zerograd offers a load watcher: a thread that
reads the machine's CPU accounting (``/proc/stat``) every 0.3 s, subtracts this
process's own CPU time, and gives NumPy's BLAS the cores the other processes leave free
(:func:`target_threads`), never more than it started with: all of them on an idle
machine, one while the machine is busy. It costs a file read every 0.3 s. It only
drives OpenBLAS on its own pthreads pool (NumPy's wheels), the one library whose count
can safely change under a running product (see ``_adaptable_libraries``).

It is off unless asked for (``ZEROGRAD_ADAPT_THREADS=1`` before ``import zerograd``, or
:func:`adapt_to_load`), because it costs reproducibility: OpenBLAS's float32 products
do not round the same on one thread and on two (a 6272x144 @ 144x32 product differs
in its last bits), so a run whose thread count follows the machine's load no longer
gives the same numbers as the same run on an idle machine. Measured: a CNN trained
for 10,000 steps ended 0.005 away from the same run started when the machine was
busier. Use it where throughput on a shared machine matters more than bit-identical
reruns. ``ZEROGRAD_ADAPT_THREADS=1`` also starts it when a count is fixed in the
environment (the count is then the most it uses); from the first call to
:func:`set_num_threads` on it stops (an explicit count wins), and :func:`blas_threads`
pauses it for its block.

The counts are per process, not per thread: change them from the main thread, not
while another thread is in the middle of a product. On a platform where no library is
found (Windows; Apple's Accelerate, which has no such switch) the getters return
None and setting does nothing.

Example:
    >>> import numpy as np
    >>> from zerograd import threads
    >>> with threads.blas_threads(1):
    ...     _ = np.ones((200, 200)) @ np.ones((200, 200))  # on one thread
    ...     threads.get_num_threads() in (1, None)
    True
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = [
    "ThreadLibrary",
    "libraries",
    "info",
    "get_num_threads",
    "set_num_threads",
    "blas_threads",
    "env_threads",
    "available_cores",
    "adapt_to_load",
    "load_status",
    "target_threads",
    "THREAD_ENV_VARS",
    "ADAPT_ENV",
]

# Environment variables through which a user fixes thread counts before start-up, in
# the order they are consulted (OpenBLAS reads the first three, MKL the fourth, BLIS
# the fifth; OpenMP runtimes read OMP_NUM_THREADS).
THREAD_ENV_VARS = (
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


# =========================================================================================
# What each kind of library looks like
# =========================================================================================
@dataclass(frozen=True)
class _Api:
    name: str  # "openblas", "mkl", ...
    kind: str  # "blas" or "openmp"
    file_prefixes: tuple  # library file names start with one of these
    get: tuple  # candidate names of "int get(void)"
    set: tuple  # candidate names of "void set(int)"
    version: tuple = ()  # candidate names of "const char *config(void)"
    parallel: tuple = ()  # candidate names of "int get_parallel(void)" (OpenBLAS)


def _openblas_names(base: str) -> tuple:
    # OpenBLAS built with a 64-bit integer interface renames its symbols: NumPy 2's
    # wheels ship scipy-openblas, whose functions read ``scipy_openblas_<name>64_``;
    # older wheels used ``openblas_<name>64_``.
    return tuple(f"{prefix}openblas_{base}{suffix}"
                 for prefix in ("", "scipy_") for suffix in ("", "64_", "_64"))


_APIS = (
    _Api("openblas", "blas", ("libopenblas", "libscipy_openblas"),
         _openblas_names("get_num_threads"), _openblas_names("set_num_threads"),
         _openblas_names("get_config"), _openblas_names("get_parallel")),
    _Api("mkl", "blas", ("libmkl_rt",), ("MKL_Get_Max_Threads",), ("MKL_Set_Num_Threads",)),
    _Api("blis", "blas", ("libblis",), ("bli_thread_get_num_threads",),
         ("bli_thread_set_num_threads",)),
    _Api("flexiblas", "blas", ("libflexiblas",), ("flexiblas_get_num_threads",),
         ("flexiblas_set_num_threads",)),
    _Api("openmp", "openmp", ("libgomp", "libiomp", "libomp"), ("omp_get_max_threads",),
         ("omp_set_num_threads",)),
)

_OPENBLAS_PARALLEL = {0: "sequential", 1: "pthreads", 2: "openmp"}

# The switch for the load watcher at import: "1" starts it (also below a thread count
# fixed through THREAD_ENV_VARS); unset or anything else leaves it off.
ADAPT_ENV = "ZEROGRAD_ADAPT_THREADS"


@dataclass
class ThreadLibrary:
    """One loaded library whose thread count can be read and set.

    Attributes:
        api: ``"openblas"``, ``"mkl"``, ``"blis"``, ``"flexiblas"`` or ``"openmp"``.
        kind: ``"blas"`` or ``"openmp"``.
        path: the file the process loaded.
        version: the library's own description of itself (OpenBLAS), or None.
        threading: how OpenBLAS runs its threads (``"pthreads"``, ``"openmp"``,
            ``"sequential"``), or None.
        numpy: whether this is the BLAS that NumPy calls.
    """

    api: str
    kind: str
    path: str
    version: str | None = None
    threading: str | None = None
    numpy: bool = False
    _get: object = field(default=None, repr=False)
    _set: object = field(default=None, repr=False)

    @property
    def num_threads(self) -> int:
        """The number of threads the library uses now."""
        return int(self._get())

    def set_num_threads(self, n: int) -> None:
        """Let the library use ``n`` threads from now on."""
        self._set(ctypes.c_int(_check_count(n, f"{self.api}.set_num_threads")))


# =========================================================================================
# Finding the loaded libraries
# =========================================================================================
def _loaded_paths() -> list[str]:
    """The files of every shared library mapped into this process, in load order."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps") as maps:
                text = maps.read()
        except OSError:
            return []
        # A line ends with the mapped file's path, if any (nothing before it holds a
        # "/"); keep each shared object once, in load order.
        paths = (line[line.find("/"):] for line in text.splitlines() if "/" in line)
        return list(dict.fromkeys(path for path in paths if ".so" in path))
    if sys.platform == "darwin":
        # The dynamic loader's list of images (the same list `vmmap` shows).
        libc = ctypes.CDLL(None)
        libc._dyld_image_count.restype = ctypes.c_uint32
        libc._dyld_get_image_name.restype = ctypes.c_char_p
        libc._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        names = (libc._dyld_get_image_name(i) for i in range(libc._dyld_image_count()))
        return [name.decode() for name in names if name]
    return []  # Windows and others: not supported (the getters return None)


def _api_of(path: str) -> _Api | None:
    name = os.path.basename(path)
    for api in _APIS:
        if name.startswith(api.file_prefixes):
            return api
    return None


def _symbol(lib, names: tuple):
    for name in names:
        func = getattr(lib, name, None)
        if func is not None:
            return func
    return None


def _numpy_blas_name() -> str:
    """The name of the BLAS NumPy was built against (e.g. "scipy-openblas"), or ""."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        return str(config["Build Dependencies"]["blas"]["name"]).lower()
    except Exception:  # NumPy older than 1.25, or a build without that information
        return ""


# path -> ThreadLibrary (or None for a file that turned out not to be usable), so that
# each library is opened once however often the memory map is read.
_cache: dict[str, ThreadLibrary | None] = {}


def _open(path: str, api: _Api) -> ThreadLibrary | None:
    try:
        # RTLD_NOLOAD: only take a handle on a library that is already loaded, never
        # load a second copy of one.
        mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 0)
        lib = ctypes.CDLL(path, mode=mode)
    except OSError:
        return None
    get, set_ = _symbol(lib, api.get), _symbol(lib, api.set)
    if get is None or set_ is None:
        return None  # e.g. an MKL component library other than mkl_rt
    get.restype, get.argtypes = ctypes.c_int, []
    set_.restype, set_.argtypes = None, [ctypes.c_int]
    version = threading = None
    config = _symbol(lib, api.version)
    if config is not None:
        config.restype, config.argtypes = ctypes.c_char_p, []
        raw = config()
        version = raw.decode(errors="replace").strip() if raw else None
    parallel = _symbol(lib, api.parallel)
    if parallel is not None:
        parallel.restype, parallel.argtypes = ctypes.c_int, []
        threading = _OPENBLAS_PARALLEL.get(parallel())
    return ThreadLibrary(api.name, api.kind, path, version, threading, False, get, set_)


# (len(sys.modules) when the memory map was last read, what was found then)
_found: tuple[int, list[ThreadLibrary]] | None = None


def libraries(refresh: bool = False) -> list[ThreadLibrary]:
    """Every BLAS and OpenMP library loaded in this process whose thread count can be
    controlled, NumPy's BLAS marked ``numpy=True``.

    Reading the memory map takes milliseconds, so its result is kept until a module is
    imported (which is how a package brings its own libraries: PyTorch its OpenMP
    runtime, for instance) or ``refresh`` is asked for (after loading a library with
    ``ctypes`` yourself). Setting counts through the result costs microseconds.

    Example:
        >>> sum(lib.numpy for lib in libraries()) <= 1  # at most one is NumPy's
        True
    """
    global _found
    import numpy  # noqa: F401  (NumPy loads its BLAS on import)

    if refresh or _found is None or _found[0] != len(sys.modules):
        _found = (len(sys.modules), _scan())
    return list(_found[1])


def _scan() -> list[ThreadLibrary]:
    found = []
    for path in _loaded_paths():
        api = _api_of(path)
        if api is None:
            continue
        if path not in _cache:
            _cache[path] = _open(path, api)
        if _cache[path] is not None:
            found.append(_cache[path])
    blas = [lib for lib in found if lib.kind == "blas"]
    for lib in blas:
        lib.numpy = False
    if blas:
        _numpy_blas(blas).numpy = True
    return found


def _numpy_blas(blas: list[ThreadLibrary]) -> ThreadLibrary:
    """Of the BLAS libraries loaded, the one NumPy calls: of the API NumPy was built
    against, preferring a copy shipped inside NumPy's own wheel."""
    built = _numpy_blas_name()
    same_api = [lib for lib in blas if lib.api in built] or blas
    inside_numpy = [lib for lib in same_api if "numpy" in lib.path.lower()]
    return (inside_numpy or same_api)[0]


def info() -> list[dict]:
    """What :func:`libraries` found, as plain dicts (for printing and logs).

    Example:
        >>> all(entry["num_threads"] >= 1 for entry in info())
        True
    """
    return [
        {"api": lib.api, "kind": lib.kind, "path": lib.path, "version": lib.version,
         "threading": lib.threading, "numpy": lib.numpy, "num_threads": lib.num_threads}
        for lib in libraries()
    ]


# =========================================================================================
# Reading and setting
# =========================================================================================
def _check_count(n, where: str) -> int:
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{where}: the number of threads must be an int, got "
                        f"{type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"{where}: the number of threads must be at least 1, got {n}")
    return n


def get_num_threads() -> int | None:
    """The number of threads NumPy's BLAS uses now, or None when no controllable BLAS
    is loaded (Apple's Accelerate, an unknown library, Windows).

    Example:
        >>> n = get_num_threads()
        >>> n is None or n >= 1
        True
    """
    for lib in libraries():
        if lib.numpy:
            return lib.num_threads
    return None


def set_num_threads(n: int, *, openmp: bool = True) -> None:
    """Let every loaded BLAS library (and, with ``openmp``, every OpenMP runtime) use
    ``n`` threads from now on.

    OpenMP runtimes matter when the BLAS itself runs on OpenMP, and for other
    libraries in the process that do (PyTorch's CPU kernels, for one). An OpenMP
    runtime's count is set for the calling thread: call this from the main thread.

    Raises:
        TypeError: when ``n`` is not an int.
        ValueError: when ``n`` is less than 1.

    Example:
        >>> before = get_num_threads()
        >>> set_num_threads(1)
        >>> get_num_threads() in (1, None)
        True
        >>> if before is not None:
        ...     set_num_threads(before)
    """
    n = _check_count(n, "set_num_threads")
    adapt_to_load(False)  # an explicit count wins over the load watcher
    for lib in libraries():
        if lib.kind == "blas" or openmp:
            lib.set_num_threads(n)


@contextmanager
def blas_threads(n: int, *, openmp: bool = True) -> Iterator[None]:
    """Within the ``with`` block, every BLAS (and OpenMP) library uses ``n`` threads;
    on exit each gets back the count it had, also when the block raises.

    Useful around many small matrix products on a shared machine, where extra threads
    cost more in waiting than they save. The setting is process-wide: it also holds
    for other threads while the block runs.

    Raises:
        TypeError, ValueError: as :func:`set_num_threads`.

    Example:
        >>> before = get_num_threads()
        >>> with blas_threads(1):
        ...     get_num_threads() in (1, None)
        True
        >>> get_num_threads() == before
        True
    """
    global _paused
    n = _check_count(n, "blas_threads")
    with _watch_lock:
        _paused += 1  # the load watcher leaves the counts alone until the block ends
        saved = [(lib, lib.num_threads) for lib in libraries()
                 if lib.kind == "blas" or openmp]
        for lib, _ in saved:
            lib.set_num_threads(n)
    try:
        yield
    finally:
        with _watch_lock:
            for lib, count in saved:
                lib.set_num_threads(count)
            _paused -= 1


def env_threads(environ=None) -> tuple[str, int] | None:
    """The thread count the user fixed in the environment, as ``(variable, count)``,
    from the first of :data:`THREAD_ENV_VARS` set to a positive int; None if none is.

    Args:
        environ: the mapping to read (``os.environ`` by default).

    Example:
        >>> env_threads({"OMP_NUM_THREADS": "4,2", "PATH": "/bin"})
        ('OMP_NUM_THREADS', 4)
        >>> env_threads({}) is None
        True
    """
    environ = os.environ if environ is None else environ
    for name in THREAD_ENV_VARS:
        value = str(environ.get(name, "")).strip()
        # OMP_NUM_THREADS may be a list ("4,2" for nested levels): the first counts.
        first = value.split(",")[0].strip()
        if first.isdigit() and int(first) >= 1:
            return name, int(first)
    return None


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform
    has one, which respects ``taskset`` and container cpusets), at least 1.

    Example:
        >>> available_cores() >= 1
        True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


# =========================================================================================
# Sharing the machine: fewer BLAS threads while other processes keep the cores busy
# =========================================================================================
# A thread is worth starting on a core only if others leave at least this much of it.
CORE_FREE = 0.75
WATCH_INTERVAL = 0.3  # seconds between two looks at the machine's CPU accounting


def target_threads(cores: float, others: float, ceiling: int) -> int:
    """How many threads a product should use when other processes keep ``others`` of
    the ``cores`` busy: one per core that they leave at least 3/4 free, at least 1 and
    at most ``ceiling``.

    Each thread of a product has to finish before the product returns, so a thread that
    waits for its core holds up all the others: a core others take a quarter of the
    time is not worth a thread.

    Example:
        >>> target_threads(2, 0.1, 2), target_threads(2, 0.5, 2), target_threads(2, 2.0, 2)
        (2, 1, 1)
        >>> target_threads(16, 3.2, 8)
        8
    """
    free = cores - max(0.0, others)
    return max(1, min(int(ceiling), math.floor(free + 1 - CORE_FREE)))


def _busy_seconds(stat: str, cpus) -> tuple[float, int] | None:
    """CPU seconds spent busy (not idle nor waiting for I/O) by ``cpus`` since boot, from
    the text of ``/proc/stat``, and how many of them it found; None if it has none."""
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy, found = 0, 0
    for line in stat.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        if int(name[3:]) not in cpus:
            continue
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        ticks += [0] * (8 - len(ticks))
        busy += sum(ticks) - ticks[3] - ticks[4]  # guest time is inside user already
        found += 1
    return (busy / hz, found) if found else None


def _read_stat() -> str:
    with open("/proc/stat") as f:
        return f.read()


class _LoadWatch:
    """Samples what other processes take of this process's cores and sets the BLAS
    thread count to match; ``step`` is one look (the thread calls it periodically)."""

    def __init__(self, libs: list, ceiling: int, cpus: set,
                 read_stat: Callable[[], str] = _read_stat,
                 own_cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic):
        self.libs, self.ceiling, self.cpus = libs, ceiling, cpus
        self.read_stat, self.own_cpu, self.clock = read_stat, own_cpu, clock
        self.others: float | None = None
        self.threads = ceiling
        self.stop = threading.Event()
        self._last = self._now()

    def _now(self):
        busy = _busy_seconds(self.read_stat(), self.cpus)
        return None if busy is None else (self.clock(), busy[0], self.own_cpu())

    def step(self) -> int:
        """Look at the machine again; return the thread count now in effect."""
        now = self._now()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return self.threads
        wall = now[0] - last[0]
        # Busy time of the cores minus this process's own CPU time (its BLAS threads
        # spinning included) is what the others took.
        self.others = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / wall
        self.apply(target_threads(len(self.cpus), self.others, self.ceiling))
        return self.threads

    def apply(self, n: int) -> None:
        with _watch_lock:
            if _paused or n == self.threads:
                return
            for lib in self.libs:
                lib.set_num_threads(n)
            self.threads = n

    def run(self) -> None:
        while not self.stop.wait(WATCH_INTERVAL):
            try:
                self.step()
            except Exception:  # a transient read error must not end the process's BLAS
                continue


_watch_lock = threading.RLock()
_paused = 0  # how many blas_threads blocks are open
_watch: _LoadWatch | None = None


def _adaptable_libraries() -> list:
    """The BLAS libraries whose count the watcher thread may change while another
    thread runs a product: OpenBLAS on its own pthreads pool only.

    There, lowering the count, or raising it back up to the threads already started,
    only writes the number the next product reads (the watcher never goes above the
    count it started with, so no thread is created). OpenMP-threaded OpenBLAS frees
    the per-thread buffers above a lowered count, which a running product may still
    use, and takes each calling thread's own OpenMP count anyway; MKL, BLIS and
    FlexiBLAS make no such promise that we have read, so they are left alone (their
    counts can still be set explicitly from the main thread)."""
    return [lib for lib in libraries()
            if lib.api == "openblas" and lib.threading == "pthreads"]


def adapt_to_load(enabled: bool = True) -> bool:
    """Start (or stop) the load watcher: NumPy's BLAS gets the cores that other
    processes leave free, re-read every 0.3 s, never more threads than it has now.

    Stopping it gives the BLAS back the count it had when the watcher started. Returns
    whether the watcher runs. It cannot run off Linux (no ``/proc/stat``), without a
    controllable BLAS, or when that BLAS has a single thread to begin with.

    Example:
        >>> was = load_status()["active"]
        >>> adapt_to_load(False)
        False
        >>> _ = adapt_to_load(was)
    """
    global _watch
    with _watch_lock:
        if not enabled:
            if _watch is not None:
                _watch.stop.set()
                _watch.apply(_watch.ceiling)
                _watch = None
            return False
        if _watch is not None:
            return True
        return _start_watch()


def _start_watch(ceiling: int | None = None) -> bool:
    """Start the watcher thread (the lock held); ``ceiling`` defaults to the count that
    NumPy's BLAS has now."""
    global _watch
    if not os.path.exists("/proc/stat"):
        return False
    libs = _adaptable_libraries()
    numpy_libs = [lib for lib in libs if lib.numpy]
    if not numpy_libs:
        return False
    threads_now = numpy_libs[0].num_threads
    ceiling = threads_now if ceiling is None else ceiling
    if ceiling <= 1:
        return False
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = set(range(os.cpu_count() or 1))
    watch = _LoadWatch(libs, ceiling, cpus)
    if watch._last is None:
        return False
    watch.threads = threads_now
    # Until the first look, go by the load average (which other processes make: this
    # one has hardly run yet).
    watch.apply(target_threads(len(cpus), os.getloadavg()[0], ceiling))
    threading.Thread(target=watch.run, name="zerograd-load-watch", daemon=True).start()
    _watch = watch
    return True


def load_status() -> dict:
    """What the load watcher sees and does: ``active``, the BLAS ``threads`` it set, the
    ``ceiling`` it never exceeds, and the cores ``others`` kept busy at its last look.

    Example:
        >>> sorted(load_status())
        ['active', 'ceiling', 'others', 'threads']
    """
    watch = _watch
    if watch is None:
        return {"active": False, "threads": get_num_threads(), "ceiling": None,
                "others": None}
    return {"active": True, "threads": watch.threads, "ceiling": watch.ceiling,
            "others": watch.others}


def _start_at_import() -> bool:
    """What ``import zerograd`` calls: start the watcher when ``ZEROGRAD_ADAPT_THREADS=1``
    (off by default: it makes results depend on the machine's load, see above)."""
    if os.environ.get(ADAPT_ENV, "").strip() != "1":
        return False
    try:
        return adapt_to_load(True)
    except Exception:  # never let an optimisation stop the import
        return False


def _restart_after_fork() -> None:
    # A forked child has no watcher thread (and a lock the parent's thread may have
    # held): start afresh, with a watcher of its own if the parent had one.
    global _watch, _watch_lock, _paused
    parent = _watch
    _watch, _watch_lock, _paused = None, threading.RLock(), 0
    if parent is not None:
        with _watch_lock:
            _start_watch(parent.ceiling)


def _stop_at_exit() -> None:
    watch = _watch
    if watch is not None:
        watch.stop.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)
atexit.register(_stop_at_exit)
