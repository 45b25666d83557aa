"""Where zerograd's random numbers come from: its own generators, or the book's.

zerograd draws random numbers in two places of its own: the initial weights of layers
(:func:`normal`) and the masks of dropout (:func:`keep_mask`). Outside book mode each
comes from a generator of this module, seeded by :func:`seed` (or :func:`seed_weights`
and :func:`seed_dropout` alone), and NumPy's global random state is never touched, so
that a library call cannot disturb the draws of the program around it. Data loaders
take their own ``seed=`` argument.

**Book mode** is on while the ``dezero`` alias is installed
(:func:`zerograd.compat.install`, ``python -m zerograd run``). The book's scripts call
``np.random.seed(0)`` and print numbers that depend on every later draw, so in book mode
every draw follows the original DeZero exactly: NumPy's global generator (CuPy's for
CuPy arrays), the same order, the same formulas. The datasets and data loaders ask
:func:`book_mode` too (the original's shuffles and toy data, ``get_spiral``'s reseeding
of the global generator included). ``docs/book.md`` has the whole list.

Example:
    >>> import zerograd
    >>> import zerograd.layers as L
    >>> zerograd.seed(0)
    >>> a = L.Linear(2, in_size=3).W.data
    >>> zerograd.seed(0)
    >>> b = L.Linear(2, in_size=3).W.data
    >>> bool((a == b).all())
    True
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "book_mode",
    "set_book_mode",
    "seed",
    "seed_weights",
    "seed_dropout",
    "normal",
    "keep_mask",
    "get_state",
    "set_state",
]

_book_mode = False

# The generator of initial weights; always a NumPy one: weights are drawn on the CPU so
# that a seeded model starts from the same values on NumPy and on CuPy.
_weights_rng = np.random.default_rng()

# The seed of the dropout generators (None: fresh entropy) and the generators made from
# it so far, by array module name ("numpy", "cupy"); masks are drawn on the array's
# device, so each array module has its own.
_dropout_seed: int | None = None
_dropout_rngs: dict = {}


# ---- book mode --------------------------------------------------------------------------
def book_mode() -> bool:
    """Whether random draws follow the original DeZero (NumPy's global generator).

    Example:
        >>> book_mode()
        False
    """
    return _book_mode


def set_book_mode(on: bool) -> None:
    """Switch book mode on or off (:func:`zerograd.compat.install` switches it on,
    :func:`zerograd.compat.uninstall` off again).

    Example:
        >>> set_book_mode(True); book_mode()
        True
        >>> set_book_mode(False)
    """
    global _book_mode
    _book_mode = bool(on)


# ---- seeding ----------------------------------------------------------------------------
def seed(n: int | None) -> None:
    """Seed zerograd's generators: initial weights and dropout (None: fresh entropy).

    NumPy's global generator is left alone, also in book mode, where the draws come
    from it: seed that one with ``np.random.seed(n)``, as the book does.

    Example:
        >>> seed(0); a = keep_mask((4,), 0.5)
        >>> seed(0); b = keep_mask((4,), 0.5)
        >>> bool((a == b).all())
        True
    """
    seed_weights(n)
    seed_dropout(n)


def seed_weights(n: int | None) -> None:
    """Reseed the generator that draws the initial weights of every layer.

    Reached as ``zerograd.layers.seed`` too.

    Example:
        >>> import zerograd.layers as L
        >>> seed_weights(1); a = L.Linear(2, in_size=2).W.data
        >>> seed_weights(1); b = L.Linear(2, in_size=2).W.data
        >>> bool((a == b).all())
        True
    """
    global _weights_rng
    _weights_rng = np.random.default_rng(n)


def seed_dropout(n: int | None) -> None:
    """Reseed the generators that dropout draws its masks from.

    Example:
        >>> import zerograd.functions as F
        >>> seed_dropout(42); a = F.dropout(np.ones(8)).data
        >>> seed_dropout(42); b = F.dropout(np.ones(8)).data
        >>> bool((a == b).all())
        True
    """
    global _dropout_seed
    _dropout_seed = None if n is None else int(n)
    _dropout_rngs.clear()


def _dropout_rng(xp):
    rng = _dropout_rngs.get(xp.__name__)
    if rng is None:
        if xp is np:
            rng = np.random.default_rng(_dropout_seed)
        else:
            rng = xp.random.RandomState(_dropout_seed)  # CuPy's generator, on the GPU
        _dropout_rngs[xp.__name__] = rng
    return rng


# ---- draws ------------------------------------------------------------------------------
def normal(shape: tuple, scale: float, dtype, xp=np):
    """Normal(0, scale^2) samples of ``dtype`` for initial weights, on ``xp``'s device.

    In book mode the draw is the original DeZero's, ``xp.random.randn(*shape)`` cast to
    ``dtype`` and then scaled in ``dtype`` (as NumPy 1, with which the book was
    printed, multiplied a float32 array by a float64 scalar; NumPy 2 would promote the
    product to float64).

    Args:
        shape: the shape of the result.
        scale: the standard deviation.
        dtype: the dtype of the result.
        xp: the array module of the result (NumPy or CuPy).

    Example:
        >>> seed_weights(0)
        >>> normal((2, 3), 0.1, np.float32).dtype
        dtype('float32')
    """
    dtype = np.dtype(dtype)
    if _book_mode:
        w = xp.random.randn(*shape).astype(dtype)
        return w if scale == 1.0 else w * dtype.type(scale)
    if dtype == np.float64:
        w = _weights_rng.standard_normal(shape, dtype=dtype)
    else:
        # float32 samples, cast: a seeded float16 model starts from its float32 twin's
        # weights, rounded.
        w = _weights_rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
    if scale != 1.0:
        w *= scale  # a Python float: float32 stays float32
    return w if xp is np else xp.asarray(w)


def keep_mask(shape: tuple, ratio: float, xp=np, dtype=np.float32, rng=None):
    """A boolean mask of ``shape`` on ``xp``'s device, each element True (kept) with
    probability ``1 - ratio``: the mask of dropout.

    Outside book mode the uniforms are drawn in ``dtype`` (float32 or float64) from
    zerograd's dropout generator for ``xp`` (see :func:`seed_dropout`), or from ``rng``
    when given. In book mode, without ``rng``, the mask is the original DeZero's:
    ``xp.random.rand(*shape) > ratio``, from the global generator.

    Args:
        shape: the shape of the mask.
        ratio: the probability of False (dropping), in [0, 1).
        xp: the array module of the mask.
        dtype: the float dtype to draw the uniforms in.
        rng: a generator for this call: a ``numpy.random.Generator`` or ``RandomState``
            for NumPy, a ``cupy.random.RandomState`` or ``Generator`` for CuPy.

    Example:
        >>> seed_dropout(0)
        >>> keep_mask((2, 3), 0.5).shape
        (2, 3)
    """
    if rng is None and _book_mode:
        return xp.random.rand(*shape) > ratio
    gen = _dropout_rng(xp) if rng is None else rng
    # Generators draw float32 or float64 uniforms only; a float16 input uses float32's.
    dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    return _uniform(gen, shape, np.dtype(dtype)) >= ratio


def _uniform(gen, shape, dtype):
    """Uniform [0, 1) samples of ``dtype`` from a NumPy or CuPy generator."""
    if isinstance(gen, np.random.RandomState):
        return gen.random_sample(shape).astype(dtype, copy=False)
    if hasattr(gen, "random_sample"):  # cupy.random.RandomState
        return gen.random_sample(shape, dtype=dtype)
    return gen.random(shape, dtype=dtype)  # numpy.random.Generator or CuPy's Generator


# ---- state ------------------------------------------------------------------------------
def get_state() -> dict:
    """A snapshot of the random state that zerograd draws from, for checkpoints.

    It holds zerograd's generators (weights, and dropout on NumPy) and, in book mode,
    NumPy's global generator, which book mode draws from. (The state of CuPy's
    generators is not included.)

    Example:
        >>> seed(3); state = get_state(); a = normal((2,), 1.0, np.float64)
        >>> set_state(state); b = normal((2,), 1.0, np.float64)
        >>> bool((a == b).all())
        True
    """
    state = {
        "weights": _weights_rng.bit_generator.state,
        "dropout_seed": _dropout_seed,
        "dropout": {name: rng.bit_generator.state for name, rng in _dropout_rngs.items()
                    if hasattr(rng, "bit_generator")},
    }
    if _book_mode:
        state["numpy_global"] = np.random.get_state()
    return state


def set_state(state: dict) -> None:
    """Restore what :func:`get_state` returned (NumPy's global generator too, when the
    snapshot has it).

    Example:
        >>> set_state(get_state())
    """
    _weights_rng.bit_generator.state = state["weights"]
    seed_dropout(state["dropout_seed"])
    for name, rng_state in state["dropout"].items():
        if name == "numpy":
            _dropout_rng(np).bit_generator.state = rng_state
    if "numpy_global" in state:
        np.random.set_state(state["numpy_global"])
