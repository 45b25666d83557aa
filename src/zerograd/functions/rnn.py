"""Recurrent networks: the LSTM and GRU cells (one time step) and whole sequences.

Cells, one time step each, on gate pre-activations that the caller computes:

- :func:`lstm` ``(c_prev, x) -> (c, h)``, as Chainer's ``F.lstm``, with the gates in
  PyTorch's order (input, forget, cell candidate, output);
- :func:`gru` ``(h_prev, ax, ah) -> h``, PyTorch's GRU equations, gates in the order
  reset, update, new.

Whole sequences, each ONE Function over the time loop (:func:`lstm_sequence`,
:func:`gru_sequence`, :func:`rnn_sequence`): the input projection of every step in one
matrix product, one product with the recurrent weights per step, the activations of all
steps in preallocated buffers, and a hand-written backward through time that sums each
weight gradient in one product (``dW_x = X^T dA``, ``dW_h = H_prev^T dA``).

Weights are ``(in, out)`` as in :func:`~zerograd.functions.linear`, so the gate blocks
are column blocks: ``W_x = weight_ih.T`` and ``W_h = weight_hh.T`` for PyTorch's
``nn.LSTM``/``nn.GRU``/``nn.RNN`` (single layer, one direction).

Every gradient is written once. Each cell's derivative is a gradient Function whose
forward is the array formula and whose backward (the second derivative) is written with
Functions; each sequence's backward is a gradient Function whose forward is the array
recurrence and whose backward differentiates the same recurrence composed from the
cells, step by step (slow, exact). So derivatives of any order work everywhere.

Gates are computed as ``sigmoid(x) = 1 / (1 + exp(-x))`` and ``tanh(x) = 2 sigmoid(2x)
- 1``, in place: NumPy vectorises ``exp`` but not ``tanh`` on most CPUs, and measured on
(32, 400) float32 arrays exp took 40-45% of tanh's time, which made this form about
twice as fast as ``0.5 tanh(x / 2) + 0.5``. ``exp(-x)`` overflows to inf for very
negative x and the sigmoid is then exactly 0, as it should be (the warning is silenced).
The factors -1 and -2 are exact in binary, so the sequence functions fold them into the
weights and change no rounding.

Example:
    >>> import numpy as np
    >>> x = np.zeros((5, 2, 3), dtype=np.float32)        # (T, N, in_size)
    >>> W_x = np.ones((3, 16), dtype=np.float32)          # (in_size, 4H), H = 4
    >>> W_h = np.ones((4, 16), dtype=np.float32)          # (H, 4H)
    >>> y, h, c = lstm_sequence(x, None, None, W_x, W_h)  # zero initial state
    >>> y.shape, h.shape, c.shape
    ((5, 2, 4), (2, 4), (2, 4))
"""

from __future__ import annotations

import numpy as np

from zerograd.core import Function, Variable, as_dtype, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions._arrays import as_float
from zerograd.functions.activation import sigmoid
from zerograd.functions.array import concat, reshape, split, stack, transpose
from zerograd.functions.array import sum as _sum
from zerograd.functions.gradient import apply
from zerograd.functions.linalg import linear, matmul
from zerograd.functions.math import tanh

__all__ = ["lstm", "gru", "lstm_sequence", "gru_sequence", "rnn_sequence"]


def _no_overflow_warning():
    """exp overflowing to inf is how a gate saturates: no warning for it."""
    return np.errstate(over="ignore")


def _sigmoid_of_negated(u):
    """In place: ``u = -x`` becomes ``sigmoid(x) = 1 / (1 + exp(-x))``. Call it under
    :func:`_no_overflow_warning`."""
    xp = get_array_module(u)
    xp.exp(u, out=u)
    u += 1
    return xp.reciprocal(u, out=u)


def _sigmoid(x, out=None):
    """sigmoid(x) on an array, into ``out`` if given, in x's dtype."""
    with _no_overflow_warning():
        return _sigmoid_of_negated(get_array_module(x).negative(x, out=out))


def _gate_scale(xp, H, factors, dtype):
    """A ``(len(factors) * H,)`` array holding ``factors[k]`` on gate block ``k``."""
    return xp.repeat(xp.asarray(factors, dtype=dtype), H)


# The LSTM's gate blocks i, f, g, o enter the exp form negated, and g doubled as well.
_LSTM_SCALE = (-1.0, -1.0, -2.0, -1.0)


def _lstm_gates(u, H):
    """In place: ``u = a * _LSTM_SCALE`` (the gate pre-activations, scaled by block)
    becomes the gates i, f, g, o: sigmoids, and ``g = tanh(a_g) = 2 sigmoid(2 a_g) - 1``.
    Call it under :func:`_no_overflow_warning`."""
    _sigmoid_of_negated(u)
    g = u[..., 2 * H:3 * H]
    g *= 2
    g -= 1
    return u


def _zeros_state(x, shape):
    xp = get_array_module(x.data)
    return Variable(xp.zeros(shape, dtype=x.dtype), requires_grad=False)


def _activations(cell_class, activations, *inputs):
    """What a cell's forward keeps for its gradient, ``activations``, when the cell gave
    them to its gradient Function; else (a gradient Function called on its own) what
    the cell's forward computes at ``inputs``."""
    if activations is None:
        cell = cell_class()
        cell.forward(*inputs)
        activations = cell.activations
    return activations


# =========================================================================================
# The LSTM cell
# =========================================================================================
class LSTMCell(Function):
    """One LSTM step from the gate pre-activations: inputs ``(c_prev, a)``, outputs
    ``(c, h)``; ``a`` is ``(..., 4H)`` with the gates i, f, g, o in that order.

    ``c = f * c_prev + i * g`` and ``h = o * tanh(c)``, with ``i, f, o`` sigmoids and ``g``
    a tanh of their blocks of ``a``.
    """

    # activations: the gates and tanh(c); the inputs for double backprop
    saves = ("inputs", "activations")

    def forward(self, c_prev, a):
        a = as_float(a)  # integers and booleans: float64, as tanh and sigmoid give
        xp = get_array_module(a)
        H = c_prev.shape[-1]
        act = xp.multiply(a, _gate_scale(xp, H, _LSTM_SCALE, a.dtype))
        with _no_overflow_warning():
            _lstm_gates(act, H)  # i, f, g, o after their nonlinearities
        i, f, g, o = act[..., :H], act[..., H:2 * H], act[..., 2 * H:3 * H], act[..., 3 * H:]
        c = f * c_prev
        c += i * g
        tc = xp.tanh(c)
        self.activations = (act, tc)  # for the gradient: no nonlinearity evaluated twice
        return c, o * tc

    def backward(self, gc, gh):
        c_prev, a = self.inputs
        return apply(LSTMCellGrad(self.activations), c_prev, a, gc, gh)  # (gc_prev, ga)


class LSTMCellGrad(Function):
    """The gradient of :class:`LSTMCell`: inputs ``(c_prev, a, gc, gh)``, outputs
    ``(gc_prev, ga)``. Linear in ``(gc, gh)``; its own backward is the LSTM's second
    derivative.

    ``activations``: the cell's gate activations and ``tanh(c)`` at the same inputs,
    when the forward cell has them (None: computed here).
    """

    saves = ("inputs",)

    def __init__(self, activations=None):
        self.activations = activations

    def forward(self, c_prev, a, gc, gh):
        xp = get_array_module(a)
        H = c_prev.shape[-1]
        act, tc = _activations(LSTMCell, self.activations, c_prev, a)
        i, f, g, o = act[..., :H], act[..., H:2 * H], act[..., 2 * H:3 * H], act[..., 3 * H:]
        dc = gc + gh * o * (1 - tc * tc)  # d/dc of h = o tanh(c) is o (1 - tanh(c)^2)
        ga = xp.empty(a.shape, dtype=act.dtype)
        ga[..., :H] = dc * g * i * (1 - i)  # c = f c_prev + i g, i = sigmoid(a_i)
        ga[..., H:2 * H] = dc * c_prev * f * (1 - f)  # f = sigmoid(a_f)
        ga[..., 2 * H:3 * H] = dc * i * (1 - g * g)  # g = tanh(a_g)
        ga[..., 3 * H:] = gh * tc * o * (1 - o)  # h = o tanh(c), o = sigmoid(a_o)
        return as_dtype(dc * f, c_prev.dtype), as_dtype(ga, a.dtype)  # d/dc_prev c = f

    def backward(self, ggc_prev, gga):
        # The gradient of L = <ggc_prev, gc_prev> + <gga, ga>. Writing D for the tangent
        # of c along (gga, ggc_prev) (D is linear in them and free of c), L = <D, dc> +
        # <gga_o, gh tanh(c) o'>, with dc = gc + gh o tanh'(c); E is dL/dc at fixed D.
        c_prev, a, gc, gh = self.inputs
        a_i, a_f, a_g, a_o = split(a, 4, axis=-1)
        G_i, G_f, G_g, G_o = split(gga, 4, axis=-1)
        i, f, o, g = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o), tanh(a_g)
        t = tanh(f * c_prev + i * g)
        di, df, do = i * (1 - i), f * (1 - f), o * (1 - o)  # sigmoid' = y (1 - y)
        dg, dt = 1 - g * g, 1 - t * t  # tanh' = 1 - y^2
        dc = gc + gh * o * dt
        D = G_i * g * di + G_f * c_prev * df + G_g * i * dg + ggc_prev * f
        E = gh * (G_o * do * dt - 2 * D * o * t * dt)
        g_gc = D
        g_gh = D * o * dt + G_o * t * do
        g_c_prev = G_f * df * dc + E * f
        g_a = concat([
            dc * (G_i * g * di * (1 - 2 * i) + G_g * dg * di) + E * g * di,
            dc * (G_f * c_prev * df * (1 - 2 * f) + ggc_prev * df) + E * c_prev * df,
            dc * (G_i * di * dg - 2 * G_g * i * g * dg) + E * i * dg,
            gh * do * (D * dt + G_o * t * (1 - 2 * o)),
        ], axis=-1)
        return g_c_prev, g_a, g_gc, g_gh


def lstm(c_prev, x) -> tuple[Variable, Variable]:
    """One LSTM step from its gate pre-activations (Chainer's ``F.lstm``, PyTorch's gates).

    ``x`` holds the four pre-activations side by side, in PyTorch's order: input ``i``,
    forget ``f``, cell candidate ``g``, output ``o``, each ``H`` wide (typically
    ``x = x_t @ W_x + h_prev @ W_h + b``). Then ``c = sigmoid(f) * c_prev +
    sigmoid(i) * tanh(g)`` and ``h = sigmoid(o) * tanh(c)``.

    Args:
        c_prev: the previous cell state ``(..., H)``; None for zeros (a new sequence).
        x: the gate pre-activations ``(..., 4H)``.

    Returns:
        ``(c, h)``, each ``(..., H)``.

    Raises:
        ValueError: when ``x``'s last axis is not ``4 * H`` or the shapes disagree.

    Example:
        >>> c, h = lstm(None, np.zeros((2, 8)))
        >>> c.shape, h.shape
        ((2, 2), (2, 2))
        >>> c                       # sigmoid(0) * tanh(0) = 0
        variable([[0. 0.]
                  [0. 0.]])
    """
    x = as_variable(x)
    if x.ndim == 0 or x.shape[-1] % 4 != 0:
        raise ValueError(
            f"lstm: x holds the four gate pre-activations, so its last axis must be 4 * H, "
            f"got x.shape={x.shape}; compute x = x_t @ W_x + h @ W_h + b with W (in, 4H)"
        )
    expected = x.shape[:-1] + (x.shape[-1] // 4,)
    if c_prev is None:
        c_prev = _zeros_state(x, expected)
    c_prev = as_variable(c_prev)
    if c_prev.shape != expected:
        raise ValueError(
            f"lstm: c_prev.shape={c_prev.shape} does not fit x.shape={x.shape}; c_prev must "
            f"be {expected} (x is (..., 4 * H))"
        )
    return tuple(LSTMCell()(c_prev, x))


# =========================================================================================
# The GRU cell
# =========================================================================================
class GRUCell(Function):
    """One GRU step: inputs ``(h_prev, ax, ah)``, output ``h``, as PyTorch's ``GRUCell``.

    ``ax = x W_x + b_x`` and ``ah = h_prev W_h + b_h`` are ``(..., 3H)`` with the gates
    r, z, n: ``r = sigmoid(ax_r + ah_r)``, ``z = sigmoid(ax_z + ah_z)``,
    ``n = tanh(ax_n + r * ah_n)``, ``h = (1 - z) * n + z * h_prev``. ``ah`` may be a
    ``(3H,)`` bias alone (the product with a zero state), broadcast over the batch.
    """

    saves = ("inputs", "activations")  # activations: r and z, and n

    def forward(self, h_prev, ax, ah):
        ax = as_float(ax)  # integers and booleans: float64, as tanh and sigmoid give
        xp = get_array_module(ax)
        H = h_prev.shape[-1]
        rz = ax[..., :2 * H] + ah[..., :2 * H]
        _sigmoid(rz, out=rz)
        r, z = rz[..., :H], rz[..., H:]
        n = xp.tanh(ax[..., 2 * H:] + r * ah[..., 2 * H:])
        self.activations = (rz, n)
        return n + z * (h_prev - n)

    def backward(self, gh):
        h_prev, ax, ah = self.inputs
        return apply(GRUCellGrad(self.activations), h_prev, ax, ah, gh)  # (gh_prev, gax, gah)


class GRUCellGrad(Function):
    """The gradient of :class:`GRUCell`: inputs ``(h_prev, ax, ah, gh)``, outputs
    ``(gh_prev, gax, gah)`` (``gah`` as wide as the batch; the engine sums it down to a
    broadcast ``ah``). Its own backward is the GRU's second derivative.

    ``activations``: the cell's ``r``, ``z`` and ``n`` at the same inputs, when the
    forward cell has them (None: computed here).
    """

    saves = ("inputs",)

    def __init__(self, activations=None):
        self.activations = activations

    def forward(self, h_prev, ax, ah, gh):
        xp = get_array_module(ax)
        H = h_prev.shape[-1]
        rz, n = _activations(GRUCell, self.activations, h_prev, ax, ah)
        r, z = rz[..., :H], rz[..., H:]
        ah_n = ah[..., 2 * H:]
        gn = gh * (1 - z) * (1 - n * n)  # h = (1 - z) n + z h_prev, n = tanh(s_n)
        gz = gh * (h_prev - n) * z * (1 - z)  # z = sigmoid(s_z)
        gr = gn * ah_n * r * (1 - r)  # s_n = ax_n + r ah_n, r = sigmoid(s_r)
        shape = gh.shape[:-1] + (3 * H,)
        gax = xp.empty(shape, dtype=gn.dtype)
        gah = xp.empty(shape, dtype=gn.dtype)
        gax[..., :H] = gah[..., :H] = gr
        gax[..., H:2 * H] = gah[..., H:2 * H] = gz
        gax[..., 2 * H:] = gn
        gah[..., 2 * H:] = gn * r
        # d/dh_prev h = z
        return as_dtype(gh * z, h_prev.dtype), as_dtype(gax, ax.dtype), as_dtype(gah, ah.dtype)

    def backward(self, ggh_prev, ggax, ggah):
        # The gradient of L = <ggh_prev, gh z> + <Z, gh (h_prev - n) z'> + <P, M>, where
        # Z and R are the cotangents of the z and r pre-activations, P = gh (1 - z) n'
        # the gradient reaching n's pre-activation and M its cotangent.
        h_prev, ax, ah, gh = self.inputs
        ax_r, ax_z, ax_n = split(ax, 3, axis=-1)
        ah_r, ah_z, ah_n = split(ah, 3, axis=-1)
        X_r, X_z, X_n = split(ggax, 3, axis=-1)
        A_r, A_z, A_n = split(ggah, 3, axis=-1)
        r, z = sigmoid(ax_r + ah_r), sigmoid(ax_z + ah_z)
        n = tanh(ax_n + r * ah_n)
        dr, dz, dn = r * (1 - r), z * (1 - z), 1 - n * n
        R, Z = X_r + A_r, X_z + A_z
        M = R * ah_n * dr + X_n + A_n * r
        P = gh * (1 - z) * dn
        g_gh = ggh_prev * z + Z * (h_prev - n) * dz + (1 - z) * dn * M
        g_h_prev = Z * gh * dz
        s_z = dz * (ggh_prev * gh + Z * gh * (h_prev - n) * (1 - 2 * z) - gh * dn * M)
        s_n = -(dn * Z * gh * dz + 2 * n * P * M)
        s_r = P * (R * ah_n * dr * (1 - 2 * r) + A_n * dr) + s_n * ah_n * dr
        g_ax = concat([s_r, s_z, s_n], axis=-1)
        g_ah = concat([s_r, s_z, P * R * dr + s_n * r], axis=-1)
        return g_h_prev, g_ax, g_ah, g_gh


def gru(h_prev, ax, ah) -> Variable:
    """One GRU step with PyTorch's equations, from the two gate products.

    ``ax = x_t @ W_x + b_x`` and ``ah = h_prev @ W_h + b_h`` hold the gates reset ``r``,
    update ``z`` and new ``n`` side by side, each ``H`` wide. Then
    ``r = sigmoid(ax_r + ah_r)``, ``z = sigmoid(ax_z + ah_z)``,
    ``n = tanh(ax_n + r * ah_n)`` and ``h = (1 - z) * n + z * h_prev``.

    Args:
        h_prev: the previous hidden state ``(N, H)``; None for zeros (then ``ah`` is
            usually ``b_h`` alone, shape ``(3H,)``).
        ax: ``(N, 3H)``.
        ah: ``(N, 3H)`` or ``(3H,)``.

    Returns:
        ``h``, ``(N, H)``.

    Raises:
        ValueError: when the shapes disagree.

    Example:
        >>> gru(None, np.zeros((2, 6)), np.zeros(6))    # n = 0, z = 0.5: h = 0
        variable([[0. 0.]
                  [0. 0.]])
    """
    ax, ah = as_variable(ax), as_variable(ah)
    if ax.ndim == 0 or ax.shape[-1] % 3 != 0:
        raise ValueError(
            f"gru: ax holds the three gate products, so its last axis must be 3 * H, got "
            f"ax.shape={ax.shape}"
        )
    expected = ax.shape[:-1] + (ax.shape[-1] // 3,)
    if h_prev is None:
        h_prev = _zeros_state(ax, expected)
    h_prev = as_variable(h_prev)
    if h_prev.shape != expected or ah.shape not in (ax.shape, ax.shape[-1:]):
        raise ValueError(
            f"gru: shapes do not fit: h_prev.shape={h_prev.shape}, ax.shape={ax.shape}, "
            f"ah.shape={ah.shape}; expected h_prev {expected} and ah {ax.shape} (the "
            f"product with h_prev) or {ax.shape[-1:]} (a bias alone) for ax (N, 3H)"
        )
    return GRUCell()(h_prev, ax, ah)


# =========================================================================================
# Whole sequences
# =========================================================================================
def _flat(a):
    """(T, N, K) -> (T * N, K), a view."""
    return a.reshape(-1, a.shape[-1])


def _param_grads(x, h_prev, ga_x, ga_h, W_x, needs):
    """Gradients of x, W_x, W_h and the biases from the gate gradients of every step,
    each in one product: ``gx = dA_x W_x^T``, ``dW_x = X^T dA_x``, ``dW_h = H_prev^T
    dA_h``, ``db = sum dA``. ``needs``: whether (x, W_x, W_h, b_x, b_h) want theirs
    (None where not)."""
    n_x, n_Wx, n_Wh, n_bx, n_bh = needs
    gx = (_flat(ga_x) @ W_x.T).reshape(x.shape[:2] + W_x.shape[:1]) if n_x else None
    gW_x = _flat(x).T @ _flat(ga_x) if n_Wx else None
    gW_h = _flat(h_prev).T @ _flat(ga_h) if n_Wh else None
    gb_x = _flat(ga_x).sum(axis=0) if n_bx else None
    gb_h = _flat(ga_h).sum(axis=0) if n_bh else None
    return gx, gW_x, gW_h, gb_x, gb_h


def _composed_param_grads(x, h_prev, ga_x, ga_h, W_x):
    """:func:`_param_grads` with Functions: (gx, gW_x, gW_h, gb_x, gb_h)."""
    G = ga_x.shape[-1]
    gx = matmul(ga_x, transpose(W_x))
    gW_x = matmul(transpose(reshape(x, (-1, x.shape[-1]))), reshape(ga_x, (-1, G)))
    gW_h = matmul(transpose(reshape(h_prev, (-1, h_prev.shape[-1]))), reshape(ga_h, (-1, G)))
    return gx, gW_x, gW_h, _sum(ga_x, axis=(0, 1)), _sum(ga_h, axis=(0, 1))


def _result_dtype(arrays):
    """The dtype of a sequence's outputs: its inputs' common one, float64 for integers
    and booleans (as tanh and sigmoid give)."""
    dtype = np.result_type(*[a.dtype for a in arrays])
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _compute_dtype(arrays):
    """The dtype a sequence is computed in: its outputs', but float32 for float16
    (NumPy has no float16 BLAS: its products are 80-200x slower)."""
    dtype = _result_dtype(arrays)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _outputs(arrays, like):
    """A sequence's outputs in their dtype (float16 ones were computed in float32);
    copies, except for the first (a view of the buffer of every step)."""
    dtype = _result_dtype(like)
    if arrays[0].dtype == dtype:
        return (arrays[0],) + tuple(a.copy() for a in arrays[1:])
    return tuple(a.astype(dtype) for a in arrays)


def _differentiate(composed, inputs, ggs):
    """The gradients of ``sum_k <ggs[k], composed(*inputs)[k]>`` with respect to
    ``inputs``, recorded as a graph (so they can be differentiated again).

    ``composed`` computes a sequence gradient Function's outputs with differentiable
    Functions; the cotangents are differentiated as inputs too, so the inner backward
    pass stops at this Function's own inputs and never walks the rest of the graph.
    """
    from zerograd.functional import vjp  # functional builds on the whole package

    n = len(inputs)

    def pairing(*args):
        total = None
        for y, gg in zip(composed(*args[:n]), args[n:]):
            term = _sum(y * gg)
            total = term if total is None else total + term
        return total

    _, pullback = vjp(pairing, *inputs, *ggs)
    return pullback(1.0)[:n]


def _selected(grads, needs):
    return [g for g, need in zip(grads, needs) if need]


def _spread(outputs, needs):
    """A gradient Function's outputs (only the wanted gradients) back in input order."""
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    it = iter(outputs)
    return tuple(next(it) if need else None for need in needs)


class _SequenceFunction(Function):
    """Shared plumbing of the sequence Functions: backward asks the gradient Function
    for the gradients of the inputs that need one."""

    saves = ("inputs", "saved")  # saved: the buffers of every step, kept by forward
    grad_class: type

    def backward(self, *gys):
        needs = tuple(v.requires_grad for v in self.inputs)
        grads = apply(self.grad_class(self.saved, needs), *self.inputs, *gys)
        return _spread(grads, needs)


class _SequenceGrad(Function):
    """Shared plumbing of the sequence gradient Functions: ``saved`` is what the forward
    kept; ``needs`` which input gradients to compute. The backward differentiates
    ``composed``, the same gradient written with the differentiable cells."""

    saves = ("inputs",)

    def __init__(self, saved, needs):
        self.saved = saved
        self.needs = needs

    def composed(self, *inputs):
        raise NotImplementedError

    def backward(self, *ggs):
        return _differentiate(self.composed, self.inputs, ggs)


# ---- LSTM --------------------------------------------------------------------------------
class LSTMSequence(_SequenceFunction):
    """A one-layer LSTM over a whole sequence, time-major.

    Inputs ``(x, h0, c0, W_x, W_h, b)``:

    - ``x``: ``(T, N, I)``, step ``t`` is ``x[t]``;
    - ``h0``, ``c0``: the initial state, ``(N, H)`` each;
    - ``W_x``: ``(I, 4H)``, ``W_h``: ``(H, 4H)``, ``b``: ``(4H,)``, the gate blocks as
      column blocks in the order i, f, g, o (input, forget, cell candidate, output).

    Outputs ``(y, h_n, c_n)``: ``y`` ``(T, N, H)`` the hidden state after every step,
    ``h_n`` and ``c_n`` ``(N, H)`` the last state. At each step
    ``a = x[t] W_x + h W_h + b``, ``c = f * c + i * g``, ``h = o * tanh(c)``.

    PyTorch's ``nn.LSTM``: ``W_x = weight_ih_l0.T``, ``W_h = weight_hh_l0.T``,
    ``b = bias_ih_l0 + bias_hh_l0``. ONNX's ``LSTM`` (gate order i, o, f, c):
    ``W[0] = W_x.T`` and ``R[0] = W_h.T`` with their row blocks reordered i, o, f, g;
    ``B[0] = concat(b reordered, zeros(4H))``; ``initial_h = h0[None]``,
    ``initial_c = c0[None]``; ONNX's ``Y`` is ``y[:, None]``, ``Y_h``/``Y_c`` are
    ``h_n[None]``/``c_n[None]``.
    """

    def forward(self, x, h0, c0, W_x, W_h, b):
        xp = get_array_module(x)
        dtype = _compute_dtype((x, h0, c0, W_x, W_h, b))
        T, N, _ = x.shape
        H = W_h.shape[0]
        s = _gate_scale(xp, H, _LSTM_SCALE, dtype)  # (s has the widest dtype of the inputs)
        # Every step's input projection in one product, scaled for the exp form; act
        # then becomes the gates i, f, g, o of each step in place.
        act = (_flat(x) @ (W_x * s)).reshape(T, N, 4 * H)
        act += b * s
        W_hs = W_h * s
        hs = xp.empty((T + 1, N, H), dtype=dtype)  # h before step 0, ..., after step T-1
        cs = xp.empty((T + 1, N, H), dtype=dtype)
        tcs = xp.empty((T, N, H), dtype=dtype)  # tanh(c) after each step
        ah = xp.empty((N, 4 * H), dtype=dtype)
        ig = xp.empty((N, H), dtype=dtype)
        hs[0], cs[0] = h0, c0
        with _no_overflow_warning():
            for t in range(T):
                a = act[t]
                xp.matmul(hs[t], W_hs, out=ah)  # the one product of the step
                a += ah
                _lstm_gates(a, H)
                c = cs[t + 1]
                xp.multiply(a[:, H:2 * H], cs[t], out=c)  # c = f c_prev + i g
                xp.multiply(a[:, :H], a[:, 2 * H:3 * H], out=ig)
                c += ig
                xp.tanh(c, out=tcs[t])
                xp.multiply(a[:, 3 * H:], tcs[t], out=hs[t + 1])  # h = o tanh(c)
        self.saved = (act, hs, cs, tcs)
        return _outputs((hs[1:], hs[T], cs[T]), (x, h0, c0, W_x, W_h, b))


class LSTMSequenceGrad(_SequenceGrad):
    """The gradient of :class:`LSTMSequence`: inputs ``(x, h0, c0, W_x, W_h, b, gy, gh_n,
    gc_n)``, outputs the gradients of those of ``(x, h0, c0, W_x, W_h, b)`` that
    ``needs`` selects, in that order (backpropagation through time on arrays)."""

    def forward(self, x, h0, c0, W_x, W_h, b, gy, gh_n, gc_n):
        xp = get_array_module(x)
        act, hs, cs, tcs = self.saved
        T, N, H = tcs.shape
        dtype = act.dtype
        ga = xp.empty((T, N, 4 * H), dtype=dtype)
        dh = gh_n.astype(dtype, copy=True)
        dc = gc_n.astype(dtype, copy=True)
        d = xp.empty((N, 4 * H), dtype=dtype)  # the gates' derivatives at one step
        tmp = xp.empty((N, H), dtype=dtype)
        dtc = xp.empty((N, H), dtype=dtype)
        W_hT = xp.ascontiguousarray(W_h.T, dtype=dtype)
        # Step by step, every array of a step stays in the cache (at batch 32, this ran
        # twice as fast as computing each factor for all steps at once).
        for t in range(T - 1, -1, -1):
            dh += gy[t]
            a, g = act[t], ga[t]
            xp.subtract(1, a, out=d)  # sigmoid' = y (1 - y); tanh' = 1 - y^2 for g
            d *= a
            xp.multiply(a[:, 2 * H:3 * H], a[:, 2 * H:3 * H], out=tmp)
            xp.subtract(1, tmp, out=d[:, 2 * H:3 * H])
            xp.multiply(tcs[t], tcs[t], out=dtc)
            xp.subtract(1, dtc, out=dtc)  # tanh'(c)
            xp.multiply(dh, a[:, 3 * H:], out=tmp)  # dc += dh o tanh'(c), from h = o tanh(c)
            tmp *= dtc
            dc += tmp
            xp.multiply(dc, a[:, 2 * H:3 * H], out=g[:, :H])  # c = f c_prev + i g
            xp.multiply(dc, cs[t], out=g[:, H:2 * H])
            xp.multiply(dc, a[:, :H], out=g[:, 2 * H:3 * H])
            xp.multiply(dh, tcs[t], out=g[:, 3 * H:])
            g *= d  # through each gate's nonlinearity
            dc *= a[:, H:2 * H]  # d/dc_prev c = f
            xp.matmul(g, W_hT, out=dh)  # d/dh_prev a = W_h^T
        n_x, _, _, n_Wx, n_Wh, n_b = self.needs
        gx, gW_x, gW_h, gb, _ = _param_grads(x.astype(dtype, copy=False), hs[:-1], ga, ga,
                                             W_x.astype(dtype, copy=False),
                                             (n_x, n_Wx, n_Wh, n_b, False))
        grads = (gx, dh, dc, gW_x, gW_h, gb)
        inputs = (x, h0, c0, W_x, W_h, b)
        return tuple(as_dtype(g, v.dtype) for g, v, need in zip(grads, inputs, self.needs)
                     if need)

    def composed(self, x, h0, c0, W_x, W_h, b, gy, gh_n, gc_n):
        T = x.shape[0]
        a_x = linear(x, W_x, b)
        hs, cs, gates = [h0], [c0], []
        for t in range(T):
            a = a_x[t] + matmul(hs[t], W_h)
            c, h = lstm(cs[t], a)
            gates.append(a)
            hs.append(h)
            cs.append(c)
        dh, dc, gas = gh_n, gc_n, [None] * T
        W_hT = transpose(W_h)
        for t in range(T - 1, -1, -1):
            dh = dh + gy[t]
            dc, gas[t] = LSTMCellGrad()(cs[t], gates[t], dc, dh)
            dh = matmul(gas[t], W_hT)
        ga = stack(gas)
        gx, gW_x, gW_h, gb, _ = _composed_param_grads(x, stack(hs[:-1]), ga, ga, W_x)
        return _selected((gx, dh, dc, gW_x, gW_h, gb), self.needs)


LSTMSequence.grad_class = LSTMSequenceGrad


# ---- GRU ---------------------------------------------------------------------------------
class GRUSequence(_SequenceFunction):
    """A one-layer GRU over a whole sequence, time-major, with PyTorch's equations.

    Inputs ``(x, h0, W_x, W_h, b_x, b_h)``: ``x`` ``(T, N, I)``; ``h0`` ``(N, H)``;
    ``W_x`` ``(I, 3H)``, ``W_h`` ``(H, 3H)``, ``b_x`` and ``b_h`` ``(3H,)``, the gate
    blocks as column blocks in the order r, z, n (reset, update, new). Outputs
    ``(y, h_n)``: ``(T, N, H)`` and ``(N, H)``. At each step, with ``ax = x[t] W_x + b_x``
    and ``ah = h W_h + b_h``: ``r = sigmoid(ax_r + ah_r)``, ``z = sigmoid(ax_z + ah_z)``,
    ``n = tanh(ax_n + r * ah_n)``, ``h = (1 - z) * n + z * h``.

    PyTorch's ``nn.GRU``: ``W_x = weight_ih_l0.T``, ``W_h = weight_hh_l0.T``,
    ``b_x = bias_ih_l0``, ``b_h = bias_hh_l0``. ONNX's ``GRU`` (gate order z, r, h, with
    ``linear_before_reset=1``): ``W[0] = W_x.T``, ``R[0] = W_h.T`` with their row blocks
    reordered z, r, n; ``B[0] = concat(b_x, b_h)`` reordered likewise;
    ``initial_h = h0[None]``.
    """

    def forward(self, x, h0, W_x, W_h, b_x, b_h):
        xp = get_array_module(x)
        dtype = _compute_dtype((x, h0, W_x, W_h, b_x, b_h))
        T, N, _ = x.shape
        H = W_h.shape[0]
        # r and z enter the exp form negated: fold the -1 into their columns.
        s = _gate_scale(xp, H, (-1.0, -1.0, 1.0), dtype)
        ax = (_flat(x) @ (W_x * s)).reshape(T, N, 3 * H)
        ax += b_x * s
        W_hs = W_h * s
        b_hs = b_h * s
        hs = xp.empty((T + 1, N, H), dtype=dtype)
        rz = xp.empty((T, N, 2 * H), dtype=dtype)  # r, z after the sigmoid
        ns = xp.empty((T, N, H), dtype=dtype)
        ah_n = xp.empty((T, N, H), dtype=dtype)  # h W_h + b_h of the n gate
        ah = xp.empty((N, 3 * H), dtype=dtype)
        hs[0] = h0
        with _no_overflow_warning():
            for t in range(T):
                xp.matmul(hs[t], W_hs, out=ah)  # the one product of the step
                ah += b_hs
                u = rz[t]
                xp.add(ax[t, :, :2 * H], ah[:, :2 * H], out=u)
                _sigmoid_of_negated(u)
                ah_n[t] = ah[:, 2 * H:]
                n = ns[t]
                xp.multiply(u[:, :H], ah[:, 2 * H:], out=n)
                n += ax[t, :, 2 * H:]
                xp.tanh(n, out=n)
                h = hs[t + 1]
                xp.subtract(hs[t], n, out=h)  # h = n + z (h_prev - n)
                h *= u[:, H:]
                h += n
        self.saved = (hs, rz, ns, ah_n)
        return _outputs((hs[1:], hs[T]), (x, h0, W_x, W_h, b_x, b_h))


class GRUSequenceGrad(_SequenceGrad):
    """The gradient of :class:`GRUSequence`: inputs ``(x, h0, W_x, W_h, b_x, b_h, gy,
    gh_n)``, outputs the gradients of those of ``(x, h0, W_x, W_h, b_x, b_h)`` that
    ``needs`` selects."""

    def forward(self, x, h0, W_x, W_h, b_x, b_h, gy, gh_n):
        xp = get_array_module(x)
        hs, rz, ns, ah_n = self.saved
        T, N, H = ns.shape
        dtype = hs.dtype
        r, z = rz[..., :H], rz[..., H:]
        # What each step multiplies its incoming dh by, for all steps at once.
        p_n = (1 - z) * (1 - ns * ns)  # d/ds_n of h = (1 - z) tanh(s_n) + z h_prev
        q_z = (hs[:-1] - ns) * z * (1 - z)  # d/ds_z, z = sigmoid(s_z)
        q_r = ah_n * r * (1 - r)  # d/ds_r through s_n = ax_n + r ah_n, per unit of gn
        ga_h = xp.empty((T, N, 3 * H), dtype=dtype)  # gradient of ah = h W_h + b_h
        gn = xp.empty((T, N, H), dtype=dtype)  # gradient of s_n, the n block of ax
        tmp = xp.empty((N, H), dtype=dtype)
        dh = gh_n.astype(dtype, copy=True)
        W_hT = xp.ascontiguousarray(W_h.T, dtype=dtype)
        for t in range(T - 1, -1, -1):
            dh += gy[t]
            g = ga_h[t]
            xp.multiply(dh, p_n[t], out=gn[t])
            xp.multiply(dh, q_z[t], out=g[:, H:2 * H])
            xp.multiply(gn[t], q_r[t], out=g[:, :H])
            xp.multiply(gn[t], r[t], out=g[:, 2 * H:])  # d/dah_n s_n = r
            xp.multiply(dh, z[t], out=tmp)  # d/dh_prev h = z, directly
            xp.matmul(g, W_hT, out=dh)  # and through ah = h_prev W_h + b_h
            dh += tmp
        n_x, _, n_Wx, n_Wh, n_bx, n_bh = self.needs
        ga_x = ga_h.copy()  # the r, z blocks are shared; the n block is gn itself
        ga_x[..., 2 * H:] = gn
        gx, gW_x, gW_h, gb_x, gb_h = _param_grads(
            x.astype(dtype, copy=False), hs[:-1], ga_x, ga_h, W_x.astype(dtype, copy=False),
            (n_x, n_Wx, n_Wh, n_bx, n_bh))
        grads = (gx, dh, gW_x, gW_h, gb_x, gb_h)
        inputs = (x, h0, W_x, W_h, b_x, b_h)
        return tuple(as_dtype(g, v.dtype) for g, v, need in zip(grads, inputs, self.needs)
                     if need)

    def composed(self, x, h0, W_x, W_h, b_x, b_h, gy, gh_n):
        T = x.shape[0]
        a_x = linear(x, W_x, b_x)
        hs, a_hs = [h0], []
        for t in range(T):
            a_h = linear(hs[t], W_h, b_h)
            hs.append(gru(hs[t], a_x[t], a_h))
            a_hs.append(a_h)
        dh, gas_x, gas_h = gh_n, [None] * T, [None] * T
        W_hT = transpose(W_h)
        for t in range(T - 1, -1, -1):
            dh = dh + gy[t]
            dh_direct, gas_x[t], gas_h[t] = GRUCellGrad()(hs[t], a_x[t], a_hs[t], dh)
            dh = dh_direct + matmul(gas_h[t], W_hT)
        gx, gW_x, gW_h, gb_x, gb_h = _composed_param_grads(
            x, stack(hs[:-1]), stack(gas_x), stack(gas_h), W_x)
        return _selected((gx, dh, gW_x, gW_h, gb_x, gb_h), self.needs)


GRUSequence.grad_class = GRUSequenceGrad


# ---- Elman RNN ---------------------------------------------------------------------------
class RNNSequence(_SequenceFunction):
    """A one-layer Elman RNN (tanh) over a whole sequence, time-major.

    Inputs ``(x, h0, W_x, W_h, b)``: ``x`` ``(T, N, I)``, ``h0`` ``(N, H)``, ``W_x``
    ``(I, H)``, ``W_h`` ``(H, H)``, ``b`` ``(H,)``. Outputs ``(y, h_n)``: ``(T, N, H)`` and
    ``(N, H)``, with ``h = tanh(x[t] W_x + h W_h + b)`` at each step.

    PyTorch's ``nn.RNN`` (tanh): ``W_x = weight_ih_l0.T``, ``W_h = weight_hh_l0.T``,
    ``b = bias_ih_l0 + bias_hh_l0``. ONNX's ``RNN`` (activation Tanh): ``W[0] = W_x.T``,
    ``R[0] = W_h.T``, ``B[0] = concat(b, zeros(H))``, ``initial_h = h0[None]``.
    """

    def forward(self, x, h0, W_x, W_h, b):
        xp = get_array_module(x)
        dtype = _compute_dtype((x, h0, W_x, W_h, b))
        T, N, _ = x.shape
        H = W_h.shape[0]
        ax = (_flat(x) @ W_x.astype(dtype, copy=False)).reshape(T, N, H)
        ax += b
        W_hd = W_h.astype(dtype, copy=False)
        hs = xp.empty((T + 1, N, H), dtype=dtype)
        hs[0] = h0
        for t in range(T):
            h = hs[t + 1]
            xp.matmul(hs[t], W_hd, out=h)
            h += ax[t]
            xp.tanh(h, out=h)
        self.saved = hs
        return _outputs((hs[1:], hs[T]), (x, h0, W_x, W_h, b))


class RNNSequenceGrad(_SequenceGrad):
    """The gradient of :class:`RNNSequence`: inputs ``(x, h0, W_x, W_h, b, gy, gh_n)``,
    outputs the gradients of those of ``(x, h0, W_x, W_h, b)`` that ``needs`` selects."""

    def forward(self, x, h0, W_x, W_h, b, gy, gh_n):
        xp = get_array_module(x)
        hs = self.saved
        T, N, H = gy.shape
        dtype = hs.dtype
        ga = hs[1:] * hs[1:]
        xp.subtract(1, ga, out=ga)  # tanh' = 1 - h^2 at every step; times dh below
        dh = gh_n.astype(dtype, copy=True)
        W_hT = xp.ascontiguousarray(W_h.T, dtype=dtype)
        for t in range(T - 1, -1, -1):
            dh += gy[t]
            ga[t] *= dh
            xp.matmul(ga[t], W_hT, out=dh)
        n_x, _, n_Wx, n_Wh, n_b = self.needs
        gx, gW_x, gW_h, gb, _ = _param_grads(x.astype(dtype, copy=False), hs[:-1], ga, ga,
                                             W_x.astype(dtype, copy=False),
                                             (n_x, n_Wx, n_Wh, n_b, False))
        grads = (gx, dh, gW_x, gW_h, gb)
        inputs = (x, h0, W_x, W_h, b)
        return tuple(as_dtype(g, v.dtype) for g, v, need in zip(grads, inputs, self.needs)
                     if need)

    def composed(self, x, h0, W_x, W_h, b, gy, gh_n):
        T = x.shape[0]
        a_x = linear(x, W_x, b)
        hs = [h0]
        for t in range(T):
            hs.append(tanh(a_x[t] + matmul(hs[t], W_h)))
        dh, gas = gh_n, [None] * T
        W_hT = transpose(W_h)
        for t in range(T - 1, -1, -1):
            dh = dh + gy[t]
            # tanh's derivative through its own backward, so it is written only there
            gas[t] = _tanh_grad(hs[t + 1], dh)
            dh = matmul(gas[t], W_hT)
        ga = stack(gas)
        gx, gW_x, gW_h, gb, _ = _composed_param_grads(x, stack(hs[:-1]), ga, ga, W_x)
        return _selected((gx, dh, gW_x, gW_h, gb), self.needs)


RNNSequence.grad_class = RNNSequenceGrad


def _tanh_grad(y, gy):
    """The gradient reaching the input of ``y = tanh(a)``, by ``Tanh.backward`` itself."""
    return y.creator.backward(gy)


# ---- the wrappers ------------------------------------------------------------------------
def _sequence_inputs(name, x, states, weights, n_gates):
    """A sequence function's inputs as Variables (zeros for the None states and biases),
    after checking every shape. ``states`` and ``weights`` are lists of (name, value):
    the initial states, then W_x, W_h and the biases."""
    x = as_variable(x)
    named = [(n, None if v is None else as_variable(v)) for n, v in states + weights]
    W_x, W_h = named[len(states)][1], named[len(states) + 1][1]
    G = f"{n_gates}H" if n_gates > 1 else "H"
    ok = (x.ndim == 3 and x.shape[0] >= 1 and W_x is not None and W_h is not None
          and W_h.ndim == 2)
    if ok:
        N, I, H = x.shape[1], x.shape[2], W_h.shape[0]
        expected = [(N, H)] * len(states) + [(I, n_gates * H), (H, n_gates * H)]
        expected += [(n_gates * H,)] * (len(weights) - 2)
        ok = all(v is None or v.shape == e for (_, v), e in zip(named, expected))
    if not ok:
        got = ", ".join(f"{n}.shape={None if v is None else v.shape}"
                        for n, v in [("x", x)] + named)
        state_names = " and ".join(n for n, _ in states)
        (wx, _), (wh, _) = weights[:2]
        raise ValueError(
            f"{name}: expected x (T, N, in_size) with T >= 1, {state_names} (N, H) or None, "
            f"{wx} (in_size, {G}), {wh} (H, {G}) and biases ({G},) or None; got {got}"
        )
    out = [x]
    for k, (_, v) in enumerate(named):
        if v is None:
            v = _zeros_state(W_h, expected[k])
        out.append(v)
    return out


def lstm_sequence(x, h0, c0, W_x, W_h, b=None) -> tuple[Variable, Variable, Variable]:
    """Run a one-layer LSTM over a whole time-major sequence, as one Function.

    The same computation as calling :func:`lstm` step by step on
    ``x[t] @ W_x + h @ W_h + b``, in one Function with a hand-written backward through
    time (see :class:`LSTMSequence` for the layout, PyTorch's and ONNX's equivalents).

    Args:
        x: ``(T, N, in_size)``.
        h0, c0: the initial state ``(N, H)``; None for zeros.
        W_x: ``(in_size, 4H)``, gate blocks i, f, g, o.
        W_h: ``(H, 4H)``, same blocks.
        b: ``(4H,)``; None for no bias.

    Returns:
        ``(y, h_n, c_n)``: every step's ``h`` ``(T, N, H)``, the last ``h`` and ``c``.

    Raises:
        ValueError: when the shapes do not fit (the message lists them all).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, W_x, W_h = rng.random((3, 2, 5)), rng.random((5, 8)), rng.random((2, 8))
        >>> y, h, c = lstm_sequence(x, None, None, W_x, W_h)
        >>> c_t = h_t = None
        >>> for t in range(3):
        ...     a = x[t] @ W_x + (0 if h_t is None else h_t.data @ W_h)
        ...     c_t, h_t = lstm(c_t, a)
        >>> bool(np.allclose(h.data, h_t.data)), bool(np.allclose(y.data[-1], h.data))
        (True, True)
    """
    inputs = _sequence_inputs("lstm_sequence", x, [("h0", h0), ("c0", c0)],
                              [("W_x", W_x), ("W_h", W_h), ("b", b)], 4)
    return tuple(LSTMSequence()(*inputs))


def gru_sequence(x, h0, W_x, W_h, b_x=None, b_h=None) -> tuple[Variable, Variable]:
    """Run a one-layer GRU over a whole time-major sequence, as one Function.

    The same computation as :func:`gru` step by step on ``x[t] @ W_x + b_x`` and
    ``h @ W_h + b_h`` (see :class:`GRUSequence` for the layout).

    Args:
        x: ``(T, N, in_size)``.
        h0: the initial state ``(N, H)``; None for zeros.
        W_x: ``(in_size, 3H)``, gate blocks r, z, n.
        W_h: ``(H, 3H)``, same blocks.
        b_x, b_h: ``(3H,)`` each; None for no bias.

    Returns:
        ``(y, h_n)``: every step's ``h`` ``(T, N, H)`` and the last one.

    Raises:
        ValueError: when the shapes do not fit.

    Example:
        >>> y, h = gru_sequence(np.ones((4, 2, 3)), None, np.zeros((3, 6)), np.zeros((2, 6)))
        >>> y.shape, h                # z = 0.5, n = 0: h stays 0
        ((4, 2, 2), variable([[0. 0.]
                  [0. 0.]]))
    """
    inputs = _sequence_inputs("gru_sequence", x, [("h0", h0)],
                              [("W_x", W_x), ("W_h", W_h), ("b_x", b_x), ("b_h", b_h)], 3)
    return tuple(GRUSequence()(*inputs))


def rnn_sequence(x, h0, W_x, W_h, b=None) -> tuple[Variable, Variable]:
    """Run a one-layer Elman RNN (tanh) over a whole time-major sequence, as one Function.

    ``h = tanh(x[t] @ W_x + h @ W_h + b)`` at each step (see :class:`RNNSequence`).

    Args:
        x: ``(T, N, in_size)``.
        h0: the initial state ``(N, H)``; None for zeros.
        W_x: ``(in_size, H)``.
        W_h: ``(H, H)``.
        b: ``(H,)``; None for no bias.

    Returns:
        ``(y, h_n)``: every step's ``h`` ``(T, N, H)`` and the last one.

    Raises:
        ValueError: when the shapes do not fit.

    Example:
        >>> x = np.array([[[1.0]], [[0.0]]])                 # T=2, N=1, in_size=1
        >>> y, h = rnn_sequence(x, None, np.array([[0.5]]), np.array([[1.0]]))
        >>> bool(np.allclose(y.data.ravel(), [np.tanh(0.5), np.tanh(np.tanh(0.5))]))
        True
    """
    inputs = _sequence_inputs("rnn_sequence", x, [("h0", h0)],
                              [("W_x", W_x), ("W_h", W_h), ("b", b)], 1)
    return tuple(RNNSequence()(*inputs))
