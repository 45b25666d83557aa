"""Run the book's code unchanged: ``dezero`` as an alias of ``zerograd``, in book mode.

Code written for *Deep Learning from Scratch 3* starts with ``import dezero``,
``from dezero import Variable`` or ``import dezero.functions as F``. After
:func:`install`, each ``dezero.X`` is a module that gives zerograd's ``zerograd.X``
names (the very same objects) plus the names the original DeZero kept in ``X`` that
zerograd keeps elsewhere or not at all (``dezero.core.Config``,
``dezero.utils.reshape_sum_backward``, ``dezero.is_simple_core``...: :data:`BOOK_NAMES`
lists them). No package named ``dezero`` is installed that could clash with the
original. The alias is an import hook: a module is looked up only when it is first
imported, so modules added to zerograd later resolve too.

Two of DeZero's modules map to a zerograd module of another name:
``dezero.functions_conv`` gives ``zerograd.functions`` (which holds the convolutions as
well), and ``dezero.core_simple``, the book's first core (steps 23 to 32), gives
``zerograd.core`` with the first core's :class:`SimpleVariable`, whose gradient is an
array, so that steps 28 and 29 (``x.data -= lr * x.grad``) run as printed.

While the alias is installed, zerograd is in *book mode*
(:func:`zerograd.random.book_mode`): random draws follow the original exactly, so that
``np.random.seed(0)`` reproduces the book's numbers. ``docs/book.md`` says what that
covers and where zerograd still differs from the original, and why.

From the command line, ``python -m zerograd run script.py [args]`` runs a script with
the alias installed.

Example:
    >>> import zerograd.compat
    >>> zerograd.compat.install()
    >>> import dezero
    >>> from dezero import Variable
    >>> import dezero.functions as F
    >>> import zerograd
    >>> Variable is zerograd.Variable and F.relu is zerograd.functions.relu
    True
    >>> dezero.is_simple_core, zerograd.random.book_mode()
    (False, True)
    >>> zerograd.compat.uninstall()
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

import numpy as np

# Importing this module has imported the package ``zerograd`` (and its core) already.
from zerograd.core import Variable

__all__ = [
    "install",
    "uninstall",
    "is_installed",
    "ALIASES",
    "DEZERO_MODULES",
    "BOOK_NAMES",
    "SimpleVariable",
    "setup_variable",
    "reshape_sum_backward",
    "max_backward_shape",
    "show_progress",
    "im2col_array",
    "col2im_array",
    "load_cache_npz",
    "save_cache_npz",
]

#: DeZero module names whose zerograd module has another name. Every other
#: ``dezero.X`` gives ``zerograd.X``.
ALIASES = {
    "dezero.core_simple": "zerograd.core",
    "dezero.functions_conv": "zerograd.functions",
}

#: DeZero's own modules.
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

# Where a book name comes from: "zerograd.m:name" is an object of zerograd,
# "dezero.m" an alias module, "compat:name" a helper of this module (called with no
# arguments when listed in _COMPUTED: a value read at each access).
_CONFIG = {
    "Config": "zerograd.config:Config",
    "using_config": "zerograd.config:using_config",
    "no_grad": "zerograd.config:no_grad",
    "test_mode": "zerograd.config:test_mode",
}

#: The names each DeZero module had that ``zerograd.X`` does not have, or has with
#: another meaning (``cache_dir`` is a function in zerograd, a path in DeZero); each
#: ``dezero.X`` gives these first, then ``zerograd.X``'s names.
BOOK_NAMES: dict[str, dict[str, str | bool]] = {
    "dezero": {
        "is_simple_core": False,  # the book's repository runs on the full core
        "setup_variable": "compat:setup_variable",
        "core_simple": "dezero.core_simple",
        "functions_conv": "dezero.functions_conv",
    },
    "dezero.core": {
        **_CONFIG,
        "array_types": "compat:_array_types",
        "setup_variable": "compat:setup_variable",
    },
    "dezero.core_simple": {
        "Config": "zerograd.config:Config",
        "using_config": "zerograd.config:using_config",
        "no_grad": "zerograd.config:no_grad",
        "Variable": "compat:SimpleVariable",
        "setup_variable": "compat:setup_variable",
    },
    "dezero.cuda": {
        "cupy": "compat:_cupy",
        "Variable": "zerograd.core:Variable",
    },
    "dezero.functions": {
        "cuda": "dezero.cuda",
        "utils": "dezero.utils",
        "Function": "zerograd.core:Function",
        "Variable": "zerograd.core:Variable",
        "as_variable": "zerograd.core:as_variable",
        "as_array": "zerograd.core:as_array",
    },
    "dezero.functions_conv": {
        "cuda": "dezero.cuda",
        "Function": "zerograd.core:Function",
        "as_variable": "zerograd.core:as_variable",
        "pair": "zerograd.utils.shape:pair",
        "get_conv_outsize": "zerograd.utils.shape:get_conv_outsize",
        "get_deconv_outsize": "zerograd.utils.shape:get_deconv_outsize",
        "im2col_array": "compat:im2col_array",
        "col2im_array": "compat:col2im_array",
    },
    "dezero.layers": {
        "cuda": "dezero.cuda",
        "F": "dezero.functions",
        "Parameter": "zerograd.core:Parameter",
        "pair": "zerograd.utils.shape:pair",
    },
    "dezero.models": {
        "utils": "dezero.utils",
        "F": "dezero.functions",
        "L": "dezero.layers",
        "Layer": "zerograd.layers:Layer",
    },
    "dezero.optimizers": {
        "cuda": "dezero.cuda",
        "Parameter": "zerograd.core:Parameter",
    },
    "dezero.datasets": {
        "cache_dir": "compat:_cache_dir",
        "get_file": "zerograd.utils.download:get_file",
        "load_cache_npz": "compat:load_cache_npz",
        "save_cache_npz": "compat:save_cache_npz",
    },
    "dezero.dataloaders": {
        "pil_available": "compat:_pil_available",
        "cuda": "dezero.cuda",
    },
    "dezero.transforms": {
        "pair": "zerograd.utils.shape:pair",
    },
    "dezero.utils": {
        "cache_dir": "compat:_cache_dir",
        "cuda": "dezero.cuda",
        "Variable": "zerograd.core:Variable",
        "as_variable": "zerograd.core:as_variable",
        "reshape_sum_backward": "compat:reshape_sum_backward",
        "max_backward_shape": "compat:max_backward_shape",
        "show_progress": "compat:show_progress",
    },
}

# Values computed at each access (they depend on the machine or the environment).
_COMPUTED = {"_array_types", "_cupy", "_cache_dir", "_pil_available"}


# =========================================================================================
# The book's names that zerograd itself has no use for
# =========================================================================================
def setup_variable() -> None:
    """DeZero's ``setup_variable()``, which attached the operators to ``Variable``.

    zerograd defines the operators in the class body, so there is nothing to do; the
    book's steps 28 and 29 call it, and so may any code written for DeZero.

    Example:
        >>> setup_variable()
    """


class SimpleVariable(Variable):
    """``dezero.core_simple.Variable``: the first core's Variable (steps 23 to 32), whose
    ``grad`` is an array, not a Variable.

    Everything else is zerograd's ``Variable``; the Variables that functions return are
    zerograd's (their ``grad`` is a Variable). The book's steps 28 and 29 use it for
    ``x.data -= lr * x.grad``.

    Example:
        >>> import numpy as np
        >>> x = SimpleVariable(np.array(3.0))
        >>> (x ** 2).backward()
        >>> x.grad
        array(6.)
    """

    __slots__ = ("_grad",)

    @property
    def grad(self):
        g = getattr(self, "_grad", None)
        return g.data if isinstance(g, Variable) else g

    @grad.setter
    def grad(self, value):
        self._grad = value


def reshape_sum_backward(gy, x_shape: tuple, axis, keepdims: bool):
    """DeZero's helper for the backward pass of ``sum``: ``gy`` reshaped so that it
    broadcasts against an input of ``x_shape`` (a 1 put back for each summed axis).

    Args:
        gy: the gradient of the sum's output (a Variable or an array).
        x_shape: the shape of the sum's input.
        axis: the ``axis`` the sum was taken over (None, an int or a tuple).
        keepdims: the sum's ``keepdims``.

    Example:
        >>> import numpy as np
        >>> reshape_sum_backward(np.ones(3), (2, 3), 0, False).shape
        (1, 3)
    """
    ndim = len(x_shape)
    if ndim == 0 or axis is None or keepdims:
        return gy.reshape(gy.shape)  # already broadcasts
    axes = sorted(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
    shape = list(gy.shape)
    for a in axes:
        shape.insert(a, 1)
    return gy.reshape(tuple(shape))


def max_backward_shape(x, axis) -> list:
    """DeZero's helper for the backward pass of ``max``/``min``: ``x``'s shape with a 1
    for each reduced axis, as a list.

    Example:
        >>> import numpy as np
        >>> max_backward_shape(np.ones((2, 3, 4)), (0, -1))
        [1, 3, 1]
    """
    if axis is None:
        axes = set(range(x.ndim))
    else:
        axes = {a % x.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
    return [1 if i in axes else n for i, n in enumerate(x.shape)]


def show_progress(block_num: int, block_size: int, total_size: int) -> None:
    """DeZero's download progress bar, a ``urllib.request.urlretrieve`` report hook:
    prints ``\\r[####....] 12.50%`` (30 characters of bar) without a newline.

    Example:
        >>> show_progress(1, 25, 100)
        \r[#######.......................] 25.00%
    """
    if total_size <= 0:  # the server did not say how large the file is
        print(f"\r{block_num * block_size} bytes", end="")
        return
    done = min(block_num * block_size / total_size, 1.0)
    filled = int(done * 30)
    print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done * 100:.2f}%", end="")


def im2col_array(img, kernel_size, stride, pad, to_matrix: bool = True):
    """DeZero's ``im2col`` on arrays: the ``F.im2col`` result as an array (NumPy or CuPy).

    Example:
        >>> import numpy as np
        >>> im2col_array(np.ones((1, 3, 7, 7)), 5, 1, 0).shape
        (9, 75)
    """
    from zerograd.config import no_grad
    from zerograd.functions import im2col

    with no_grad():
        return im2col(img, kernel_size, stride, pad, to_matrix).data


def col2im_array(col, img_shape, kernel_size, stride, pad, to_matrix: bool = True):
    """DeZero's ``col2im`` on arrays: the ``F.col2im`` result as an array.

    Example:
        >>> import numpy as np
        >>> col2im_array(np.ones((9, 75)), (1, 3, 7, 7), 5, 1, 0).shape
        (1, 3, 7, 7)
    """
    from zerograd.config import no_grad
    from zerograd.functions import col2im

    with no_grad():
        return col2im(col, img_shape, kernel_size, stride, pad, to_matrix).data


def _cache_npz_path(filename: str, train: bool) -> str:
    name = filename[filename.rfind("/") + 1:]
    return os.path.join(_cache_dir(), name + (".train.npz" if train else ".test.npz"))


def load_cache_npz(filename: str, train: bool = False):
    """DeZero's cache of a prepared dataset: ``(data, label)`` from
    ``<cache dir>/<basename of filename>.train.npz`` (or ``.test.npz``), or
    ``(None, None)`` when there is no such file.

    Example:
        >>> load_cache_npz("https://example.org/no-such-set.tar.gz")
        (None, None)
    """
    path = _cache_npz_path(filename, train)
    if not os.path.exists(path):
        return None, None
    with np.load(path) as loaded:
        return loaded["data"], loaded["label"]


def save_cache_npz(data, label, filename: str, train: bool = False):
    """Save what :func:`load_cache_npz` reads, unless the file is there already;
    returns its path (None when it existed). The file is written atomically (and,
    unlike the original's, not compressed).

    Example:
        >>> import os, tempfile, numpy as np
        >>> os.environ["ZEROGRAD_HOME"] = tempfile.mkdtemp()
        >>> path = save_cache_npz(np.zeros(2), np.ones(2), "toy", train=True)
        Saving: toy.train.npz
         Done
        >>> load_cache_npz("toy", train=True)[1]
        array([1., 1.])
        >>> del os.environ["ZEROGRAD_HOME"]
    """
    path = _cache_npz_path(filename, train)
    if os.path.exists(path):
        return None
    from zerograd.utils.io import atomic_savez

    print("Saving: " + os.path.basename(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_savez(path, {"data": data, "label": label})
    print(" Done")
    return path


def _cache_dir() -> str:
    from zerograd.utils.download import cache_dir

    return cache_dir()


def _pil_available() -> bool:
    return importlib.util.find_spec("PIL") is not None


def _array_types() -> tuple:
    cupy = _cupy_or_none()
    return (np.ndarray,) if cupy is None else (np.ndarray, cupy.ndarray)


def _cupy_or_none():
    from zerograd import cuda

    return importlib.import_module("cupy") if cuda.gpu_enable else None


def _cupy():
    cupy = _cupy_or_none()
    if cupy is None:  # the original defines dezero.cuda.cupy only when CuPy imports
        raise AttributeError("module 'dezero.cuda' has no attribute 'cupy' (no usable GPU)")
    return cupy


# =========================================================================================
# The alias: an import hook that gives a module per dezero.X
# =========================================================================================
def _target(fullname: str) -> str:
    """The zerograd module that the DeZero module ``fullname`` stands for."""
    if fullname in ALIASES:
        return ALIASES[fullname]
    return "zerograd" + fullname[len("dezero"):]


def _resolve(source):
    """The object a :data:`BOOK_NAMES` entry names."""
    if not isinstance(source, str):
        return source
    if source.startswith("dezero"):
        return importlib.import_module(source)
    module, _, name = source.partition(":")
    if module == "compat":
        value = globals()[name]
        return value() if name in _COMPUTED else value
    return getattr(importlib.import_module(module), name)


class BookModule(ModuleType):
    """A ``dezero.X`` module: the book's names of ``X`` (:data:`BOOK_NAMES`), then
    every name of the zerograd module it stands for, looked up at each access (so it
    never goes stale). Submodules come as ``dezero`` modules too."""

    def __init__(self, name: str, target: ModuleType):
        super().__init__(name, target.__doc__)
        self.__dict__["_zerograd_module"] = target

    def __getattr__(self, name: str):
        book = BOOK_NAMES.get(self.__name__, {})
        if name in book:
            return _resolve(book[name])
        target = self.__dict__["_zerograd_module"]
        if name == "__all__":  # what `from dezero.X import *` takes
            names = getattr(target, "__all__", None)
            if names is None:
                names = [n for n in vars(target) if not n.startswith("_")]
            return [*names, *(n for n in book if n not in names)]
        try:
            value = getattr(target, name)
        except AttributeError:
            raise AttributeError(
                f"module {self.__name__!r} (zerograd's {target.__name__!r}) has no "
                f"attribute {name!r}"
            ) from None
        if isinstance(value, ModuleType) and value.__name__ == f"{target.__name__}.{name}":
            return importlib.import_module(f"{self.__name__}.{name}")
        return value

    def __dir__(self):
        target = self.__dict__["_zerograd_module"]
        return sorted({*self.__dict__, *dir(target), *BOOK_NAMES.get(self.__name__, {})})

    def __repr__(self) -> str:
        target = self.__dict__["_zerograd_module"]
        return f"<module {self.__name__!r} (zerograd's {target.__name__!r})>"


class _AliasLoader(importlib.abc.Loader):
    """Makes the ``dezero.X`` module of an already-imported zerograd module."""

    def __init__(self, target: ModuleType):
        self.target = target

    def create_module(self, spec):
        return BookModule(spec.name, self.target)

    def exec_module(self, module):
        pass  # the module reads everything from its zerograd module


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
    """Make ``import dezero`` and ``import dezero.X`` work on zerograd, in book mode.

    Safe to call more than once. No zerograd module is imported until the code
    imports it.

    Raises:
        RuntimeError: when the original DeZero is already imported in this process
            (its modules would shadow the alias).

    Example:
        >>> install()
        >>> import dezero.utils
        >>> import zerograd.utils
        >>> dezero.utils.plot_dot_graph is zerograd.utils.plot_dot_graph
        True
        >>> uninstall()
    """
    existing = sys.modules.get("dezero")
    if existing is not None and not isinstance(existing, BookModule):
        raise RuntimeError(
            f"zerograd.compat.install: the original 'dezero' package is already imported "
            f"(from {getattr(existing, '__file__', '?')}); install the alias before any "
            "`import dezero`, or run the script with `python -m zerograd run script.py`"
        )
    if not is_installed():
        sys.meta_path.insert(0, _finder)
    _set_book_mode(True)


def uninstall() -> None:
    """Undo :func:`install`: ``dezero`` names no longer resolve, book mode ends.

    Modules already imported under ``dezero`` names are removed from ``sys.modules``
    (what code holds keeps working: the objects are zerograd's).

    Example:
        >>> uninstall()
        >>> is_installed()
        False
    """
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "dezero" or n.startswith("dezero.")]:
        if isinstance(sys.modules[name], BookModule):
            del sys.modules[name]
    _set_book_mode(False)


def _set_book_mode(on: bool) -> None:
    # (`import zerograd.compat` has imported the package, zerograd.random included.)
    importlib.import_module("zerograd.random").set_book_mode(on)
