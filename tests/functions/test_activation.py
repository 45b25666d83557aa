"""Tests for zerograd.functions.activation.

Every activation's forward, first and second derivatives and PyTorch comparison run from
``op_db.py``; this file keeps what the table cannot express: special and extreme values,
the composed oracles, GELU's accuracy and third derivative, error messages, dtypes.
"""

import math

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.functions.activation import _normal_cdf

try:  # the oracle for check_function's comparisons; those are skipped without it
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None

SHAPES = [(), (3,), (2, 3)]


def _normal(xp, rng, shape, dtype, scale=1.0):
    return xp.asarray((scale * rng.standard_normal(shape)).astype(dtype))


def _grads(f, x):
    """Value, gradient and second-derivative direction product of sum(f(x)^2)."""
    v = Variable(x.copy())
    y = f(v)
    (y * y).sum().backward(create_graph=True)
    g = v.grad
    v.cleargrad()
    g.sum().backward()
    return as_numpy(y.data), as_numpy(g.data), as_numpy(v.grad.data)


# ---- rectifiers ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_rectifier_gradient_at_zero_matches_torch(name):
    pytest.importorskip("torch")
    data = np.array([-1.0, 0.0, 1.0])
    x = Variable(data.copy())
    getattr(F, name)(x).sum().backward()
    t = torch.tensor(data, requires_grad=True)
    (t.relu() if name == "relu" else TF.leaky_relu(t, 0.2)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, t.grad.numpy())


def test_leaky_relu_default_slope_is_deZeros():
    np.testing.assert_allclose(F.leaky_relu(np.array([-1.0, 3.0])).data, [-0.2, 3.0])


# ---- softmax family ----------------------------------------------------------------------------
def test_softmax_default_axis_is_1(rng):
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(F.softmax(x).data.sum(axis=1), np.ones((2, 4)))


def test_softmax_axis_error():
    with pytest.raises(ValueError, match="softmax: axis 1 is out of range"):
        F.softmax(np.ones(3))


# ---- composed versions agree with the fused ones ------------------------------------------
@pytest.mark.parametrize(
    "fused, composed",
    [(F.sigmoid, F.sigmoid_simple), (F.softmax, F.softmax_simple),
     (F.log_softmax, lambda x: F.log(F.softmax_simple(x)))],
    ids=["sigmoid", "softmax", "log_softmax"],
)
def test_simple_versions_agree_with_fused(xp, dtype, rng, fused, composed):
    x = _normal(xp, rng, (3, 4), dtype, scale=2.0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(_grads(fused, x), _grads(composed, x)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ---- stability ----------------------------------------------------------------------------------
@pytest.fixture
def strict_numpy():
    """Any overflow, division by zero or invalid operation in NumPy raises (underflow
    to 0 is expected and fine)."""
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        yield


@pytest.mark.usefixtures("strict_numpy")
def test_sigmoid_is_stable_and_accurate_in_both_tails(dtype):
    x = np.array([-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4], dtype=dtype)
    v = Variable(x)
    y = F.sigmoid(v)
    y.backward()
    expected = np.array([1 / (1 + math.exp(-float(a))) if a > -700 else 0.0 for a in x])
    np.testing.assert_allclose(y.data, expected, rtol=1e-6)
    assert y.dtype == dtype and v.grad.dtype == dtype
    assert np.isfinite(v.grad.data).all()


@pytest.mark.usefixtures("strict_numpy")
@pytest.mark.parametrize("name", ["softmax", "softmax_simple", "log_softmax"])
def test_softmax_large_inputs_give_no_nan(dtype, name):
    x = Variable(np.array([[1e4, 0.0, -1e4], [1000.0, 1000.0, 1000.0]], dtype=dtype))
    y = getattr(F, name)(x)
    (y * np.arange(6.0, dtype=dtype).reshape(2, 3)).sum().backward()
    assert np.isfinite(y.data).all() and np.isfinite(x.grad.data).all()
    p = np.exp(y.data) if name == "log_softmax" else y.data
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
    if name == "log_softmax":
        np.testing.assert_allclose(y.data[0], [0.0, -1e4, -2e4])


@pytest.mark.usefixtures("strict_numpy")
def test_softplus_and_gelu_large_inputs(dtype):
    x = Variable(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype))
    y = F.softplus(x) + F.gelu(x) + F.gelu(x, approximate="tanh")
    y.backward()
    expected = np.array([0.0, 0.0, math.log(2), 150.0, 3e4])
    np.testing.assert_allclose(y.data, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.data, [0, 0, 1.5, 3, 3], atol=1e-6)
    assert y.dtype == dtype and x.grad.dtype == dtype


# ---- GELU and its error function ---------------------------------------------------------------
def test_normal_cdf_lower_tail_keeps_relative_precision():
    x = np.array([-38.0, -20.0, -10.0, -5.0])
    expected = np.array([0.5 * math.erfc(-a / math.sqrt(2)) for a in x])
    np.testing.assert_allclose(_normal_cdf(x), expected, rtol=1e-13)


def test_gelu_values_against_torch_on_a_wide_range():
    pytest.importorskip("torch")
    x = np.linspace(-12, 12, 481)
    for approximate in ("none", "tanh"):
        y = F.gelu(x, approximate=approximate).data
        expected = TF.gelu(torch.from_numpy(x), approximate=approximate).numpy()
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)


def test_gelu_third_derivative_exists(rng):
    x = rng.standard_normal(4)
    for approximate in ("none", "tanh"):
        v = Variable(x.copy())
        F.gelu(v, approximate=approximate).sum().backward(create_graph=True)
        g1 = v.grad
        v.cleargrad()
        g1.sum().backward(create_graph=True)
        g2 = v.grad
        v.cleargrad()
        g2.sum().backward()
        assert v.grad is not None and np.isfinite(v.grad.data).all()


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(np.ones(2), approximate="erf")


def test_float32_stays_float32(rng):
    x = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    y = (F.sigmoid(x) + F.relu(x) + F.leaky_relu(x) + F.softmax(x) + F.log_softmax(x)
         + F.softplus(x) + F.gelu(x) + F.gelu(x, approximate="tanh"))
    y.sum().backward(create_graph=True)
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    g = x.grad
    x.cleargrad()
    g.sum().backward()
    assert x.grad.dtype == np.float32


def test_leaky_relu_does_not_truncate_integers():
    y = F.leaky_relu(np.array([-2, 3]))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, [-0.4, 3.0])


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "gelu", "softmax", "log_softmax"])
def test_integers_give_float64(name):
    x = np.array([[-2, 0, 3]])
    y = getattr(F, name)(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, getattr(F, name)(x.astype(np.float64)).data)


@pytest.mark.usefixtures("strict_numpy")
def test_sigmoid_keeps_relative_precision_deep_in_the_lower_tail(dtype):
    # 0.5 tanh(x / 2) + 0.5 (the book's form) rounds these to 0 (float32 below about -17).
    x = np.array([-20.0, -40.0, -80.0], dtype=dtype)
    expected = np.array([math.exp(a) / (1 + math.exp(a)) for a in x.astype(float)])
    np.testing.assert_allclose(F.sigmoid(x).data, expected, rtol=1e-6)


def test_sigmoid_of_special_values():
    with np.errstate(all="raise"):
        y = F.sigmoid(np.array([np.inf, -np.inf, np.nan, 0.0]))
    np.testing.assert_array_equal(y.data, [1.0, 0.0, np.nan, 0.5])


@pytest.mark.parametrize("dtype_", [np.float16, np.float32, np.float64], ids=str)
def test_sigmoid_near_and_beyond_its_cap(dtype_):
    # Where exp(x) is capped (x = 20 in float32, 40 in float64), e / (1 + e) must already
    # round to 1; below, one rounding of the exact value.
    x = np.array([7.0, 8.0, 12.0, 19.0, 21.0, 39.0, 41.0, 1e4], dtype=dtype_)
    y = F.sigmoid(x).data
    assert y.dtype == dtype_
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(y, exact.astype(dtype_), rtol=2 * np.finfo(dtype_).eps, atol=0)
    assert (y[x >= 41] == 1).all()


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmax_simple"])
def test_softmax_of_an_empty_axis_is_empty(name):
    # Issue 13 sweep: NumPy's max over the empty axis raised, unnamed.
    x = Variable(np.zeros((3, 0)))
    y = getattr(F, name)(x, axis=1)
    assert y.shape == (3, 0)
    y.sum().backward()
    assert x.grad.shape == (3, 0)


def test_composed_versions_do_not_wrap_small_integers():
    # Issue 13 sweep: -x and x - max wrapped around in int8 (sigmoid_simple(-128) was 1).
    x = np.array([-128, 0, 109, -20], dtype=np.int8)
    np.testing.assert_allclose(F.sigmoid_simple(x).data, F.sigmoid(x).data, rtol=1e-12)
    np.testing.assert_allclose(F.softmax_simple(x, axis=0).data, F.softmax(x, axis=0).data,
                               rtol=1e-12, atol=1e-300)
