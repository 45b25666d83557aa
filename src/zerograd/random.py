"""zerograd's own random state: initial weights and dropout masks.

zerograd never touches NumPy's global random state. Layers draw their initial weights
from this module's generator (:func:`normal`), and dropout its masks from
``zerograd.functions.dropout``'s; ``seed(n)`` seeds both (data loaders take their own
``seed=`` argument for shuffling).

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

import importlib

import numpy as np

__all__ = ["seed", "seed_weights", "normal", "book_mode", "set_book_mode", "get_state",
           "set_state"]

_weights_rng = np.random.default_rng()
_book_mode = False


def book_mode() -> bool:
    """Whether random draws follow the original DeZero (NumPy's global generator).

    Example:
        >>> book_mode()
        False
    """
    return _book_mode


def set_book_mode(on: bool) -> None:
    """Switch book mode on or off (``zerograd.compat.install()`` switches it on)."""
    global _book_mode
    _book_mode = bool(on)


def get_state() -> dict:
    """A snapshot of zerograd's random state, for checkpoints (see :func:`set_state`).

    Example:
        >>> seed(3); state = get_state(); a = normal((2,), 1.0, np.float64)
        >>> set_state(state); b = normal((2,), 1.0, np.float64)
        >>> bool((a == b).all())
        True
    """
    dropout = importlib.import_module("zerograd.functions.dropout")
    return {
        "weights": _weights_rng.bit_generator.state,
        "dropout_seed": dropout._seed,
        "dropout": {name: gen.bit_generator.state for name, gen in dropout._generators.items()
                    if hasattr(gen, "bit_generator")},
    }


def set_state(state: dict) -> None:
    """Restore what :func:`get_state` returned."""
    dropout = importlib.import_module("zerograd.functions.dropout")
    _weights_rng.bit_generator.state = state["weights"]
    dropout.seed(state["dropout_seed"])
    for name, gen_state in state["dropout"].items():
        gen = dropout._generator(np) if name == "numpy" else None
        if gen is not None:
            gen.bit_generator.state = gen_state


def seed(n: int | None) -> None:
    """Seed weight initialisation and dropout (None: fresh entropy from the OS)."""
    seed_weights(n)
    # The package ``zerograd.functions`` exports the function ``dropout`` under the
    # module's name, so reach the module itself through importlib.
    importlib.import_module("zerograd.functions.dropout").seed(n)


def seed_weights(n: int | None) -> None:
    """Reseed the generator that draws the initial weights of every layer.

    Weights are always drawn on the CPU, so a seeded model starts from the same values
    on NumPy and on CuPy. Reached as ``zerograd.layers.seed`` too.

    Example:
        >>> import zerograd.layers as L
        >>> seed_weights(1); a = L.Linear(2, in_size=2).W.data
        >>> seed_weights(1); b = L.Linear(2, in_size=2).W.data
        >>> bool((a == b).all())
        True
    """
    global _weights_rng
    _weights_rng = np.random.default_rng(n)


def normal(shape: tuple, scale: float, dtype, xp=np):
    """Normal(0, scale^2) samples of ``dtype`` for initial weights, on ``xp``'s device.

    Example:
        >>> seed_weights(0)
        >>> normal((2, 3), 0.1, np.float32).dtype
        dtype('float32')
    """
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        w = _weights_rng.standard_normal(shape, dtype=dtype)
    else:
        w = _weights_rng.standard_normal(shape).astype(dtype)
    if scale != 1.0:
        w *= scale  # a Python float: float32 stays float32
    return w if xp is np else xp.asarray(w)
