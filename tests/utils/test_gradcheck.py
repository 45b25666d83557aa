"""zerograd.utils.gradcheck: DeZero's numerical_grad and gradient_check."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.utils import array_allclose, array_equal, gradient_check, numerical_grad


def test_numerical_grad_of_a_sum(xp):
    x = xp.asarray(np.array([[1.0, -2.0], [0.5, 3.0]]))
    g = numerical_grad(lambda v: F.sum(F.exp(v)), x)
    np.testing.assert_allclose(as_numpy(g), np.exp(as_numpy(x)), rtol=1e-7)
    np.testing.assert_array_equal(as_numpy(x), [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_numerical_grad_passes_every_keyword_to_f():
    seen = []

    def f(x, scale, eps):  # an `eps` of f's own, as batch_norm has
        seen.append(eps)
        return x * scale

    g = numerical_grad(f, np.array([1.0, 2.0]), 3.0, eps=0.5)
    np.testing.assert_allclose(g, [3.0, 3.0])
    assert set(seen) == {0.5}


def test_numerical_grad_of_a_variable_and_of_arrays_returned():
    x = Variable(np.array([2.0]))
    np.testing.assert_allclose(numerical_grad(lambda v: v.data ** 3, x), [12.0], rtol=1e-7)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32, np.float64])
def test_gradient_check_works_in_float64(dtype):
    # DeZero's turns the input into float64 first; integer inputs are the book's tests'.
    x = np.arange(6).reshape(2, 3).astype(dtype)
    assert gradient_check(F.transpose, x)
    assert gradient_check(lambda v: F.sum(v * v, axis=0), x)
    assert x.dtype == dtype  # the caller's array is left as it was


def test_gradient_check_reports_a_wrong_backward(capsys):
    from zerograd import Function

    class Wrong(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 3  # should be 2

    assert not gradient_check(lambda v: Wrong()(v), np.ones(3))
    out = capsys.readouterr().out
    assert "gradient_check" in out and "backprop" in out and "numerical" in out


def test_gradient_check_without_a_gradient(capsys):
    assert not gradient_check(lambda v: Variable(np.ones(2)), np.ones(2))
    assert "gave no gradient" in capsys.readouterr().out


def test_array_equal_and_allclose(xp):
    a = xp.asarray(np.array([1.0, 2.0]))
    assert array_equal(Variable(a), np.array([1.0, 2.0]))
    assert not array_equal(a, np.array([1.0, 2.5]))
    assert array_allclose(a, a + 1e-7) and not array_allclose(a, a + 1e-3)
