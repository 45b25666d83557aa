"""One seed for zerograd's own random state: initial weights and dropout masks.

zerograd never touches NumPy's global random state. Layers draw their initial weights
from ``zerograd.layers``'s generator and dropout its masks from
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


def seed(n: int | None) -> None:
    """Seed weight initialisation and dropout (None: fresh entropy from the OS)."""
    from zerograd import layers

    layers.seed(n)
    # The package ``zerograd.functions`` exports the function ``dropout`` under the
    # module's name, so reach the module itself through importlib.
    importlib.import_module("zerograd.functions.dropout").seed(n)
