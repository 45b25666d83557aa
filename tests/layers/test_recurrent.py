"""Tests for zerograd.layers.recurrent: RNN, LSTM and GRU."""

import numpy as np
import pytest

import zerograd.layers as L
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward, check_function


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


# ---- recurrent layers ------------------------------------------------------------------------
def _to_torch(torch, a):
    return torch.from_numpy(np.ascontiguousarray(as_numpy(a)))


def _run_sequence(layer, xs):
    layer.reset_state()
    return [layer(x) for x in xs]


def _sequence_loss(ys, gys):
    loss = None
    for y, gy in zip(ys, gys):
        term = (y * gy).sum()
        loss = term if loss is None else loss + term
    return loss


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_match_torch_cells(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    N, I, H, T = 3, 4, 5, 4
    layer = getattr(L, kind)(H)
    xs = [Variable(rng.standard_normal((N, I)).astype(np.float32)) for _ in range(T)]
    gys = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(T)]
    ys = _run_sequence(layer, xs)
    assert layer.x2h.W.shape == (I, layer.x2h.out_size)  # in_size inferred
    _sequence_loss(ys, gys).backward()

    cell = getattr(torch.nn, kind + "Cell")(I, H)
    with torch.no_grad():
        cell.weight_ih.copy_(_to_torch(torch, layer.x2h.W.data.T))
        cell.weight_hh.copy_(_to_torch(torch, layer.h2h.W.data.T))
        cell.bias_ih.copy_(_to_torch(torch, layer.x2h.b.data))
        if layer.h2h.b is None:
            cell.bias_hh.zero_()
        else:
            cell.bias_hh.copy_(_to_torch(torch, layer.h2h.b.data))
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


def test_lstm_cell_function_first_and_second_derivatives(dtype):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 12)).astype(dtype)
    c = rng.standard_normal((2, 3)).astype(dtype)

    def cell(a, c):
        return L.recurrent._LSTMCell()(a, c)

    check_backward(cell, a, c)
    if dtype == np.float64:
        check_double_backward(cell, a, c)


def test_lstm_double_backprop_through_the_layer():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3))
    lstm = L.LSTM(4, in_size=3)
    for p in lstm.params():
        p.data = p.data.astype(np.float64)

    def two_steps(x):
        lstm.reset_state()
        lstm(x)
        return lstm(x * 0.5)

    check_function(two_steps, x, second_order=True)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
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

@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_on_each_device(xp, kind):
    layer = getattr(L, kind)(4)
    if xp is not np:
        layer.to_gpu()  # the lazily created weights follow the input onto the GPU
    x = xp.asarray(np.random.default_rng(0).standard_normal((2, 3)), dtype=np.float32)
    loss = (layer(x) * layer(x)).sum()
    loss.backward()
    assert type(layer.h.data) is type(x) and layer.h.dtype == np.float32
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in layer.params())
