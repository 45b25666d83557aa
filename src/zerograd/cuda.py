"""The array-module switch between NumPy (CPU) and CuPy (NVIDIA GPU).

This is the only module that imports CuPy, and it does so lazily: ``import zerograd``
never imports it. ``gpu_enable`` is true only when CuPy imports *and* a CUDA device is
usable; setting the environment variable ``ZEROGRAD_CPU_ONLY=1`` forces it false.

Example:
    >>> import numpy as np
    >>> from zerograd import cuda
    >>> cuda.get_array_module(np.ones(2)) is np
    True
    >>> cuda.as_numpy(np.ones(2))
    array([1., 1.])
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

# The CuPy module once something needs it (a CuPy array seen, to_gpu, gpu_enable);
# None while the process has only ever used NumPy, which keeps the hot path short.
_cupy: Any = None
_gpu_enable: bool | None = None


def _load_cupy():
    """Import CuPy and check that a CUDA device is usable; return it or None."""
    global _cupy, _gpu_enable
    if _gpu_enable is None:
        _gpu_enable = False
        if os.environ.get("ZEROGRAD_CPU_ONLY", "") not in ("", "0"):
            return None
        try:
            import cupy
        except Exception:  # not installed, or a broken CUDA installation
            return None
        try:
            usable = bool(cupy.cuda.is_available())
        except Exception:
            usable = False
        if usable:
            _cupy = cupy
            _gpu_enable = True
    return _cupy


def __getattr__(name: str) -> Any:
    # ``cuda.gpu_enable`` is computed on first access, not at import.
    if name == "gpu_enable":
        return _load_cupy() is not None
    raise AttributeError(f"module 'zerograd.cuda' has no attribute {name!r}")


def _require_cupy(what: str):
    cupy = _load_cupy()
    if cupy is None:
        raise RuntimeError(
            f"{what}: no usable CUDA device (CuPy missing, no GPU, or "
            "ZEROGRAD_CPU_ONLY set); install 'cupy-cuda12x' or 'cupy-cuda13x' on a "
            "machine with an NVIDIA GPU, or stay on the CPU"
        )
    return cupy


def is_cupy_array(x: Any) -> bool:
    """True if ``x`` is a CuPy ndarray (without importing CuPy if it is not loaded)."""
    if _cupy is not None:
        return isinstance(x, _cupy.ndarray)
    if not type(x).__module__.startswith("cupy"):
        return False
    return _load_cupy() is not None and isinstance(x, _cupy.ndarray)


def get_array_module(x: Any):
    """Return ``numpy`` or ``cupy``, whichever ``x`` (an array or Variable) belongs to."""
    if _cupy is None:
        # No CuPy array has been seen in this process: only x itself could be the first.
        if isinstance(x, np.ndarray):
            return np
        if is_cupy_array(x) or is_cupy_array(getattr(x, "data", None)):
            return get_array_module(x)
        return np
    if not isinstance(x, (np.ndarray, _cupy.ndarray)) and hasattr(x, "creator"):
        x = x.data
    return _cupy.get_array_module(x)


def device_name(x: Any) -> str:
    """'cpu' or 'gpu:N' for an array, for error messages."""
    if is_cupy_array(x):
        return f"gpu:{x.device.id}"
    return "cpu"


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array (copied from the GPU if it is a CuPy array).

    Python and NumPy scalars become 0-d arrays.
    """
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.asarray(x)
    if is_cupy_array(x):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def as_cupy(x: Any):
    """Return ``x`` as a CuPy array on the current device.

    Raises:
        RuntimeError: when no CUDA device is usable.
    """
    cupy = _require_cupy("as_cupy")
    if isinstance(x, cupy.ndarray):
        return x
    return cupy.asarray(x)


@functools.cache
def elementwise(in_params: str, out_params: str, operation: str, name: str):
    """A CuPy ``ElementwiseKernel``, built once and compiled on its first call.

    Functions use it on the GPU to fuse several elementwise steps into one kernel
    (one pass over memory, one launch).

    Raises:
        RuntimeError: when no CUDA device is usable.
    """
    cupy = _require_cupy(name)
    return cupy.ElementwiseKernel(in_params, out_params, operation, name)
