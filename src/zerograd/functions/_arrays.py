"""Conventions shared by the functions' array code (forwards and gradient formulas).

- dtypes: NumPy 1.x turns a 0-d float32 array combined with a Python float into a float64
  scalar (NumPy 2 does not); :func:`as_dtype` undoes that where a formula mixes arrays
  with numbers. Integer and boolean inputs to a function with real-valued results give
  float64, as NumPy's ufuncs do (:func:`as_float`).
- checks that read values back from the device (label ranges, embedding ids, probability
  ranges): a NumPy array is already on the host, so they always run there; on a GPU each
  one would stop the queue of kernels until the values arrive, so they run there only
  under :func:`zerograd.debug.detect_anomaly` (:func:`checks_values`).
"""

from __future__ import annotations

import numpy as np

from zerograd.config import detect_anomaly_var

_ndarray = np.ndarray


def as_dtype(y, dtype):
    """``y`` as an array of ``dtype`` (a no-op unless NumPy 1.x promoted a 0-d array, or
    ``y`` is a NumPy scalar)."""
    if type(y) is _ndarray and y.dtype == dtype:
        return y
    if isinstance(y, np.generic):
        return np.asarray(y, dtype=dtype)
    return y.astype(dtype, copy=False)


def as_float(x):
    """``x`` if it is a float array, else ``x`` as float64 (NumPy's rule for its ufuncs)."""
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def scale_by(a, b):
    """``a * b``, written into ``a`` (a temporary the formula made) when ``a`` has the
    result's shape, else a new array: ``b`` may be a stack of gradients with extra leading
    axes (``elementwise`` Functions get one from ``jacobian``), which ``a *= b`` refuses.

    Example:
        >>> scale_by(np.ones(2), np.full((3, 2), 2.0)).shape
        (3, 2)
    """
    if a.shape == b.shape:
        a *= b
        return a
    return a * b


def checks_values(xp) -> bool:
    """Whether a check that reads array values (a device-to-host copy on the GPU) runs:
    always for NumPy, and for CuPy under ``zerograd.debug.detect_anomaly()``."""
    return xp is np or detect_anomaly_var.get()


def named_error(op: str, error: Exception, **shapes) -> Exception:
    """``error`` (raised by NumPy inside an op) as an exception of the same kind whose
    message names the op and the shapes it was given, for ``raise ... from error``.

    Example:
        >>> e = named_error("reshape", ValueError("cannot reshape"), x=(2, 3))
        >>> type(e).__name__, str(e)
        ('ValueError', 'reshape: cannot reshape (x.shape=(2, 3))')
    """
    if isinstance(error, IndexError) and not isinstance(error, ValueError):
        kind = IndexError
    elif isinstance(error, TypeError):
        kind = TypeError
    else:
        kind = ValueError  # NumPy's AxisError is both a ValueError and an IndexError
    where = ", ".join(f"{name}.shape={shape}" for name, shape in shapes.items())
    return kind(f"{op}: {error}" + (f" ({where})" if where else ""))


def check_axes(op: str, axis, ndim: int):
    """``axis`` (None, an int or a sequence of ints) as None or a sorted tuple of axes in
    ``[0, ndim)``, checked as NumPy checks it, with errors that name ``op``."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    try:
        axes = tuple(axes)
    except TypeError:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}") from None
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, (bool, np.bool_)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{op}: axis {a} is out of range for an array of {ndim} dimension(s); use "
                f"an axis in [{-ndim}, {ndim - 1}]" if ndim else
                f"{op}: axis {a} is out of range for a 0-d array; use axis=None"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}; give each axis once")
    return tuple(sorted(out))
