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


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def give_default_mode(fd: int) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open``
    would have given it (0666 less the umask), so that it keeps that mode when renamed
    into place."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~_UMASK)


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
        give_default_mode(fd)
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


class NotAnArchiveError(ValueError):
    """The file is a single NumPy array (``.npy``), not an ``.npz`` archive."""


def load_npz(path: str | os.PathLike) -> dict:
    """Read a whole ``.npz`` archive into a dict of arrays (no pickles are loaded).

    Raises:
        NotAnArchiveError: when the file holds a single array (``.npy``).
        OSError, ValueError, zipfile.BadZipFile: when it cannot be read (truncated,
            corrupt, not NumPy's format).
    """
    loaded = np.load(os.fspath(path), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise NotAnArchiveError(f"{os.fspath(path)!r} holds a single array, not an archive")
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def save_arrays(path: str | os.PathLike, arrays: dict) -> None:
    """Write ``arrays`` (name -> NumPy array) atomically to ``path``, in the format its
    suffix names. Every file of named arrays that zerograd writes goes through here.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_arrays(path, {"W": np.ones(2)})
        >>> load_arrays(path)
        {'W': array([1., 1.])}
    """
    atomic_savez(path, arrays)


def load_arrays(path: str | os.PathLike) -> dict:
    """Read a whole file written by :func:`save_arrays` into a dict of arrays.

    Raises:
        NotAnArchiveError: when the file holds a single array (``.npy``).
        OSError, ValueError, zipfile.BadZipFile: when it cannot be read.
    """
    return load_npz(path)
