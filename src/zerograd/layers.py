"""Layers: objects that own Parameters and compute with zerograd functions.

A :class:`Layer` registers every :class:`~zerograd.Parameter` and every sub-Layer
assigned to one of its attributes, in assignment order, so ``params()`` walks a whole
model. Layers whose input size is left as None create their weights on the first call,
from the shape of the input. Weights are drawn from this module's NumPy Generator;
:func:`seed` makes them reproducible.

Example:
    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> L.seed(0)
    >>> layer = L.Linear(3)
    >>> y = layer(np.ones((2, 4), dtype=np.float32))
    >>> y.shape, layer.W.shape, y.dtype
    ((2, 3), (4, 3), dtype('float32'))
    >>> [p.name for p in layer.params()]
    ['W', 'b']
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

import zerograd.functions as F
from zerograd import cuda
from zerograd.config import Config
from zerograd.core import Function, Parameter, Variable
from zerograd.utils.io import NotAnArchiveError, atomic_savez, load_npz
from zerograd.utils.shape import pair

__all__ = [
    "seed",
    "Layer",
    "Linear",
    "Conv2d",
    "Deconv2d",
    "RNN",
    "LSTM",
    "GRU",
    "EmbedID",
    "BatchNorm",
    "LayerNorm",
    "Dropout",
    "MultiHeadAttention",
    "TransformerBlock",
]


# =========================================================================================
# Random initialisation
# =========================================================================================
_rng = np.random.default_rng()


def seed(n: int | None) -> None:
    """Reseed the Generator that draws the initial weights of every layer.

    Weights are always drawn on the CPU, so a seeded model starts from the same values
    on NumPy and on CuPy.

    Example:
        >>> seed(1); a = Linear(2, in_size=2).W.data
        >>> seed(1); b = Linear(2, in_size=2).W.data
        >>> bool((a == b).all())
        True
    """
    global _rng
    _rng = np.random.default_rng(n)


def _normal(shape: tuple, scale: float, dtype, xp=np):
    """Normal(0, scale^2) samples of ``dtype``, on the device of ``xp``."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        w = _rng.standard_normal(shape, dtype=dtype)
    else:
        w = _rng.standard_normal(shape).astype(dtype)
    if scale != 1.0:
        w *= scale  # a Python float: float32 stays float32
    return w if xp is np else xp.asarray(w)


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


# =========================================================================================
# Fully connected, convolution, embedding
# =========================================================================================
class Linear(Layer):
    """Fully connected layer ``y = x W + b``, with ``W`` of shape ``(in_size, out_size)``.

    Args:
        out_size: number of output features.
        nobias: leave out ``b``.
        dtype: dtype of the parameters.
        in_size: number of input features; None takes ``x.shape[-1]`` at the first call.

    ``W`` starts as normal samples scaled by ``sqrt(1 / in_size)``, ``b`` as zeros.

    Shape:
        ``(..., in_size) -> (..., out_size)``

    Example:
        >>> layer = Linear(4)
        >>> layer(np.zeros((2, 3), dtype=np.float32)).shape
        (2, 4)
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype=np.float32,
                 in_size: int | None = None):
        super().__init__()
        self.in_size = in_size
        self.out_size = out_size
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if in_size is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(out_size, dtype=dtype), name="b")

    def _init_W(self, xp=np) -> None:
        self.W.data = _normal((self.in_size, self.out_size), math.sqrt(1.0 / self.in_size),
                              self.dtype, xp)

    def _expected_shape(self, name):
        return (self.in_size, self.out_size) if name == "W" else None

    def _after_load(self):
        if self.W.data is not None:
            self.in_size = self.W.data.shape[0]

    def forward(self, x):
        if self.W.data is None:
            self.in_size = x.shape[-1]
            self._init_W(cuda.get_array_module(x))
        return F.linear(x, self.W, self.b)


class _Convolution(Layer):
    """What Conv2d and Deconv2d share: hyperparameters, a lazily sized ``W``, ``b``."""

    def __init__(self, out_channels: int, kernel_size, stride=1, pad=0, nobias: bool = False,
                 dtype=np.float32, in_channels: int | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(out_channels, dtype=dtype), name="b")

    def _W_shape(self, in_channels: int | None, kh: int, kw: int) -> tuple:
        raise NotImplementedError

    def _expected_shape(self, name):
        return self._W_shape(self.in_channels, *pair(self.kernel_size)) if name == "W" else None

    def _after_load(self):
        if self.W.data is not None:
            self.in_channels = self.W.data.shape[self._W_shape(None, 1, 1).index(None)]

    def _init_W(self, xp=np) -> None:
        kh, kw = pair(self.kernel_size)
        c = self.in_channels
        scale = math.sqrt(1.0 / (c * kh * kw))
        self.W.data = _normal(self._W_shape(c, kh, kw), scale, self.dtype, xp)

    def forward(self, x):
        if self.W.data is None:
            self.in_channels = x.shape[1]
            self._init_W(cuda.get_array_module(x))
        return self._function(x, self.W, self.b, self.stride, self.pad)


class Conv2d(_Convolution):
    """2-D convolution with ``W`` of shape ``(out_channels, in_channels, kh, kw)``.

    Args:
        out_channels: number of output channels.
        kernel_size: an int or a pair ``(kh, kw)``.
        stride: an int or a pair.
        pad: an int or a pair (zero padding on each side).
        nobias: leave out ``b``.
        dtype: dtype of the parameters.
        in_channels: None takes ``x.shape[1]`` at the first call.

    ``W`` starts as normal samples scaled by ``sqrt(1 / (in_channels * kh * kw))``.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H_out, W_out)``

    Example:
        >>> conv = Conv2d(8, kernel_size=3, pad=1)
        >>> conv(np.zeros((2, 3, 5, 5), dtype=np.float32)).shape
        (2, 8, 5, 5)
    """

    _function = staticmethod(F.conv2d)

    def _W_shape(self, in_channels, kh, kw):
        return (self.out_channels, in_channels, kh, kw)


class Deconv2d(_Convolution):
    """2-D transposed convolution with ``W`` of shape ``(in_channels, out_channels, kh, kw)``.

    Args:
        out_channels: number of output channels.
        kernel_size: an int or a pair ``(kh, kw)``.
        stride: an int or a pair.
        pad: an int or a pair.
        nobias: leave out ``b``.
        dtype: dtype of the parameters.
        in_channels: None takes ``x.shape[1]`` at the first call.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, s*(H-1)+kh-2p, s*(W-1)+kw-2p)``

    Example:
        >>> deconv = Deconv2d(4, kernel_size=2, stride=2)
        >>> deconv(np.zeros((1, 3, 5, 5), dtype=np.float32)).shape
        (1, 4, 10, 10)
    """

    _function = staticmethod(F.deconv2d)

    def _W_shape(self, in_channels, kh, kw):
        return (in_channels, self.out_channels, kh, kw)


class EmbedID(Layer):
    """A lookup table: row ``i`` of ``W`` (shape ``(in_size, out_size)``) for each id ``i``.

    Args:
        in_size: number of ids (the vocabulary size).
        out_size: length of each embedding vector.
        dtype: dtype of ``W``, which starts as standard normal samples.

    Shape:
        integer ids ``(...) -> (..., out_size)``

    Example:
        >>> embed = EmbedID(10, 4)
        >>> embed(np.array([[1, 2, 3]])).shape
        (1, 3, 4)
    """

    def __init__(self, in_size: int, out_size: int, dtype=np.float32):
        super().__init__()
        self.dtype = dtype
        self.W = Parameter(_normal((in_size, out_size), 1.0, dtype), name="W")

    def forward(self, x):
        return F.embed_id(x, self.W)


# =========================================================================================
# Recurrent layers
# =========================================================================================
class RNN(Layer):
    """Elman RNN: ``h = tanh(x Wx + bx + h_prev Wh)``, one time step per call.

    The hidden state is kept between calls until :meth:`reset_state`. For truncated
    backpropagation through time call ``loss.unchain_backward()`` after each update.

    Args:
        hidden_size: size of the hidden state.
        in_size: input features; None takes ``x.shape[-1]`` at the first call.

    Shape:
        ``(N, in_size) -> (N, hidden_size)``

    Example:
        >>> rnn = RNN(5)
        >>> x = np.zeros((2, 3), dtype=np.float32)
        >>> rnn(x).shape, rnn(x).shape
        ((2, 5), (2, 5))
        >>> rnn.reset_state()
    """

    def __init__(self, hidden_size: int, in_size: int | None = None):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = Linear(hidden_size, in_size=in_size)
        self.h2h = Linear(hidden_size, in_size=hidden_size, nobias=True)
        self.h = None

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts a new sequence."""
        self.h = None

    def forward(self, x):
        if self.h is None:
            h = F.tanh(self.x2h(x))
        else:
            h = F.tanh(self.x2h(x) + self.h2h(self.h))
        self.h = h
        return h


def _sigmoid_array(x):
    """Sigmoid on an array, without overflow (and in x's dtype)."""
    xp = cuda.get_array_module(x)
    return 0.5 * xp.tanh(0.5 * x) + 0.5


class _LSTMCell(Function):
    """The gate nonlinearities and cell update of an LSTM, fused into one Function.

    Inputs: the gate pre-activations ``a`` (``(N, 4H)``, gates in the order input,
    forget, cell candidate, output, as PyTorch's) and the previous cell ``c``. Outputs
    ``(h, c_new)`` with ``c_new = f*c + i*g`` and ``h = o*tanh(c_new)``.
    """

    def forward(self, a, c):
        xp = cuda.get_array_module(a)
        H = c.shape[-1]
        i = _sigmoid_array(a[..., :H])
        f = _sigmoid_array(a[..., H:2 * H])
        g = xp.tanh(a[..., 2 * H:3 * H])
        o = _sigmoid_array(a[..., 3 * H:])
        c_new = f * c + i * g
        tc = xp.tanh(c_new)
        self.gates = (i, f, g, o, tc)
        return o * tc, c_new

    def backward(self, gh, gc):
        if Config.enable_backprop:  # a graph is wanted (double backprop): use Variables
            return self._backward_graph(gh, gc)
        a, c = self.inputs
        i, f, g, o, tc = self.gates
        gh, gc = gh.data, gc.data
        xp = cuda.get_array_module(gh)
        H = tc.shape[-1]
        dc = gc + gh * o * (1 - tc * tc)  # d/dc_new of h = o * (1 - tanh(c_new)^2)
        ga = xp.empty(a.shape, dtype=a.dtype)
        ga[..., :H] = dc * g * i * (1 - i)  # d/da_i: dc * g * sigmoid'
        ga[..., H:2 * H] = dc * c.data * f * (1 - f)  # d/da_f: dc * c * sigmoid'
        ga[..., 2 * H:3 * H] = dc * i * (1 - g * g)  # d/da_g: dc * i * tanh'
        ga[..., 3 * H:] = gh * tc * o * (1 - o)  # d/da_o: gh * tanh(c_new) * sigmoid'
        gc_prev = dc * f if c.requires_grad else None  # d/dc c_new = f
        return ga, gc_prev

    def _backward_graph(self, gh, gc):
        # The same derivatives as in backward, written with Functions so that they can be
        # differentiated again.
        a, c = self.inputs
        ai, af, ag, ao = F.split(a, 4, axis=-1)
        i, f, o = F.sigmoid(ai), F.sigmoid(af), F.sigmoid(ao)
        g = F.tanh(ag)
        tc = F.tanh(f * c + i * g)
        dc = gc + gh * o * (1 - tc * tc)
        ga = F.concat(
            [dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g),
             gh * tc * o * (1 - o)],
            axis=-1,
        )
        return ga, dc * f


class LSTM(Layer):
    """Long short-term memory, one time step per call.

    The four gate products are fused: one ``x -> 4H`` and one ``h -> 4H`` matrix product
    per step, then one Function for all gate nonlinearities and the cell update. The
    columns of ``x2h.W`` and ``h2h.W`` hold the gates in PyTorch's order (input, forget,
    cell candidate, output), so ``x2h.W = weight_ih.T``, ``h2h.W = weight_hh.T`` and
    ``x2h.b = bias_ih + bias_hh`` reproduce ``torch.nn.LSTMCell``.

    The state ``(h, c)`` is kept between calls until :meth:`reset_state`; for truncated
    backpropagation through time call ``loss.unchain_backward()`` after each update.

    Args:
        hidden_size: size of the hidden state ``H``.
        in_size: input features; None takes ``x.shape[-1]`` at the first call.

    Shape:
        ``(N, in_size) -> (N, hidden_size)``

    Example:
        >>> lstm = LSTM(4)
        >>> x = np.zeros((2, 3), dtype=np.float32)
        >>> lstm(x).shape, lstm(x).shape, lstm.c.shape
        ((2, 4), (2, 4), (2, 4))
    """

    def __init__(self, hidden_size: int, in_size: int | None = None):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = Linear(4 * hidden_size, in_size=in_size)
        self.h2h = Linear(4 * hidden_size, in_size=hidden_size, nobias=True)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget ``h`` and ``c``: the next call starts a new sequence."""
        self.h = None
        self.c = None

    def forward(self, x):
        a = self.x2h(x)
        if self.h is not None:
            a = a + self.h2h(self.h)
        c = self.c
        if c is None:
            xp = cuda.get_array_module(a.data)
            c = xp.zeros(a.shape[:-1] + (self.hidden_size,), dtype=a.dtype)
        h, c_new = _LSTMCell()(a, c)
        self.h, self.c = h, c_new
        return h


class GRU(Layer):
    """Gated recurrent unit, one time step per call, with PyTorch's equations:

    ``r = sigmoid(x Wr + h Ur)``, ``z = sigmoid(x Wz + h Uz)``,
    ``n = tanh(x Wn + r * (h Un + bn))``, ``h_new = (1 - z) * n + z * h``.

    ``x2h`` (``x -> 3H``) and ``h2h`` (``h -> 3H``) hold the gates in the order r, z, n;
    ``x2h.W = weight_ih.T``, ``x2h.b = bias_ih``, ``h2h.W = weight_hh.T``,
    ``h2h.b = bias_hh`` reproduce ``torch.nn.GRUCell``.

    Args:
        hidden_size: size of the hidden state ``H``.
        in_size: input features; None takes ``x.shape[-1]`` at the first call.

    Shape:
        ``(N, in_size) -> (N, hidden_size)``

    Example:
        >>> gru = GRU(4)
        >>> gru(np.zeros((2, 3), dtype=np.float32)).shape
        (2, 4)
    """

    def __init__(self, hidden_size: int, in_size: int | None = None):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = Linear(3 * hidden_size, in_size=in_size)
        self.h2h = Linear(3 * hidden_size, in_size=hidden_size)
        self.h = None

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts a new sequence."""
        self.h = None

    def forward(self, x):
        xr, xz, xn = F.split(self.x2h(x), 3, axis=-1)
        if self.h is None:  # h = 0: the h -> 3H product is just its bias
            hr, hz, hn = F.split(self.h2h.b, 3, axis=-1)
        else:
            hr, hz, hn = F.split(self.h2h(self.h), 3, axis=-1)
        r = F.sigmoid(xr + hr)
        z = F.sigmoid(xz + hz)
        n = F.tanh(xn + r * hn)
        h = n - z * n if self.h is None else n + z * (self.h - n)
        self.h = h
        return h


# =========================================================================================
# Normalisation and regularisation
# =========================================================================================
class BatchNorm(Layer):
    """Batch normalisation over axis 1 (features of ``(N, C)``, channels of
    ``(N, C, H, W)``), with learnt scale ``gamma`` and shift ``beta``.

    In training (``Config.train``) it normalises with the batch statistics and updates
    the running averages ``avg_mean`` and ``avg_var``; in test mode it uses those
    averages. The averages are buffers: saved with the weights and moved by ``to_gpu``.
    Sizes are taken from the first input.

    Args:
        decay: weight of the old running average at each update.
        eps: added to the variance.

    Shape:
        ``(N, C) -> (N, C)`` or ``(N, C, H, W) -> (N, C, H, W)``

    Example:
        >>> bn = BatchNorm()
        >>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> bn(x).shape, list(bn.state_dict())
        ((3, 2), ['gamma', 'beta', 'avg_mean', 'avg_var'])
    """

    def __init__(self, decay: float = 0.9, eps: float = 2e-5):
        super().__init__()
        self.decay = decay
        self.eps = eps
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.register_buffer("avg_mean", None)
        self.register_buffer("avg_var", None)

    def _init_params(self, x) -> None:
        xp = cuda.get_array_module(x)
        size, dtype = x.shape[1], x.dtype
        if self.gamma.data is None:
            self.gamma.data = xp.ones(size, dtype=dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(size, dtype=dtype)
        if self.avg_mean is None:
            self.avg_mean = xp.zeros(size, dtype=dtype)
        if self.avg_var is None:
            self.avg_var = xp.ones(size, dtype=dtype)

    def forward(self, x):
        if self.avg_mean is None or self.gamma.data is None:
            self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean, self.avg_var,
                            decay=self.decay, eps=self.eps)


class LayerNorm(Layer):
    """Layer normalisation over the last axis, with learnt ``gamma`` and ``beta``.

    Args:
        size: length of the last axis; None takes it from the first input.
        eps: added to the variance.

    Shape:
        ``(..., size) -> (..., size)``

    Example:
        >>> ln = LayerNorm()
        >>> y = ln(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
        >>> y.shape, y.dtype
        ((1, 3), dtype('float32'))
    """

    def __init__(self, size: int | None = None, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.eps = eps
        self.dtype = dtype
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        if size is not None:
            self._init_params(size, np)

    def _init_params(self, size: int, xp) -> None:
        self.gamma.data = xp.ones(size, dtype=self.dtype)
        self.beta.data = xp.zeros(size, dtype=self.dtype)

    def forward(self, x):
        if self.gamma.data is None:
            self._init_params(x.shape[-1], cuda.get_array_module(x))
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps)


class Dropout(Layer):
    """Inverted dropout: zero a ``dropout_ratio`` fraction of the elements in training
    and scale the rest by ``1 / (1 - dropout_ratio)``; identity in test mode.

    Shape:
        any shape, unchanged.

    Example:
        >>> from zerograd import test_mode
        >>> with test_mode():
        ...     Dropout(0.5)(np.ones(3, dtype=np.float32))
        variable([1. 1. 1.])
    """

    def __init__(self, dropout_ratio: float = 0.5):
        super().__init__()
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        return F.dropout(x, self.dropout_ratio)


# =========================================================================================
# Attention
# =========================================================================================
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product self-attention on batch-first sequences.

    The query, key and value projections are one fused ``E -> 3E`` product (``qkv``,
    columns q, k, v), followed by the output projection ``out``. With
    ``qkv.W = in_proj_weight.T``, ``qkv.b = in_proj_bias``, ``out.W = out_proj.weight.T``
    and ``out.b = out_proj.bias`` it reproduces ``torch.nn.MultiheadAttention(E, heads,
    batch_first=True)`` on ``(x, x, x)``.

    Args:
        embed_dim: features per position ``E``; a multiple of ``num_heads``.
        num_heads: number of heads.
        causal: position ``t`` attends only to positions ``<= t`` (for language models).
        dropout_ratio: dropout on the attention weights in training.
        nobias: leave out the projection biases.

    Shape:
        ``(N, T, E) -> (N, T, E)``

    Raises:
        ValueError: when ``embed_dim`` is not a multiple of ``num_heads``, or the input
            is not ``(N, T, embed_dim)``.

    Example:
        >>> attn = MultiHeadAttention(8, num_heads=2, causal=True)
        >>> attn(np.zeros((2, 5, 8), dtype=np.float32)).shape
        (2, 5, 8)
    """

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False,
                 dropout_ratio: float = 0.0, nobias: bool = False, dtype=np.float32):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"MultiHeadAttention: embed_dim={embed_dim} is not a multiple of "
                f"num_heads={num_heads}; choose sizes with embed_dim % num_heads == 0"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.causal = causal
        self.dropout_ratio = dropout_ratio
        self.qkv = Linear(3 * embed_dim, nobias=nobias, dtype=dtype, in_size=embed_dim)
        self.out = Linear(embed_dim, nobias=nobias, dtype=dtype, in_size=embed_dim)

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"MultiHeadAttention: expected x of shape (N, T, {self.embed_dim}), got "
                f"{tuple(x.shape)}; inputs are batch-first"
            )
        N, T, E = x.shape
        H = self.num_heads
        D = E // H
        q, k, v = (
            F.transpose(F.reshape(y, (N, T, H, D)), (0, 2, 1, 3))
            for y in F.split(self.qkv(x), 3, axis=-1)
        )
        scores = F.matmul(q * (1.0 / math.sqrt(D)), F.transpose(k, (0, 1, 3, 2)))
        if self.causal:
            scores = scores + _causal_mask(T, scores.data)
        weights = F.softmax(scores, axis=-1)  # (N, H, T, T)
        if self.dropout_ratio:
            weights = F.dropout(weights, self.dropout_ratio)
        y = F.transpose(F.matmul(weights, v), (0, 2, 1, 3))
        return self.out(F.reshape(y, (N, T, E)))


def _causal_mask(T: int, like):
    """A (T, T) additive mask: 0 on and below the diagonal, a huge negative above."""
    xp = cuda.get_array_module(like)
    above = xp.triu(xp.ones((T, T), dtype=bool), 1)
    # The most negative finite value rather than -inf: softmax still gives exact zeros
    # and anomaly detection does not see an infinity.
    return xp.where(above, xp.finfo(like.dtype).min, 0).astype(like.dtype)


class TransformerBlock(Layer):
    """A pre-norm Transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``.

    Args:
        embed_dim: features per position ``E``.
        num_heads: attention heads.
        hidden_size: width of the two-layer MLP; ``4 * embed_dim`` by default.
        causal: causal self-attention (for language models).
        dropout_ratio: dropout on the attention weights and on both residual branches.
        activation: the MLP's nonlinearity; ``F.gelu`` by default.

    Shape:
        ``(N, T, E) -> (N, T, E)``

    Example:
        >>> block = TransformerBlock(8, num_heads=2, causal=True)
        >>> block(np.zeros((2, 5, 8), dtype=np.float32)).shape
        (2, 5, 8)
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden_size: int | None = None,
                 causal: bool = False, dropout_ratio: float = 0.0, activation=None,
                 dtype=np.float32):
        super().__init__()
        hidden_size = 4 * embed_dim if hidden_size is None else hidden_size
        self.dropout_ratio = dropout_ratio
        self.activation = activation
        self.ln1 = LayerNorm(embed_dim, dtype=dtype)
        self.attn = MultiHeadAttention(embed_dim, num_heads, causal=causal,
                                       dropout_ratio=dropout_ratio, dtype=dtype)
        self.ln2 = LayerNorm(embed_dim, dtype=dtype)
        self.fc1 = Linear(hidden_size, dtype=dtype, in_size=embed_dim)
        self.fc2 = Linear(embed_dim, dtype=dtype, in_size=hidden_size)

    def _drop(self, x):
        return F.dropout(x, self.dropout_ratio) if self.dropout_ratio else x

    def forward(self, x):
        activation = F.gelu if self.activation is None else self.activation
        x = x + self._drop(self.attn(self.ln1(x)))
        return x + self._drop(self.fc2(activation(self.fc1(self.ln2(x)))))
