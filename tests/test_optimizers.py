"""Optimizers, hooks and schedules against torch.optim, and their saved state."""

import numpy as np
import pytest

from zerograd import Parameter
from zerograd import optimizers as O
from zerograd.cuda import as_numpy, get_array_module

# ---- a small problem: Rosenbrock in two weights plus a weighted quadratic ----------------
A0 = np.array([-1.2, 1.0])
B0 = np.array([[0.5, -1.5], [2.0, 0.25]])
WEIGHTS = np.array([[1.0, 2.0], [0.5, 3.0]])


def _loss(a, b):
    rosen = 100 * (a[1] - a[0] ** 2) ** 2 + (1 - a[0]) ** 2
    weights = get_array_module(b.data).asarray(WEIGHTS, dtype=b.dtype)
    return rosen + ((b - 3.0) ** 2 * weights).sum()


def _torch_loss(a, b):
    import torch

    rosen = 100 * (a[1] - a[0] ** 2) ** 2 + (1 - a[0]) ** 2
    return rosen + ((b - 3.0) ** 2 * torch.from_numpy(WEIGHTS)).sum()


def _params(xp=np, dtype=np.float64):
    return [Parameter(xp.array(A0, dtype=dtype)), Parameter(xp.array(B0, dtype=dtype))]


def _step(optimizer, params):
    for p in params:
        p.cleargrad()
    _loss(*params).backward()
    optimizer.update()


CASES = {
    "SGD": (lambda: O.SGD(lr=0.001), lambda ps, t: t.optim.SGD(ps, lr=0.001)),
    "MomentumSGD": (
        lambda: O.MomentumSGD(lr=0.0005, momentum=0.9),
        lambda ps, t: t.optim.SGD(ps, lr=0.0005, momentum=0.9),
    ),
    "AdaGrad": (
        lambda: O.AdaGrad(lr=0.05),
        lambda ps, t: t.optim.Adagrad(ps, lr=0.05, eps=1e-8),
    ),
    "AdaDelta": (
        lambda: O.AdaDelta(rho=0.9, eps=1e-6),
        lambda ps, t: t.optim.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6),
    ),
    "Adam": (
        lambda: O.Adam(alpha=0.01, beta1=0.8, beta2=0.99, eps=1e-3),
        lambda ps, t: t.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-3),
    ),
    "AdamW": (
        lambda: O.AdamW(alpha=0.01, weight_decay=0.1, eps=1e-3),
        lambda ps, t: t.optim.AdamW(ps, lr=0.01, weight_decay=0.1, eps=1e-3),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    make, make_torch = CASES[name]
    params = _params()
    optimizer = make().setup(params)
    tparams = [torch.tensor(A0, requires_grad=True), torch.tensor(B0, requires_grad=True)]
    toptimizer = make_torch(tparams, torch)
    for _ in range(15):
        _step(optimizer, params)
        toptimizer.zero_grad()
        _torch_loss(*tparams).backward()
        toptimizer.step()
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert not np.allclose(params[0].data, A0)  # it moved


@pytest.mark.parametrize("name", list(CASES))
def test_float32_stays_float32(name, xp):
    make, _ = CASES[name]
    params = _params(xp, np.float32)
    optimizer = make().setup(params)
    for _ in range(3):
        _step(optimizer, params)
    for p in params:
        assert p.data.dtype == np.float32
        assert type(p.data) is type(xp.asarray(A0))
        for value in optimizer.state_of(p).values():
            if not isinstance(value, int):
                assert value.dtype == np.float32
    # and it follows the float64 run closely
    params64 = _params()
    optimizer64 = make().setup(params64)
    for _ in range(3):
        _step(optimizer64, params64)
    for p, p64 in zip(params, params64):
        np.testing.assert_allclose(as_numpy(p.data), p64.data, rtol=1e-4, atol=1e-5)


def test_adam_lr_is_dezero_bias_corrected_rate():
    optimizer = O.Adam(alpha=0.1, beta1=0.9, beta2=0.999).setup(_params())
    assert optimizer.lr == pytest.approx(0.1 * np.sqrt(1 - 0.999) / (1 - 0.9))
    for _ in range(3):
        _step(optimizer, optimizer.target._params)
    assert optimizer.t == 3
    assert optimizer.lr == pytest.approx(0.1 * np.sqrt(1 - 0.999**3) / (1 - 0.9**3))


def test_update_skips_params_without_grad():
    a, b = _params()
    optimizer = O.Adam(alpha=0.1).setup([a, b])
    (a * a).sum().backward()
    optimizer.update()
    np.testing.assert_array_equal(b.data, B0)
    assert optimizer.state_of(a)["step"] == 1
    assert optimizer.state_of(b)["step"] == 0


def test_setup_errors():
    with pytest.raises(RuntimeError, match="setup"):
        O.SGD().update()
    with pytest.raises(TypeError, match="params"):
        O.SGD().setup(3)


def test_layer_target():
    L = pytest.importorskip("zerograd.layers")
    if not hasattr(L, "Linear"):
        pytest.skip("zerograd.layers.Linear not written yet")
    layer = L.Linear(3, in_size=2, dtype=np.float64)
    x = np.array([[1.0, 2.0]])
    optimizer = O.SGD(lr=0.1).setup(layer)
    before = [p.data.copy() for p in layer.params()]
    (layer(x) ** 2).sum().backward()
    grads = [p.grad.data.copy() for p in layer.params()]
    optimizer.update()
    for p, w, g in zip(layer.params(), before, grads):
        np.testing.assert_allclose(p.data, w - 0.1 * g)


# ---- hooks ------------------------------------------------------------------------------
def test_weight_decay_matches_torch_sgd_weight_decay():
    torch = pytest.importorskip("torch")
    params = _params()
    optimizer = O.MomentumSGD(lr=0.0005).setup(params)
    optimizer.add_hook(O.WeightDecay(0.1))
    tparams = [torch.tensor(A0, requires_grad=True), torch.tensor(B0, requires_grad=True)]
    toptimizer = torch.optim.SGD(tparams, lr=0.0005, momentum=0.9, weight_decay=0.1)
    for _ in range(5):
        _step(optimizer, params)
        toptimizer.zero_grad()
        _torch_loss(*tparams).backward()
        toptimizer.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    params = _params()
    _loss(*params).backward()
    O.ClipGrad(max_norm)(params)
    tparams = [torch.tensor(A0, requires_grad=True), torch.tensor(B0, requires_grad=True)]
    _torch_loss(*tparams).backward()
    torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-10)
    total = np.sqrt(sum(float((p.grad.data ** 2).sum()) for p in params))
    assert total <= max_norm + 1e-6


def test_hooks_do_not_modify_shared_gradients():
    # x + y hands the same gradient to both inputs: a hook must not change it in place
    a = Parameter(np.array([1.0, 2.0]))
    b = Parameter(np.array([3.0, 4.0]))
    (a + b).sum().backward()
    optimizer = O.SGD(lr=1.0).setup([a, b])
    optimizer.add_hook(O.WeightDecay(1.0))
    optimizer.update()
    np.testing.assert_allclose(a.data, [1.0 - 2.0, 2.0 - 3.0])
    np.testing.assert_allclose(b.data, [3.0 - 4.0, 4.0 - 5.0])


class _Block:
    """Stands in for a Layer: anything with params()."""

    def __init__(self, *params):
        self._params = list(params)

    def params(self):
        yield from self._params


def test_freeze_param_layer_and_parameter():
    a, b = _params()
    c = Parameter(np.array([5.0]))
    optimizer = O.Adam(alpha=0.1).setup(_Block(a, b, c))
    optimizer.add_hook(O.FreezeParam(_Block(a), c))
    _loss(a, b).backward()
    (c * c).sum().backward()
    optimizer.update()
    np.testing.assert_array_equal(a.data, A0)
    np.testing.assert_array_equal(c.data, [5.0])
    assert not np.allclose(b.data, B0)
    assert a.grad is None and c.grad is None
    with pytest.raises(TypeError, match="FreezeParam"):
        O.FreezeParam(3)


def test_hooks_after_freeze_param_skip_frozen():
    a, b = _params()
    optimizer = O.SGD(lr=0.1).setup([a, b])
    optimizer.add_hook(O.FreezeParam(a))
    optimizer.add_hook(O.WeightDecay(0.1))
    optimizer.add_hook(O.ClipGrad(1.0))
    _loss(a, b).backward()
    optimizer.update()
    np.testing.assert_array_equal(a.data, A0)
    assert not np.allclose(b.data, B0)


# ---- schedules -----------------------------------------------------------------------------
def _rates(optimizer, schedule, n):
    out = []
    for _ in range(n):
        out.append(getattr(optimizer, optimizer.rate_name))
        schedule.step()
    return out


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda o: O.StepDecay(o, 3, gamma=0.5),
         lambda t, o: t.optim.lr_scheduler.StepLR(o, 3, gamma=0.5)),
        (lambda o: O.ExponentialDecay(o, 0.9),
         lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, 0.9)),
        (lambda o: O.CosineAnnealing(o, 7, eta_min=0.01),
         lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01)),
    ],
    ids=["step", "exponential", "cosine"],
)
def test_schedules_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    optimizer = O.SGD(lr=0.2)
    schedule = ours(optimizer)
    toptimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    tschedule = theirs(torch, toptimizer)
    expected = []
    for _ in range(8):
        expected.append(toptimizer.param_groups[0]["lr"])
        toptimizer.step()
        tschedule.step()
    np.testing.assert_allclose(_rates(optimizer, schedule, 8), expected, rtol=1e-12)


def test_schedules_closed_forms():
    optimizer = O.SGD(lr=1.0)
    assert _rates(optimizer, O.CosineAnnealing(optimizer, 2), 4) == pytest.approx(
        [1.0, 0.5, 0.0, 0.0]
    )
    optimizer = O.Adam(alpha=0.4)  # Adam's rate is alpha
    schedule = O.LinearWarmup(optimizer, 4, after=O.CosineAnnealing(optimizer, 2))
    assert _rates(optimizer, schedule, 8) == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.4, 0.2, 0.0, 0.0]
    )
    optimizer = O.SGD(lr=1.0)
    assert _rates(optimizer, O.LinearWarmup(optimizer, 2), 4) == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="same optimizer"):
        O.LinearWarmup(O.SGD(), 2, after=O.StepDecay(O.SGD(), 2))
    with pytest.raises(ValueError, match="step_size"):
        O.StepDecay(O.SGD(), 0)


def test_schedule_drives_momentum_sgd_like_torch():
    torch = pytest.importorskip("torch")
    params = _params()
    optimizer = O.MomentumSGD(lr=0.001).setup(params)
    schedule = O.StepDecay(optimizer, 2, gamma=0.3)
    tparams = [torch.tensor(A0, requires_grad=True), torch.tensor(B0, requires_grad=True)]
    toptimizer = torch.optim.SGD(tparams, lr=0.001, momentum=0.9)
    tschedule = torch.optim.lr_scheduler.StepLR(toptimizer, 2, gamma=0.3)
    for _ in range(7):
        _step(optimizer, params)
        schedule.step()
        toptimizer.zero_grad()
        _torch_loss(*tparams).backward()
        toptimizer.step()
        tschedule.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10)


# ---- saving and restoring ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_save_restore_reproduces_uninterrupted_run(name, tmp_path, xp):
    make, _ = CASES[name]
    params = _params(xp)
    optimizer = make().setup(params)
    schedule = O.StepDecay(optimizer, 3, gamma=0.5)
    for _ in range(10):
        _step(optimizer, params)
        schedule.step()
    expected = [as_numpy(p.data).copy() for p in params]

    params = _params(xp)
    optimizer = make().setup(params)
    schedule = O.StepDecay(optimizer, 3, gamma=0.5)
    for _ in range(4):
        _step(optimizer, params)
        schedule.step()
    path = str(tmp_path / "optimizer")  # saved under exactly this name
    optimizer.save(path)
    schedule_state = schedule.state_dict()
    weights = [p.data.copy() for p in params]

    # a fresh process would rebuild the model, load its weights, then the optimizer
    params = [Parameter(w) for w in weights]
    optimizer = make().setup(params)
    optimizer.load(path)
    schedule = O.StepDecay(optimizer, 3, gamma=0.5)
    schedule.load_state_dict(schedule_state)
    for _ in range(6):
        _step(optimizer, params)
        schedule.step()
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(as_numpy(p.data), e)


def test_state_dict_keys_and_load_errors_change_nothing():
    params = _params()
    optimizer = O.Adam().setup(params)
    _step(optimizer, params)
    state = optimizer.state_dict()
    assert set(state) == {
        "t", "hyper/alpha", "hyper/beta1", "hyper/beta2", "hyper/eps",
        "param/0/m", "param/0/v", "param/0/step", "param/1/m", "param/1/v", "param/1/step",
    }
    other = O.Adam().setup(_params())
    bad_shape = dict(state, **{"param/1/m": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(bad_shape)
    with pytest.raises(ValueError, match="2 parameters"):
        other.load_state_dict(dict(state, **{"param/5/m": np.zeros(2)}))
    with pytest.raises(ValueError, match="another optimizer"):
        O.MomentumSGD().setup(_params()).load_state_dict(state)
    with pytest.raises(ValueError, match="unexpected key"):
        other.load_state_dict({"bogus": np.zeros(1)})
    assert other.t == 0 and other._states == {}
    other.load_state_dict(state)
    assert other.t == 1
    np.testing.assert_array_equal(other.state_of(other.target._params[0])["m"], state["param/0/m"])


def test_save_is_atomic(tmp_path, monkeypatch):
    params = _params()
    optimizer = O.MomentumSGD().setup(params)
    _step(optimizer, params)
    path = tmp_path / "opt.npz"
    optimizer.save(str(path))
    good = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        optimizer.save(str(path))
    assert path.read_bytes() == good
    assert [f.name for f in tmp_path.iterdir()] == ["opt.npz"]


@pytest.mark.parametrize("name", ["MomentumSGD", "Adam"])
def test_state_follows_the_parameter_to_another_device(name, xp):
    # State made on the CPU moves with its parameter (model.to_gpu() after training
    # started); on NumPy alone this checks that nothing moves needlessly.
    w = Parameter(np.array([1.0, -2.0]))
    opt = getattr(O, name)().setup([w])
    w.grad = Parameter(np.array([0.5, 0.5]))
    opt.update()
    w.data = xp.asarray(w.data)
    w.grad = Parameter(xp.asarray(np.array([0.5, 0.5])))
    opt.update()
    for value in opt.state_of(w).values():
        if hasattr(value, "shape"):
            assert get_array_module(value) is xp
    assert get_array_module(w.data) is xp
