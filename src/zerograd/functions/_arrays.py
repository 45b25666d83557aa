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


def checks_values(xp) -> bool:
    """Whether a check that reads array values (a device-to-host copy on the GPU) runs:
    always for NumPy, and for CuPy under ``zerograd.debug.detect_anomaly()``."""
    return xp is np or detect_anomaly_var.get()
