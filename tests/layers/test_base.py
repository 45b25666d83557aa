"""Tests for zerograd.layers.base: registration, devices, state_dict and weights I/O."""

import io
import os
import re

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter, test_mode
from zerograd.cuda import as_numpy
from zerograd.layers import Layer


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


@pytest.mark.parametrize("name, kind", [("w.npz", "an .npz archive"),
                                        ("w.safetensors", "a safetensors file")])
def test_a_damaged_file_is_named_by_its_own_format(tmp_path, name, kind):
    # (a .safetensors file used to be called "an .npz archive")
    path = tmp_path / name
    path.write_bytes(b"junk" * 10)
    layer = L.Linear(2, in_size=3)
    with pytest.raises(ValueError, match=rf"Linear.load_weights: cannot read .* as {kind} .*"
                                         r"save the weights again"):
        layer.load_weights(path)


def test_a_deeply_nested_safetensors_header_is_a_clear_error(tmp_path):
    path = tmp_path / "deep.safetensors"
    header = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(np.uint64(len(header)).tobytes() + header)
    with pytest.raises(ValueError, match="Linear.load_weights: .*nests too deeply"):
        L.Linear(2, in_size=3).load_weights(path)


# ---- forward hooks --------------------------------------------------------------------------
def test_forward_hooks_see_each_call_and_can_be_removed(rng):
    layer = L.Linear(2, in_size=3)
    seen = []
    handle = layer.register_forward_hook(
        lambda lay, xs, y: seen.append((lay, xs[0].shape, y.shape))
    )
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer(x)
    layer(x[:1])
    assert seen == [(layer, (4, 3), (4, 2)), (layer, (1, 3), (1, 2))]
    handle.remove()
    handle.remove()  # twice is harmless
    layer(x)
    assert len(seen) == 2
    with pytest.raises(TypeError, match="register_forward_hook"):
        layer.register_forward_hook("print")


def test_a_forward_hook_may_replace_the_output(rng):
    layer = L.Linear(2, in_size=3)
    layer.register_forward_hook(lambda lay, xs, y: y * 0)
    y = layer(rng.standard_normal((4, 3)).astype(np.float32))
    np.testing.assert_array_equal(y.data, 0)


# ---- repr and summary ---------------------------------------------------------------------
def test_repr_nests_layers_like_pytorch():
    from zerograd.models import MLP

    model = MLP((1000, 10), activation=F.relu)
    model(np.zeros((1, 784), dtype=np.float32))
    assert repr(model) == (
        "MLP(\n"
        "  activation=relu\n"
        "  (l0): Linear(in_size=784, out_size=1000)\n"
        "  (l1): Linear(in_size=1000, out_size=10)\n"
        ")"
    )
    outer = Net()
    text = repr(outer)
    assert text.startswith("Net(\n  (l1): Linear(in_size=3, out_size=4)\n  (bn): BatchNorm(")
    assert repr(Layer()) == "Layer()"


def test_extra_repr_shows_arguments_that_differ_from_their_defaults():
    class Block(Layer):
        def __init__(self, width, ratio=0.5, dtype=np.float32, kernel=(3, 3), act=F.relu,
                   table=None, *rest, **options):
            super().__init__()
            self.width, self.ratio, self.dtype = width, ratio, dtype
            self.kernel, self.act, self.table = kernel, act, np.zeros(3)

    assert Block(8).extra_repr() == "width=8"
    text = Block(8, 0.25, np.float16, (1, 2), F.tanh).extra_repr()
    assert text == "width=8, ratio=0.25, dtype=float16, kernel=(1, 2), act=tanh"

    class Custom(Layer):
        def extra_repr(self):
            return "size=3"

    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.inner = Custom()

    assert repr(Outer()) == "Outer(\n  (inner): Custom(size=3)\n)"


class _Twice(Layer):
    """Calls one sub-layer twice and leaves another unused; shares a Parameter."""

    def __init__(self):
        super().__init__()
        self.fc = L.Linear(3, in_size=3)
        self.unused = L.Linear(5, in_size=2)
        self.head = L.Linear(2, in_size=3)
        self.drop = L.Dropout(0.5)
        self.bn = L.BatchNorm()

    def forward(self, x):
        return self.head(self.drop(self.bn(self.fc(self.fc(x)))))


def test_summary_counts_every_parameter_once_and_shows_shapes(rng, capsys):
    model = _Twice()
    model.unused.b = model.head.b  # shared: counted once, for its first owner
    x = rng.standard_normal((6, 3)).astype(np.float32)
    model.summary(x)
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = {line.split()[0]: line for line in lines[2:-3]}
    assert rows["fc"].split()[-1] == "12" and "(6, 3) (x2)" in rows["fc"]
    assert "  -  " in rows["unused"] and rows["unused"].split()[-1] == "12"  # W 10, b 2
    assert rows["head"].split()[-1] == "6"  # its b is unused.b, counted there
    assert rows["bn"].split()[-1] == "6"  # gamma and beta, created by the pass
    total = sum(p.data.size for p in model.params())
    assert f"Parameters: {total:,} " in out and total == 12 + 12 + 6 + 6
    assert lines[-1] == "Buffers: 6"  # the batch norm's running mean and variance
    assert (model.bn.avg_mean == 0).all()  # test mode: the statistics are untouched


def test_summary_builds_no_graph_and_removes_its_hooks(rng):
    model = Net()
    x = rng.standard_normal((2, 3)).astype(np.float32)
    model.summary(x, file=io.StringIO())
    assert all(not layer.__dict__.get("_forward_hooks") for _, layer in model.named_layers())
    assert model(x).creator is not None  # later calls record graphs as usual

    class Failing(Layer):
        def __init__(self):
            super().__init__()
            self.fc = L.Linear(2, in_size=3)

        def forward(self, x):
            self.fc(x)
            raise RuntimeError("boom")

    failing = Failing()
    with pytest.raises(RuntimeError, match="boom"):
        failing.summary(x, file=io.StringIO())
    assert not failing.fc.__dict__.get("_forward_hooks")


def test_named_layers_visits_each_layer_once():
    shared = L.Linear(2)

    class Tied(Layer):
        def __init__(self):
            super().__init__()
            self.a = shared
            self.b = shared
            self.c = Net()

    names = [name for name, _ in Tied().named_layers()]
    assert names == ["", "a", "c", "c.l1", "c.bn", "c.l2"]


# ---- dtypes ----------------------------------------------------------------------------------
def test_astype_casts_parameters_buffers_and_lazy_layers(rng):
    net = _trained_net(rng)
    lazy = L.Linear(3)
    net.extra = lazy
    net.astype(np.float16)
    for key, value in net.state_dict().items():
        assert value.dtype == np.float16, key
    x = rng.standard_normal((2, 4)).astype(np.float16)
    assert lazy(x).dtype == np.float16 and lazy.W.dtype == np.float16
    with pytest.raises(ValueError, match="floating-point"):
        net.astype(np.int32)
