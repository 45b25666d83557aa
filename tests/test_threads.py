"""zerograd.threads: finding the BLAS and OpenMP libraries the process loaded, and
reading and setting their thread counts at run time.

What the library reports is checked against independent views: the count OpenBLAS
takes from OPENBLAS_NUM_THREADS at start-up (in a fresh process), and the count PyTorch
reports after its OpenMP runtime was set through this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from zerograd import threads


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in threads.THREAD_ENV_VARS}
    environ.update({k: v for k, v in env.items() if v is not None})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=environ)
    assert result.returncode == 0, result.stderr
    return result


def numpy_blas() -> str:
    """The BLAS NumPy was built against, as NumPy reports it ("" if unknown)."""
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"].lower()
    except Exception:
        return ""


CONTROLLABLE = any(api in numpy_blas() for api in ("openblas", "mkl", "blis", "flexiblas"))
needs_blas = pytest.mark.skipif(
    not CONTROLLABLE or not sys.platform.startswith("linux"),
    reason=f"NumPy's BLAS ({numpy_blas() or 'unknown'}) has no thread switch this module "
           "reaches on this platform",
)


@pytest.fixture
def restore_threads():
    """Put every library's thread count back after the test."""
    saved = [(lib, lib.num_threads) for lib in threads.libraries()]
    yield
    for lib, count in saved:
        lib.set_num_threads(count)


@needs_blas
def test_numpy_blas_is_found():
    found = [lib for lib in threads.libraries() if lib.numpy]
    assert len(found) == 1
    lib = found[0]
    assert lib.api in numpy_blas() and lib.kind == "blas"
    assert os.path.exists(lib.path)
    if lib.api == "openblas":
        assert lib.version.startswith("OpenBLAS")
        assert lib.threading in ("pthreads", "openmp", "sequential")
    entry = next(e for e in threads.info() if e["numpy"])
    assert entry["path"] == lib.path and entry["num_threads"] == lib.num_threads


@needs_blas
@pytest.mark.parametrize("count", [1, 2])
def test_the_count_read_is_the_one_set_at_start_up(count):
    # A fresh process whose OpenBLAS/MKL read the variable when NumPy loaded them (at
    # start-up they take no more threads than there are cores).
    variable = "MKL_NUM_THREADS" if "mkl" in numpy_blas() else "OPENBLAS_NUM_THREADS"
    code = "from zerograd import threads; print(threads.get_num_threads())"
    result = run_python(code, **{variable: str(count), "OMP_NUM_THREADS": str(count)})
    assert int(result.stdout) == min(count, threads.available_cores())


@needs_blas
def test_set_and_get(restore_threads):
    for count in (1, 2, 1):
        threads.set_num_threads(count)
        assert threads.get_num_threads() == count
        assert all(lib.num_threads == count for lib in threads.libraries())


@needs_blas
def test_blas_threads_restores_the_counts_even_after_an_error(restore_threads):
    threads.set_num_threads(2)
    with pytest.raises(KeyError):
        with threads.blas_threads(1):
            assert threads.get_num_threads() == 1
            with threads.blas_threads(3):  # nests
                assert threads.get_num_threads() == 3
            assert threads.get_num_threads() == 1
            raise KeyError("inside")
    assert threads.get_num_threads() == 2


def test_products_are_unchanged_by_the_thread_count():
    a = np.random.default_rng(0).standard_normal((300, 200))
    b = np.random.default_rng(1).standard_normal((200, 100))
    expected = a @ b
    with threads.blas_threads(1):
        np.testing.assert_allclose(a @ b, expected, rtol=1e-12, atol=1e-12)


def test_openmp_runtimes_are_set_too():
    # PyTorch runs its CPU kernels on its own OpenMP runtime and reports the count it
    # uses: an independent view of what set_num_threads did to that runtime.
    pytest.importorskip("torch")
    # zerograd.threads looks before PyTorch is imported: the libraries PyTorch brings
    # must still be found afterwards.
    code = (
        "import json; from zerograd import threads; threads.libraries(); import torch; "
        "omp = [lib for lib in threads.libraries() if lib.kind == 'openmp']; "
        "threads.set_num_threads(3, openmp=False); a = torch.get_num_threads(); "
        "threads.set_num_threads(3); b = torch.get_num_threads(); "
        "threads.set_num_threads(1); c = torch.get_num_threads(); "
        "print(json.dumps([len(omp), a, b, c]))"
    )
    found, unset, three, one = json.loads(run_python(code).stdout)
    if not found:
        pytest.skip("this PyTorch build does not load an OpenMP runtime")
    assert (three, one) == (3, 1)
    assert unset != 3 or os.cpu_count() == 3


@pytest.mark.parametrize("bad, error, message", [
    (0, ValueError, "must be at least 1, got 0"),
    (-2, ValueError, "must be at least 1, got -2"),
    (1.5, TypeError, "must be an int, got float"),
    ("2", TypeError, "must be an int, got str"),
    (True, TypeError, "must be an int, got bool"),
])
def test_bad_counts(bad, error, message):
    with pytest.raises(error, match=f"set_num_threads: the number of threads {message}"):
        threads.set_num_threads(bad)
    with pytest.raises(error, match=f"blas_threads: the number of threads {message}"):
        with threads.blas_threads(bad):
            pass


@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    ({"OMP_NUM_THREADS": ""}, None),
    ({"OMP_NUM_THREADS": "0"}, None),
    ({"OMP_NUM_THREADS": "many"}, None),
    ({"OMP_NUM_THREADS": "4"}, ("OMP_NUM_THREADS", 4)),
    ({"OMP_NUM_THREADS": " 4,2 "}, ("OMP_NUM_THREADS", 4)),
    ({"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "1"}, ("OPENBLAS_NUM_THREADS", 1)),
    ({"MKL_NUM_THREADS": "2"}, ("MKL_NUM_THREADS", 2)),
])
def test_env_threads(environ, expected):
    assert threads.env_threads(environ) == expected


def test_available_cores():
    assert 1 <= threads.available_cores() <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert threads.available_cores() == len(os.sched_getaffinity(0))


def test_nothing_is_loaded_twice():
    # Taking a handle must never load a library the process had not loaded.
    before = set(threads._loaded_paths())
    threads.libraries()
    assert set(threads._loaded_paths()) - before == set()


# =========================================================================================
# The load watcher
# =========================================================================================
@pytest.mark.parametrize("cores, others, ceiling, expected", [
    (2, 0.0, 2, 2),
    (2, 0.2, 2, 2),    # a core others take under a quarter of the time still counts
    (2, 0.3, 2, 1),
    (2, 1.0, 2, 1),
    (2, 2.0, 2, 1),    # never fewer than one
    (2, 7.5, 2, 1),
    (16, 3.2, 16, 13),  # 12.8 cores free: the 13th is 80% free
    (16, 0.0, 4, 4),   # never more than the ceiling
    (4, -0.1, 4, 4),   # a negative estimate (rounding) counts as none
])
def test_target_threads(cores, others, ceiling, expected):
    assert threads.target_threads(cores, others, ceiling) == expected


STAT = """cpu  900 0 300 5000 20 0 10 5 0 0
cpu0 400 0 100 2500 10 0 5 5 0 0
cpu1 500 0 200 2500 10 0 5 0 7 0
intr 12345 0 0
ctxt 999
"""


def test_busy_seconds_reads_the_cores_asked_for():
    hz = os.sysconf("SC_CLK_TCK")
    # busy = user + nice + system + irq + softirq + steal (guest is inside user)
    assert threads._busy_seconds(STAT, {0}) == ((400 + 100 + 5 + 5) / hz, 1)
    assert threads._busy_seconds(STAT, {0, 1}) == ((510 + 705) / hz, 2)
    assert threads._busy_seconds(STAT, {5}) is None


class FakeLibrary:
    def __init__(self):
        self.counts = []

    def set_num_threads(self, n):
        self.counts.append(n)


def fake_watch(busy_per_look, own_per_look, ceiling=2):
    """A watcher on 2 cores whose /proc/stat shows ``busy_per_look`` more busy seconds
    (over both cores) and whose process ``own_per_look`` more CPU seconds at each look,
    one second apart."""
    hz = os.sysconf("SC_CLK_TCK")
    state = {"t": 0.0, "busy": 0.0, "own": 0.0}

    def read_stat():
        ticks = int(round(state["busy"] * hz / 2))
        return f"cpu0 {ticks} 0 0 100 0 0 0 0\ncpu1 {ticks} 0 0 100 0 0 0 0\n"

    lib = FakeLibrary()
    watch = threads._LoadWatch([lib], ceiling, {0, 1}, read_stat=read_stat,
                               own_cpu=lambda: state["own"], clock=lambda: state["t"])

    def look():
        state["t"] += 1.0
        state["busy"] += busy_per_look
        state["own"] += own_per_look
        return watch.step()

    return watch, lib, look


def test_the_watcher_leaves_the_cores_others_use():
    watch, lib, look = fake_watch(busy_per_look=2.0, own_per_look=1.0)
    assert look() == 1  # the cores were busy 2 s in 1 s, 1 s of it this process's own
    assert watch.others == pytest.approx(1.0, abs=0.02)
    assert lib.counts == [1]
    assert look() == 1 and lib.counts == [1]  # set once, not at every look


def test_the_watcher_takes_the_cores_back_when_others_stop():
    watch, lib, look = fake_watch(busy_per_look=1.9, own_per_look=1.9)
    watch.threads = 1
    assert look() == 2  # all the busy time was this process's own (spinning included)
    assert watch.others == pytest.approx(0.0, abs=0.02)
    assert lib.counts == [2]


def test_the_watcher_leaves_blas_threads_blocks_alone(restore_threads):
    watch, lib, look = fake_watch(busy_per_look=2.0, own_per_look=0.0)
    with threads.blas_threads(1):
        look()
        assert lib.counts == []
    look()
    assert lib.counts == [1]


def _watcher_state(code: str = "", **env) -> dict:
    env.setdefault("ZEROGRAD_ADAPT_THREADS", None)
    script = ("import json, zerograd; from zerograd import threads; " + code +
              "print(json.dumps(threads.load_status()))")
    return json.loads(run_python(script, **env).stdout.splitlines()[-1])


can_adapt = pytest.mark.skipif(
    not CONTROLLABLE or not os.path.exists("/proc/stat") or threads.available_cores() < 2,
    reason="needs Linux, a controllable BLAS and at least 2 cores",
)


@needs_blas
@can_adapt
def test_import_starts_the_watcher_only_when_asked():
    # Off by default: OpenBLAS's products round differently on one thread and on two,
    # so a thread count that follows the machine's load would make reruns differ.
    assert not _watcher_state()["active"]
    assert not _watcher_state(ZEROGRAD_ADAPT_THREADS="0")["active"]
    state = _watcher_state(ZEROGRAD_ADAPT_THREADS="1")
    assert state["active"] and state["ceiling"] == threads.available_cores()
    assert 1 <= state["threads"] <= state["ceiling"]
    # Below a count fixed in the environment, that count is its ceiling.
    forced = _watcher_state(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2",
                            ZEROGRAD_ADAPT_THREADS="1")
    assert forced["active"] and forced["ceiling"] == 2


@needs_blas
@can_adapt
def test_an_explicit_count_stops_the_watcher():
    assert _watcher_state(ZEROGRAD_ADAPT_THREADS="1")["active"]
    state = _watcher_state("threads.set_num_threads(1); ", ZEROGRAD_ADAPT_THREADS="1")
    assert not state["active"] and state["threads"] == 1


@needs_blas
@can_adapt
def test_stopping_gives_back_the_count_it_started_with():
    state = _watcher_state(
        "threads._watch.apply(1); threads.adapt_to_load(False); ", ZEROGRAD_ADAPT_THREADS="1"
    )
    assert not state["active"] and state["threads"] == threads.available_cores()


@needs_blas
@can_adapt
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_watches_for_itself():
    code = (
        "import os; r, w = os.pipe(); pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.write(w, b'1' if threads.load_status()['active'] else b'0'); os._exit(0)\n"
        "os.waitpid(pid, 0); print(os.read(r, 1).decode())\n"
    )
    script = "import zerograd; from zerograd import threads\n" + code
    assert run_python(script, ZEROGRAD_ADAPT_THREADS="1").stdout.strip() == "1"
