"""Tests for zerograd.functions.math and the arithmetic operators of core."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.testing import check_function, check_torch

SHAPES = [(), (3,), (2, 3)]


def _normal(xp, rng, shape, dtype):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def _positive(xp, rng, shape, dtype):
    return xp.asarray(rng.uniform(0.5, 2.0, shape).astype(dtype))


def _away_from_zero(xp, rng, shape, dtype):
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return xp.asarray((sign * rng.uniform(0.5, 2.0, shape)).astype(dtype))


# ---- unary functions ------------------------------------------------------------------------
UNARY = [
    ("square", F.square, lambda t: t * t, _normal),
    ("exp", F.exp, lambda t: t.exp(), _normal),
    ("log", F.log, lambda t: t.log(), _positive),
    ("sin", F.sin, lambda t: t.sin(), _normal),
    ("cos", F.cos, lambda t: t.cos(), _normal),
    ("tanh", F.tanh, lambda t: t.tanh(), _normal),
    ("sqrt", F.sqrt, lambda t: t.sqrt(), _positive),
    ("neg", F.neg, lambda t: -t, _normal),
]


@pytest.mark.parametrize("name, f, torch_f, make", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary(xp, dtype, rng, name, f, torch_f, make, shape):
    x = make(xp, rng, shape, dtype)
    y = f(x)
    assert y.dtype == dtype and y.shape == shape
    check_function(f, x, torch_f=torch_f)


# ---- pow ----------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [2, 3, 0.5, -1.5, np.float32(2.5)], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_pow_constant(xp, dtype, rng, c, shape):
    x = _positive(xp, rng, shape, dtype)
    assert (Variable(x) ** c).dtype == dtype
    check_function(lambda v: v**c, x, torch_f=lambda t: t ** float(c))


@pytest.mark.parametrize("xshape, yshape", [((2, 3), (2, 3)), ((2, 3), (3,)), ((), (2,))])
def test_pow_variable_exponent(xp, dtype, rng, xshape, yshape):
    x = _positive(xp, rng, xshape, dtype)
    y = _normal(xp, rng, yshape, dtype)
    check_function(F.pow, x, y, torch_f=lambda a, b: a**b)


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
BROADCAST = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((3,), ())]


@pytest.mark.parametrize("name, op", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
def test_binary_operators(xp, dtype, rng, name, op, shapes):
    a = _away_from_zero(xp, rng, shapes[0], dtype)
    b = _away_from_zero(xp, rng, shapes[1], dtype)
    check_function(op, a, b, torch_f=op)


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


def test_variable_exponent_second_order_against_torch(rng):
    pytest.importorskip("torch")
    x = rng.uniform(0.5, 2.0, (2, 2))
    y = rng.standard_normal(2)
    check_torch(F.pow, lambda a, b: a**b, x, y, second_order=True)


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
