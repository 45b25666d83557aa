"""Recurrent layers: :class:`RNN`, :class:`LSTM`, :class:`GRU`, one time step per call."""

from __future__ import annotations

import zerograd.functions as F
from zerograd import cuda
from zerograd.config import Config
from zerograd.core import Function
from zerograd.layers.base import Layer
from zerograd.layers.linear import Linear

__all__ = ["RNN", "LSTM", "GRU"]


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
