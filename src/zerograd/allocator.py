"""glibc allocator tuning: keep freed large blocks for reuse within the process.

NumPy takes each large array (a batch of activations, a gradient) from glibc's malloc,
which serves blocks above its mmap threshold with fresh ``mmap`` calls and gives freed
memory back to the operating system. A training step frees and reallocates the same
large arrays every time, so the next step page-faults all of them in again: half of a
NumPy CNN step in a fresh process. Raising the mmap and trim thresholds makes glibc keep
those blocks in its heap and reuse them (measured on a 2-core machine: CNN step 16.9 ms
to 10.1 ms, 2,736 to 0 page faults per step; the 784-1000-1000-10 MLP epoch 1.05 s to
0.69 s; see ``docs/performance.md``).

``import zerograd`` applies this once on Linux with glibc. Set the environment variable
``ZEROGRAD_TUNE_MALLOC=0`` to leave the allocator alone; glibc's own ``MALLOC_*``
environment variables, when set, are respected as they are.

Example:
    >>> from zerograd import allocator
    >>> isinstance(allocator.tune_malloc(), bool)
    True
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems; blocks above it
# still come from mmap. Freed heap memory above 1 GiB is still returned to the system.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024

_GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; return True if they were set.

    Does nothing (returns False) off Linux, without glibc (musl has no ``mallopt``),
    when ``ZEROGRAD_TUNE_MALLOC=0``, or when the user already tuned glibc through its
    environment variables.
    """
    if os.environ.get("ZEROGRAD_TUNE_MALLOC", "1") == "0":
        return False
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _GLIBC_VARIABLES):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
