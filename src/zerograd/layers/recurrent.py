"""Recurrent layers: :class:`RNN`, :class:`LSTM`, :class:`GRU`.

Each takes either one time step or a whole sequence:

- ``(N, in_size)``: one step, as in the book; call the layer once per step;
- ``(T, N, in_size)`` (time-major), or ``(N, T, in_size)`` for a layer made with
  ``batch_first=True``: the whole sequence in ONE Function with a hand-written backward
  through time (:func:`~zerograd.functions.lstm_sequence` and its siblings), several
  times faster than stepping. Returns every step's hidden state, ``(T, N, H)`` (or
  ``(N, T, H)``).

Either way the last state stays on the layer (``layer.h``, and ``layer.c`` for the
LSTM) and the next call, of either kind, continues from it until :meth:`reset_state`.
For truncated backpropagation through time, call ``loss.unchain_backward()`` after each
update: the next call then starts from the carried state with no graph into the past.

Example:
    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> lstm = L.LSTM(8)
    >>> lstm(np.zeros((30, 4, 3), dtype=np.float32)).shape   # 30 steps, batch 4
    (30, 4, 8)
    >>> lstm(np.zeros((4, 3), dtype=np.float32)).shape       # then one more step
    (4, 8)
"""

from __future__ import annotations

import math

import numpy as np

import zerograd.functions as F
from zerograd import cuda
from zerograd import random as zrandom
from zerograd.core import as_variable
from zerograd.layers.base import Layer
from zerograd.layers.linear import Linear

__all__ = ["RNN", "LSTM", "GRU"]


def _check_size(layer: str, name: str, value, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
        value <= 0
    ):
        none = " or None" if optional else ""
        raise ValueError(f"{layer}: {name} must be a positive integer{none}, got {value!r}")


class _Recurrent(Layer):
    """What the three layers share: input checks, lazily drawn weights, the state, the
    choice between one step and a whole sequence, and ``batch_first``."""

    def __init__(self, hidden_size: int, in_size: int | None, batch_first: bool):
        super().__init__()
        name = type(self).__name__
        _check_size(name, "hidden_size", hidden_size)
        _check_size(name, "in_size", in_size, optional=True)
        self.hidden_size = int(hidden_size)
        self.batch_first = bool(batch_first)

    def reset_state(self) -> None:
        """Forget the state: the next call starts a new sequence."""
        self.h = None

    def forward(self, x):
        """One step ``(N, in_size) -> (N, H)``, or a sequence ``(T, N, in_size) ->
        (T, N, H)`` (``(N, T, in_size) -> (N, T, H)`` with ``batch_first=True``),
        continuing from the carried state.

        Raises:
            ValueError: for an input that is neither one step nor a sequence of at least
                one step, has another number of features than ``in_size``, or another
                batch size than the carried state (call :meth:`reset_state` first).
        """
        x = as_variable(x)
        if x.ndim == 2:
            self._check_input(x, x.shape[0])
            self._ensure_input_weights(x)
            return self._step(x)
        if x.ndim == 3:
            if self.batch_first:
                x = F.transpose(x, (1, 0, 2))
            self._check_input(x, x.shape[1])
            if x.shape[0] == 0:
                raise ValueError(
                    f"{type(self).__name__}: a sequence needs at least one time step, got "
                    f"an input of shape {self._given(x)}"
                )
            self._ensure_input_weights(x)
            y = self._sequence(x)
            return F.transpose(y, (1, 0, 2)) if self.batch_first else y
        in_size = self.x2h.in_size if self.x2h.in_size is not None else "in_size"
        sequence = (f"(N, T, {in_size}) for a whole sequence (batch_first=True)"
                    if self.batch_first else
                    f"(T, N, {in_size}) for a whole sequence (time-major; batch_first=True "
                    f"takes (N, T, {in_size}))")
        raise ValueError(
            f"{type(self).__name__}: expected an input of shape (N, {in_size}) for one time "
            f"step or {sequence}, got shape {x.shape}"
        )

    def _given(self, x):
        """The shape the caller passed (before a batch-first transpose)."""
        return (x.shape[1], x.shape[0], x.shape[2]) if self.batch_first else x.shape

    def _check_input(self, x, batch: int) -> None:
        name = type(self).__name__
        in_size = self.x2h.in_size
        if in_size is not None and x.shape[-1] != in_size:
            raise ValueError(
                f"{name}: the input has {x.shape[-1]} features per step (shape "
                f"{self._given(x) if x.ndim == 3 else x.shape}) but the layer's in_size is "
                f"{in_size}"
            )
        if self.h is not None and self.h.shape[0] != batch:
            raise ValueError(
                f"{name}: the carried state is for a batch of {self.h.shape[0]}, but the "
                f"input has a batch of {batch} (shape "
                f"{self._given(x) if x.ndim == 3 else x.shape}); call reset_state() to start "
                "a new sequence with another batch size"
            )

    def _ensure_input_weights(self, x) -> None:
        """Draw x2h's weights at the first call, when in_size was left to the input."""
        if self.x2h.W.data is None:
            self._draw(self.x2h, x.shape[-1], cuda.get_array_module(x.data))

    def _draw(self, linear: Linear, in_size: int, xp) -> None:
        """Draw ``linear.W`` for ``in_size`` inputs, as the Linear layer itself does."""
        linear.in_size = in_size
        linear._init_W(xp)


# =========================================================================================
# Elman RNN
# =========================================================================================
class RNN(_Recurrent):
    """Elman RNN: ``h = tanh(x Wx + bx + h_prev Wh)``, one step or a whole sequence.

    ``x2h`` (``x -> H``, with the bias) and ``h2h`` (``h -> H``, no bias) hold the
    weights; ``x2h.W = weight_ih_l0.T``, ``h2h.W = weight_hh_l0.T`` and
    ``x2h.b = bias_ih_l0 + bias_hh_l0`` reproduce ``torch.nn.RNN`` (tanh). ``h2h`` is
    sized by the hidden state (DeZero sized it by the input).

    The state ``h`` is kept between calls until :meth:`reset_state`; for truncated
    backpropagation through time call ``loss.unchain_backward()`` after each update.

    Args:
        hidden_size: size of the hidden state ``H``.
        in_size: input features; None takes ``x.shape[-1]`` at the first call.
        batch_first: a sequence comes as ``(N, T, in_size)`` and returns ``(N, T, H)``.

    Raises:
        ValueError: for sizes that are not positive integers (a call's errors: see
            :meth:`forward`).

    Shape:
        ``(N, in_size) -> (N, H)`` (one step); ``(T, N, in_size) -> (T, N, H)`` (a
        sequence; ``(N, T, in_size) -> (N, T, H)`` with ``batch_first=True``).

    Example:
        >>> rnn = RNN(5)
        >>> x = np.zeros((2, 3), dtype=np.float32)
        >>> rnn(x).shape, rnn(x).shape
        ((2, 5), (2, 5))
        >>> rnn.reset_state()
        >>> rnn(np.zeros((7, 2, 3), dtype=np.float32)).shape, rnn.h.shape
        ((7, 2, 5), (2, 5))
    """

    def __init__(self, hidden_size: int, in_size: int | None = None, batch_first: bool = False):
        super().__init__(hidden_size, in_size, batch_first)
        H = self.hidden_size
        self.x2h = Linear(H, in_size=in_size)
        # In book mode the original's draw order is kept: h2h is drawn at the first step
        # that has a state, when in_size was left to the input.
        lazy = zrandom.book_mode() and in_size is None
        self.h2h = Linear(H, in_size=None if lazy else H, nobias=True)
        self.h = None

    def _step(self, x):
        a = self.x2h(x)
        if self.h is not None:
            a = a + self.h2h(self.h)
        self.h = F.tanh(a)
        return self.h

    def _sequence(self, x):
        W_h = self.h2h.W
        if W_h.data is None:
            xp = cuda.get_array_module(x.data)
            if self.h is not None or x.shape[0] > 1:
                self._draw(self.h2h, self.hidden_size, xp)  # as the second step would
            else:  # one step from no state: the original never uses h2h
                W_h = xp.zeros((self.hidden_size, self.hidden_size), dtype=self.x2h.W.dtype)
        y, h = F.rnn_sequence(x, self.h, self.x2h.W, W_h, self.x2h.b)
        self.h = h
        return y


# =========================================================================================
# LSTM
# =========================================================================================
# The original declares x2f, x2i, x2o, x2u (and h2f, h2i, h2o, h2u) in that order: these
# are the column blocks of our gate order i, f, g (= u), o that they fill, in draw order.
_BOOK_DRAW_ORDER = (1, 0, 3, 2)


class LSTM(_Recurrent):
    """Long short-term memory, one step or a whole sequence.

    The gate products are fused: ``x2h`` (``x -> 4H``, with the bias) and ``h2h``
    (``h -> 4H``, no bias) hold the gates as column blocks in PyTorch's order (input,
    forget, cell candidate, output), so ``x2h.W = weight_ih_l0.T``,
    ``h2h.W = weight_hh_l0.T`` and ``x2h.b = bias_ih_l0 + bias_hh_l0`` reproduce
    ``torch.nn.LSTM`` (and ``nn.LSTMCell``). One step is two products and one Function
    (:func:`~zerograd.functions.lstm`); a sequence is one Function
    (:func:`~zerograd.functions.lstm_sequence`).

    The state ``(h, c)`` is kept between calls until :meth:`reset_state`; for truncated
    backpropagation through time call ``loss.unchain_backward()`` after each update.
    In book mode (``zerograd.random.book_mode()``) the weights are drawn as the
    original's eight Linear layers drew theirs, in their order, so that
    ``np.random.seed(0)`` gives the book's numbers.

    Args:
        hidden_size: size of the hidden state ``H``.
        in_size: input features; None takes ``x.shape[-1]`` at the first call.
        batch_first: a sequence comes as ``(N, T, in_size)`` and returns ``(N, T, H)``.

    Raises:
        ValueError: for sizes that are not positive integers (a call's errors: see
            :meth:`forward`).

    Shape:
        ``(N, in_size) -> (N, H)`` (one step); ``(T, N, in_size) -> (T, N, H)`` (a
        sequence; ``(N, T, in_size) -> (N, T, H)`` with ``batch_first=True``).

    Example:
        >>> lstm = LSTM(4)
        >>> x = np.zeros((2, 3), dtype=np.float32)
        >>> lstm(x).shape, lstm(x).shape, lstm.c.shape
        ((2, 4), (2, 4), (2, 4))
        >>> lstm = LSTM(4, batch_first=True)
        >>> lstm(np.zeros((2, 10, 3), dtype=np.float32)).shape   # (N, T, in_size)
        (2, 10, 4)
    """

    def __init__(self, hidden_size: int, in_size: int | None = None, batch_first: bool = False):
        super().__init__(hidden_size, in_size, batch_first)
        H = self.hidden_size
        if zrandom.book_mode():
            self.x2h = Linear(4 * H)
            self.h2h = Linear(4 * H, nobias=True)
            if in_size is not None:
                self._draw(self.x2h, in_size, np)
            self._draw(self.h2h, H, np)
        else:
            self.x2h = Linear(4 * H, in_size=in_size)
            self.h2h = Linear(4 * H, in_size=H, nobias=True)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget ``h`` and ``c``: the next call starts a new sequence."""
        self.h = None
        self.c = None

    def _draw(self, linear: Linear, in_size: int, xp) -> None:
        if not zrandom.book_mode():
            return super()._draw(linear, in_size, xp)
        # Four (in_size, H) draws, one per gate, as the original's separate layers.
        H = self.hidden_size
        W = xp.empty((in_size, 4 * H), dtype=linear.dtype)
        for k in _BOOK_DRAW_ORDER:
            W[:, k * H:(k + 1) * H] = zrandom.normal(
                (in_size, H), math.sqrt(1.0 / in_size), linear.dtype, xp
            )
        linear.in_size = in_size
        linear.W.data = W

    def _step(self, x):
        a = self.x2h(x)
        if self.h is not None:
            a = a + self.h2h(self.h)
        self.c, self.h = F.lstm(self.c, a)  # no state yet: c = i * g, as a zero state
        return self.h

    def _sequence(self, x):
        y, h, c = F.lstm_sequence(x, self.h, self.c, self.x2h.W, self.h2h.W, self.x2h.b)
        self.h, self.c = h, c
        return y


# =========================================================================================
# GRU
# =========================================================================================
class GRU(_Recurrent):
    """Gated recurrent unit, one step or a whole sequence, with PyTorch's equations:

    ``r = sigmoid(x Wr + br + h Ur + cr)``, ``z = sigmoid(x Wz + bz + h Uz + cz)``,
    ``n = tanh(x Wn + bn + r * (h Un + cn))``, ``h_new = (1 - z) * n + z * h``.

    ``x2h`` (``x -> 3H``) and ``h2h`` (``h -> 3H``), both with a bias, hold the gates as
    column blocks in the order r, z, n; ``x2h.W = weight_ih_l0.T``,
    ``x2h.b = bias_ih_l0``, ``h2h.W = weight_hh_l0.T``, ``h2h.b = bias_hh_l0``
    reproduce ``torch.nn.GRU`` (and ``nn.GRUCell``).

    The state ``h`` is kept between calls until :meth:`reset_state`; for truncated
    backpropagation through time call ``loss.unchain_backward()`` after each update.

    Args:
        hidden_size: size of the hidden state ``H``.
        in_size: input features; None takes ``x.shape[-1]`` at the first call.
        batch_first: a sequence comes as ``(N, T, in_size)`` and returns ``(N, T, H)``.

    Raises:
        ValueError: for sizes that are not positive integers (a call's errors: see
            :meth:`forward`).

    Shape:
        ``(N, in_size) -> (N, H)`` (one step); ``(T, N, in_size) -> (T, N, H)`` (a
        sequence; ``(N, T, in_size) -> (N, T, H)`` with ``batch_first=True``).

    Example:
        >>> gru = GRU(4)
        >>> gru(np.zeros((2, 3), dtype=np.float32)).shape
        (2, 4)
        >>> gru(np.zeros((5, 2, 3), dtype=np.float32)).shape
        (5, 2, 4)
    """

    def __init__(self, hidden_size: int, in_size: int | None = None, batch_first: bool = False):
        super().__init__(hidden_size, in_size, batch_first)
        H = self.hidden_size
        self.x2h = Linear(3 * H, in_size=in_size)
        self.h2h = Linear(3 * H, in_size=H)
        self.h = None

    def _step(self, x):
        if self.h is None:  # h = 0: the h -> 3H product is its bias alone
            self.h = F.gru(None, self.x2h(x), self.h2h.b)
        else:
            self.h = F.gru(self.h, self.x2h(x), self.h2h(self.h))
        return self.h

    def _sequence(self, x):
        y, h = F.gru_sequence(x, self.h, self.x2h.W, self.h2h.W, self.x2h.b, self.h2h.b)
        self.h = h
        return y
