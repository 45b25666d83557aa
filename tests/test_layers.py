"""Tests for zerograd.layers: registration, weights I/O, and each layer's maths."""

import os
import re

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter, Variable, test_mode
from zerograd.cuda import as_numpy
from zerograd.layers import Layer
from zerograd.testing import check_backward, check_double_backward, check_function


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


class Net(Layer):
    """A small model with a sub-layer, a bare Parameter and a BatchNorm (buffers)."""

    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(4, in_size=3)
        self.scale = Parameter(np.full(4, 2.0, dtype=np.float32), name="scale")
        self.bn = L.BatchNorm()
        self.l2 = L.Linear(2, in_size=4)

    def forward(self, x):
        return self.l2(F.tanh(self.bn(self.l1(x))) * self.scale)


def _snapshot(layer):
    return {k: as_numpy(v).copy() for k, v in layer.state_dict().items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _trained_net(rng):
    net = Net()
    net(rng.standard_normal((5, 3)).astype(np.float32))  # creates BN state, moves stats
    return net


# ---- registration -----------------------------------------------------------------------
def test_registration_follows_assignment_order():
    class Odd(Layer):
        def __init__(self):
            super().__init__()
            self.z = Parameter(np.zeros(1))
            self.sub = L.Linear(2, in_size=2)
            self.a = Parameter(np.zeros(2))
            self.not_a_param = np.zeros(3)

    layer = Odd()
    assert list(layer._params) == ["z", "sub", "a"]
    assert [p.shape for p in layer.params()] == [(1,), (2, 2), (2,), (2,)]
    assert list(layer.state_dict()) == ["z", "sub.W", "sub.b", "a"]
    layer.z = None  # no longer a Parameter: unregistered
    assert list(layer._params) == ["sub", "a"]
    del layer.a
    assert list(layer._params) == ["sub"]


def test_params_is_recursive_and_yields_shared_parameters_once():
    net = Net()
    names = list(net.state_dict())
    assert names == ["l1.W", "l1.b", "scale", "l2.W", "l2.b"]  # BN not created yet
    shared = L.Linear(2, in_size=2)

    class Tied(Layer):
        def __init__(self):
            super().__init__()
            self.a = shared
            self.b = shared

    assert len(list(Tied().params())) == 2


def test_cleargrads(rng):
    net = _trained_net(rng)
    y = net(rng.standard_normal((5, 3)).astype(np.float32))
    y.sum().backward()
    assert all(p.grad is not None for p in net.params())
    net.cleargrads()
    assert all(p.grad is None for p in net.params())


def test_missing_super_init_is_explained():
    class Broken(Layer):
        def __init__(self):
            self.W = Parameter(np.zeros(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Broken()


def test_forward_not_implemented_and_bad_buffer():
    layer = Layer()
    with pytest.raises(NotImplementedError):
        layer(np.zeros(1))
    with pytest.raises(TypeError, match="register_buffer"):
        layer.register_buffer("stats", [1.0, 2.0])


def test_seed_makes_initial_weights_reproducible():
    L.seed(3)
    a = L.Conv2d(2, 3, in_channels=2).W.data
    L.seed(3)
    b = L.Conv2d(2, 3, in_channels=2).W.data
    np.testing.assert_array_equal(a, b)


# ---- lazy sizes and dtypes ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_infers_input_size_and_keeps_dtype(xp, dtype):
    layer = L.Linear(3, dtype=dtype)
    assert layer.W.data is None
    if xp is not np:
        layer.to_gpu()
    x = xp.asarray(np.ones((2, 5, 4), dtype=dtype))
    y = layer(x)
    assert layer.W.shape == (4, 3) and layer.in_size == 4
    assert y.shape == (2, 5, 3) and y.dtype == dtype
    assert abs(float(as_numpy(layer.W.data).std()) - 0.5) < 0.3  # scale sqrt(1/4)
    y.sum().backward()
    assert layer.W.grad.dtype == dtype and layer.b.grad.shape == (3,)
    assert L.Linear(3, nobias=True, in_size=2).b is None


def test_linear_wrong_input_size_raises():
    layer = L.Linear(3, in_size=4)
    with pytest.raises(ValueError, match="linear"):
        layer(np.ones((2, 5), dtype=np.float32))


def test_conv_layers_infer_channels(xp):
    x = xp.asarray(np.ones((2, 3, 6, 6), dtype=np.float32))
    conv = L.Conv2d(4, kernel_size=3, stride=1, pad=1)
    deconv = L.Deconv2d(5, kernel_size=(2, 2), stride=2, nobias=True)
    if xp is not np:
        conv.to_gpu()
    y = conv(x)
    assert conv.W.shape == (4, 3, 3, 3) and y.shape == (2, 4, 6, 6)
    z = deconv(y)
    assert deconv.W.shape == (4, 5, 2, 2) and deconv.b is None and z.shape == (2, 5, 12, 12)
    assert z.dtype == np.float32


def test_embed_id(xp):
    embed = L.EmbedID(7, 3)
    if xp is not np:
        embed.to_gpu()
    ids = xp.asarray(np.array([[0, 6], [6, 2]]))
    y = embed(ids)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(as_numpy(y.data[0, 1]), as_numpy(embed.W.data[6]))


def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32)
    ln = L.LayerNorm()
    y = ln(x)
    assert ln.gamma.shape == (5,)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (5,), eps=1e-5).numpy()
    np.testing.assert_allclose(y.data, expected, atol=1e-5)


def test_dropout_layer():
    x = np.ones((200,), dtype=np.float32)
    with test_mode():
        np.testing.assert_array_equal(L.Dropout(0.5)(x).data, x)
    y = L.Dropout(0.5)(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).sum() < 200


# ---- BatchNorm ------------------------------------------------------------------------------
def test_batch_norm_running_stats_are_buffers(rng):
    bn = L.BatchNorm()
    x = (rng.standard_normal((8, 3, 2, 2)) * 3 + 1).astype(np.float32)
    y = bn(x)
    assert y.shape == x.shape and bn.avg_mean.shape == (3,)
    assert list(bn.state_dict()) == ["gamma", "beta", "avg_mean", "avg_var"]
    assert [p.name for p in bn.params()] == ["gamma", "beta"]
    np.testing.assert_allclose(bn.avg_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    with test_mode():
        before = bn.avg_mean.copy()
        y_test = bn(x)
        np.testing.assert_array_equal(bn.avg_mean, before)
    expected = (x - bn.avg_mean[:, None, None]) / np.sqrt(bn.avg_var[:, None, None] + 2e-5)
    np.testing.assert_allclose(y_test.data, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_stats_survive_save_and_load(tmp_path, rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    bn = L.BatchNorm()
    for _ in range(3):
        bn(x + 2)
    bn.save_weights(tmp_path / "bn.npz")
    fresh = L.BatchNorm()
    fresh.load_weights(tmp_path / "bn.npz")
    _assert_same(_snapshot(bn), _snapshot(fresh))
    with test_mode():
        np.testing.assert_array_equal(bn(x).data, fresh(x).data)


def test_to_gpu_moves_buffers(xp):
    if xp is np:
        pytest.skip("needs a GPU")
    bn = L.BatchNorm()
    bn(np.ones((2, 3), dtype=np.float32))
    bn.to_gpu()
    assert not isinstance(bn.avg_mean, np.ndarray) and not isinstance(bn.gamma.data, np.ndarray)
    bn(xp.ones((2, 3), dtype=np.float32))
    bn.to_cpu()
    assert isinstance(bn.avg_var, np.ndarray) and isinstance(bn.beta.data, np.ndarray)


# ---- state_dict / load_state_dict ---------------------------------------------------------
def test_state_dict_round_trip_gives_identical_outputs(rng):
    net = _trained_net(rng)
    fresh = Net()
    fresh.load_state_dict(net.state_dict())
    _assert_same(_snapshot(net), _snapshot(fresh))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with test_mode():
        np.testing.assert_array_equal(net(x).data, fresh(x).data)
    # Loading copies: changing the source afterwards does not reach the copy.
    net.l1.W.data += 1
    assert not np.array_equal(net.l1.W.data, fresh.l1.W.data)


def test_load_state_dict_reports_every_mismatch_and_changes_nothing(rng):
    net = _trained_net(rng)
    before = _snapshot(net)
    state = {k: v.copy() for k, v in Net().state_dict().items()}
    state["l1.W"] = np.zeros((3, 5), dtype=np.float32)  # shape
    state["l2.b"] = state["l2.b"].astype(np.float64)  # dtype
    del state["scale"]  # missing (bn.* are missing too: a fresh Net has no BN state yet)
    state["l3.W"] = np.zeros(1, dtype=np.float32)  # unexpected
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    for name in ["l1.W", "l2.b", "scale", "bn.avg_mean", "l3.W"]:
        assert repr(name) in message
    assert "(3, 5)" in message and "float64" in message and "nothing was loaded" in message
    _assert_same(before, _snapshot(net))


def test_load_state_dict_non_strict_ignores_names_not_shapes(rng):
    net = _trained_net(rng)
    other = Net()
    state = {"l1.W": other.l1.W.data.copy(), "extra": np.zeros(1)}
    net.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(net.l1.W.data, other.l1.W.data)
    with pytest.raises(ValueError, match="shape"):
        net.load_state_dict({"l1.W": np.zeros((1, 1), dtype=np.float32)}, strict=False)


def test_lazy_parameters_take_their_shape_from_the_weights(rng):
    source = L.Linear(3)
    x = rng.standard_normal((2, 5)).astype(np.float32)
    y = source(x)
    lazy = L.Linear(3)
    lazy.load_state_dict(source.state_dict())
    assert lazy.W.shape == (5, 3)
    np.testing.assert_array_equal(lazy(x).data, y.data)
    with pytest.raises(ValueError, match="dtype"):
        L.Linear(3).load_state_dict({"W": np.zeros((5, 3)), "b": np.zeros(3, np.float32)})


# ---- save_weights / load_weights ----------------------------------------------------------
def test_save_load_round_trip_in_a_fresh_instance(tmp_path, rng):
    net = _trained_net(rng)
    path = tmp_path / "net.npz"
    net.save_weights(path)
    fresh = Net()
    fresh.load_weights(str(path))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with test_mode():
        np.testing.assert_array_equal(net(x).data, fresh(x).data)
    _assert_same(_snapshot(net), _snapshot(fresh))


def test_save_writes_exactly_the_given_path(tmp_path):
    path = tmp_path / "weights"
    L.Linear(2, in_size=2).save_weights(path)
    assert os.listdir(tmp_path) == ["weights"]
    L.Linear(2, in_size=2).load_weights(path)


def test_save_overwrites_an_older_file(tmp_path):
    path = tmp_path / "w.npz"
    L.Linear(2, in_size=2).save_weights(path)
    layer = L.Linear(2, in_size=2)
    layer.save_weights(path)
    other = L.Linear(2, in_size=2)
    other.load_weights(path)
    np.testing.assert_array_equal(other.W.data, layer.W.data)


def test_crash_during_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    old = L.Linear(2, in_size=2)
    old.save_weights(path)
    content = path.read_bytes()

    def crashing_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        L.Linear(2, in_size=2).save_weights(path)
    monkeypatch.undo()
    assert path.read_bytes() == content
    assert os.listdir(tmp_path) == ["w.npz"]  # the temporary file is gone
    restored = L.Linear(2, in_size=2)
    restored.load_weights(path)
    np.testing.assert_array_equal(restored.W.data, old.W.data)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "npy", "empty"])
def test_unreadable_files_raise_and_leave_the_model_untouched(tmp_path, rng, damage):
    net = _trained_net(rng)
    path = tmp_path / "net.npz"
    net.save_weights(path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "garbage":
        path.write_bytes(b"not weights at all" * 10)
    elif damage == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        path.write_bytes(b"")
    target = _trained_net(np.random.default_rng(5))
    before = _snapshot(target)
    with pytest.raises(ValueError, match="load_weights"):
        target.load_weights(path)
    _assert_same(before, _snapshot(target))


def test_load_weights_of_a_missing_file():
    with pytest.raises(FileNotFoundError):
        L.Linear(2).load_weights("/nonexistent/dir/w.npz")


def test_load_weights_accepts_dezero_names(tmp_path, rng):
    net = _trained_net(rng)
    path = tmp_path / "dezero.npz"
    with open(path, "wb") as f:
        np.savez(f, **{k.replace(".", "/"): v for k, v in net.state_dict().items()})
    fresh = Net()
    fresh.load_weights(path)
    _assert_same(_snapshot(net), _snapshot(fresh))


def test_save_weights_keeps_a_gpu_model_on_the_gpu(tmp_path, xp):
    net = _trained_net(np.random.default_rng(0))
    if xp is not np:
        net.to_gpu()
    net.save_weights(tmp_path / "w.npz")
    assert all(type(p.data) is type(xp.zeros(1)) for p in net.params())
    assert type(net.bn.avg_mean) is type(xp.zeros(1))
    fresh = Net()
    fresh.load_weights(tmp_path / "w.npz")
    _assert_same(_snapshot(net), _snapshot(fresh))


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
        return L._LSTMCell()(a, c)

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


# ---- attention ---------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_torch(causal):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    N, T, E, heads = 2, 5, 8, 2
    attn = L.MultiHeadAttention(E, heads, causal=causal)
    x = Variable(rng.standard_normal((N, T, E)).astype(np.float32))
    gy = rng.standard_normal((N, T, E)).astype(np.float32)
    y = attn(x)
    (y * gy).sum().backward()

    mha = torch.nn.MultiheadAttention(E, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(_to_torch(torch, attn.qkv.W.data.T))
        mha.in_proj_bias.copy_(_to_torch(torch, attn.qkv.b.data))
        mha.out_proj.weight.copy_(_to_torch(torch, attn.out.W.data.T))
        mha.out_proj.bias.copy_(_to_torch(torch, attn.out.b.data))
    tx = _to_torch(torch, x.data).requires_grad_()
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
    ty, _ = mha(tx, tx, tx, attn_mask=mask, need_weights=False)
    (ty * _to_torch(torch, gy)).sum().backward()

    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(attn.qkv.W.grad.data, mha.in_proj_weight.grad.numpy().T,
                               atol=1e-4, rtol=1e-4)


def test_causal_attention_ignores_the_future():
    attn = L.MultiHeadAttention(4, 2, causal=True)
    x = np.random.default_rng(0).standard_normal((1, 4, 4)).astype(np.float32)
    changed = x.copy()
    changed[0, 3] += 10
    np.testing.assert_allclose(attn(x).data[0, :3], attn(changed).data[0, :3], atol=1e-6)


def test_attention_gradients_numerically():
    attn = L.MultiHeadAttention(4, 2, causal=True, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((1, 3, 4))
    check_backward(attn, x)
    check_double_backward(attn, x)


def test_attention_errors():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        L.MultiHeadAttention(6, 4)
    with pytest.raises(ValueError, match=r"\(N, T, 8\)"):
        L.MultiHeadAttention(8, 2)(np.zeros((5, 8), dtype=np.float32))


def test_transformer_block_forward_backward(xp):
    block = L.TransformerBlock(8, 2, hidden_size=16, causal=True)
    if xp is not np:
        block.to_gpu()
    x = Variable(xp.asarray(np.random.default_rng(0).standard_normal((2, 3, 8)),
                            dtype=np.float32))
    y = block(x)
    assert y.shape == (2, 3, 8) and y.dtype == np.float32
    y.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in block.params())
    assert x.grad.shape == x.shape


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


def test_lazy_parameters_load_onto_the_layers_device(xp):
    source = L.Linear(3)
    source(np.ones((1, 2), dtype=np.float32))
    lazy = L.Linear(3)
    if xp is not np:
        lazy.to_gpu()
    lazy.load_state_dict(source.state_dict())
    assert type(lazy.W.data) is type(lazy.b.data) is type(xp.zeros(1))
    assert lazy(xp.ones((1, 2), dtype=np.float32)).shape == (1, 3)


@pytest.mark.parametrize("make, state, message", [
    (lambda: L.Linear(3), {"W": np.zeros((4, 5), np.float32), "b": np.zeros(3, np.float32)},
     "'W': shape (4, 5) given, the layer expects (?, 3)"),
    (lambda: L.Conv2d(8, kernel_size=3, pad=1),
     {"W": np.zeros((8, 3, 5, 5), np.float32), "b": np.zeros(8, np.float32)},
     "'W': shape (8, 3, 5, 5) given, the layer expects (8, ?, 3, 3)"),
])
def test_loading_into_a_lazy_layer_checks_the_known_sizes(make, state, message):
    layer = make()
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.load_state_dict(state)
    assert layer.W.data is None  # nothing was loaded


def test_loading_into_a_lazy_layer_sets_its_input_size():
    linear = L.Linear(3)
    linear.load_state_dict({"W": np.ones((4, 3), np.float32), "b": np.zeros(3, np.float32)})
    assert linear.in_size == 4
    conv = L.Conv2d(8, kernel_size=3, pad=1)
    conv.load_state_dict({"W": np.ones((8, 2, 3, 3), np.float32), "b": np.zeros(8, np.float32)})
    assert conv.in_channels == 2
    assert conv(np.zeros((1, 2, 6, 6), np.float32)).shape == (1, 8, 6, 6)
    deconv = L.Deconv2d(8, kernel_size=3)
    deconv.load_state_dict({"W": np.ones((5, 8, 3, 3), np.float32),
                            "b": np.zeros(8, np.float32)})
    assert deconv.in_channels == 5


def test_loaded_entries_go_to_the_device_the_layer_was_moved_to(xp):
    # A layer with nothing created yet (no bias, lazy W) still loads onto the GPU.
    source = L.Conv2d(4, kernel_size=3, nobias=True, in_channels=2)
    target = L.Conv2d(4, kernel_size=3, nobias=True)
    if xp is not np:
        target.to_gpu()
    target.load_state_dict(source.state_dict())
    assert isinstance(target.W.data, xp.ndarray)


def test_loading_a_npy_file_says_what_it_is(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros(3))
    layer = L.Linear(2, in_size=3)
    with pytest.raises(ValueError, match=r"single array \(\.npy\)"):
        layer.load_weights(path)
