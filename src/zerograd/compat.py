"""Run the book's code unchanged: ``dezero`` as an alias of ``zerograd``.

Code written for *Deep Learning from Scratch 3* starts with ``import dezero``,
``from dezero import Variable`` or ``import dezero.functions as F``. After
:func:`install`, each of those names resolves to zerograd's module of the same role
(``dezero.layers`` is ``zerograd.layers``, and so on), with no package named ``dezero``
installed that could clash with the original. The alias is an import hook: a submodule
is looked up only when it is first imported, so modules added to zerograd later (or
imported late) resolve too.

Two of DeZero's names map to a module of another name: ``dezero.core_simple`` (the
book's first core) is ``zerograd.core``, and ``dezero.functions_conv`` is
``zerograd.functions``, which holds the convolution functions as well.

From the command line, ``python -m zerograd run script.py [args]`` runs a script with
the alias installed.

Example:
    >>> import zerograd.compat
    >>> zerograd.compat.install()
    >>> import dezero
    >>> from dezero import Variable
    >>> import dezero.functions as F
    >>> import zerograd
    >>> dezero is zerograd and Variable is zerograd.Variable
    True
    >>> zerograd.compat.uninstall()
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["install", "uninstall", "is_installed", "ALIASES", "DEZERO_MODULES"]

#: DeZero module names whose zerograd module has another name. Every other
#: ``dezero.X`` is ``zerograd.X``.
ALIASES = {
    "dezero.core_simple": "zerograd.core",
    "dezero.functions_conv": "zerograd.functions",
}

#: DeZero's own modules, for reference: each resolves once zerograd has it.
DEZERO_MODULES = (
    "core",
    "core_simple",
    "functions",
    "functions_conv",
    "layers",
    "models",
    "optimizers",
    "datasets",
    "dataloaders",
    "transforms",
    "utils",
    "cuda",
)


def _target(fullname: str) -> str:
    """The zerograd module that the DeZero module ``fullname`` stands for."""
    if fullname in ALIASES:
        return ALIASES[fullname]
    return "zerograd" + fullname[len("dezero") :]


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system an already-imported zerograd module."""

    def __init__(self, module: ModuleType):
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        # The import system has just set ``module.__spec__`` to the alias's spec;
        # give the zerograd module its own back (it is the same module either way).
        module.__spec__ = self.spec


class _DezeroFinder(importlib.abc.MetaPathFinder):
    """Finds ``dezero`` and ``dezero.*``; placed first on ``sys.meta_path``, so that
    neither an installed original DeZero nor a second copy of a zerograd file (loaded
    from the package path under the name ``dezero.X``) can come in between."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "dezero" and not fullname.startswith("dezero."):
            return None
        name = _target(fullname)
        if importlib.util.find_spec(name) is None:
            return None  # the usual "No module named 'dezero.X'"
        module = importlib.import_module(name)
        is_package = hasattr(module, "__path__")
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(module), is_package=is_package
        )


_finder = _DezeroFinder()


def is_installed() -> bool:
    """Whether :func:`install` is in effect.

    Example:
        >>> is_installed()
        False
    """
    return _finder in sys.meta_path


def install() -> None:
    """Make ``import dezero`` and ``import dezero.X`` give zerograd's modules.

    Safe to call more than once. Nothing is imported until the code imports it.

    Raises:
        RuntimeError: when the original DeZero is already imported in this process
            (its modules would shadow the alias).

    Example:
        >>> install()
        >>> import dezero.utils
        >>> import zerograd.utils
        >>> dezero.utils is zerograd.utils
        True
        >>> uninstall()
    """
    existing = sys.modules.get("dezero")
    if existing is not None and not _is_alias(existing):
        raise RuntimeError(
            f"zerograd.compat.install: the original 'dezero' package is already imported "
            f"(from {getattr(existing, '__file__', '?')}); install the alias before any "
            "`import dezero`, or run the script with `python -m zerograd run script.py`"
        )
    if not is_installed():
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo :func:`install`: ``dezero`` names no longer resolve to zerograd.

    Modules already imported under ``dezero`` names are removed from ``sys.modules``
    (the objects that code holds keep working: they are zerograd's modules).

    Example:
        >>> uninstall()
        >>> is_installed()
        False
    """
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "dezero" or n.startswith("dezero.")]:
        if _is_alias(sys.modules[name]):
            del sys.modules[name]
    # Importing ``dezero.core_simple`` set ``zerograd.core_simple`` too (the import system
    # puts a submodule on its parent package); take such extra names off again.
    for alias, target in ALIASES.items():
        parent_alias, _, child = alias.rpartition(".")
        parent = sys.modules.get(_target(parent_alias))
        module = sys.modules.get(target)
        if parent is not None and module is not None and getattr(parent, child, None) is module:
            delattr(parent, child)


def _is_alias(module) -> bool:
    return getattr(module, "__name__", "").split(".")[0] == "zerograd"
