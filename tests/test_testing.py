"""zerograd.testing must catch wrong gradients, not just pass right ones."""

import numpy as np
import pytest

from zerograd import Function
from zerograd.functions import cos, sin, tanh
from zerograd.testing import (
    check_backward,
    check_double_backward,
    check_function,
    check_torch,
    grads_of,
)


# ---- functions with deliberate mistakes -------------------------------------------------
class _WrongGrad(Function):
    """sin with the derivative's sign flipped."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return -gy * cos(x)  # wrong on purpose: d/dx sin x = cos x


def wrong_grad(x):
    return _WrongGrad()(x)


class _WrongSecond(Function):
    """sin whose gradient is right in value but computed from a constant copy of x, so
    the gradient's own derivative (the second derivative) comes out zero."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * np.cos(x.data)  # wrong on purpose: cut off from the graph of x


def wrong_second(x):
    return _WrongSecond()(x)


class _WrongDtype(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return (gy * 2).data.astype(np.float64)  # wrong on purpose: float32 -> float64


def wrong_dtype(x):
    return _WrongDtype()(x)


class _NoGrad(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return None  # wrong on purpose: the input gets nothing


def no_grad_fn(x):
    return _NoGrad()(x)


def _x(shape=(2, 3), dtype=np.float64):
    return np.random.default_rng(1).uniform(0.2, 1.2, shape).astype(dtype)


# ---- positives ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (4,), (3, 7)])
def test_right_functions_pass(shape, dtype):
    x = _x(shape, dtype)
    check_backward(tanh, x)
    check_double_backward(tanh, x)


def test_check_function_with_torch():
    torch = pytest.importorskip("torch")
    check_function(sin, _x(), torch_f=torch.sin)


def test_grads_of_returns_variables_with_grads():
    xs, ys, gys = grads_of(lambda a, b: a * b, [_x(), _x()])
    np.testing.assert_allclose(xs[0].grad.data, gys[0] * xs[1].data)
    assert ys[0].shape == (2, 3)


# ---- negatives ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (3,), (5, 5)], ids=["scalar", "small", "large"])
def test_check_backward_catches_a_wrong_gradient(shape, dtype):
    with pytest.raises(AssertionError) as info:
        check_backward(wrong_grad, _x(shape, dtype))
    message = str(info.value)
    assert "wrong_grad" in message
    assert str(shape) in message
    assert "backprop" in message and "numerical" in message


def test_check_double_backward_catches_a_wrong_second_derivative():
    x = _x((2, 3))
    check_backward(wrong_second, x)  # the first derivative is right...
    with pytest.raises(AssertionError) as info:  # ...the second is not
        check_double_backward(wrong_second, x)
    assert "wrong_second" in str(info.value)
    assert "(2, 3)" in str(info.value)


def test_check_backward_catches_a_dtype_change():
    with pytest.raises(AssertionError, match=r"wrong_dtype.*float64.*float32"):
        check_backward(wrong_dtype, _x((3,), np.float32))


def test_check_backward_catches_a_missing_gradient():
    with pytest.raises(AssertionError, match=r"no_grad_fn: no gradient.*\(3,\)"):
        check_backward(no_grad_fn, _x((3,)))


def test_check_torch_catches_a_wrong_gradient():
    torch = pytest.importorskip("torch")
    with pytest.raises(AssertionError) as info:
        check_torch(wrong_grad, torch.sin, _x((2, 3)))
    message = str(info.value)
    assert "wrong_grad: gradient of input 0" in message
    assert "(2, 3)" in message and "expected" in message


def test_check_torch_catches_a_wrong_value():
    torch = pytest.importorskip("torch")
    with pytest.raises(AssertionError, match=r"tanh: output 0 differs \(shape \(2, 3\)\)"):
        check_torch(tanh, torch.sin, _x((2, 3)))


def test_check_torch_catches_a_wrong_second_derivative():
    torch = pytest.importorskip("torch")
    x = _x((2, 3))
    check_torch(wrong_second, torch.sin, x)
    with pytest.raises(AssertionError, match="wrong_second: second derivative of input 0"):
        check_torch(wrong_second, torch.sin, x, second_order=True)


def test_check_torch_catches_a_shape_mismatch():
    torch = pytest.importorskip("torch")
    with pytest.raises(AssertionError, match=r"shape \(2, 3\), expected \(3,\)"):
        check_torch(tanh, lambda t: torch.tanh(t).sum(0), _x((2, 3)))


def test_check_function_fails_on_any_part():
    torch = pytest.importorskip("torch")
    with pytest.raises(AssertionError):
        check_function(wrong_grad, _x(), torch_f=torch.sin)
    with pytest.raises(AssertionError):
        check_function(wrong_second, _x(), torch_f=torch.sin)


def test_non_float_inputs_pass_through():
    def take(x, idx):
        return x[idx]

    check_backward(take, _x((4,)), np.array([0, 2, 2]))


def test_non_array_inputs_pass_through():
    import zerograd.functions as F

    x = np.random.default_rng(0).standard_normal(4)
    check_backward(lambda v, slope: F.leaky_relu(v, slope), x, 0.1)


def test_a_nan_gradient_is_reported_as_a_mismatch():
    pytest.importorskip("torch")  # check_torch's oracle (issue 13: this did not skip)
    class NaNGrad(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * np.nan

    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_torch(lambda x: NaNGrad()(x), lambda t: t * 2, np.ones(3))
