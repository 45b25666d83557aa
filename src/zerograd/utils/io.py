"""Atomic file writes: a crash mid-save leaves any older file intact.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "arrays.npz")
    >>> atomic_savez(path, {"a": np.arange(3)})
    >>> with np.load(path) as f:
    ...     f["a"]
    array([0, 1, 2])
"""

from __future__ import annotations

import os
import tempfile

import numpy as np


def atomic_savez(path: str | os.PathLike, arrays: dict) -> None:
    """Write ``arrays`` (name -> NumPy array) to exactly ``path`` as an ``.npz``.

    The archive goes to a temporary file in the same directory, is flushed to disk,
    and then renamed over ``path``; the directory entry is synced too where the
    platform allows it.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: NumPy adds no ".npz" suffix
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; not possible on Windows)
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
