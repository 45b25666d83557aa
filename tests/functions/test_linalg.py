"""Tests for zerograd.functions.linalg: matmul, linear, linear_simple.

The forward, first and second derivatives and PyTorch comparison run from ``op_db.py``;
this file keeps operators, error messages, dtypes and the composed oracle.
"""

import re

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.functions.linalg import matmul_array


def _normal(xp, rng, shape, dtype):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def test_matmul_operator_and_methods(rng):
    x = Variable(rng.standard_normal((2, 3)))
    W = rng.standard_normal((3, 4))
    np.testing.assert_allclose((x @ W).data, x.data @ W)
    np.testing.assert_allclose((W.T @ x.T).data, W.T @ x.data.T)  # ndarray @ Variable
    np.testing.assert_allclose(x.matmul(W).data, x.dot(W).data)


def test_matmul_inner_dimension_error():
    msg = r"matmul: inner dimensions differ, x.shape=(8, 3), W.shape=(4, 5) (3 != 4)"
    with pytest.raises(ValueError) as info:
        F.matmul(np.zeros((8, 3)), np.zeros((4, 5)))
    assert str(info.value) == msg


def test_matmul_of_scalars_is_an_error():
    with pytest.raises(ValueError, match="matmul: operands must have at least 1 dimension"):
        F.matmul(np.array(2.0), np.ones((2, 2)))


def test_linear_simple_agrees_with_linear(dtype, rng):
    x, W, b = (rng.standard_normal(s).astype(dtype) for s in [(5, 3), (3, 4), (4,)])
    vs = [Variable(a) for a in (x, W, b)]
    ws = [Variable(a) for a in (x, W, b)]
    y1 = F.linear(*vs)
    y2 = F.linear_simple(*ws)
    assert y1.dtype == y2.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y1.data, y2.data, rtol=tol, atol=tol)
    (y1 * y1).sum().backward()
    (y2 * y2).sum().backward()
    for v, w in zip(vs, ws):
        assert v.grad.dtype == dtype
        np.testing.assert_allclose(v.grad.data, w.grad.data, rtol=tol, atol=tol)


def test_linear_skips_the_gradient_of_data(rng):
    x = rng.standard_normal((4, 3))  # an array, not a Variable: needs no gradient
    W = Variable(rng.standard_normal((3, 2)))
    F.linear(x, W).sum().backward()
    assert W.grad.shape == (3, 2)


def test_linear_shape_error():
    with pytest.raises(ValueError, match=r"linear: .*x.shape=\(4, 3\), W.shape=\(2, 3\)"):
        F.linear(np.zeros((4, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize("b_shape", [(3,), (4, 3), (2, 1, 2)], ids=str)
def test_linear_bias_of_the_wrong_shape_is_named(b_shape):
    # Issue 13: a raw NumPy broadcast error before.
    with pytest.raises(ValueError, match=r"linear: expected b of shape \(2,\) .*"
                       rf"b.shape={re.escape(str(b_shape))}.*b.reshape\(2\)"):
        F.linear(np.zeros((4, 3)), np.zeros((3, 2)), np.zeros(b_shape))


def test_linear_bias_that_broadcasts_is_accepted():
    y = F.linear(np.ones((4, 3)), np.ones((3, 2)), np.array([1.0]))
    np.testing.assert_array_equal(y.data, np.full((4, 2), 4.0))


def test_linear_of_integers_with_a_float_bias():
    y = F.linear(np.ones((2, 3), dtype=np.int64), np.ones((3, 2), dtype=np.int64),
                 np.array([0.5, 0.25]))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.data, [[3.5, 3.25], [3.5, 3.25]])


def test_linear_float32_stays_float32(xp, rng):
    x = Variable(_normal(xp, rng, (4, 3), np.float32))
    W = Variable(_normal(xp, rng, (3, 2), np.float32))
    b = Variable(_normal(xp, rng, (2,), np.float32))
    y = F.linear(x, W, b)
    (y * y).sum().backward()
    assert y.dtype == np.float32
    assert {v.grad.dtype for v in (x, W, b)} == {np.dtype(np.float32)}
    np.testing.assert_allclose(
        as_numpy(y.data), as_numpy(x.data) @ as_numpy(W.data) + as_numpy(b.data), rtol=1e-5
    )


def test_linear_without_bias_under_the_debugging_aids():
    from zerograd.debug import detect_anomaly, trace_backward

    W = Variable(np.ones((2, 3)))
    with trace_backward() as trace:
        F.linear(Variable(np.ones((2, 2))), W).sum().backward()
    assert "Linear" in str(trace)
    with pytest.raises(FloatingPointError, match="Linear.forward"):
        with detect_anomaly():
            F.linear(Variable(np.array([[np.inf, 1.0]])), W)


# ---- float16 products: computed in float32 through BLAS, rounded once -------------------------
def _float16_pair(rng, a_shape, b_shape):
    return (rng.standard_normal(a_shape).astype(np.float16),
            rng.standard_normal(b_shape).astype(np.float16))


@pytest.mark.parametrize("a_shape, b_shape", [((5, 7), (7, 3)), ((4, 5, 7), (7, 3)),
                                              ((2, 1, 5, 7), (3, 7, 2)), ((7,), (7, 3)),
                                              ((5, 7), (7,)), ((7,), (7,))])
def test_matmul_array_of_float16_is_the_float32_product_rounded(rng, a_shape, b_shape):
    a, b = _float16_pair(rng, a_shape, b_shape)
    got = matmul_array(a, b)
    expected = (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    assert np.asarray(got).dtype == np.float16 and np.shape(got) == np.shape(expected)
    np.testing.assert_array_equal(got, expected)
    # NumPy's own float16 product accumulates in float32 too: within a rounding of it
    np.testing.assert_allclose(np.asarray(got, np.float32), (a @ b).astype(np.float32),
                               rtol=2e-3, atol=2e-3)


def test_matmul_array_leaves_other_dtypes_to_numpy(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    np.testing.assert_array_equal(matmul_array(a, b), a @ b)
    mixed = matmul_array(a.astype(np.float16), b.astype(np.float32))
    assert mixed.dtype == np.float32  # (NumPy's promotion: BLAS already)


def test_float16_linear_and_matmul_stay_float16_with_float32_products(rng):
    x, W = _float16_pair(rng, (6, 5), (5, 4))
    b = rng.standard_normal(4).astype(np.float16)
    xv, Wv, bv = Variable(x), Variable(W), Variable(b)
    for y, product in ((F.linear(xv, Wv, bv), x.astype(np.float32) @ W.astype(np.float32)),
                       (F.matmul(xv, Wv), x.astype(np.float32) @ W.astype(np.float32))):
        assert y.dtype == np.float16
        expected = product.astype(np.float16)
        if y.creator.__class__.__name__ == "Linear":
            expected = expected + b
        np.testing.assert_array_equal(y.data, expected)
        y.backward(retain_grad=False)
    gy = np.ones((6, 4), dtype=np.float32)
    for v, expected in ((xv, gy @ W.astype(np.float32).T), (Wv, x.astype(np.float32).T @ gy)):
        assert v.grad.dtype == np.float16
        # two backward passes added up (linear's and matmul's)
        np.testing.assert_array_equal(v.grad.data, expected.astype(np.float16) * 2)
