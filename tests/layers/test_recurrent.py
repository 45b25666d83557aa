"""Tests for zerograd.layers.recurrent: RNN, LSTM and GRU, step by step and whole
sequences, against PyTorch's modules, central differences and the original DeZero's
weight draws (book mode)."""

import math

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable
from zerograd import random as zrandom
from zerograd.cuda import as_numpy
from zerograd.layers import linear as linear_module
from zerograd.testing import check_function

KINDS = ["RNN", "LSTM", "GRU"]


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


def _to_torch(torch, a):
    return torch.from_numpy(np.ascontiguousarray(as_numpy(a)))


def _run_sequence(layer, xs):
    layer.reset_state()
    return [layer(x) for x in xs]


def _weighted_sum(ys, gys):
    loss = None
    for y, gy in zip(ys, gys):
        term = (y * gy).sum()
        loss = term if loss is None else loss + term
    return loss


def _torch_module(torch, layer, kind, cell=False, batch_first=False):
    """The PyTorch module with the layer's weights (x2h.W = weight_ih.T, ...)."""
    I, H = layer.x2h.W.shape[0], layer.hidden_size
    if cell:
        module = getattr(torch.nn, kind + "Cell")(I, H)
        suffix = ""
    else:
        module = getattr(torch.nn, kind)(I, H, batch_first=batch_first)
        suffix = "_l0"
    dtype = torch.float64 if layer.x2h.W.dtype == np.float64 else torch.float32
    module = module.to(dtype)
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(_to_torch(torch, layer.x2h.W.data.T))
        getattr(module, "weight_hh" + suffix).copy_(_to_torch(torch, layer.h2h.W.data.T))
        getattr(module, "bias_ih" + suffix).copy_(_to_torch(torch, layer.x2h.b.data))
        bias_hh = getattr(module, "bias_hh" + suffix)
        if layer.h2h.b is None:
            bias_hh.zero_()
        else:
            bias_hh.copy_(_to_torch(torch, layer.h2h.b.data))
    return module


def _as_float64(layer):
    for p in layer.params():
        p.data = p.data.astype(np.float64)
    return layer


# ---- the step-by-step API (the book's) ---------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_layers_match_torch_cells(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    N, I, H, T = 3, 4, 5, 4
    layer = getattr(L, kind)(H)
    xs = [Variable(rng.standard_normal((N, I)).astype(np.float32)) for _ in range(T)]
    gys = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(T)]
    ys = _run_sequence(layer, xs)
    assert layer.x2h.W.shape == (I, layer.x2h.out_size)  # in_size inferred
    _weighted_sum(ys, gys).backward()

    cell = _torch_module(torch, layer, kind, cell=True)
    txs = [_to_torch(torch, x.data).requires_grad_() for x in xs]
    state = None
    tys = []
    for tx in txs:
        state = cell(tx, state)
        tys.append(state[0] if kind == "LSTM" else state)
    sum((ty * _to_torch(torch, gy)).sum() for ty, gy in zip(tys, gys)).backward()

    for y, ty in zip(ys, tys):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-5, rtol=1e-4)
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(layer.x2h.W.grad.data, cell.weight_ih.grad.numpy().T,
                               atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(layer.h2h.W.grad.data, cell.weight_hh.grad.numpy().T,
                               atol=1e-4, rtol=1e-4)
    assert layer.x2h.W.grad.dtype == np.float32


def test_rnn_h2h_is_sized_by_the_hidden_state():
    rnn = L.RNN(6, in_size=2)
    assert rnn.h2h.W.shape == (6, 6)  # DeZero sized it by the input


@pytest.mark.parametrize("kind", KINDS)
def test_double_backprop_through_steps(kind):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3))
    layer = _as_float64(getattr(L, kind)(4, in_size=3))

    def two_steps(x):
        layer.reset_state()
        layer(x)
        return layer(x * 0.5)

    check_function(two_steps, x, second_order=True)


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_cuts_the_graph(kind):
    layer = getattr(L, kind)(3)
    x = np.ones((1, 2), dtype=np.float32)
    loss = layer(x).sum() + layer(x).sum()
    loss.backward()
    loss.unchain_backward()
    assert layer.h.creator is None
    layer.cleargrads()
    layer(x).sum().backward()  # reaches only the newest step
    assert layer.x2h.W.grad is not None
    layer.reset_state()
    assert layer.h is None


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_layers_on_each_device(xp, kind):
    layer = getattr(L, kind)(4)
    if xp is not np:
        layer.to_gpu()  # the lazily created weights follow the input onto the GPU
    x = xp.asarray(np.random.default_rng(0).standard_normal((2, 3)), dtype=np.float32)
    loss = (layer(x) * layer(x)).sum()
    seq = layer(xp.asarray(np.random.default_rng(1).standard_normal((5, 2, 3)),
                           dtype=np.float32))
    loss = loss + (seq * seq).sum()
    loss.backward()
    assert type(layer.h.data) is type(x) and layer.h.dtype == np.float32
    assert type(seq.data) is type(x) and seq.shape == (5, 2, 4)
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in layer.params())


# ---- whole sequences ---------------------------------------------------------------------
def _torch_run(torch, module, kind, xs, state):
    """Run the torch module over each chunk in xs, carrying the state; outputs."""
    outs = []
    for x in xs:
        out, state = module(x, state)
        outs.append(out)
    return outs


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("T, N", [(5, 3), (1, 3), (4, 1)], ids=["T5N3", "T1", "N1"])
def test_sequences_match_torch_with_the_state_carried_across_calls(kind, batch_first, T, N,
                                                                   dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    I, H = 4, 6
    layer = getattr(L, kind)(H, in_size=I, batch_first=batch_first)
    if dtype == np.float64:
        _as_float64(layer)
    shape = (N, T, I) if batch_first else (T, N, I)
    xs = [Variable(rng.standard_normal(shape).astype(dtype)) for _ in range(2)]
    gys = [rng.standard_normal(shape[:2] + (H,)).astype(dtype) for _ in range(2)]
    ys = [layer(x) for x in xs]  # the second call continues from the first one's state
    _weighted_sum(ys, gys).backward()

    module = _torch_module(torch, layer, kind, batch_first=batch_first)
    txs = [_to_torch(torch, x.data).requires_grad_() for x in xs]
    tys = _torch_run(torch, module, kind, txs, None)
    sum((ty * _to_torch(torch, gy)).sum() for ty, gy in zip(tys, gys)).backward()

    tol = dict(atol=1e-5, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-10)
    for y, ty in zip(ys, tys):
        assert y.dtype == dtype and y.shape == tuple(ty.shape)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), **tol)
    expected = [("x2h.W", module.weight_ih_l0.grad.numpy().T),
                ("h2h.W", module.weight_hh_l0.grad.numpy().T)]
    if kind == "GRU":
        expected += [("x2h.b", module.bias_ih_l0.grad.numpy()),
                     ("h2h.b", module.bias_hh_l0.grad.numpy())]
    else:  # one bias standing for bias_ih + bias_hh: both get the same gradient
        expected += [("x2h.b", module.bias_ih_l0.grad.numpy())]
    params = dict(layer.state_dict().items())
    for name, ref in expected:
        sub, attr = name.split(".")
        grad = getattr(getattr(layer, sub), attr).grad
        assert grad.dtype == dtype and params[name].shape == ref.shape
        np.testing.assert_allclose(grad.data, ref, **tol)
    last = layer.h.data
    np.testing.assert_allclose(last, (ys[-1].data[:, -1] if batch_first else ys[-1].data[-1]))


def _make_pair(kind, batch_first=False):
    a = getattr(L, kind)(5, in_size=3, batch_first=batch_first)
    b = getattr(L, kind)(5, in_size=3, batch_first=batch_first)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ["sequence then steps", "steps then sequence",
                                   "two sequences"])
def test_sequence_and_step_calls_carry_the_same_state(kind, order):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 2, 3)).astype(np.float32)
    stepper, mixed = _make_pair(kind)
    ref = [stepper(x[t]) for t in range(6)]
    _weighted_sum(ref, [np.ones((2, 5), np.float32)] * 6).backward()
    if order == "sequence then steps":
        ys = [mixed(x[:4])] + [mixed(x[t]) for t in (4, 5)]
    elif order == "steps then sequence":
        ys = [mixed(x[0]), mixed(x[1]), mixed(x[2:])]
    else:
        ys = [mixed(x[:2]), mixed(x[2:])]
    sum_of = _weighted_sum(ys, [np.ones(y.shape, np.float32) for y in ys])
    sum_of.backward()
    got = np.concatenate([y.data.reshape(-1, 2, 5) for y in ys])
    np.testing.assert_allclose(got, np.stack([y.data for y in ref]), atol=1e-6)
    np.testing.assert_allclose(mixed.h.data, stepper.h.data, atol=1e-6)
    if kind == "LSTM":
        np.testing.assert_allclose(mixed.c.data, stepper.c.data, atol=1e-6)
    for p, q in zip(mixed.params(), stepper.params()):
        np.testing.assert_allclose(p.grad.data, q.grad.data, atol=1e-5, rtol=1e-5)


def _second_chunk_grads(kind, x1, x2, unchain):
    layer, fresh = _make_pair(kind)
    loss = (layer(x1) ** 2).sum()
    loss.backward()
    if unchain:
        loss.unchain_backward()
    state = [layer.h.data.copy()] + ([layer.c.data.copy()] if kind == "LSTM" else [])
    layer.cleargrads()
    (layer(x2) ** 2).sum().backward()
    return [p.grad.data for p in layer.params()], fresh, state


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_over_sequence_chunks(kind):
    # After loss.unchain_backward(), the next chunk's gradients are those of a layer that
    # starts from the carried state as a constant: nothing flows into the past chunk.
    rng = np.random.default_rng(5)
    x1, x2 = (rng.standard_normal((4, 2, 3)).astype(np.float32) for _ in range(2))
    grads, fresh, state = _second_chunk_grads(kind, x1, x2, unchain=True)
    fresh.h = Variable(state[0])
    if kind == "LSTM":
        fresh.c = Variable(state[1])
    (fresh(x2) ** 2).sum().backward()
    for g, p in zip(grads, fresh.params()):
        np.testing.assert_allclose(g, p.grad.data, atol=1e-6, rtol=1e-5)
    # Without the cut, the gradient flows back into the first chunk: the check can fail.
    uncut, _, _ = _second_chunk_grads(kind, x1, x2, unchain=False)
    assert not np.allclose(uncut[0], grads[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
def test_sequence_layer_first_and_second_derivatives(kind, batch_first):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 2) if batch_first else (3, 2, 2))
    layer = _as_float64(getattr(L, kind)(3, in_size=2, batch_first=batch_first))
    h0 = rng.standard_normal((2, 3)) * 0.5

    def run(x, h0):
        layer.reset_state()
        layer.h = h0  # a carried state is an input like any other
        if kind == "LSTM":
            layer.c = h0 * 0.5
        return layer(x)

    check_function(run, x, h0, second_order=True)


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_layer_second_derivative_of_the_weights(kind):
    # Double backprop reaches the weights: d/dW of a gradient norm, against differences.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 2, 2))
    layer = _as_float64(getattr(L, kind)(3, in_size=2))
    W = layer.h2h.W.data.copy()

    def with_weight(W):
        layer.reset_state()
        layer.h2h.W = W if isinstance(W, Variable) else Variable(W)
        return layer(x)

    check_function(with_weight, W, second_order=True)


# ---- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3,), ()], ids=["4-D", "1-D", "0-D"])
def test_an_input_that_is_neither_a_step_nor_a_sequence_is_refused(kind, shape):
    layer = getattr(L, kind)(4, in_size=3)
    with pytest.raises(ValueError) as e:
        layer(np.zeros(shape, dtype=np.float32))
    message = str(e.value)
    assert message.startswith(f"{kind}: ")
    assert "(N, 3) for one time step" in message and "(T, N, 3)" in message
    assert f"got shape {shape}" in message


def test_the_batch_first_message_names_its_layout():
    with pytest.raises(ValueError, match=r"LSTM: .*\(N, T, in_size\) for a whole sequence "
                                         r"\(batch_first=True\), got shape \(1, 2, 3, 4\)"):
        L.LSTM(4, batch_first=True)(np.zeros((1, 2, 3, 4), dtype=np.float32))


@pytest.mark.parametrize("kind", KINDS)
def test_a_sequence_is_no_longer_read_as_features(kind):
    # A (T, N, D) input used to run every step from a zero state (issue 13, item 16).
    x = np.random.default_rng(9).standard_normal((4, 2, 3)).astype(np.float32)
    seq, steps = _make_pair(kind)
    y = seq(x)
    ref = np.stack([steps(x[t]).data for t in range(4)])
    np.testing.assert_allclose(y.data, ref, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_feature_count_and_batch_size_are_refused(kind):
    layer = getattr(L, kind)(4, in_size=3)
    with pytest.raises(ValueError, match=rf"{kind}: the input has 5 features per step"):
        layer(np.zeros((2, 5), dtype=np.float32))
    layer(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=rf"{kind}: the carried state is for a batch of 2, "
                                         r"but the input has a batch of 3.*reset_state\(\)"):
        layer(np.zeros((6, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=rf"{kind}: a sequence needs at least one time step"):
        layer(np.zeros((0, 2, 3), dtype=np.float32))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_sizes_must_be_positive_integers(kind, bad):
    with pytest.raises(ValueError, match=rf"{kind}: hidden_size must be a positive integer"):
        getattr(L, kind)(bad)
    with pytest.raises(ValueError, match=rf"{kind}: in_size must be a positive integer or "):
        getattr(L, kind)(4, in_size=bad)


# ---- book mode: the original DeZero's weight draws ----------------------------------------
@pytest.fixture
def book_mode(monkeypatch):
    """Book mode, with weight draws from NumPy's global generator as the original's
    ``np.random.randn(I, O).astype(dtype) * sqrt(1 / I)``.

    Until the book helper's ``zerograd.random.normal`` draws that way itself, the draw is
    stood in for here; the test is about which draws the layers make, and in what order.
    """
    def normal(shape, scale, dtype, xp=np):
        return np.random.randn(*shape).astype(dtype) * scale

    monkeypatch.setattr(zrandom, "normal", normal)
    monkeypatch.setattr(linear_module, "normal", normal)
    was = zrandom.book_mode()
    zrandom.set_book_mode(True)
    yield
    zrandom.set_book_mode(was)


def _linear_draw(rs, in_size, out_size):
    """What the original's Linear._init_W draws: I x O, scale sqrt(1/I), float32."""
    return rs.randn(in_size, out_size).astype(np.float32) * math.sqrt(1 / in_size)


def _reenact_rnn(seed, H):
    """The original's draws for step 59's first lines: RNN(H), x = rand(1, 1), two steps
    followed each time by a Linear(1) head."""
    rs = np.random.RandomState(seed)
    x = rs.rand(1, 1)
    x2h = _linear_draw(rs, 1, H)  # first call: x2h
    fc = _linear_draw(rs, H, 1)  # then the head
    h2h = _linear_draw(rs, H, H)  # second call: h2h, sized by h (H)
    return x, x2h, fc, h2h


def test_book_mode_rnn_draw_order(book_mode):
    H = 10
    np.random.seed(0)
    rnn = L.RNN(H)
    fc = L.Linear(1)
    x = np.random.rand(1, 1)
    fc(rnn(x))
    assert rnn.h2h.W.data is None  # the original draws h2h at the first step with a state
    fc(rnn(x))
    x_ref, x2h, fc_W, h2h = _reenact_rnn(0, H)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(rnn.x2h.W.data, x2h)
    np.testing.assert_array_equal(fc.W.data, fc_W)
    np.testing.assert_array_equal(rnn.h2h.W.data, h2h)


def test_book_mode_rnn_sequence_draws_h2h_after_x2h(book_mode):
    np.random.seed(1)
    rnn = L.RNN(4)
    rnn(np.zeros((3, 1, 2), dtype=np.float32))  # three steps: x2h, then h2h at step 2
    rs = np.random.RandomState(1)
    np.testing.assert_array_equal(rnn.x2h.W.data, _linear_draw(rs, 2, 4))
    np.testing.assert_array_equal(rnn.h2h.W.data, _linear_draw(rs, 4, 4))


def test_book_mode_rnn_with_in_size_draws_both_at_construction(book_mode):
    np.random.seed(2)
    rnn = L.RNN(4, in_size=3)
    rs = np.random.RandomState(2)
    np.testing.assert_array_equal(rnn.x2h.W.data, _linear_draw(rs, 3, 4))
    np.testing.assert_array_equal(rnn.h2h.W.data, _linear_draw(rs, 4, 4))  # sized by H


def _fused(blocks, H):
    """The original's per-gate weights (dict f, i, o, u) as our columns i, f, g(=u), o."""
    return np.concatenate([blocks["i"], blocks["f"], blocks["u"], blocks["o"]], axis=1)


@pytest.mark.parametrize("in_size", [None, 3], ids=["in_size=None", "in_size=3"])
def test_book_mode_lstm_draw_order(book_mode, in_size):
    H, I = 5, 3
    np.random.seed(0)
    lstm = L.LSTM(H, in_size=in_size)
    x = np.random.rand(2, I).astype(np.float32)
    lstm(x)
    lstm(x)

    rs = np.random.RandomState(0)
    x_blocks, h_blocks = {}, {}
    if in_size is not None:  # x2f, x2i, x2o, x2u, then h2f, h2i, h2o, h2u, all at once
        for gate in "fiou":
            x_blocks[gate] = _linear_draw(rs, I, H)
    for gate in "fiou":  # the h2* are drawn at construction, in declaration order
        h_blocks[gate] = _linear_draw(rs, H, H)
    x_ref = rs.rand(2, I).astype(np.float32)
    if in_size is None:  # the x2* at the first call, in the order f, i, o, u
        for gate in "fiou":
            x_blocks[gate] = _linear_draw(rs, I, H)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(lstm.x2h.W.data, _fused(x_blocks, H))
    np.testing.assert_array_equal(lstm.h2h.W.data, _fused(h_blocks, H))


def test_lstm_computes_the_originals_step_with_its_gates_fused():
    # The original's first step (h None) is c = i * u, h = o * tanh(c), and then the
    # eight separate products: the same numbers as ours with the blocks fused.
    rng = np.random.default_rng(10)
    H, I = 4, 3
    lstm = _as_float64(L.LSTM(H, in_size=I))
    Wx, Wh, b = lstm.x2h.W.data, lstm.h2h.W.data, lstm.x2h.b.data
    gates = {"i": 0, "f": 1, "u": 2, "o": 3}

    def block(W, gate):
        k = gates[gate]
        return W[..., k * H:(k + 1) * H]

    def sig(v):
        return 1 / (1 + np.exp(-v))

    xs = rng.standard_normal((3, 2, I))
    h = c = None
    for x in xs:
        pre = {g: x @ block(Wx, g) + block(b, g) + (0 if h is None else h @ block(Wh, g))
               for g in gates}
        f, i, o, u = sig(pre["f"]), sig(pre["i"]), sig(pre["o"]), np.tanh(pre["u"])
        c = i * u if c is None else f * c + i * u
        h = o * np.tanh(c)
        y = lstm(x)
        np.testing.assert_allclose(y.data, h, atol=1e-14)


def test_book_mode_uses_numpys_generator_when_zerograd_random_does():
    # Once zerograd.random.normal follows NumPy's global generator in book mode (the book
    # helper's part), the layers reproduce the original without any stand-in.
    was = zrandom.book_mode()
    zrandom.set_book_mode(True)
    try:
        np.random.seed(0)
        drawn = zrandom.normal((2,), 1.0, np.float64)
        follows = np.array_equal(drawn, np.random.RandomState(0).randn(2))
        if not follows:
            pytest.skip("zerograd.random.normal does not draw from NumPy's global generator "
                        "in book mode yet")
        np.random.seed(0)
        lstm = L.LSTM(5, in_size=3)
        rs = np.random.RandomState(0)
        blocks = {g: rs.randn(3, 5) for g in "fiou"}
        scale = math.sqrt(1 / 3)
        np.testing.assert_allclose(lstm.x2h.W.data, _fused(blocks, 5) * scale, rtol=1e-6)
    finally:
        zrandom.set_book_mode(was)


def test_functions_and_layers_agree_on_the_cell():
    # L.LSTM's step is F.linear + F.lstm: one Function for the gates, none left in layers.
    assert not hasattr(L.recurrent, "_sigmoid_array")
    lstm = L.LSTM(3, in_size=2)
    y = lstm(np.ones((1, 2), dtype=np.float32))
    assert type(y.creator).__name__ == "LSTMCell"
    c, h = F.lstm(None, lstm.x2h(np.ones((1, 2), dtype=np.float32)))
    np.testing.assert_array_equal(h.data, y.data)
