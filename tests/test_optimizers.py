"""Optimizers, hooks and schedules against torch.optim, and their saved state."""

import numpy as np
import pytest

from zerograd import Parameter, Variable
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


# ---- hyperparameters are checked (issue 13, the sweep) -----------------------------------
BAD_HYPERPARAMETERS = [
    (lambda v: O.SGD(lr=v), [-1.0, float("nan"), float("inf")], "lr"),
    (lambda v: O.MomentumSGD(momentum=v), [1.0, -0.1, 1.5, float("nan")], "momentum"),
    (lambda v: O.MomentumSGD(lr=v), [-1e-3], "lr"),
    (lambda v: O.AdaGrad(lr=v), [float("-inf")], "lr"),
    (lambda v: O.AdaGrad(eps=v), [0.0, -1e-8], "eps"),
    (lambda v: O.AdaDelta(rho=v), [1.5, -0.5], "rho"),
    (lambda v: O.AdaDelta(eps=v), [0.0], "eps"),
    (lambda v: O.Adam(alpha=v), [-0.001, float("nan")], "alpha"),
    (lambda v: O.Adam(beta1=v), [1.0, -0.1], "beta1"),
    (lambda v: O.Adam(beta2=v), [1.0, 2.0], "beta2"),
    (lambda v: O.Adam(eps=v), [0.0, float("inf")], "eps"),
    (lambda v: O.AdamW(weight_decay=v), [-0.01], "weight_decay"),
    (lambda v: O.WeightDecay(v), [-0.1, float("nan")], "rate"),
    (lambda v: O.ClipGrad(v), [0.0, -1.0, float("inf")], "max_norm"),
    (lambda v: O.StepDecay(O.SGD(), 2, gamma=v), [0.0, -0.5], "gamma"),
    (lambda v: O.ExponentialDecay(O.SGD(), v), [float("nan")], "gamma"),
    (lambda v: O.CosineAnnealing(O.SGD(), 4, eta_min=v), [-0.1], "eta_min"),
    (lambda v: O.StepDecay(O.SGD(), 2, base_lr=v), [-1.0], "base_lr"),
]


@pytest.mark.parametrize(
    "make, value, name",
    [(make, v, name) for make, values, name in BAD_HYPERPARAMETERS for v in values],
)
def test_bad_hyperparameters_are_refused_at_construction(make, value, name):
    with pytest.raises(ValueError, match=rf"{name} must be"):
        make(value)


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["10**400", "-10**400"])
def test_an_int_too_large_for_a_float_is_a_value_error(value):
    # float(10**400) raises OverflowError: refused as out of range, naming the class
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number >= 0, got .*"
                                         r"\(401 digits\)"):
        O.SGD(lr=value)
    with pytest.raises(ValueError, match="Adam: beta1 must be in"):
        O.Adam(beta1=value)


@pytest.mark.parametrize("value", ["0.1", None, True, np.array([0.1])])
def test_hyperparameters_that_are_not_numbers_are_refused(value):
    with pytest.raises(TypeError, match="lr must be a real number"):
        O.SGD(lr=value)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: O.StepDecay(O.SGD(), v), "step_size"),
        (lambda v: O.CosineAnnealing(O.SGD(), v), "t_max"),
        (lambda v: O.LinearWarmup(O.SGD(), v), "warmup_steps"),
    ],
)
@pytest.mark.parametrize("value", [0, -3, 1.5, True])
def test_schedule_counts_must_be_positive_ints(make, name, value):
    with pytest.raises((TypeError, ValueError), match=name):
        make(value)


def test_hyperparameters_set_later_are_checked_too():
    optimizer = O.Adam()
    with pytest.raises(ValueError, match="alpha"):
        optimizer.alpha = float("nan")
    assert optimizer.alpha == 0.001
    with pytest.raises(TypeError, match="LinearWarmup: after"):
        O.LinearWarmup(optimizer, 2, after="cosine")
    with pytest.raises(TypeError, match="expected an Optimizer"):
        O.StepDecay("sgd", 2)


# ---- setup with repeated parameters (issue 13 item 13) -----------------------------------
def test_a_parameter_given_twice_is_refused():
    w, b = _params()
    with pytest.raises(ValueError, match=r"more than once.*positions 0 and 2"):
        O.SGD().setup([w, b, w])
    with pytest.raises(ValueError, match="more than once"):
        O.SGD().setup(_Block(w, w))
    with pytest.raises(TypeError, match="item 1 of the list is a ndarray"):
        O.SGD().setup([w, np.zeros(2)])


def test_a_target_that_repeats_a_parameter_later_is_refused_at_update():
    w, b = _params()
    block = _Block(w, b)
    optimizer = O.SGD().setup(block)
    block._params.append(w)
    _loss(w, b).backward()
    with pytest.raises(ValueError, match="more than once"):
        optimizer.update()
    np.testing.assert_array_equal(w.data, A0)


def test_a_shared_parameter_of_a_layer_is_updated_once():
    L = pytest.importorskip("zerograd.layers")
    a = L.Linear(2, in_size=2, dtype=np.float64)
    b = L.Linear(2, in_size=2, dtype=np.float64)
    b.W = a.W  # tied weights

    class Tied(L.Layer):
        def __init__(self):
            super().__init__()
            self.a, self.b = a, b

    w0 = a.W.data.copy()
    a.W.grad = Parameter(np.ones((2, 2)))
    O.SGD(lr=1.0).setup(Tied()).update()
    np.testing.assert_array_equal(a.W.data, w0 - 1.0)


# ---- loading a state checks everything first (issue 13 items 5 and 6) -------------------
def _trained_adam():
    params = _params()
    optimizer = O.Adam(alpha=0.01).setup(params)
    for _ in range(3):
        _step(optimizer, params)
    return optimizer


def _snapshot_state(optimizer):
    return {k: np.array(v) for k, v in optimizer.state_dict().items()}


def _assert_same_state(a, b):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: {}, "missing 't'"),
        (lambda s: dict(s, t=np.array(-5)), "'t' must be an int >= 0"),
        (lambda s: dict(s, t=np.array(1.5)), "'t' must be an int >= 0"),
        (lambda s: dict(s, t=np.zeros(2)), "'t' must be an int >= 0"),
        (lambda s: dict(s, **{"hyper/alpha": np.array(np.nan)}), "alpha must be"),
        (lambda s: dict(s, **{"hyper/beta1": np.array(1.0)}), "beta1 must be"),
        (lambda s: dict(s, **{"hyper/eps": np.array(0.0)}), "eps must be"),
        (lambda s: {k: v for k, v in s.items() if k != "hyper/beta2"}, "missing 'hyper/beta2'"),
        (lambda s: {k: v for k, v in s.items() if k != "param/1/v"},
         r"parameter 1: incomplete state, \['v'\] missing"),
        (lambda s: dict(s, **{"param/0/step": np.array(-1)}), "must be an int >= 0"),
        (lambda s: dict(s, **{"param/0/v": -np.ones(2)}), "negative values"),
        (lambda s: dict(s, **{"param/0/m": np.array([np.nan, 0.0])}), "NaN or infinite"),
        (lambda s: dict(s, **{"param/0/m": np.array(["a", "b"])}), "numeric array"),
        (lambda s: dict(s, **{"param/0/master": np.zeros(2)}), "unknown state"),
        (lambda s: dict(s, **{"hyper/lr": np.array(0.1)}), "unknown hyperparameter 'lr'"),
    ],
)
def test_load_state_dict_refuses_bad_states_and_changes_nothing(change, message):
    source = _trained_adam()
    target = _trained_adam()
    _step(target, target.target._params)  # a different state than the source's
    before = _snapshot_state(target)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(change(source.state_dict()))
    _assert_same_state(before, _snapshot_state(target))
    _step(target, target.target._params)  # and it still updates
    assert all(np.isfinite(p.data).all() for p in target.target._params)


def test_load_state_dict_lists_every_problem_at_once():
    state = _trained_adam().state_dict()
    bad = dict(state, t=np.array(-1), **{"hyper/alpha": np.array(np.inf), "bogus": 1})
    with pytest.raises(ValueError, match="3 problem") as info:
        O.Adam().setup(_params()).load_state_dict(bad)
    assert "'t'" in str(info.value) and "alpha" in str(info.value) and "bogus" in str(info.value)
    with pytest.raises(TypeError, match="expected a dict"):
        O.Adam().setup(_params()).load_state_dict([1, 2])


def test_load_state_dict_replaces_the_whole_state():
    source = O.Adam().setup(_params())  # no update yet: no per-parameter state
    target = _trained_adam()
    target.load_state_dict(source.state_dict())
    assert target.t == 0 and target._states == {}


@pytest.mark.parametrize("damage", ["empty", "truncate", "garbage", "npy"])
def test_optimizer_load_of_a_damaged_file_raises_value_error(tmp_path, damage):
    source = _trained_adam()
    path = tmp_path / "opt.npz"
    source.save(path)
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip" * 20)
    else:
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    target = _trained_adam()
    before = _snapshot_state(target)
    with pytest.raises(ValueError, match="Adam.load"):
        target.load(path)
    _assert_same_state(before, _snapshot_state(target))
    with pytest.raises(FileNotFoundError):
        target.load(tmp_path / "missing.npz")


# ---- float16 parameters train through float32 master weights ----------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_float16_parameters_train_through_float32_master_weights(name, xp):
    make, _ = CASES[name]
    params16 = _params(xp, np.float16)
    optimizer = make().setup(params16)
    params64 = _params()
    optimizer64 = make().setup(params64)
    for _ in range(5):
        for p16, p64 in zip(params16, params64):
            p16.cleargrad()
            p64.cleargrad()
        _loss(*params64).backward()
        for p16, p64 in zip(params16, params64):  # the same gradients, in float16
            p16.grad = Parameter(xp.asarray(p64.grad.data.astype(np.float16)))
        optimizer.update()
        optimizer64.update()
    for p16, p64 in zip(params16, params64):
        assert p16.data.dtype == np.float16
        assert np.isfinite(as_numpy(p16.data)).all()
        master = optimizer.master_of(p16)
        assert master.data.dtype == np.float32
        np.testing.assert_array_equal(as_numpy(p16.data), as_numpy(master.data).astype(np.float16))
        for value in optimizer.state_of(p16).values():
            if not isinstance(value, int):
                assert value.dtype == np.float32
        # float16 gradients and rounding of the weights only: close to the float64 run
        np.testing.assert_allclose(as_numpy(master.data), p64.data, rtol=2e-2, atol=2e-3)


def test_adam_moves_float16_weights_by_less_than_float16_spacing():
    # eps=1e-8 is 0 in float16 (a zero gradient then gives 0 / 0), and a step of 1e-4
    # on a weight of 1 is below float16's spacing there (1e-3): the master copy keeps both.
    w = Parameter(np.ones(3, dtype=np.float16))
    optimizer = O.Adam(alpha=1e-4).setup([w])
    for _ in range(20):
        w.grad = Parameter(np.array([2e-3, 0.0, -1.0], dtype=np.float16))
        optimizer.update()
    assert np.isfinite(w.data).all()
    master = optimizer.master_of(w).data
    np.testing.assert_allclose(master, [1 - 20e-4, 1.0, 1 + 20e-4], rtol=1e-5)
    np.testing.assert_array_equal(w.data, master.astype(np.float16))


def test_master_weights_follow_weights_loaded_from_outside():
    w = Parameter(np.ones(2, dtype=np.float16))
    optimizer = O.SGD(lr=0.5).setup([w])
    w.grad = Parameter(np.ones(2, dtype=np.float16))
    optimizer.update()
    w.data[...] = 3.0  # e.g. model.load_weights(...)
    w.grad = Parameter(np.ones(2, dtype=np.float16))
    optimizer.update()
    np.testing.assert_array_equal(w.data, [2.5, 2.5])


def test_float16_state_survives_save_and_load_exactly(tmp_path):
    def run(n, params, optimizer):
        for _ in range(n):
            for p in params:
                p.cleargrad()
            _loss(*params).backward()
            optimizer.update()

    params = _params(np, np.float16)
    optimizer = O.Adam(alpha=0.01).setup(params)
    run(6, params, optimizer)
    expected = [p.data.copy() for p in params]

    params = _params(np, np.float16)
    optimizer = O.Adam(alpha=0.01).setup(params)
    run(3, params, optimizer)
    optimizer.save(tmp_path / "opt.npz")
    assert "param/0/master" in optimizer.state_dict()
    params = [Parameter(p.data.copy()) for p in params]
    optimizer = O.Adam(alpha=0.01).setup(params)
    optimizer.load(tmp_path / "opt.npz")
    run(3, params, optimizer)
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p.data, e)


@pytest.mark.parametrize("name", list(CASES))
def test_float16_training_resumes_exactly_for_every_optimizer(name, tmp_path):
    # SGD keeps no state of its own: its float32 master weights used to be left out of
    # state_dict(), so the resumed run restarted from the float16 weights, rounded.
    make, _ = CASES[name]

    def run(n, params, optimizer):
        for _ in range(n):
            for p in params:
                p.cleargrad()
            _loss(*params).backward()
            optimizer.update()

    params = _params(np, np.float16)
    optimizer = make().setup(params)
    run(6, params, optimizer)
    expected = [p.data.copy() for p in params]

    params = _params(np, np.float16)
    optimizer = make().setup(params)
    run(3, params, optimizer)
    assert {"param/0/master", "param/1/master"} <= set(optimizer.state_dict())
    optimizer.save(tmp_path / "opt.npz")
    params = [Parameter(p.data.copy()) for p in params]  # the float16 weights, reloaded
    optimizer = make().setup(params)
    optimizer.load(tmp_path / "opt.npz")
    run(3, params, optimizer)
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p.data, e)


def test_a_master_made_before_any_state_loads_back():
    w = Parameter(np.array([1.0, 2.0], dtype=np.float16))
    optimizer = O.Adam().setup([w])
    optimizer.master_of(w)  # a master copy, no moments yet
    assert sorted(optimizer.state_dict()) == sorted(
        ["t", "param/0/master", *(f"hyper/{h}" for h in O.Adam.hyperparams)])
    fresh = O.Adam().setup([w])
    fresh.load_state_dict(optimizer.state_dict())
    w.grad = Parameter(np.ones(2, dtype=np.float16))
    fresh.update()  # the moments are made at the first update, as usual
    assert fresh.state_of(w)["step"] == 1


def test_check_then_apply_is_load_state_dict_and_check_changes_nothing():
    params = _params()
    optimizer = O.Adam(alpha=0.01).setup(params)
    _step(optimizer, params)
    state = optimizer.state_dict()
    other = O.Adam(alpha=0.5).setup(_params())
    plan = other.check_state_dict(state)
    assert other.t == 0 and other.alpha == 0.5  # checking changed nothing
    other.apply_state_dict(plan)
    assert other.t == 1 and other.alpha == 0.01
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    state["param/0/m"][...] = 7.0  # the loaded state does not alias the dict it came from
    assert not (other.state_dict()["param/0/m"] == 7.0).any()


def test_clip_grad_on_float16_gradients_does_not_overflow():
    w = Parameter(np.zeros(4, dtype=np.float16))
    w.grad = Parameter(np.full(4, 300.0, dtype=np.float16))  # 300^2 overflows float16
    O.ClipGrad(1.0)([w])
    np.testing.assert_allclose(w.grad.data.astype(np.float32), 0.5, rtol=1e-3)


# ---- schedules' state ---------------------------------------------------------------------
def test_schedule_state_holds_its_settings_and_restores_them():
    optimizer = O.SGD(lr=1.0)
    schedule = O.LinearWarmup(optimizer, 2, after=O.StepDecay(optimizer, 3, gamma=0.5))
    for _ in range(4):
        schedule.step()
    state = schedule.state_dict()
    assert state["type"] == "LinearWarmup" and state["after"]["type"] == "StepDecay"
    other_optimizer = O.SGD(lr=7.0)
    other = O.LinearWarmup(other_optimizer, 5,
                           after=O.StepDecay(other_optimizer, 9, gamma=0.9))
    other.load_state_dict(state)
    assert other.warmup_steps == 2 and other.after.step_size == 3 and other.after.gamma == 0.5
    assert other_optimizer.lr == optimizer.lr
    assert _rates(other_optimizer, other, 5) == _rates(optimizer, schedule, 5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: dict(s, type="CosineAnnealing"), "of a CosineAnnealing, not a StepDecay"),
        (lambda s: dict(s, last_step=-1), "last_step"),
        (lambda s: dict(s, last_step=2.5), "last_step"),
        (lambda s: dict(s, base_lr=float("nan")), "base_lr"),
        (lambda s: dict(s, gamma=0.0), "gamma"),
        (lambda s: {k: v for k, v in s.items() if k != "step_size"}, "missing"),
        (lambda s: dict(s, extra=1), "unexpected"),
    ],
)
def test_schedule_load_refuses_bad_states_and_changes_nothing(change, message):
    optimizer = O.SGD(lr=1.0)
    schedule = O.StepDecay(optimizer, 2, gamma=0.5)
    schedule.step()
    before = schedule.state_dict()
    with pytest.raises(ValueError, match=message):
        schedule.load_state_dict(change(O.StepDecay(O.SGD(lr=2.0), 3).state_dict()))
    assert schedule.state_dict() == before and optimizer.lr == 1.0


@pytest.mark.parametrize("make, state", [
    # each value is valid, but the rate at the saved position is not
    (lambda o: O.StepDecay(o, 1, gamma=0.5),
     {"type": "StepDecay", "last_step": 5, "base_lr": 1e308, "step_size": 1, "gamma": 10.0}),
    (lambda o: O.ExponentialDecay(o, gamma=0.5),
     {"type": "ExponentialDecay", "last_step": 400, "base_lr": 1.0, "gamma": 10.0}),
    (lambda o: O.LinearWarmup(o, 2, after=O.StepDecay(o, 1)),
     {"type": "LinearWarmup", "last_step": 9, "base_lr": 1.0, "warmup_steps": 2,
      "after": {"type": "StepDecay", "last_step": 0, "base_lr": 1e308, "step_size": 1,
                "gamma": 10.0}}),
])
def test_a_state_giving_an_invalid_rate_is_refused_and_changes_nothing(make, state):
    optimizer = O.SGD(lr=0.1)
    schedule = make(optimizer)
    before, lr = schedule.state_dict(), optimizer.lr
    with pytest.raises(ValueError, match=r"load_state_dict: step \d+ gives the rate inf, "
                                         "which SGD refuses"):
        schedule.load_state_dict(state)
    assert schedule.state_dict() == before and optimizer.lr == lr


@pytest.mark.parametrize("make", [
    lambda o: O.ExponentialDecay(o, gamma=10.0),  # gamma**step overflows (OverflowError)
    lambda o: O.StepDecay(o, 1, gamma=10.0, base_lr=1e306),  # the product is inf
])
def test_a_step_whose_rate_overflows_is_refused_and_changes_nothing(make):
    optimizer = O.SGD(lr=1.0)
    schedule = make(optimizer)
    schedule.last_step = 307 if isinstance(schedule, O.ExponentialDecay) else 1
    schedule.step()  # a long run: the rate is near the largest float
    step, lr = schedule.last_step, optimizer.lr
    with pytest.raises(ValueError, match=f"step {step + 1} gives the rate inf"):
        schedule.step()
    assert schedule.last_step == step and optimizer.lr == lr


def test_a_schedule_over_a_wrapped_optimizer_checks_its_rate_as_the_optimizer_does():
    from zerograd.distributed import DistributedOptimizer

    optimizer = DistributedOptimizer(O.Adam(alpha=1.0).setup(_params()))
    schedule = O.StepDecay(optimizer, 1, gamma=1e200)
    schedule.step()
    with pytest.raises(ValueError, match="which Adam refuses"):
        schedule.step()


def test_warmup_load_needs_the_same_shape_of_schedules():
    optimizer = O.SGD(lr=1.0)
    plain = O.LinearWarmup(optimizer, 2)
    chained = O.LinearWarmup(optimizer, 2, after=O.StepDecay(optimizer, 2))
    with pytest.raises(ValueError, match="has no schedule after the warm-up"):
        chained.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="has schedule after the warm-up"):
        plain.load_state_dict(chained.state_dict())
    bad = chained.state_dict()
    bad["after"]["gamma"] = -1.0
    chained.step()
    with pytest.raises(ValueError, match="gamma"):
        chained.load_state_dict(bad)
    assert chained.last_step == 1


def test_book_mode_adam_computes_as_the_books(monkeypatch):
    # The original's Adam: m += (1-b1)(g-m); v += (1-b2)(g^2-v);
    # W -= alpha sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps), with t the optimizer's update
    # count (a parameter that missed an update is still corrected by it).
    import zerograd.random as zrandom

    monkeypatch.setattr(zrandom, "_book_mode", True)
    p1, p2 = Parameter(np.array([1.0])), Parameter(np.array([1.0]))
    optimizer = O.Adam(alpha=0.1).setup([p1, p2])
    ref = {"p1": [1.0, 0.0, 0.0], "p2": [1.0, 0.0, 0.0]}  # W, m, v
    for t in range(1, 4):
        p1.grad = Variable(np.array([0.5]))
        p2.grad = None if t == 1 else Variable(np.array([0.5]))
        optimizer.update()
        lr = 0.1 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        for name, has_grad in (("p1", True), ("p2", t > 1)):
            if has_grad:
                w, m, v = ref[name]
                m += (1 - 0.9) * (0.5 - m)
                v += (1 - 0.999) * (0.25 - v)
                ref[name] = [w - lr * m / (np.sqrt(v) + 1e-8), m, v]
    assert p1.data[0] == ref["p1"][0] and p2.data[0] == ref["p2"][0]
