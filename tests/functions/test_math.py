"""Tests for zerograd.functions.math and core's arithmetic operators.

Every function's forward, first and second derivatives and PyTorch comparison run from
``op_db.py``; this file keeps what the table cannot express: the operators, dtypes
through chains, erf's accuracy and special values, third derivatives, the book's example.
"""

import math

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.functions.math import _erf
from zerograd.testing import check_backward, check_double_backward, check_function


def _normal(xp, rng, shape, dtype):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def _away_from_zero(xp, rng, shape, dtype):
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return xp.asarray((sign * rng.uniform(0.5, 2.0, shape)).astype(dtype))


def test_rpow_gives_variable_exponent(xp, dtype, rng):
    x = _normal(xp, rng, (3,), dtype)
    check_function(lambda v: 2.0**v, x, torch_f=lambda t: 2.0**t)


# ---- binary operators -----------------------------------------------------------------------
BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
]


@pytest.mark.parametrize("name, f", [("add", F.add), ("sub", F.sub), ("mul", F.mul),
                                     ("div", F.div)])
def test_binary_functions_match_operators(xp, rng, name, f):
    a = _away_from_zero(xp, rng, (2, 3), np.float64)
    b = _away_from_zero(xp, rng, (3,), np.float64)
    op = dict(BINARY)[name]
    np.testing.assert_allclose(_host(f(a, b).data), _host(op(Variable(a), b).data))


def _host(a):
    from zerograd.cuda import as_numpy

    return as_numpy(a)


REFLECTED = [
    ("radd", lambda v: 2.0 + v),
    ("rsub", lambda v: 2.0 - v),
    ("rmul", lambda v: 3 * v),
    ("rdiv", lambda v: 2.0 / v),
    ("rsub-fn", lambda v: F.rsub(v, 2.0)),
    ("rdiv-fn", lambda v: F.rdiv(v, 2.0)),
]


@pytest.mark.parametrize("name, f", REFLECTED, ids=[r[0] for r in REFLECTED])
def test_reflected_operators_with_scalars(xp, dtype, rng, name, f):
    x = _away_from_zero(xp, rng, (2, 3), dtype)
    torch_f = {"rsub-fn": lambda t: 2.0 - t, "rdiv-fn": lambda t: 2.0 / t}.get(name, f)
    y = f(Variable(x))
    assert y.dtype == dtype  # a Python number takes the Variable's dtype
    check_function(f, x, torch_f=torch_f)


@pytest.mark.parametrize("name, op", BINARY, ids=[b[0] for b in BINARY])
def test_ndarray_on_the_left_gives_variable(rng, name, op):
    a = _away_from_zero(np, rng, (2, 3), np.float64)
    x = Variable(_away_from_zero(np, rng, (3,), np.float64))
    y = op(a, x)
    assert isinstance(y, Variable)
    np.testing.assert_allclose(y.data, op(a, x.data))
    y.backward()
    assert x.grad.shape == (3,)


def test_float32_stays_float32_through_a_chain(rng):
    x = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    y = F.sum(F.tanh(x) * 2.0 + 1 - x / 3.0 + F.exp(x) ** 2 + F.sqrt(F.square(x) + 1.0))
    y.backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32


def test_the_books_first_example():
    """Step 6: manual backprop through square, exp, square, then the automatic one."""
    A, B, C = F.Square(), F.Exp(), F.Square()
    x = Variable(np.array(0.5))
    a = A(x)
    b = B(a)
    y = C(b)
    assert float(y.data) == pytest.approx(1.648721270700128)
    y.backward()
    assert float(x.grad.data) == 3.297442541400256


# ---- erf (NumPy has none) --------------------------------------------------------------------
def test_erf_accuracy_float64():
    x = np.concatenate([np.linspace(-7, 7, 1401), np.geomspace(1e-300, 6, 400),
                        -np.geomspace(1e-12, 6, 200), [0.0, 0.5, np.nextafter(0.5, 0)]])
    expected = np.array([math.erf(a) for a in x])
    rel = np.abs(_erf(x) - expected) / np.maximum(np.abs(expected), 1e-300)
    assert rel.max() < 1e-15
    np.testing.assert_array_equal(F.erf(x).data, _erf(x))


def test_erf_float32_and_special_values(xp):
    x = np.linspace(-5, 5, 201).astype(np.float32)
    y = F.erf(xp.asarray(x))
    assert y.dtype == np.float32
    expected = np.array([math.erf(float(a)) for a in x])
    np.testing.assert_allclose(as_numpy(y.data), expected, rtol=3e-7, atol=1e-8)
    special = as_numpy(F.erf(xp.asarray([np.inf, -np.inf, np.nan, 0.0])).data)
    np.testing.assert_array_equal(special, [1.0, -1.0, np.nan, 0.0])


def test_erf_of_integers_is_float64():
    y = F.erf(np.array([0, 1, -2]))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, [0.0, math.erf(1), math.erf(-2)], rtol=1e-15)


def test_erf_third_derivative(rng):
    # d3/dx3 erf = 2/sqrt(pi) exp(-x^2) (4 x^2 - 2)
    x = Variable(rng.standard_normal(5))
    F.erf(x).sum().backward(create_graph=True)
    g1 = x.grad
    x.cleargrad()
    g1.sum().backward(create_graph=True)
    g2 = x.grad
    x.cleargrad()
    g2.sum().backward()
    a = x.data
    expected = 2 / math.sqrt(math.pi) * np.exp(-a * a) * (4 * a * a - 2)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


# ---- gradient Functions: the fast path and the recorded path ------------------------------
@pytest.mark.parametrize("f", [F.square, F.sin, F.cos, F.tanh, F.sqrt, F.exp, F.log, F.erf],
                         ids=lambda f: f.__name__)
def test_third_derivatives_numerically(f, rng):
    # The gradient Functions' own backwards are differentiable: check the third derivative
    # (the second derivative of the first-derivative function).
    x = rng.uniform(0.5, 1.5, (3,))

    def first(v):
        f(v).sum().backward(create_graph=True)
        g = v.grad
        v.cleargrad()
        return g * g

    check_backward(first, x)
    check_double_backward(first, x)
