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
