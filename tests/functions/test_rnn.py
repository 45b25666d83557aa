"""Tests for zerograd.functions.rnn: the LSTM and GRU cells and the sequence functions.

Oracles: the cells composed from sigmoid/tanh/mul (written out here), the sequence
functions against the cells stepped by hand, central differences (first and second
order, float64), and PyTorch's autograd on the same recurrences.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.functions import rnn
from zerograd.testing import check_backward, check_double_backward, check_torch

H = 3


def _lstm_composed(c_prev, a):
    """The book's LSTM step written with primitives: the oracle of F.lstm."""
    a_i, a_f, a_g, a_o = F.split(a, 4, axis=-1)
    c = F.sigmoid(a_f) * c_prev + F.sigmoid(a_i) * F.tanh(a_g)
    return c, F.sigmoid(a_o) * F.tanh(c)


def _gru_composed(h_prev, ax, ah):
    xr, xz, xn = F.split(ax, 3, axis=-1)
    hr, hz, hn = F.split(ah, 3, axis=-1)
    r, z = F.sigmoid(xr + hr), F.sigmoid(xz + hz)
    n = F.tanh(xn + r * hn)
    return (1 - z) * n + z * h_prev


def _torch_lstm_cell(torch, c_prev, a):
    i, f, g, o = a.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    return c, torch.sigmoid(o) * torch.tanh(c)


def _torch_gru_cell(torch, h_prev, ax, ah):
    xr, xz, xn = ax.chunk(3, dim=-1)
    hr, hz, hn = ah.chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h_prev


# ---- the LSTM cell -----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2,), (1,), (2, 3)], ids=["N=2", "N=1", "extra axis"])
def test_lstm_matches_its_composed_oracle(shape, dtype, xp):
    rng = np.random.default_rng(0)
    c_prev = xp.asarray(rng.standard_normal(shape + (H,)).astype(dtype))
    a = xp.asarray(rng.standard_normal(shape + (4 * H,)).astype(dtype) * 2)
    c, h = F.lstm(c_prev, a)
    c_ref, h_ref = _lstm_composed(Variable(c_prev), Variable(a))
    assert c.dtype == h.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(as_numpy(c.data), as_numpy(c_ref.data), atol=tol)
    np.testing.assert_allclose(as_numpy(h.data), as_numpy(h_ref.data), atol=tol)


def test_lstm_without_a_previous_cell_is_a_zero_state():
    a = np.random.default_rng(1).standard_normal((2, 4 * H))
    c0, h0 = F.lstm(None, a)
    c1, h1 = F.lstm(np.zeros((2, H)), a)
    np.testing.assert_array_equal(c0.data, c1.data)
    np.testing.assert_array_equal(h0.data, h1.data)


def test_lstm_is_stable_for_extreme_preactivations():
    a = np.array([[-1000.0, 1000.0, 1000.0, -1000.0]])  # H = 1: i = 0, f = 1, g = 1, o = 0
    c, h = F.lstm(np.array([[2.0]]), a)
    assert np.isfinite(c.data).all() and np.isfinite(h.data).all()
    np.testing.assert_allclose(c.data, [[2.0]])  # forget gate 1, input gate 0


def test_lstm_first_and_second_derivatives(dtype):
    rng = np.random.default_rng(2)
    c_prev = rng.standard_normal((2, H)).astype(dtype)
    a = rng.standard_normal((2, 4 * H)).astype(dtype)
    check_backward(F.lstm, c_prev, a)
    if dtype == np.float64:
        check_double_backward(F.lstm, c_prev, a)


def test_lstm_gradient_function_is_differentiable_again():
    # LSTMCellGrad's backward (the second derivative) must itself be differentiable:
    # its gradient and its second derivative (the LSTM's third) against differences.
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(s) for s in [(2, H), (2, 4 * H), (2, H), (2, H)]]

    def grad_fn(c_prev, a, gc, gh):
        return rnn.LSTMCellGrad()(c_prev, a, gc, gh)

    check_backward(grad_fn, *args)
    check_double_backward(grad_fn, *args)


def test_lstm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    c_prev = rng.standard_normal((3, H))
    a = rng.standard_normal((3, 4 * H))
    check_torch(F.lstm, lambda c, x: _torch_lstm_cell(torch, c, x), c_prev, a,
                second_order=True)


def test_lstm_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"lstm: .*last axis must be 4 \* H.*\(2, 7\)"):
        F.lstm(None, np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"lstm: c_prev.shape=\(2, 3\).*\(2, 2\)"):
        F.lstm(np.zeros((2, 3)), np.zeros((2, 8)))


# ---- the GRU cell ------------------------------------------------------------------------
def test_gru_matches_its_composed_oracle(dtype, xp):
    rng = np.random.default_rng(5)
    h_prev, ax, ah = (xp.asarray(rng.standard_normal(s).astype(dtype))
                      for s in [(2, H), (2, 3 * H), (2, 3 * H)])
    h = F.gru(h_prev, ax, ah)
    ref = _gru_composed(Variable(h_prev), Variable(ax), Variable(ah))
    assert h.dtype == dtype
    np.testing.assert_allclose(as_numpy(h.data), as_numpy(ref.data),
                               atol=1e-6 if dtype == np.float32 else 1e-13)


def test_gru_first_and_second_derivatives(dtype):
    rng = np.random.default_rng(6)
    args = [rng.standard_normal(s).astype(dtype) for s in [(2, H), (2, 3 * H), (2, 3 * H)]]
    check_backward(F.gru, *args)
    if dtype == np.float64:
        check_double_backward(F.gru, *args)


def test_gru_with_a_broadcast_bias_and_no_state():
    # The first step: no state, and ah is h2h's bias alone, shape (3H,).
    rng = np.random.default_rng(7)
    ax, b_h = rng.standard_normal((2, 3 * H)), rng.standard_normal(3 * H)

    def first_step(ax, b_h):
        return F.gru(None, ax, b_h)

    ref = _gru_composed(np.zeros((2, H)), ax, b_h)
    np.testing.assert_allclose(first_step(ax, b_h).data, ref.data, atol=1e-14)
    check_backward(first_step, ax, b_h)
    check_double_backward(first_step, ax, b_h)


def test_gru_gradient_function_is_differentiable_again():
    rng = np.random.default_rng(8)
    args = [rng.standard_normal(s) for s in [(2, H), (2, 3 * H), (2, 3 * H), (2, H)]]

    def grad_fn(h_prev, ax, ah, gh):
        return rnn.GRUCellGrad()(h_prev, ax, ah, gh)

    check_backward(grad_fn, *args)
    check_double_backward(grad_fn, *args)


def test_gru_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    args = [rng.standard_normal(s) for s in [(3, H), (3, 3 * H), (3, 3 * H)]]
    check_torch(F.gru, lambda h, ax, ah: _torch_gru_cell(torch, h, ax, ah), *args,
                second_order=True)


def test_gru_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"gru: .*3 \* H.*\(2, 4\)"):
        F.gru(None, np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"gru: shapes do not fit.*h_prev.shape=\(2, 5\)"):
        F.gru(np.zeros((2, 5)), np.zeros((2, 6)), np.zeros((2, 6)))


def test_gru_rejects_ah_of_another_batch():
    with pytest.raises(ValueError, match=r"gru: shapes do not fit.*ah.shape=\(3, 6\).*"
                                         r"ah \(2, 6\).*or \(6,\)"):
        F.gru(None, np.zeros((2, 6)), np.zeros((3, 6)))
    with pytest.raises(ValueError, match=r"gru: shapes do not fit.*ah.shape=\(1, 6\)"):
        F.gru(None, np.zeros((2, 6)), np.zeros((1, 6)))


@pytest.mark.parametrize("dtype_in", [np.int64, np.uint8, np.bool_])
def test_cells_take_integers_and_booleans_as_float64(dtype_in):
    # As F.tanh and F.sigmoid: real-valued results, in float64.
    rng = np.random.default_rng(10)
    a = rng.integers(0, 2, (2, 4 * H)).astype(dtype_in)
    ax, ah = (rng.integers(0, 2, (2, 3 * H)).astype(dtype_in) for _ in range(2))
    c, h = F.lstm(None, a)
    c_ref, h_ref = F.lstm(None, a.astype(np.float64))
    assert c.dtype == h.dtype == np.float64
    np.testing.assert_array_equal(h.data, h_ref.data)
    h = F.gru(np.zeros((2, H), dtype_in), ax, ah)
    assert h.dtype == np.float64
    np.testing.assert_array_equal(h.data, F.gru(None, ax * 1.0, ah * 1.0).data)
    v = Variable(a)  # an integer leaf gets a float64 gradient, as for F.tanh
    F.lstm(None, v)[1].sum().backward()
    assert v.grad.dtype == np.float64


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_sequences_take_integers_as_float64(kind):
    fn = KINDS[kind][0]
    args = [np.round(a * 2).astype(np.int64) for a in _sequence_args(kind, T=3, N=2)]
    ys = fn(*args)
    refs = fn(*[a.astype(np.float64) for a in args])
    for y, ref in zip(ys, refs):
        assert y.dtype == np.float64
        np.testing.assert_array_equal(y.data, ref.data)
    vs = [Variable(a) for a in args]
    fn(*vs)[0].sum().backward()
    assert all(v.grad.dtype == np.float64 for v in vs)


# ---- sequences ----------------------------------------------------------------------------
# kind: (function, number of gates, initial states, biases)
KINDS = {
    "lstm": (F.lstm_sequence, 4, 2, 1),
    "gru": (F.gru_sequence, 3, 1, 2),
    "rnn": (F.rnn_sequence, 1, 1, 1),
}


def _sequence_args(kind, T=4, N=2, I=2, dtype=np.float64, seed=0):
    """x, the initial states, W_x, W_h and the biases, with weights small enough that
    the recurrence stays in its interesting range."""
    _, gates, n_states, n_biases = KINDS[kind]
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal((T, N, I))]
    args += [rng.standard_normal((N, H)) * 0.5 for _ in range(n_states)]
    args += [rng.standard_normal((I, gates * H)) * 0.6, rng.standard_normal((H, gates * H)) * 0.6]
    args += [rng.standard_normal(gates * H) * 0.3 for _ in range(n_biases)]
    return [a.astype(dtype) for a in args]


def _stepped(kind, x, *rest):
    """The sequence computed with the cells, one step at a time: (y, last state...)."""
    if kind == "lstm":
        h, c, W_x, W_h, b = rest
        ys = []
        for t in range(x.shape[0]):
            c, h = F.lstm(c, F.linear(x[t], W_x, b) + F.matmul(h, W_h))
            ys.append(h)
        return F.stack(ys), h, c
    if kind == "gru":
        h, W_x, W_h, b_x, b_h = rest
        ys = []
        for t in range(x.shape[0]):
            h = F.gru(h, F.linear(x[t], W_x, b_x), F.linear(h, W_h, b_h))
            ys.append(h)
        return F.stack(ys), h
    h, W_x, W_h, b = rest
    ys = []
    for t in range(x.shape[0]):
        h = F.tanh(F.linear(x[t], W_x, b) + F.matmul(h, W_h))
        ys.append(h)
    return F.stack(ys), h


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("T, N", [(4, 2), (1, 3), (5, 1)])
def test_sequence_matches_the_stepped_cells(kind, T, N, dtype, xp):
    args = [xp.asarray(a) for a in _sequence_args(kind, T, N, dtype=dtype)]
    fn = KINDS[kind][0]
    gys = None
    outs = []
    for run in (fn, lambda *a: _stepped(kind, *a)):
        vs = [Variable(a) for a in args]
        ys = run(*vs)
        if gys is None:
            rng = np.random.default_rng(1)
            gys = [xp.asarray(rng.standard_normal(y.shape).astype(dtype)) for y in ys]
        loss = None
        for y, gy in zip(ys, gys):
            term = (y * gy).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        outs.append(([y.data for y in ys], [v.grad.data for v in vs]))
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-10)
    for got, ref in zip(outs[0][0] + outs[0][1], outs[1][0] + outs[1][1]):
        assert got.dtype == dtype
        np.testing.assert_allclose(as_numpy(got), as_numpy(ref), **tol)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_first_and_second_derivatives(kind):
    fn = KINDS[kind][0]
    args = _sequence_args(kind, T=3, N=2)
    check_backward(fn, *args)
    check_double_backward(fn, *args)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_gradient_float32(kind):
    check_backward(KINDS[kind][0], *_sequence_args(kind, dtype=np.float32))


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_gradient_function_matches_its_composed_definition(kind):
    # The array recurrence of the gradient Function and the step-by-step composition
    # that its backward differentiates compute the same gradients.
    fn = KINDS[kind][0]
    vs = [Variable(a) for a in _sequence_args(kind, T=5, N=2, seed=3)]
    ys = fn(*vs)
    rng = np.random.default_rng(2)
    gys = [Variable(rng.standard_normal(y.shape)) for y in ys]
    grad_fn = ys[0].creator.grad_class(ys[0].creator.saved, (True,) * len(vs))
    fast = grad_fn.forward(*[v.data for v in vs + gys])
    from zerograd import using_config

    with using_config("enable_backprop", True):
        composed = grad_fn.composed(*vs, *gys)
    for got, ref in zip(fast, composed):
        np.testing.assert_allclose(got, ref.data, atol=1e-13)


def _torch_sequence(torch, kind):
    """The recurrence written with torch operations: autograd as the oracle."""

    def run(x, *rest):
        n_states = KINDS[kind][2]
        states, (W_x, W_h, *bs) = list(rest[:n_states]), rest[n_states:]
        ys = []
        for t in range(x.shape[0]):
            if kind == "lstm":
                h, c = states
                c, h = _torch_lstm_cell(torch, c, x[t] @ W_x + bs[0] + h @ W_h)
                states = [h, c]
            elif kind == "gru":
                h = _torch_gru_cell(torch, states[0], x[t] @ W_x + bs[0], states[0] @ W_h + bs[1])
                states = [h]
            else:
                h = torch.tanh(x[t] @ W_x + bs[0] + states[0] @ W_h)
                states = [h]
            ys.append(h)
        return (torch.stack(ys), *states)

    return run


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_matches_torch(kind):
    torch = pytest.importorskip("torch")
    check_torch(KINDS[kind][0], _torch_sequence(torch, kind), *_sequence_args(kind, T=4, N=3),
                second_order=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_gradients_only_where_wanted(kind):
    fn = KINDS[kind][0]
    args = _sequence_args(kind)
    vs = [Variable(a) for a in args]
    vs[0].requires_grad = False  # the input batch: data, no gradient wanted
    vs[1].requires_grad = False  # a state carried in from a cut graph
    ys = fn(*vs)
    ys[0].sum().backward()
    assert vs[0].grad is None and vs[1].grad is None
    assert all(v.grad is not None for v in vs[2:] if v.requires_grad)
    ref = [Variable(a) for a in args]
    fn(*ref)[0].sum().backward()
    for v, r in zip(vs[2:], ref[2:]):
        np.testing.assert_allclose(v.grad.data, r.grad.data, atol=1e-14)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sequence_backward_twice_accumulates(kind):
    # The forward's saved buffers must survive a backward (no in-place reuse).
    vs = [Variable(a) for a in _sequence_args(kind)]
    loss = (KINDS[kind][0](*vs)[0] ** 2).sum()
    loss.backward()
    first = [v.grad.data.copy() for v in vs]
    loss.backward()
    for v, g in zip(vs, first):
        np.testing.assert_allclose(v.grad.data, 2 * g, atol=1e-13)


def test_sequence_with_mixed_dtypes_keeps_each_gradients_dtype():
    # float32 weights and a float64 input: computed in float64, as NumPy promotes, and
    # each gradient in its own input's dtype.
    args = _sequence_args("lstm", dtype=np.float32)
    args[0] = args[0].astype(np.float64)
    vs = [Variable(a) for a in args]
    y, _, _ = F.lstm_sequence(*vs)
    assert y.dtype == np.float64
    y.sum().backward()
    assert [v.grad.dtype for v in vs] == [a.dtype for a in args]


@pytest.mark.parametrize("kind", list(KINDS))
def test_float16_sequence_is_computed_in_float32(kind):
    # NumPy has no float16 BLAS: a float16 sequence runs in float32 and gives float16
    # outputs and gradients, the float32 ones rounded.
    fn = KINDS[kind][0]
    half = _sequence_args(kind, dtype=np.float16)
    results = []
    for args in (half, [a.astype(np.float32) for a in half]):
        vs = [Variable(a) for a in args]
        ys = fn(*vs)
        (ys[0] * ys[0]).sum().backward()
        results.append(([y.data for y in ys], [v.grad.data for v in vs]))
    (ys16, gs16), (ys32, gs32) = results
    for got, ref in zip(ys16 + gs16, ys32 + gs32):
        assert got.dtype == np.float16
        # the float32 value rounded; a gradient may round once more on the way
        np.testing.assert_allclose(got.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    for got, ref in zip(ys16, ys32):
        np.testing.assert_array_equal(got, ref.astype(np.float16))


def test_sequence_defaults_zero_state_and_no_bias():
    x, h0, c0, W_x, W_h, b = _sequence_args("lstm")
    y, h, c = F.lstm_sequence(x, None, None, W_x, W_h)
    y2, _, _ = F.lstm_sequence(x, np.zeros_like(h0), np.zeros_like(c0), W_x, W_h,
                               np.zeros_like(b))
    np.testing.assert_array_equal(y.data, y2.data)
    np.testing.assert_array_equal(h.data, y.data[-1])


@pytest.mark.parametrize("call, message", [
    (lambda: F.lstm_sequence(np.zeros((2, 3)), None, None, np.zeros((3, 8)), np.zeros((2, 8))),
     r"lstm_sequence: expected x \(T, N, in_size\).*x.shape=\(2, 3\)"),
    (lambda: F.lstm_sequence(np.zeros((0, 1, 3)), None, None, np.zeros((3, 8)),
                             np.zeros((2, 8))),
     r"lstm_sequence: expected x \(T, N, in_size\) with T >= 1"),
    (lambda: F.gru_sequence(np.zeros((2, 1, 3)), None, np.zeros((3, 6)), np.zeros((2, 5))),
     r"gru_sequence: .*W_h \(H, 3H\).*W_h.shape=\(2, 5\)"),
    (lambda: F.rnn_sequence(np.zeros((2, 1, 3)), np.zeros((2, 2)), np.zeros((3, 2)),
                            np.zeros((2, 2))),
     r"rnn_sequence: .*h0 \(N, H\).*h0.shape=\(2, 2\)"),
    (lambda: F.lstm_sequence(np.zeros((2, 1, 3)), None, None, np.zeros((4, 8)),
                             np.zeros((2, 8))),
     r"lstm_sequence: .*W_x \(in_size, 4H\).*W_x.shape=\(4, 8\)"),
])
def test_sequence_rejects_bad_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()
