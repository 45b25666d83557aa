"""The base class of every layer and model: :class:`Layer`.

A Layer registers every :class:`~zerograd.Parameter` and every sub-Layer assigned to one
of its attributes, in assignment order, and owns the model-wide operations: ``params()``,
moving between devices and dtypes, ``state_dict``/``load_state_dict``, saving weights,
forward hooks, ``repr`` (the nested layers, as PyTorch prints them) and ``summary``.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TextIO

import numpy as np

from zerograd import cuda
from zerograd.config import no_grad, test_mode
from zerograd.core import Parameter, Variable
from zerograd.utils.io import read_arrays, save_arrays

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
        (None: no constraint). Inside the tuple, an int is a size that must match, None
        a size learnt from the input, and a string a size learnt from the input that
        every entry of this layer naming the same string shares (``("C",)`` for each of
        batch norm's four vectors)."""
        return None

    def _expected_kinds(self, name: str) -> str:
        """The dtype kinds (``np.dtype.kind``) entry ``name`` may have when it is loaded
        before being created: floats for a Parameter, anything for a buffer unless the
        layer says otherwise."""
        return "f" if isinstance(self.__dict__.get(name), Parameter) else ""

    def _after_load(self) -> None:
        """Called after load_state_dict: derive sizes from what was loaded."""

    def __call__(self, *inputs, **kwargs):
        y = self.forward(*inputs, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            for hook in list(hooks.values()):
                result = hook(self, inputs, y)
                if result is not None:
                    y = result
        return y

    def register_forward_hook(self, hook: Callable) -> _HookHandle:
        """Call ``hook(layer, inputs, output)`` after each call of this layer.

        A hook that returns something other than None replaces the output. Returns a
        handle whose ``remove()`` takes the hook off again.

        Example:
            >>> from zerograd.layers import Linear
            >>> layer = Linear(2, in_size=3)
            >>> handle = layer.register_forward_hook(lambda l, x, y: print(y.shape))
            >>> _ = layer(np.zeros((4, 3), dtype=np.float32))
            (4, 2)
            >>> handle.remove()
            >>> _ = layer(np.zeros((4, 3), dtype=np.float32))
        """
        if not callable(hook):
            raise TypeError(
                f"{type(self).__name__}.register_forward_hook: expected a callable "
                f"hook(layer, inputs, output), got {type(hook).__name__}"
            )
        hooks = self.__dict__.get("_forward_hooks")
        if hooks is None:
            hooks = {}
            object.__setattr__(self, "_forward_hooks", hooks)
        handle = _HookHandle(hooks)
        hooks[handle.id] = hook
        return handle

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

    def astype(self, dtype) -> Layer:
        """Cast every floating-point Parameter and buffer to ``dtype``; returns self.

        ``model.astype(np.float16)`` prepares a model for mixed-precision training
        (optimizers keep float32 master weights for float16 parameters: see
        :mod:`zerograd.amp`). Layers that create their weights on the first call (a
        ``dtype`` attribute, as ``Linear``) create them in ``dtype`` too. Integer
        buffers are left alone. Cast before making the optimizer: state it already
        holds for the old arrays is not carried over.

        Raises:
            ValueError: when ``dtype`` is not a floating-point type.

        Example:
            >>> from zerograd.layers import Linear
            >>> layer = Linear(2).astype(np.float16)
            >>> layer(np.ones((1, 3), dtype=np.float16)).dtype
            dtype('float16')
        """
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(
                f"{type(self).__name__}.astype: expected a floating-point dtype such as "
                f"np.float16 or np.float32, got {dtype}"
            )
        for layer in self._layers():
            if "dtype" in layer.__dict__:
                object.__setattr__(layer, "dtype", dtype)
            for name in layer._params:
                obj = layer.__dict__[name]
                if isinstance(obj, Parameter) and obj.data is not None \
                        and obj.data.dtype.kind == "f":
                    obj.data = obj.data.astype(dtype)
            for name in layer._buffers:
                array = layer.__dict__[name]
                if array is not None and array.dtype.kind == "f":
                    object.__setattr__(layer, name, array.astype(dtype))
        return self

    # ---- printing ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this layer's ``repr``: its key
        hyperparameters. Override it to choose; by default, each constructor argument
        stored under its own name whose value is required or differs from the
        default (numbers, strings, dtypes, functions by name).

        Example:
            >>> from zerograd.layers import Linear
            >>> Layer().extra_repr()
            ''
            >>> Linear(3, in_size=2).extra_repr()  # Linear chooses its own
            'in_size=2, out_size=3'
        """
        try:
            signature = inspect.signature(type(self).__init__)
        except (TypeError, ValueError):
            return ""
        parts = []
        for name, arg in list(signature.parameters.items())[1:]:
            if arg.kind in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD) or name not in self.__dict__:
                continue
            value = self.__dict__[name]
            if arg.default is not arg.empty and _same_value(value, arg.default):
                continue
            text = _short_repr(value)
            if text is not None:
                parts.append(f"{name}={text}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        """The layer and its sub-layers, nested as PyTorch prints modules.

        Example:
            >>> from zerograd.layers import Linear
            >>> class Net(Layer):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.fc1 = Linear(100, in_size=784)
            ...         self.fc2 = Linear(10)
            >>> Net()
            Net(
              (fc1): Linear(in_size=784, out_size=100)
              (fc2): Linear(in_size=None, out_size=10)
            )
        """
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name in self._params:
            child = self.__dict__[name]
            if isinstance(child, Layer):
                lines.append(f"({name}): " + repr(child).replace("\n", "\n  "))
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not any(isinstance(self.__dict__[n], Layer)
                                       for n in self._params):
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """``(dotted name, layer)`` for this layer (name ``prefix``) and every sub-layer,
        depth first in registration order, each layer once.

        Example:
            >>> from zerograd.layers import Linear
            >>> class Net(Layer):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.fc = Linear(2)
            >>> [name for name, _ in Net().named_layers()]
            ['', 'fc']
        """
        seen: set[int] = set()

        def walk(layer: Layer, name: str):
            if id(layer) in seen:
                return
            seen.add(id(layer))
            yield name, layer
            for attr in layer._params:
                child = layer.__dict__[attr]
                if isinstance(child, Layer):
                    yield from walk(child, f"{name}.{attr}" if name else attr)

        yield from walk(self, prefix)

    def summary(self, *inputs, file: TextIO | None = None) -> None:
        """Print a table of every layer: name, type, output shape and parameter count.

        Runs one forward pass on ``inputs`` without a graph and in test mode (no
        dropout, batch norm's running statistics untouched), recording each layer's
        output through a temporary forward hook; layers whose weights are created on
        the first call are created by it. The counts are each layer's own
        Parameters (a Parameter shared by two layers counts once, for the first);
        the totals are the sum of every Parameter's size, and of every buffer's (state
        that is saved but not trained, such as running averages). A layer called more
        than once shows its first output shape and ``(xN)``; one not called, ``-``.
        Layers that keep state between calls (RNN, LSTM) keep the pass's state: call
        their ``reset_state()`` afterwards.

        Args:
            inputs: example inputs, as you would call the model.
            file: where to print (``sys.stdout`` by default).

        Example:
            >>> from zerograd.layers import Linear
            >>> class Net(Layer):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.fc1 = Linear(100)
            ...         self.fc2 = Linear(10)
            ...     def forward(self, x):
            ...         return self.fc2(self.fc1(x))
            >>> Net().summary(np.zeros((32, 784), dtype=np.float32))
            Name     Type    Output shape  Parameters
            -----------------------------------------
            (model)  Net     (32, 10)               0
            fc1      Linear  (32, 100)         78,500
            fc2      Linear  (32, 10)           1,010
            -----------------------------------------
            Parameters: 79,510 (310.6 KiB), all trainable
            Buffers: 0
        """
        layers = list(self.named_layers())
        outputs: dict[int, list] = {id(layer): [] for _, layer in layers}

        def record(layer, _inputs, y):
            outputs[id(layer)].append(y)

        handles = [layer.register_forward_hook(record) for _, layer in layers]
        try:
            with no_grad(), test_mode():
                self(*inputs)
        finally:
            for handle in handles:
                handle.remove()

        counted: set[int] = set()
        rows = []
        for name, layer in layers:
            own = 0
            for attr in layer._params:
                obj = layer.__dict__[attr]
                if isinstance(obj, Parameter) and obj.data is not None \
                        and id(obj) not in counted:
                    counted.add(id(obj))
                    own += obj.data.size
            seen = outputs[id(layer)]
            shape = _shapes(seen[0]) if seen else "-"
            if len(seen) > 1:
                shape += f" (x{len(seen)})"
            rows.append((name or "(model)", type(layer).__name__, shape, f"{own:,}"))
        params = [p for p in self.params() if p.data is not None]
        n_params = sum(p.data.size for p in params)
        n_bytes = sum(p.data.nbytes for p in params)
        n_buffers = sum(v.size for k, v in self.state_dict().items()
                        if not isinstance(_entry(self, k), Parameter))
        header = ("Name", "Type", "Output shape", "Parameters")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

        def line(row):
            cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3].rjust(widths[3])]
            return "  ".join(cells)

        rule = "-" * len(line(header))
        text = [line(header), rule, *(line(r) for r in rows), rule,
                f"Parameters: {n_params:,} ({_bytes(n_bytes)}), all trainable",
                f"Buffers: {n_buffers:,}"]
        print("\n".join(text), file=sys.stdout if file is None else file)

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
        self.apply_state_dict(self.check_state_dict(state, strict))

    def check_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> list:
        """The first half of :meth:`load_state_dict`: check ``state`` and return the
        plan that :meth:`apply_state_dict` carries out, changing nothing.

        Raises:
            ValueError: listing every mismatch, as :meth:`load_state_dict`.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict of "
                            f"arrays as made by state_dict(), got {type(state).__name__}")
        problems = []
        updates = []
        known = set()
        named: dict[tuple[int, str], tuple[int, str]] = {}  # (layer, size name) -> size, key
        for key, layer, name in self._entries():
            known.add(key)
            current = _array_of(layer.__dict__[name])
            if key not in state:
                if strict and current is not None:
                    problems.append(f"missing {key!r} (shape {current.shape})")
                if current is not None:
                    problems += _bind_sizes(layer, name, key, current.shape, named)
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
                problems += _bind_sizes(layer, name, key, current.shape, named)
            else:
                problems += _check_new_entry(layer, name, key, value, named)
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
        return updates

    def apply_state_dict(self, updates: list) -> None:
        """The second half of :meth:`load_state_dict`: copy in the arrays planned by
        :meth:`check_state_dict` (it cannot fail)."""
        for layer, name, value, current in updates:
            _assign(layer, name, value, current)
        for layer in self._layers():
            layer._after_load()

    def save_weights(self, path: str | os.PathLike) -> None:
        """Save every Parameter and buffer to ``path``, in the format its suffix names
        (an ``.npz`` archive; see ``zerograd.utils.io.save_arrays``).

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
        save_arrays(path, arrays)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load weights saved by :meth:`save_weights` (or by DeZero, whose names use
        ``/`` where ours use ``.``).

        The whole file is read and checked as in :meth:`load_state_dict` before the
        layer changes.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: when the file is empty, truncated, corrupt or not of the format
                its suffix names (``.npz`` or ``.safetensors``), or its names, shapes or
                dtypes do not match the layer.
        """
        arrays = read_arrays(path, f"{type(self).__name__}.load_weights",
                             "save the weights again with save_weights()")
        state = {key.replace("/", "."): value for key, value in arrays.items()}
        self.load_state_dict(state)


def _array_of(obj: Any):
    """The array behind a registered entry: a Parameter's data, or a buffer itself."""
    return obj.data if isinstance(obj, Variable) else obj


def _check_new_entry(layer: Layer, name: str, key: str, value: Any, named: dict) -> list:
    """What is wrong with ``value`` for entry ``name`` of ``layer``, not created yet."""
    problems = []
    kinds = layer._expected_kinds(name)
    expected = getattr(layer, "dtype", None)
    if kinds and value.dtype.kind not in kinds:
        wanted = "a floating-point dtype" if kinds == "f" else f"a dtype of kind {kinds!r}"
        problems.append(f"{key!r}: dtype {value.dtype} given, the layer expects {wanted}")
    elif expected is not None and value.dtype != np.dtype(expected):
        problems.append(
            f"{key!r}: dtype {value.dtype} given, the layer has {np.dtype(expected)}")
    shape = layer._expected_shape(name)
    if shape is not None and (
        len(shape) != value.ndim
        or any(isinstance(e, int) and e != v for e, v in zip(shape, value.shape))
    ):
        wanted = ", ".join("?" if not isinstance(e, int) else str(e) for e in shape)
        wanted = f"({wanted},)" if len(shape) == 1 else f"({wanted})"
        problems.append(f"{key!r}: shape {value.shape} given, the layer expects {wanted}")
    elif shape is not None:
        problems += _bind_sizes(layer, name, key, value.shape, named)
    return problems


def _bind_sizes(layer: Layer, name: str, key: str, shape: tuple, named: dict) -> list:
    """Record the sizes that ``shape`` gives the named sizes of entry ``name`` (see
    :meth:`Layer._expected_shape`); what disagrees with an earlier entry's."""
    expected = layer._expected_shape(name)
    if expected is None or len(expected) != len(shape):
        return []
    problems = []
    for axis, (size_name, size) in enumerate(zip(expected, shape)):
        if not isinstance(size_name, str):
            continue
        bound = named.setdefault((id(layer), size_name), (size, key))
        if bound[0] != size:
            problems.append(f"{key!r}: size {size} on axis {axis}, but {bound[1]!r} has "
                            f"{bound[0]} there; they must agree")
    return problems


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


class _HookHandle:
    """Returned by :meth:`Layer.register_forward_hook`: ``remove()`` takes the hook off."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self.hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)


def _same_value(value: Any, default: Any) -> bool:
    """Whether a stored constructor argument still has its default value."""
    if value is default:
        return True
    try:
        if _is_dtype_like(value) and _is_dtype_like(default):
            return np.dtype(value) == np.dtype(default)
        return type(value) is type(default) and bool(value == default)
    except Exception:
        return False


def _is_dtype_like(value: Any) -> bool:
    return isinstance(value, np.dtype) or (isinstance(value, type)
                                           and issubclass(value, np.generic))


def _short_repr(value: Any) -> str | None:
    """How a hyperparameter reads in a repr, or None to leave it out."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return repr(value.item())
    if _is_dtype_like(value):
        return str(np.dtype(value))
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        items = [_short_repr(v) for v in value]
        if None not in items:
            inner = ", ".join(items) + ("," if len(items) == 1 and isinstance(value, tuple)
                                        else "")
            return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
        return None
    if callable(value) and not isinstance(value, Layer) and hasattr(value, "__name__"):
        return value.__name__
    return None


def _shapes(y: Any) -> str:
    """The shape of an output (or of each output of a tuple or list)."""
    if isinstance(y, (tuple, list)):
        return ", ".join(_shapes(v) for v in y)
    shape = getattr(y, "shape", None)
    return str(tuple(shape)) if shape is not None else type(y).__name__


def _entry(layer: Layer, key: str) -> Any:
    """The registered object (Parameter or buffer array) behind a dotted name."""
    *path, name = key.split(".")
    for attr in path:
        layer = layer.__dict__[attr]
    return layer.__dict__[name]


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
