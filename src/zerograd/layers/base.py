"""The base class of every layer and model: :class:`Layer`.

A Layer registers every :class:`~zerograd.Parameter` and every sub-Layer assigned to one
of its attributes, in assignment order, and owns the model-wide operations: ``params()``,
moving between devices, ``state_dict``/``load_state_dict`` and saving weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.core import Parameter, Variable
from zerograd.utils.io import NotAnArchiveError, atomic_savez, load_npz

__all__ = ["Layer"]


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or cuda.is_cupy_array(x)


# =========================================================================================
# Layer
# =========================================================================================
class Layer:
    """Base class of layers and models: a container of Parameters and sub-Layers.

    Assigning a :class:`~zerograd.Parameter` or a Layer to an attribute registers it,
    in assignment order (so ``params()`` and ``state_dict()`` are stable). Arrays that
    are state but not learnt, such as batch-norm running statistics, are registered with
    :meth:`register_buffer`: they move with ``to_gpu()`` and are saved with the weights.
    Subclasses implement ``forward``; calling the layer calls it.

    Example:
        >>> import zerograd.functions as F
        >>> from zerograd.layers import Linear
        >>> class TwoLayerNet(Layer):
        ...     def __init__(self, hidden, out):
        ...         super().__init__()
        ...         self.l1 = Linear(hidden)
        ...         self.l2 = Linear(out)
        ...     def forward(self, x):
        ...         return self.l2(F.sigmoid(self.l1(x)))
        >>> net = TwoLayerNet(5, 1)
        >>> net(np.zeros((3, 2), dtype=np.float32)).shape
        (3, 1)
        >>> list(net.state_dict())
        ['l1.W', 'l1.b', 'l2.W', 'l2.b']
    """

    def __init__(self):
        self._params: dict[str, None] = {}  # names of Parameter and Layer attributes
        self._buffers: dict[str, None] = {}  # names of persistent array attributes

    def __setattr__(self, name: str, value: Any) -> None:
        registry = self.__dict__.get("_params")
        if registry is None:
            if isinstance(value, (Parameter, Layer)):
                raise RuntimeError(
                    f"{type(self).__name__}: cannot register {name!r} before "
                    "Layer.__init__ ran; call super().__init__() first in __init__"
                )
        elif isinstance(value, (Parameter, Layer)):
            registry[name] = None
            self._buffers.pop(name, None)
        else:
            registry.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._params.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: Any) -> None:
        """Store ``array`` (or None, to be created later) as persistent state ``name``.

        A buffer is an attribute like any other, but ``to_gpu``/``to_cpu`` move it and
        ``state_dict``/``save_weights`` include it. Reassigning the attribute keeps it
        registered.

        Raises:
            TypeError: when ``array`` is neither an array nor None.

        Example:
            >>> layer = Layer()
            >>> layer.register_buffer("steps", np.zeros(1))
            >>> layer.state_dict()
            {'steps': array([0.])}
        """
        if array is not None and not _is_array(array):
            raise TypeError(
                f"{type(self).__name__}.register_buffer: {name!r} must be a NumPy or CuPy "
                f"array or None, got {type(array).__name__}; Parameters and Layers "
                "register themselves by plain assignment"
            )
        self._params.pop(name, None)
        self._buffers[name] = None
        object.__setattr__(self, name, array)

    def _expected_shape(self, name: str) -> tuple | None:
        """The shape entry ``name`` must have when it is loaded before being created
        (None: no constraint; None inside the tuple: a size learnt from the input)."""
        return None

    def _after_load(self) -> None:
        """Called after load_state_dict: derive sizes from what was loaded."""

    def __call__(self, *inputs, **kwargs):
        return self.forward(*inputs, **kwargs)

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    # ---- traversal -------------------------------------------------------------------------
    def _entries(self, prefix: str = "") -> Iterator[tuple[str, Layer, str]]:
        """Yield ``(dotted name, owning layer, attribute)`` for every Parameter and
        buffer, depth first in registration order."""
        for name in self._params:
            obj = self.__dict__[name]
            if isinstance(obj, Layer):
                yield from obj._entries(prefix + name + ".")
            else:
                yield prefix + name, self, name
        for name in self._buffers:
            yield prefix + name, self, name

    def _layers(self) -> Iterator[Layer]:
        """This layer and every sub-layer, each once."""
        seen = set()
        stack = [self]
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            yield layer
            for name in reversed(list(layer._params)):
                obj = layer.__dict__[name]
                if isinstance(obj, Layer):
                    stack.append(obj)

    def params(self) -> Iterator[Parameter]:
        """Every Parameter of this layer and its sub-layers, in registration order.

        A Parameter shared by two sub-layers is yielded once (so an optimizer updates
        it once).

        Example:
            >>> from zerograd.layers import Linear
            >>> [p.name for p in Linear(2, in_size=3).params()]
            ['W', 'b']
        """
        seen = set()
        for _, layer, name in self._entries():
            obj = layer.__dict__[name]
            if isinstance(obj, Parameter) and id(obj) not in seen:
                seen.add(id(obj))
                yield obj

    def cleargrads(self) -> None:
        """Forget the gradients of every Parameter (call before each ``backward``)."""
        for param in self.params():
            param.cleargrad()

    # ---- devices ---------------------------------------------------------------------------
    def to_cpu(self) -> Layer:
        """Move every Parameter and buffer to host memory; returns self."""
        for param in self.params():
            param.to_cpu()
        for layer in self._layers():
            object.__setattr__(layer, "_on_gpu", False)
            for name in layer._buffers:
                array = layer.__dict__[name]
                if array is not None:
                    object.__setattr__(layer, name, cuda.as_numpy(array))
        return self

    def to_gpu(self) -> Layer:
        """Move every Parameter and buffer to the current GPU; returns self.

        Raises:
            RuntimeError: when no CUDA device is usable.
        """
        for param in self.params():
            param.to_gpu()
        for layer in self._layers():
            object.__setattr__(layer, "_on_gpu", True)  # for arrays created later
            for name in layer._buffers:
                array = layer.__dict__[name]
                if array is not None:
                    object.__setattr__(layer, name, cuda.as_cupy(array))
        return self

    # ---- weights ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A flat ``{name: array}`` of every Parameter and buffer, e.g. ``"l1.W"``.

        The arrays are the layer's own (not copies), on the layer's device. Parameters
        not created yet (an input size left to the first call) are absent.

        Example:
            >>> from zerograd.layers import Linear
            >>> {k: v.shape for k, v in Linear(2, in_size=3).state_dict().items()}
            {'W': (3, 2), 'b': (2,)}
        """
        state = {}
        for key, layer, name in self._entries():
            array = _array_of(layer.__dict__[name])
            if array is not None:
                state[key] = array
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy the arrays of ``state`` (as made by :meth:`state_dict`) into the layer.

        Every name, shape and dtype is checked before anything changes: when one does
        not match, nothing is loaded and a ``ValueError`` lists every mismatch. Arrays
        are copied onto the device each Parameter lives on. A Parameter not created yet
        takes the array's shape, and may be absent from ``state``.

        Args:
            state: a mapping from dotted names to NumPy or CuPy arrays.
            strict: when False, names missing from ``state`` or unknown to the layer are
                ignored (shapes and dtypes are still checked).

        Raises:
            ValueError: naming each missing, unexpected or mismatched entry.

        Example:
            >>> from zerograd.layers import Linear
            >>> a, b = Linear(2, in_size=3), Linear(2, in_size=3)
            >>> b.load_state_dict(a.state_dict())
            >>> bool((a.W.data == b.W.data).all())
            True
        """
        problems = []
        updates = []
        known = set()
        for key, layer, name in self._entries():
            known.add(key)
            current = _array_of(layer.__dict__[name])
            if key not in state:
                if strict and current is not None:
                    problems.append(f"missing {key!r} (shape {current.shape})")
                continue
            value = state[key]
            if not _is_array(value):
                problems.append(f"{key!r}: expected an array, got {type(value).__name__}")
                continue
            if current is not None:
                if value.shape != current.shape:
                    problems.append(
                        f"{key!r}: shape {value.shape} given, the layer has {current.shape}"
                    )
                if value.dtype != current.dtype:
                    problems.append(
                        f"{key!r}: dtype {value.dtype} given, the layer has {current.dtype}"
                    )
            else:
                expected = getattr(layer, "dtype", None)
                if expected is not None and value.dtype != np.dtype(expected):
                    problems.append(
                        f"{key!r}: dtype {value.dtype} given, the layer has {np.dtype(expected)}"
                    )
                shape = layer._expected_shape(name)  # None stands for a size not known yet
                if shape is not None and (
                    len(shape) != value.ndim
                    or any(e is not None and e != v for e, v in zip(shape, value.shape))
                ):
                    wanted = tuple("?" if e is None else e for e in shape)
                    problems.append(
                        f"{key!r}: shape {value.shape} given, the layer expects "
                        f"{wanted}".replace("'?'", "?")
                    )
            updates.append((layer, name, value, current))
        if strict:
            problems += [f"unexpected {key!r} (no such entry in the layer)"
                         for key in state if key not in known]
        if problems:
            listing = "\n  ".join(problems)
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: {len(problems)} mismatch(es); "
                f"nothing was loaded:\n  {listing}\n(compare with list(model.state_dict()); "
                "strict=False ignores missing and unexpected names)"
            )
        for layer, name, value, current in updates:
            _assign(layer, name, value, current)
        for layer in self._layers():
            layer._after_load()

    def save_weights(self, path: str | os.PathLike) -> None:
        """Save every Parameter and buffer to ``path`` as an ``.npz`` archive.

        The file is written exactly at ``path`` (no suffix is added) and atomically: the
        arrays go to a temporary file in the same directory, which replaces ``path``
        only once complete, so a crash mid-save leaves any older file intact. Arrays on
        the GPU are copied to the host; the layer itself stays where it is.

        Example:
            >>> import os, tempfile
            >>> from zerograd.layers import Linear
            >>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
            >>> a, b = Linear(2, in_size=3), Linear(2, in_size=3)
            >>> a.save_weights(path)
            >>> b.load_weights(path)
            >>> bool((a.W.data == b.W.data).all())
            True
        """
        arrays = {key: cuda.as_numpy(array) for key, array in self.state_dict().items()}
        atomic_savez(path, arrays)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load weights saved by :meth:`save_weights` (or by DeZero, whose names use
        ``/`` where ours use ``.``).

        The whole file is read and checked as in :meth:`load_state_dict` before the
        layer changes.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: when the file is truncated or not an ``.npz`` archive, or its
                names, shapes or dtypes do not match the layer.
        """
        path = os.fspath(path)
        try:
            state = {key.replace("/", "."): value for key, value in load_npz(path).items()}
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except NotAnArchiveError:
            raise ValueError(
                f"{type(self).__name__}.load_weights: {path!r} holds a single array (.npy), "
                "not an .npz archive of named weights; save with save_weights()"
            ) from None
        except Exception as e:
            raise ValueError(
                f"{type(self).__name__}.load_weights: cannot read {path!r} as an .npz "
                f"archive ({type(e).__name__}: {e}); the file may be truncated or "
                "corrupt: save the weights again"
            ) from e
        self.load_state_dict(state)


def _array_of(obj: Any):
    """The array behind a registered entry: a Parameter's data, or a buffer itself."""
    return obj.data if isinstance(obj, Variable) else obj


def _assign(layer: Layer, name: str, value: Any, current: Any) -> None:
    """Copy ``value`` into entry ``name`` of ``layer`` (whose array is ``current``)."""
    obj = layer.__dict__[name]
    if current is not None:
        # In place, on the entry's own device, so that aliases of the array see it too.
        on_cpu = isinstance(current, np.ndarray)
        current[...] = cuda.as_numpy(value) if on_cpu else cuda.as_cupy(value)
        return
    # Not created yet: put it on the device the layer was last moved to.
    on_gpu = getattr(layer, "_on_gpu", False)
    array = cuda.as_cupy(value) if on_gpu else cuda.as_numpy(value)
    array = array.copy() if array is value else array
    if isinstance(obj, Variable):
        obj.data = array
    else:
        object.__setattr__(layer, name, array)
