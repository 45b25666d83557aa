"""The engine of zerograd.core: Variable, Function, the backward pass and the operators.

Per-function numerical and PyTorch checks live in tests/functions/test_math.py; here the
subject is the machinery every function relies on.
"""

import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Config, Function, Parameter, Variable, as_array, as_variable, no_grad
from zerograd.core import Add, Mul, MulConstant, SubFromConstant
from zerograd.functions import Exp, Square, exp, sin, square, tanh
from zerograd.testing import check_function

# =========================================================================================
# The first computation of the book: square -> exp -> square at 0.5
# =========================================================================================
STEP9_GRAD = 3.297442541400256


def test_manual_backprop_through_function_objects():
    A, B, C = Square(), Exp(), Square()
    x = Variable(np.array(0.5))
    a = A(x)
    b = B(a)
    y = C(b)

    y.grad = np.array(1.0)
    b.grad = C.backward(y.grad)
    a.grad = B.backward(b.grad)
    x.grad = A.backward(a.grad)

    assert float(x.grad.data) == STEP9_GRAD
    # Each function keeps its input and its output, and the output its creator.
    assert A.inputs[0] is x and C.outputs[0]() is y
    assert y.creator is C and b.creator is B and x.creator is None


def test_automatic_backprop_gives_the_same_value():
    x = Variable(np.array(0.5))
    y = square(exp(square(x)))
    y.backward()
    assert float(x.grad.data) == STEP9_GRAD
    assert x.grad.shape == () and x.grad.dtype == np.float64


def test_backward_uses_a_grad_set_by_hand():
    # Step 7 sets the output's grad before calling backward.
    x = Variable(np.array(0.5))
    y = square(exp(square(x)))
    y.grad = np.array(2.0)
    y.backward()
    assert float(x.grad.data) == 2 * STEP9_GRAD


def test_backward_of_a_leaf_sets_ones():
    x = Variable(np.array([1.0, 2.0], dtype=np.float32))
    x.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])
    assert x.grad.dtype == np.float32


# =========================================================================================
# Graph shapes: reuse, diamonds, generations
# =========================================================================================
def test_same_variable_twice():
    x = Variable(np.array(3.0))
    y = x + x
    y.backward()
    assert float(x.grad.data) == 2.0
    x.cleargrad()
    y = x + x + x
    y.backward()
    assert float(x.grad.data) == 3.0


def test_diamond():
    x = Variable(np.array(2.0))
    a = square(x)
    y = square(a) + square(a)
    y.backward()
    assert float(y.data) == 32.0
    assert float(x.grad.data) == 64.0


class _Recorded(Function):
    """Identity that logs when its backward runs (for ordering tests)."""

    def __init__(self, name, log):
        self.name = name
        self.log = log

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        self.log.append(self.name)
        return gy


def test_generation_order_on_an_unbalanced_graph():
    # a feeds y both directly and through a long chain. Processing a's creator as soon
    # as the short path reaches it (depth-first or first-in-first-out order) would send
    # only part of the gradient on to x.
    log = []
    x = Variable(np.array(0.7))
    a = _Recorded("a", log)(square(x))
    b = a
    for k in range(5):
        b = _Recorded(f"chain{k}", log)(sin(b))
    y = _Recorded("y", log)(a + b)
    y.backward()

    s = x.data**2
    chain = s
    dchain = 1.0
    for _ in range(5):
        dchain *= np.cos(chain)
        chain = np.sin(chain)
    expected = (1.0 + dchain) * 2 * x.data
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-14)
    # Every function ran once, the shared node last.
    assert log == ["y", "chain4", "chain3", "chain2", "chain1", "chain0", "a"]


def test_each_function_backward_runs_once_on_a_wide_graph():
    calls = []
    x = Variable(np.array(1.5))
    a = _Recorded("a", calls)(x)
    ys = [a * float(k) for k in range(1, 11)]
    total = ys[0]
    for v in ys[1:]:
        total = total + v
    total.backward()
    assert calls == ["a"]
    assert float(x.grad.data) == 55.0


def test_generation_counts_depth():
    x = Variable(np.array(1.0))
    a = square(x)
    b = exp(a)
    y = a + b
    assert (x.generation, a.generation, b.generation, y.generation) == (0, 1, 2, 3)
    assert y.creator.generation == 2


# =========================================================================================
# Gradient bookkeeping
# =========================================================================================
def test_gradients_accumulate_until_cleargrad():
    x = Variable(np.array(3.0))
    y = x * x
    y.backward()
    assert float(x.grad.data) == 6.0
    y = x * x
    y.backward()
    assert float(x.grad.data) == 12.0
    x.cleargrad()
    assert x.grad is None
    y = x * x
    y.backward()
    assert float(x.grad.data) == 6.0


def test_accumulating_does_not_write_into_a_shared_gradient():
    # The first backward may hand the output's gradient array itself to x; a second
    # backward must not add into that array in place and change y's gradient too.
    x = Variable(np.array([1.0, 2.0]))
    y = x + 0.0
    y.backward(retain_grad=True)
    first = y.grad.data.copy()
    (x + 0.0).backward()
    np.testing.assert_array_equal(y.grad.data, first)
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_retain_grad():
    x = Variable(np.array(2.0))
    a = square(x)
    y = exp(a)
    y.backward()
    assert a.grad is None and y.grad is None
    assert x.grad is not None

    x.cleargrad()
    a = square(x)
    y = exp(a)
    y.backward(retain_grad=True)
    assert float(y.grad.data) == 1.0
    assert float(a.grad.data) == pytest.approx(np.exp(4.0))
    assert float(x.grad.data) == pytest.approx(4.0 * np.exp(4.0))


def test_gradient_is_a_variable_without_a_graph_by_default():
    x = Variable(np.array(2.0))
    (x * x).backward()
    assert isinstance(x.grad, Variable)
    assert x.grad.creator is None


# =========================================================================================
# Higher-order derivatives
# =========================================================================================
def test_double_backprop_step36():
    x = Variable(np.array(2.0))
    y = x**2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx**3 + y
    z.backward()
    assert float(x.grad.data) == 100.0


def test_newton_method_by_double_backprop_step33():
    def f(x):
        return x**4 - 2 * x**2

    x = Variable(np.array(2.0))
    path = []
    for _ in range(10):
        path.append(float(x.data))
        y = f(x)
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data

    assert path[:2] == [2.0, 1.4545454545454546]
    assert path[7] == 1.0
    assert all(a > b for a, b in zip(path[:7], path[1:7]))  # decreasing towards 1


def test_second_derivative_of_a_linear_function_is_zero_not_none():
    x = Variable(np.array([1.0, -2.0]))
    y = 3 * x
    y.backward(create_graph=True)
    gx = x.grad
    np.testing.assert_array_equal(gx.data, [3.0, 3.0])
    x.cleargrad()
    gx.backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_third_derivative_of_a_quadratic_is_zero():
    x = Variable(np.array(1.5))
    y = x * x
    y.backward(create_graph=True)
    for expected in (2.0, 0.0):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
        assert float(x.grad.data) == expected


def test_create_graph_records_a_graph_for_the_gradient():
    x = Variable(np.array(1.0))
    y = sin(x)
    y.backward(create_graph=True)
    assert x.grad.creator is not None
    y = sin(x)
    x.cleargrad()
    y.backward()
    assert x.grad.creator is None


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_higher_derivatives_of_tanh_match_torch(order):
    torch = pytest.importorskip("torch")
    points = np.linspace(-2.0, 2.0, 7)

    x = Variable(points.copy())
    y = tanh(x)
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    ours = x.grad.data

    t = torch.tensor(points, requires_grad=True)
    g = torch.tanh(t)
    for _ in range(order):
        (g,) = torch.autograd.grad(g.sum(), t, create_graph=True)
    np.testing.assert_allclose(ours, g.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_second_derivative_through_two_inputs():
    # z = x^2 y: d2z/dx2 = 2y, d2z/dxdy = 2x.
    x = Variable(np.array(3.0))
    y = Variable(np.array(5.0))
    z = x * x * y
    z.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    y.cleargrad()
    gx.backward()
    assert float(x.grad.data) == 10.0
    assert float(y.grad.data) == 6.0


# =========================================================================================
# Deep graphs and memory
# =========================================================================================
def test_a_chain_of_100000_functions():
    # In a subprocess: an error while freeing a deep graph is only *printed* ("Exception
    # ignored in ..."), and a crash there would take pytest down with it.
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from zerograd import Variable
        sys.setrecursionlimit(1000)
        x = Variable(np.array(1.0))
        y = x
        for _ in range(100_000):
            y = y * 1.0
        y.backward()
        print(float(x.grad.data))
        del y
        print("freed")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.0", "freed"]
    assert "Error" not in out.stderr, out.stderr


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_dropping_the_output_frees_the_graph(no_gc):
    x = Variable(np.array(2.0))
    a = square(x)
    y = sin(a)
    a_ref = weakref.ref(a)
    f_ref = weakref.ref(a.creator)
    g_ref = weakref.ref(y.creator)
    del a
    assert a_ref() is not None  # sin saved its input for its backward
    del y
    assert a_ref() is None and f_ref() is None and g_ref() is None


def test_graph_is_freed_after_backward(no_gc):
    x = Variable(np.array(2.0))
    a = square(x)
    y = exp(a)
    y.backward(retain_grad=True)
    refs = [weakref.ref(o) for o in (a, a.creator, y.creator, a.grad)]
    del a, y
    assert all(r() is None for r in refs)
    assert x.grad is not None


def test_create_graph_cycle_is_broken_by_cleargrad(no_gc):
    # With create_graph the gradient's graph refers back to x (as every framework's
    # does), so x and x.grad keep each other alive until the gradient is cleared.
    x = Variable(np.array(2.0))
    y = sin(x) * x
    y.backward(create_graph=True)
    refs = [weakref.ref(x.grad), weakref.ref(x.grad.creator), weakref.ref(y.creator)]
    del y
    x.cleargrad()
    assert all(r() is None for r in refs)


def test_unchain():
    x = Variable(np.array(2.0))
    a = square(x)
    a.unchain()
    assert a.creator is None
    y = a * 3.0
    y.backward()
    assert x.grad is None
    assert float(a.grad.data) == 3.0


def test_unchain_backward(no_gc):
    x = Variable(np.array(2.0))
    a = square(x)
    b = exp(a)
    h = b + a
    f_ref = weakref.ref(a.creator)
    h.unchain_backward()
    assert h.creator is None and b.creator is None and a.creator is None
    assert f_ref() is None
    z = h * 4.0
    z.backward()
    assert x.grad is None and float(h.grad.data) == 4.0


# =========================================================================================
# Switches: no_grad, requires_grad, threads
# =========================================================================================
def test_no_grad_records_no_graph():
    x = Variable(np.array(2.0))
    with no_grad():
        y = square(x)
    assert y.creator is None
    assert square(x).creator is not None


def test_no_grad_as_a_decorator_both_ways():
    @no_grad
    def bare(x):
        return square(x), Config.enable_backprop

    @no_grad()
    def called(x):
        return square(x), Config.enable_backprop

    x = Variable(np.array(2.0))
    for fn in (bare, called):
        y, flag = fn(x)
        assert y.creator is None and flag is False
    assert Config.enable_backprop is True


def test_no_grad_does_not_leak_into_other_threads():
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    def inside_no_grad():
        with no_grad():
            barrier.wait()  # the other thread looks now
            seen["inside"] = Config.enable_backprop
            barrier.wait()

    def outside():
        barrier.wait()
        x = Variable(np.array(1.0))
        seen["outside"] = Config.enable_backprop
        seen["recorded"] = square(x).creator is not None
        barrier.wait()

    threads = [threading.Thread(target=inside_no_grad), threading.Thread(target=outside)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"inside": False, "outside": True, "recorded": True}


def test_requires_grad_false_gets_no_gradient():
    w = Variable(np.array([1.0, 2.0]))
    x = Variable(np.array([3.0, 4.0]), requires_grad=False)
    y = (w * x).sum()
    y.backward()
    assert x.grad is None
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])


def test_function_of_inputs_needing_no_grad_records_nothing():
    x = Variable(np.array(2.0), requires_grad=False)
    y = square(x)
    assert y.creator is None
    z = square(np.array(2.0))  # arrays wrapped on the way in need no grad either
    assert z.creator is None
    assert square(Variable(np.array(2.0))).creator is not None


def test_wrapped_arrays_get_no_gradient_computed():
    calls = []

    class Spy(Function):
        def forward(self, x0, x1):
            return x0 * x1

        def backward(self, gy):
            x0, x1 = self.inputs
            calls.append((x0.requires_grad, x1.requires_grad))
            return gy * x1 if x0.requires_grad else None, gy * x0 if x1.requires_grad else None

    w = Variable(np.array(2.0))
    y = Spy()(w, np.array(5.0))
    y.backward()
    assert calls == [(True, False)]
    assert float(w.grad.data) == 5.0


# =========================================================================================
# Errors
# =========================================================================================
@pytest.mark.parametrize(
    "value, type_name",
    [(1.0, "float"), (3, "int"), ([1.0, 2.0], "list"), ((1, 2), "tuple")],
)
def test_variable_rejects_non_arrays(value, type_name):
    with pytest.raises(TypeError, match=type_name) as info:
        Variable(value)
    assert "np.array" in str(info.value) or "np.asarray" in str(info.value)


def test_variable_of_a_float_suggests_np_array():
    with pytest.raises(TypeError, match=r"float.*np\.array\(1\.0\)"):
        Variable(1.0)


def test_variable_accepts_none_and_arrays():
    assert Variable(None).data is None
    assert Variable(np.array(1.0)).shape == ()
    assert Variable(np.ones((2, 3), dtype=np.float32), name="w").name == "w"


def test_backward_returning_too_few_gradients_is_reported():
    class TwoInOneOut(Function):
        def forward(self, x0, x1):
            return x0 + x1

        def backward(self, gy):
            return gy

    x0 = Variable(np.ones((2, 3)))
    x1 = Variable(np.ones((2, 3)))
    y = TwoInOneOut()(x0, x1)
    with pytest.raises(ValueError, match=r"TwoInOneOut.*1 gradient.*2 input.*\(2, 3\)"):
        y.backward()


def test_backward_returning_a_wrong_shape_is_reported():
    class WrongShape(Function):
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            return np.ones((4,))

    x = Variable(np.ones(3))
    y = WrongShape()(x)
    with pytest.raises(ValueError, match=r"WrongShape.*\(4,\).*\(3,\)"):
        y.backward()


def test_unimplemented_backward_names_the_function():
    class ForwardOnly(Function):
        def forward(self, x):
            return x

    y = ForwardOnly()(Variable(np.array(1.0)))
    with pytest.raises(NotImplementedError, match="ForwardOnly"):
        y.backward()


def test_forward_returning_a_list_is_reported():
    class ReturnsList(Function):
        def forward(self, x):
            return [1.0, 2.0]

    with pytest.raises(TypeError, match="forward must return arrays"):
        ReturnsList()(np.array(1.0))


# =========================================================================================
# Multi-output functions
# =========================================================================================
class _TwoOutputs(Function):
    def forward(self, x):
        return 2 * x, 3 * x

    def backward(self, gy0, gy1):
        return 2 * gy0 + 3 * gy1  # d/dx (2x, 3x)


@pytest.mark.parametrize("keep_sibling", [True, False])
def test_unused_output_gets_zero_gradient(keep_sibling):
    x = Variable(np.array([1.0, 2.0], dtype=np.float32))
    y0, y1 = _TwoOutputs()(x)
    if not keep_sibling:
        del y1
    (y0 * y0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 8 * x.data)
    assert x.grad.dtype == np.float32


def test_both_outputs_used():
    x = Variable(np.array([1.0, 2.0]))
    y0, y1 = _TwoOutputs()(x)
    (y0 + y1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0])


# =========================================================================================
# Operators
# =========================================================================================
def _v(*values, dtype=np.float64):
    return Variable(np.array(values, dtype=dtype))


@pytest.mark.parametrize(
    "op, expected",
    [
        (lambda x: x + 2.0, [3.0, 4.0]),
        (lambda x: 2.0 + x, [3.0, 4.0]),
        (lambda x: x - 2.0, [-1.0, 0.0]),
        (lambda x: 2.0 - x, [1.0, 0.0]),
        (lambda x: x * 3, [3.0, 6.0]),
        (lambda x: 3 * x, [3.0, 6.0]),
        (lambda x: x / 2, [0.5, 1.0]),
        (lambda x: 2 / x, [2.0, 1.0]),
        (lambda x: -x, [-1.0, -2.0]),
        (lambda x: x**2, [1.0, 4.0]),
        (lambda x: 2.0**x, [2.0, 4.0]),
        (lambda x: x + np.float64(1.0), [2.0, 3.0]),
        (lambda x: np.float64(1.0) + x, [2.0, 3.0]),
        (lambda x: np.int64(2) * x, [2.0, 4.0]),
        (lambda x: x + np.array([10.0, 20.0]), [11.0, 22.0]),
        (lambda x: np.array([10.0, 20.0]) + x, [11.0, 22.0]),
        (lambda x: np.array([10.0, 20.0]) - x, [9.0, 18.0]),
        (lambda x: np.array([10.0, 20.0]) * x, [10.0, 40.0]),
        (lambda x: np.array([10.0, 20.0]) / x, [10.0, 10.0]),
        (lambda x: x + _v(1.0, 1.0), [2.0, 3.0]),
    ],
)
def test_operator_values_and_types(op, expected):
    y = op(_v(1.0, 2.0))
    assert isinstance(y, Variable)
    np.testing.assert_allclose(y.data, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "op",
    [
        lambda x: x + 1.5,
        lambda x: 1.5 + x,
        lambda x: x - 1,
        lambda x: 1 - x,
        lambda x: x * 0.1,
        lambda x: 0.1 * x,
        lambda x: x / 3.0,
        lambda x: 3.0 / x,
        lambda x: x**2,
        lambda x: x**0.5,
        lambda x: 2.0**x,
        lambda x: -x,
        lambda x: x * np.float64(0.1),
    ],
)
def test_python_scalars_keep_the_dtype(op, dtype):
    x = Variable(np.array([1.0, 2.0], dtype=dtype))
    y = op(x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_ndarray_on_the_left_gives_a_variable_and_gradient():
    x = _v(1.0, 2.0)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Variable)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_pow_with_a_variable_exponent():
    x = Variable(np.array(2.0))
    c = Variable(np.array(3.0))
    y = x**c
    y.backward()
    assert float(y.data) == 8.0
    assert float(x.grad.data) == 12.0  # c x^(c-1)
    assert float(c.grad.data) == pytest.approx(8.0 * np.log(2.0))  # x^c log x


def test_rpow():
    x = Variable(np.array(3.0))
    y = 2.0**x
    y.backward()
    assert float(y.data) == 8.0
    assert float(x.grad.data) == pytest.approx(8.0 * np.log(2.0))


def test_matmul_operator():
    x = Variable(np.array([[1.0, 2.0]]))
    W = Variable(np.array([[1.0], [3.0]]))
    y = x @ W
    assert isinstance(y, Variable) and y.shape == (1, 1)
    assert float(y.data[0, 0]) == 7.0
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [[1.0, 3.0]])
    np.testing.assert_array_equal(W.grad.data, [[1.0], [2.0]])
    z = np.array([[1.0, 1.0]]) @ W
    assert isinstance(z, Variable) and float(z.data[0, 0]) == 4.0
    assert x.matmul(W).shape == x.dot(W).shape == (1, 1)


@pytest.mark.parametrize(
    "index, expected",
    [
        (1, [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
        ((slice(None), 0), [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        (np.array([0, 0, 1]), [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]),
        ((0, slice(1, None)), [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]),
    ],
)
def test_getitem(index, expected):
    x = Variable(np.arange(6.0).reshape(2, 3))
    y = x[index]
    np.testing.assert_array_equal(y.data, x.data[index])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, expected)


@pytest.mark.parametrize(
    "shapes",
    [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((2, 3), ())],
    ids=["scalar", "vector", "broadcast-row", "broadcast-outer", "broadcast-scalar"],
)
@pytest.mark.parametrize(
    "name, f, torch_f",
    [
        ("add", lambda a, b: a + b, lambda a, b: a + b),
        ("sub", lambda a, b: a - b, lambda a, b: a - b),
        ("mul", lambda a, b: a * b, lambda a, b: a * b),
        ("div", lambda a, b: a / b, lambda a, b: a / b),
        ("pow", lambda a, b: a**b, lambda a, b: a**b),
    ],
)
def test_binary_operators_against_numerics_and_torch(name, f, torch_f, shapes, dtype, rng):
    a = rng.uniform(0.5, 2.0, shapes[0]).astype(dtype)
    b = rng.uniform(0.5, 2.0, shapes[1]).astype(dtype)
    f.__name__ = name
    check_function(f, a, b, torch_f=torch_f)


def test_unary_operators_against_numerics_and_torch(dtype, rng):
    a = rng.uniform(0.5, 2.0, (2, 3)).astype(dtype)
    check_function(lambda x: -x, a, torch_f=lambda x: -x)
    check_function(lambda x: x**3, a, torch_f=lambda x: x**3)
    check_function(lambda x: 1.5 / x - 2.0, a, torch_f=lambda x: 1.5 / x - 2.0)


def test_function_objects_are_the_operator_classes():
    x = Variable(np.array(1.0))
    assert isinstance((x + x).creator, Add)
    assert isinstance((x * x).creator, Mul)
    # A Python number stays a number: no array is made for it.
    assert isinstance((x * 2.0).creator, MulConstant)
    assert isinstance((2.0 - x).creator, SubFromConstant)
    assert isinstance((x * np.array(2.0)).creator, Mul)


# =========================================================================================
# Variable as an array: properties, repr, conversions
# =========================================================================================
def test_properties():
    x = Variable(np.zeros((2, 3), dtype=np.float32))
    assert x.shape == (2, 3)
    assert x.ndim == 2
    assert x.size == 6
    assert x.dtype == np.float32
    assert len(x) == 2
    assert x.T.shape == (3, 2)
    assert x.transpose().shape == (3, 2)
    assert x.reshape(3, 2).shape == x.reshape((3, 2)).shape == (3, 2)
    assert x.sum().shape == ()
    assert x.sum(axis=0, keepdims=True).shape == (1, 3)


def test_len_of_a_scalar_raises():
    with pytest.raises(TypeError):
        len(Variable(np.array(1.0)))


@pytest.mark.parametrize(
    "data, expected",
    [
        (None, "variable(None)"),
        (np.array(1.5), "variable(1.5)"),
        (np.array([1.0, 2.0, 3.0]), "variable([1. 2. 3.])"),
        (
            np.array([[1, 2, 3], [4, 5, 6]]),
            "variable([[1 2 3]\n          [4 5 6]])",
        ),
    ],
    ids=["None", "scalar", "vector", "matrix"],
)
def test_repr(data, expected):
    assert repr(Variable(data)) == expected


def test_item_tolist_argmax():
    x = Variable(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]))
    assert Variable(np.array(2.5)).item() == 2.5
    assert x.tolist() == [[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]
    assert int(x.argmax()) == 3
    np.testing.assert_array_equal(x.argmax(axis=1), [1, 0])


def test_name_and_parameter():
    p = Parameter(np.ones(2), name="W")
    assert isinstance(p, Variable) and p.name == "W"
    assert isinstance(p * 2.0, Variable) and not isinstance(p * 2.0, Parameter)
    (p * 2.0).sum().backward()
    np.testing.assert_array_equal(p.grad.data, [2.0, 2.0])


def test_as_array_and_as_variable():
    a = as_array(2.0)
    assert isinstance(a, np.ndarray) and a.shape == ()
    arr = np.ones(2)
    assert as_array(arr) is arr
    v = Variable(arr)
    assert as_variable(v) is v
    w = as_variable(arr)
    assert isinstance(w, Variable) and w.data is arr


def test_set_creator():
    x = Variable(np.array(1.0))
    f = Square()
    y = f(x)
    z = Variable(np.array(0.0))
    z.set_creator(f)
    assert z.creator is f and z.generation == y.generation


# =========================================================================================
# Regressions found in review
# =========================================================================================
def test_power_zero_and_zero_base_give_finite_gradients():
    # x ** 0 differentiates to 0, not 0 * inf = NaN at x = 0 (a polynomial's constant term).
    x = Variable(np.array([0.0, 1.0, 2.0]))
    coefficients = [1.0, 2.0, 3.0]
    y = sum(c * x**i for i, c in enumerate(coefficients))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 8.0, 14.0])
    # d/dy x^y at x = 0 is taken as 0, as PyTorch does.
    x = Variable(np.array([0.0, 1.0]))
    e = Variable(np.array([2.0, 2.0]))
    (x**e).sum().backward()
    np.testing.assert_array_equal(e.grad.data, [0.0, 0.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0])


def test_third_derivative_of_a_square_at_zero_is_zero():
    x = Variable(np.array(0.0))
    y = x**2
    y.backward(create_graph=True)
    for _ in range(2):
        g = x.grad
        x.cleargrad()
        g.backward(create_graph=True)
    assert float(x.grad.data) == 0.0


def test_root_gradient_given_as_an_array():
    # The book's step 7 sets y.grad to an ndarray before calling backward.
    x = Variable(np.ones((2, 2)))
    W = Variable(np.ones((2, 3)))
    y = F.linear(x, W)
    y.grad = np.full((2, 3), 2.0)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 2), 6.0))


@pytest.mark.parametrize("c", [np.int64(3), np.float64(3.0), np.int32(3)])
def test_numpy_scalars_keep_float32(c):
    x = Variable(np.ones(3, np.float32))
    y = x**c * c + c
    y.sum().backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32
