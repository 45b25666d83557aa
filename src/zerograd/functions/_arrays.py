"""Conventions shared by the functions' array code (forwards and gradient formulas).

- dtypes: NumPy 1.x turns a 0-d float32 array combined with a Python float into a float64
  scalar (NumPy 2 does not); :func:`zerograd.core.as_dtype` (the one cast helper, which
  the core's operators use too) undoes that where a formula mixes arrays with numbers.
  Integer and boolean inputs to a function with real-valued results give float64, as
  NumPy's ufuncs do (:func:`as_float`).
- checks that read values back from the device (label ranges, embedding ids, probability
  ranges): a NumPy array is already on the host, so they always run there; on a GPU each
  one would stop the queue of kernels until the values arrive, so they run there only
  under :func:`zerograd.debug.detect_anomaly` (:func:`checks_values`).
"""

from __future__ import annotations

import numpy as np

from zerograd.config import detect_anomaly_var
from zerograd.core import as_dtype  # noqa: F401  (the one cast helper, also reachable here)
from zerograd.cuda import get_array_module

_ndarray = np.ndarray


def as_float(x):
    """``x`` if it is a float array, else ``x`` as float64 (NumPy's rule for its ufuncs)."""
    return x if x.dtype.kind == "f" else x.astype(np.float64)


# Below this many elements, writing a result into one of its own operands costs more than
# a new array: NumPy's check that output and input overlap takes about 0.5 us per call,
# while allocating a small array is cheap. Above it, working in place saves an allocation
# (and its page faults) per step.
IN_PLACE_MIN_SIZE = 256


def scale_by(a, b):
    """``a * b``, written into ``a`` (a temporary the formula made) when ``a`` is large
    and has the result's shape and dtype, else a new array: ``b`` may be a stack of
    gradients with extra leading axes (``elementwise`` Functions get one from
    ``jacobian``).

    Example:
        >>> scale_by(np.ones(2), np.full((3, 2), 2.0)).shape
        (3, 2)
    """
    if a.size >= IN_PLACE_MIN_SIZE and a.shape == b.shape and a.dtype == b.dtype:
        a *= b  # (the same result as a * b: NumPy's dtype rules are not bent)
        return a
    return a * b


def in_place(ufunc, a, b):
    """``ufunc(a, b)`` (a NumPy or CuPy ufunc: ``xp.divide``, ``xp.add``), written into
    ``a`` (a temporary the formula made) on the same terms as :func:`scale_by`.

    Example:
        >>> in_place(np.divide, np.ones(3), np.full(3, 2.0))
        array([0.5, 0.5, 0.5])
    """
    if a.size >= IN_PLACE_MIN_SIZE and a.shape == b.shape and a.dtype == b.dtype:
        return ufunc(a, b, out=a)
    return ufunc(a, b)


# From this many elements on, a float array is bounded with the clip ufunc: NumPy's clip
# loop is vectorised (measured 3x faster than minimum or maximum with a number on 10^6
# float32 values), but costs about 2 us per call, twice minimum's on a small array.
CLIP_MIN_SIZE = 4096


def clamp(x, lower=None, upper=None):
    """``x`` limited to ``[lower, upper]`` (numbers; None for no bound), NaN kept, in the
    form that is fastest for x's size and dtype; x's dtype is kept (NumPy's rules for a
    number).

    Example:
        >>> clamp(np.array([-2.0, 0.5, 3.0]), lower=0.0)
        array([0. , 0.5, 3. ])
    """
    xp = get_array_module(x)
    if x.size >= CLIP_MIN_SIZE and x.dtype.kind == "f":
        return xp.clip(x, -np.inf if lower is None else lower, np.inf if upper is None else upper)
    if lower is not None:
        x = xp.maximum(x, lower)
    return x if upper is None else xp.minimum(x, upper)


def log1p_of_fraction(u):
    """``log(1 + u)`` for a float array of u in [0, 1] (NumPy or CuPy), in u's dtype.

    NumPy's float32 ``log1p`` is not vectorised (2.7x slower than ``log``), so float32 goes
    through ``log(w)`` with w = 1 + u, corrected for the rounding of w: ``u - (w - 1)`` is
    exactly the part of u that w lost (u <= 1), and ``log(1 + u) = log(w) + that / w`` to
    second order in it. Measured against float64 over [0, 1], float32 results stay within
    about 2 roundings of log's own (its error dominates); float64 uses ``log1p``.
    """
    xp = get_array_module(u)
    if u.dtype != np.float32 or u.size < CLIP_MIN_SIZE:  # (small: log1p's one call wins)
        return xp.log1p(u)
    w = u + 1
    lost = u - (w - 1)  # exact (Fast2Sum: |u| <= 1)
    lost /= w
    y = xp.log(w)
    y += lost
    return y


# The block size of :func:`blockwise`, in elements: the temporaries of a block (512 KiB
# each in float32) stay in the cache and in the allocator's free lists.
BLOCK_SIZE = 1 << 17


def blockwise(f, *arrays):
    """``f(*arrays)`` for an elementwise array formula ``f`` of NumPy arrays of one
    shape, computed block by block when they are large.

    A formula of many passes over memory makes a full-size temporary per step: on 10^6
    float32 values erf's took 30 ms with glibc's default allocator, which returned the
    memory and faulted it in again on every call (7,800 page faults), and 8.6 ms in
    blocks (none), faster also with a tuned allocator (10.4 ms) since a block's passes
    run in the cache. CuPy arrays, small arrays and arrays of other shapes (a stack of
    gradients) go to ``f`` whole.

    Example:
        >>> x = np.arange(5.0)
        >>> bool((blockwise(lambda a: a * a + 1, x) == x * x + 1).all())
        True
    """
    a = arrays[0]
    if type(a) is not np.ndarray or a.size <= BLOCK_SIZE or any(
        b.shape != a.shape for b in arrays[1:]
    ):
        return f(*arrays)
    flat = [b.reshape(-1) for b in arrays]
    first = f(*[b[:BLOCK_SIZE] for b in flat])
    out = np.empty(a.size, dtype=first.dtype)
    out[:BLOCK_SIZE] = first
    for start in range(BLOCK_SIZE, a.size, BLOCK_SIZE):
        out[start:start + BLOCK_SIZE] = f(*[b[start:start + BLOCK_SIZE] for b in flat])
    return out.reshape(a.shape)


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
