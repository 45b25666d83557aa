import subprocess
import sys

from zerograd import allocator


def test_opt_out(monkeypatch):
    monkeypatch.setenv("ZEROGRAD_TUNE_MALLOC", "0")
    assert allocator.tune_malloc() is False


def test_glibc_variables_are_respected(monkeypatch):
    monkeypatch.delenv("ZEROGRAD_TUNE_MALLOC", raising=False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert allocator.tune_malloc() is False


def test_tunes_glibc_on_linux(monkeypatch):
    for name in ("ZEROGRAD_TUNE_MALLOC", *allocator._GLIBC_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    if not sys.platform.startswith("linux"):
        assert allocator.tune_malloc() is False
        return
    import platform

    expected = platform.libc_ver()[0] == "glibc"
    assert allocator.tune_malloc() is expected


def test_a_freed_large_block_is_reused_without_page_faults():
    # Allocate and free a 16 MiB array repeatedly; with the thresholds raised, glibc
    # keeps the block, so later rounds touch already-mapped pages.
    code = """
import resource, numpy as np, zerograd
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(2 * 2**20); del a
before = faults()
for _ in range(20):
    a = np.ones(2 * 2**20); del a
print(faults() - before)
"""
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    tuned = int(out.stdout)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "ZEROGRAD_TUNE_MALLOC": "0"}, check=True)
    untuned = int(out.stdout)
    if not sys.platform.startswith("linux"):
        return
    assert tuned < untuned / 10, (tuned, untuned)
