"""Tests for zerograd.functions.loss: losses and accuracy.

Every loss's forward, first and second derivatives and PyTorch comparison run from
``op_db.py``; this file keeps what the table cannot express: extreme logits and
probabilities, label dtypes, composed oracles, integer inputs, errors.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_function

try:  # the oracle for check_function's comparisons; those are skipped without it
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None


def _normal(xp, rng, shape, dtype, scale=1.0):
    return xp.asarray((scale * rng.standard_normal(shape)).astype(dtype))


def _labels(xp, rng, n, c, dtype=np.int64):
    return xp.asarray(rng.integers(0, c, n).astype(dtype))


def _value_and_grads(f, *inputs, second=False):
    """The loss, the gradients of its float inputs, and (optionally) the gradient of
    the sum of those gradients (a second derivative)."""
    vs = [Variable(x.copy()) for x in inputs]
    for v in vs:
        v.requires_grad = v.dtype.kind == "f"
    y = f(*vs)
    y.backward(create_graph=second)
    floats = [v for v in vs if v.requires_grad]
    out = [as_numpy(y.data)] + [as_numpy(v.grad.data) for v in floats]
    if second:
        total = sum((v.grad * v.grad).sum() for v in floats)
        for v in floats:
            v.cleargrad()
        total.backward()
        out += [as_numpy(v.grad.data) for v in floats]
    return out


def _assert_same(a, b, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-11
    for u, w in zip(a, b):
        np.testing.assert_allclose(u, w, rtol=tol, atol=tol)


# ---- mean squared error --------------------------------------------------------------------
MSE_SHAPES = [((4, 1), (4, 1)), ((4, 3), (3,)), ((4, 1), (4, 3)), ((), ()), ((5,), ())]


@pytest.mark.parametrize("shapes", MSE_SHAPES, ids=str)
def test_mean_squared_error_simple_agrees(dtype, rng, shapes):
    x0 = rng.standard_normal(shapes[0]).astype(dtype)
    x1 = rng.standard_normal(shapes[1]).astype(dtype)
    _assert_same(
        _value_and_grads(F.mean_squared_error, x0, x1, second=True),
        _value_and_grads(F.mean_squared_error_simple, x0, x1, second=True),
        dtype,
    )


def test_mean_squared_error_gradient_shapes_under_broadcasting():
    x0 = Variable(np.ones((4, 1)))
    x1 = Variable(np.zeros((4, 3)))
    F.mean_squared_error(x0, x1).backward()
    assert x0.grad.shape == (4, 1) and x1.grad.shape == (4, 3)
    np.testing.assert_allclose(x0.grad.data, np.full((4, 1), 3 * 2 / 12))


def test_mean_squared_error_matches_torch_mse_loss():
    pytest.importorskip("torch")
    a = np.arange(6.0).reshape(3, 2)
    b = np.ones((3, 2))
    expected = TF.mse_loss(torch.from_numpy(a), torch.from_numpy(b)).item()
    assert float(F.mean_squared_error(a, b).data) == pytest.approx(expected)


# ---- softmax cross entropy --------------------------------------------------------------------
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8], ids=str)
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_cross_entropy_simple"])
def test_softmax_cross_entropy_label_dtypes(xp, dtype, rng, name, label_dtype):
    x = _normal(xp, rng, (4, 3), dtype, scale=2.0)
    t = _labels(xp, rng, 4, 3, label_dtype)
    f = getattr(F, name)
    y = f(x, t)
    assert y.shape == () and y.dtype == dtype  # integer labels do not promote float32
    check_function(f, x, t, torch_f=lambda x, t: TF.cross_entropy(x, t.long()))


def test_softmax_cross_entropy_simple_agrees(dtype, rng):
    x = (3 * rng.standard_normal((5, 4))).astype(dtype)
    t = rng.integers(0, 4, 5)
    _assert_same(
        _value_and_grads(F.softmax_cross_entropy, x, t, second=True),
        _value_and_grads(F.softmax_cross_entropy_simple, x, t, second=True),
        dtype,
    )


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_cross_entropy_simple"])
def test_softmax_cross_entropy_extreme_logits(xp, dtype, name):
    data = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 0.0]], dtype=dtype)
    x = Variable(xp.asarray(data))
    t = xp.asarray(np.array([1, 0, 2]))
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        y = getattr(F, name)(x, t)
        y.backward()
    loss = float(as_numpy(y.data))
    expected = (2e4 + (2e4 + np.log(2)) + np.log(3)) / 3
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    grad = as_numpy(x.grad.data)
    assert np.isfinite(grad).all() and x.grad.dtype == dtype
    np.testing.assert_allclose(
        grad * 3, [[1, -1, 0], [-1, 0.5, 0.5], [1 / 3, 1 / 3, -2 / 3]], atol=1e-6
    )


def test_softmax_cross_entropy_accepts_variable_labels(rng):
    x = rng.standard_normal((3, 4))
    t = np.array([0, 3, 1])
    a = F.softmax_cross_entropy(x, t)
    b = F.softmax_cross_entropy(x, Variable(t))
    assert float(a.data) == float(b.data)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_cross_entropy_simple"])
def test_softmax_cross_entropy_errors(name):
    f = getattr(F, name)
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"t must have shape \(N,\)=\(3,\) .* t.shape=\(3, 1\)"):
        f(x, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"t.shape=\(2,\)"):
        f(x, np.zeros(2, dtype=np.int64))
    with pytest.raises(TypeError, match="labels t must be integers"):
        f(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        f(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        f(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"expected logits x of shape \(N, C\)"):
        f(np.zeros(4), np.array([1]))


# ---- sigmoid cross entropy ----------------------------------------------------------------------
def test_sigmoid_cross_entropy_soft_targets_and_reshaped_labels(rng):
    x = rng.standard_normal((4, 1))
    t = rng.random(4)  # (N,) targets for (N, 1) logits, as DeZero allowed
    check_function(
        lambda x: F.sigmoid_cross_entropy(x, t), x,
        torch_f=lambda x: TF.binary_cross_entropy_with_logits(
            x, torch.from_numpy(t).reshape(4, 1)
        ),
    )


def test_sigmoid_cross_entropy_agrees_with_composed(dtype, rng):
    x = (3 * rng.standard_normal((5, 2))).astype(dtype)
    t = rng.integers(0, 2, (5, 2))

    def composed(x, t):
        p = F.sigmoid(x)
        tf = t.data.astype(x.dtype)
        return -F.mean(tf * F.log(p) + (1 - tf) * F.log(1 - p))

    _assert_same(
        _value_and_grads(F.sigmoid_cross_entropy, x, t, second=True),
        _value_and_grads(composed, x, t, second=True),
        dtype,
    )


def test_sigmoid_cross_entropy_extreme_logits(xp, dtype):
    x = Variable(xp.asarray(np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)))
    t = xp.asarray(np.array([1, 0, 0, 1]))
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        y = F.sigmoid_cross_entropy(x, t)
        y.backward()
    assert float(as_numpy(y.data)) == pytest.approx(2e4 / 4)
    np.testing.assert_allclose(as_numpy(x.grad.data), [0, 0, 0.25, -0.25])
    assert x.grad.dtype == dtype


def test_sigmoid_cross_entropy_shape_error():
    with pytest.raises(ValueError, match=r"sigmoid_cross_entropy: .*x.shape=\(4, 1\)"):
        F.sigmoid_cross_entropy(np.zeros((4, 1)), np.zeros(3))


# ---- binary cross entropy -------------------------------------------------------------------
def test_binary_cross_entropy_of_exact_zeros_and_ones_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
    v = Variable(p.copy())
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        y = F.binary_cross_entropy(v, t)
        y.backward()
    tp = torch.tensor(p, requires_grad=True)
    ty = TF.binary_cross_entropy(tp, torch.from_numpy(t))
    ty.backward()
    assert float(y.data) == pytest.approx(ty.item(), rel=1e-6)
    assert float(y.data) == pytest.approx((200 + np.log(2)) / 5, rel=1e-6)
    g = v.grad.data
    assert g.dtype == dtype and np.isfinite(g).all()
    assert g[0] < 0 and g[1] > 0  # wrong and certain: a strong push the right way
    np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-5)


def test_binary_cross_entropy_errors():
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(np.array([0.5, 1.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy: targets t"):
        F.binary_cross_entropy(np.array([0.5, 0.5]), np.array([0.0, 1.0, 1.0]))


# ---- accuracy -------------------------------------------------------------------------------
def test_accuracy(xp, dtype):
    y = Variable(xp.asarray(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]],
                                     dtype=dtype)))
    t = xp.asarray(np.array([1, 0, 0, 0]))
    acc = F.accuracy(y, t)
    assert isinstance(acc, Variable) and acc.creator is None and not acc.requires_grad
    assert acc.dtype == dtype
    assert float(as_numpy(acc.data)) == pytest.approx(0.75)
    assert float(F.accuracy(as_numpy(y.data), Variable(as_numpy(t))).data) == 0.75


def test_accuracy_shape_error():
    with pytest.raises(ValueError, match=r"accuracy: .*y.shape=\(2, 3\), t.shape=\(3,\)"):
        F.accuracy(np.zeros((2, 3)), np.zeros(3, dtype=np.int64))


def test_float32_losses_stay_float32(rng):
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32))
    t = np.array([0, 2, 1, 1])  # int64
    ones = np.ones((4, 3), dtype=np.float32)
    loss = (F.softmax_cross_entropy(x, t) + F.mean_squared_error(x, ones)
            + F.sigmoid_cross_entropy(x, np.ones((4, 3))) + F.binary_cross_entropy(
                F.sigmoid(x), np.zeros((4, 3))))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


def test_mean_squared_error_against_a_number_keeps_float32():
    x = Variable(np.ones(3, np.float32))
    loss = F.mean_squared_error(x, 0.0)
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    assert float(loss.data) == 1.0


# ---- integer inputs (issue 13): a loss is never computed in integers ---------------------
def test_losses_of_integers_are_floats():
    mse = F.mean_squared_error(np.array([1, 2]), np.array([0, 0]))
    assert mse.dtype == np.float64 and float(mse.data) == 2.5
    sce = F.softmax_cross_entropy(np.array([[1, 2, 3]]), np.array([0]))
    expected = -np.log(np.exp(1) / np.exp([1, 2, 3]).sum())
    assert sce.dtype == np.float64 and float(sce.data) == pytest.approx(expected)
    sig = F.sigmoid_cross_entropy(np.array([[2], [-1]]), np.array([1, 0]))
    expected = (np.log1p(np.exp(-2)) + np.log1p(np.exp(-1))) / 2
    assert sig.dtype == np.float64 and float(sig.data) == pytest.approx(expected)
    bce = F.binary_cross_entropy(np.array([1, 0]), np.array([1, 0]))
    assert bce.dtype == np.float64 and float(bce.data) == 0.0


def test_mean_squared_error_integer_target_takes_the_float_dtype():
    x = Variable(np.array([0.5, 1.5], dtype=np.float32))
    loss = F.mean_squared_error(x, np.array([0, 2]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    assert float(loss.data) == 0.25
    loss = F.mean_squared_error(np.array([0, 2]), x)
    assert loss.dtype == np.float32


def test_mean_squared_error_of_shapes_that_do_not_broadcast_is_named():
    msg = (r"mean_squared_error: the shapes of x0 and x1 do not broadcast, "
           r"x0.shape=\(3,\), x1.shape=\(4,\); .*reshape")
    with pytest.raises(ValueError, match=msg):
        F.mean_squared_error(np.zeros(3), np.zeros(4))


def test_losses_of_empty_inputs_are_nan_without_warnings():
    with np.errstate(all="raise"):
        assert np.isnan(F.mean_squared_error(np.zeros(0), np.zeros(0)).data)
        assert np.isnan(F.sigmoid_cross_entropy(np.zeros(0), np.zeros(0)).data)
        assert np.isnan(F.binary_cross_entropy(np.zeros(0), np.zeros(0)).data)
        assert np.isnan(F.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int)).data)


def test_binary_cross_entropy_refuses_nan_probabilities():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: p must hold probabilities"):
        F.binary_cross_entropy(np.array([0.5, np.nan]), np.array([0.0, 1.0]))


def test_label_check_follows_the_device_policy(monkeypatch):
    # On the CPU the check always runs; on a GPU only under detect_anomaly (a device read).
    from zerograd.debug import detect_anomaly
    from zerograd.functions import _arrays

    assert _arrays.checks_values(np)
    fake_gpu = object()
    assert not _arrays.checks_values(fake_gpu)
    with detect_anomaly():
        assert _arrays.checks_values(fake_gpu)


@pytest.mark.parametrize("dtype_", [np.float16, np.float32, np.float64], ids=str)
def test_binary_cross_entropy_floor_is_exactly_100(dtype_):
    with np.errstate(all="raise"):
        y = F.binary_cross_entropy(np.array([0.0, 1.0], dtype=dtype_), np.array([1.0, 0.0]))
    assert y.dtype == dtype_ and float(y.data) == 100.0


def test_mean_squared_error_simple_does_not_wrap_small_integers():
    x0, x1 = np.array([100, -100], dtype=np.int8), np.array([-100, 100], dtype=np.int8)
    assert float(F.mean_squared_error_simple(x0, x1).data) == 40000.0
    assert float(F.mean_squared_error(x0, x1).data) == 40000.0
