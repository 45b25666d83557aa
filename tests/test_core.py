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

import zerograd
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


def test_a_root_gradient_takes_its_output_dtype():
    # As PyTorch: a float64 gradient for a float32 output is cast, and float32 stays.
    x = Variable(np.ones(2, np.float32))
    y = x * 2.0
    y.grad = np.ones(2)
    y.backward(retain_grad=True)
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float32
    (gx,) = zerograd.grad(x * 2.0, x, grad_outputs=np.ones(2))
    assert gx.dtype == np.float32
    (gx,) = zerograd.grad(x * 2.0, x, grad_outputs=np.ones((3, 2)), is_grads_batched=True)
    assert gx.dtype == np.float32 and gx.shape == (3, 2)
    with pytest.raises(TypeError, match=r"grad: grad_outputs\[0\] has dtype int64.*float32"):
        zerograd.grad(x * 2.0, x, grad_outputs=np.ones(2, dtype=np.int64))
    y = x * 2.0
    y.grad = np.ones(2, dtype=bool)
    with pytest.raises(TypeError, match=r"backward: the gradient set on it.*bool"):
        y.backward()


def test_a_root_gradient_of_another_dtype_stays_differentiable():
    x = Variable(np.ones(2, np.float32))
    w = Variable(np.array([1.0, 2.0]))  # the seed is a float64 function of w
    (gx,) = zerograd.grad(x * 2.0, x, grad_outputs=w * 3.0, create_graph=True)
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(gx.data, [6.0, 12.0])
    (gw,) = zerograd.grad(gx.sum(), w)  # d/dw sum(2 * 3 w) = 6, in w's dtype
    assert gw.dtype == np.float64
    np.testing.assert_array_equal(gw.data, [6.0, 6.0])


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


# Consumers of h that keep h (sin, h * h), keep nothing and link to h's creator
# (h * 2.0, h + 1.0, reshape): the cut holds for each, as in DeZero.
UNCHAIN_USERS = {
    "mul_constant": (lambda h: h * 2.0, lambda h: 2.0),
    "add_constant": (lambda h: h + 1.0, lambda h: 1.0),
    "reshape": (lambda h: F.reshape(h, (1,)).sum(), lambda h: 1.0),
    "sin": (lambda h: sin(h), lambda h: np.cos(h)),
    "square": (lambda h: h * h, lambda h: 2 * h),
}


@pytest.mark.parametrize("user", sorted(UNCHAIN_USERS))
def test_unchain_stops_the_gradient_of_every_user(user):
    use, derivative = UNCHAIN_USERS[user]
    x = Variable(np.array(3.0))
    h = x * x
    y = use(h)
    h.unchain()
    y.backward()
    assert x.grad is None  # nothing flows past the cut
    np.testing.assert_allclose(h.grad.data, derivative(9.0))  # h is a leaf now
    gx, gh = zerograd.grad(use(h), [x, h])
    assert float(gx.data) == 0.0
    np.testing.assert_allclose(gh.data, derivative(9.0))


def test_unchain_of_one_output_keeps_the_others_and_survives_its_variable(no_gc):
    x = Variable(np.arange(4.0))
    a, b = F.split(x, 2)
    y = (a * 2.0).sum() + (b * 3.0).sum()
    a.unchain()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 3.0, 3.0])
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])
    # Unchained, then dropped: its gradient goes nowhere, and walkers stop there too.
    x = Variable(np.array(3.0))
    h = x * x
    mul = h.creator
    y = h * 2.0
    h.unchain()
    del h
    assert mul not in zerograd.core.graph_functions(y)
    assert y.creator.inputs[0].creator is None
    y.backward()
    assert x.grad is None


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


def test_a_forward_returning_a_tuple_of_one_gives_the_variable():
    class Twice(Function):  # as DeZero: one output is a Variable, however returned
        def forward(self, x):
            return (x * 2,)

        def backward(self, gy):
            return gy * 2

    x = Variable(np.array(1.0))
    y = Twice()(x)
    assert isinstance(y, Variable) and float(y.data) == 2.0
    y.backward()
    assert float(x.grad.data) == 2.0
    assert isinstance(Twice()(np.array(1.0)), Variable)  # recorded or not
    assert isinstance(_TwoOutputs()(x), list)


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


# =========================================================================================
# zerograd.grad: the engine returns gradients
# =========================================================================================
def _torch_leaf(torch, a):
    return torch.tensor(a, requires_grad=True)


def test_grad_is_exported_at_top_level():
    import zerograd
    from zerograd import core, functional

    assert zerograd.grad is core.grad
    assert callable(functional.grad) and functional.grad is not zerograd.grad


def test_grad_matches_backward_and_leaves_grad_untouched(rng):
    x = Variable(rng.standard_normal((2, 3)))
    W = Variable(rng.standard_normal((3, 4)))
    W.grad = Variable(np.full((3, 4), 7.0))
    y = F.tanh(x @ W).sum()
    gx, gW = zerograd.grad(y, [x, W], retain_graph=True)  # backward() follows
    assert x.grad is None and np.all(W.grad.data == 7.0) and y.grad is None
    assert gx.creator is None and gW.creator is None  # no graph without create_graph
    W.cleargrad()
    y.backward()
    np.testing.assert_array_equal(gx.data, x.grad.data)
    np.testing.assert_array_equal(gW.data, W.grad.data)


def test_grad_first_order_against_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    a, b = rng.standard_normal((2, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)
    x, w = Variable(a), Variable(b)
    y0 = F.sin(x * w) + x / (w * w + 1.0)  # (2, 3), w broadcast
    y1 = (F.exp(w) * 2.0).sum()
    ct = rng.standard_normal((2, 3)).astype(dtype)
    gx, gw = zerograd.grad([y0, y1], [x, w], grad_outputs=[ct, None])
    tx, tw = _torch_leaf(torch, a), _torch_leaf(torch, b)
    t0 = torch.sin(tx * tw) + tx / (tw * tw + 1.0)
    t1 = (torch.exp(tw) * 2.0).sum()
    tgx, tgw = torch.autograd.grad([t0, t1], [tx, tw], grad_outputs=[torch.tensor(ct), None])
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12}
    assert gx.dtype == dtype and gw.dtype == dtype
    np.testing.assert_allclose(gx.data, tgx.numpy(), **tol)
    np.testing.assert_allclose(gw.data, tgw.numpy(), **tol)


def test_grad_second_order_against_torch(rng):
    torch = pytest.importorskip("torch")
    a, b = rng.standard_normal(4), rng.standard_normal(4)
    x, w = Variable(a), Variable(b)
    (gx,) = zerograd.grad((F.tanh(x * w) * x).sum(), x, create_graph=True)
    assert gx.creator is not None
    hx, hw = zerograd.grad((gx * gx).sum(), [x, w])
    tx, tw = _torch_leaf(torch, a), _torch_leaf(torch, b)
    (tgx,) = torch.autograd.grad((torch.tanh(tx * tw) * tx).sum(), tx, create_graph=True)
    thx, thw = torch.autograd.grad((tgx * tgx).sum(), [tx, tw])
    np.testing.assert_allclose(gx.data, tgx.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(hx.data, thx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(hw.data, thw.numpy(), rtol=1e-12)
    assert x.grad is None and w.grad is None


def test_grad_through_functions_that_save_nothing_is_twice_differentiable(rng):
    # AddConstant, MulConstant, Neg and Sub keep no arrays; Exp keeps only its output:
    # the gradient's graph must still lead back through all of them.
    torch = pytest.importorskip("torch")
    a = rng.standard_normal(3)
    x = Variable(a)

    def f(x):
        return F.exp(-(x * 3.0 + 1.0) - x).sum()

    def tf(x):
        return torch.exp(-(x * 3.0 + 1.0) - x).sum()

    (g,) = zerograd.grad(f(x), x, create_graph=True)
    (h,) = zerograd.grad(g.sum(), x)
    tx = _torch_leaf(torch, a)
    (tg,) = torch.autograd.grad(tf(tx), tx, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), tx)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-12)


def test_grad_of_the_gradient_function_against_numerical_differences(rng):
    # zerograd.testing differentiates the first derivative numerically: this checks
    # the graph that zerograd.grad records with create_graph=True.
    from zerograd.testing import check_backward

    def first_derivative(x):
        y = (F.sin(x) * x * x + F.exp(x * 0.5)).sum()
        (g,) = zerograd.grad(y, x, create_graph=True)
        return g

    check_backward(first_derivative, rng.standard_normal((2, 3)))
    check_backward(lambda x: zerograd.grad((x**3).sum(), x, create_graph=True)[0],
                   rng.uniform(0.5, 1.5, 4))


def test_grad_unused_input_is_zeros_not_none():
    x = Variable(np.array([1.0, 2.0]))
    u = Variable(np.ones((2, 2), dtype=np.float32))
    y = (x * 2.0).sum()
    gx, gu = zerograd.grad(y, [x, u], retain_graph=True)
    np.testing.assert_array_equal(gx.data, [2.0, 2.0])
    assert gu.shape == (2, 2) and gu.dtype == np.float32 and not gu.data.any()
    # a gradient that does not depend on x differentiates to zeros too
    (g,) = zerograd.grad(y, x, create_graph=True)
    (h,) = zerograd.grad(g.sum(), x)
    np.testing.assert_array_equal(h.data, [0.0, 0.0])


def test_grad_with_respect_to_an_intermediate(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal(3)
    x = Variable(a)
    h = F.sin(x) * 2.0
    y = (h * h).sum() + h.sum()
    gh, gx = zerograd.grad(y, [h, x])
    tx = _torch_leaf(torch, a)
    th = torch.sin(tx) * 2.0
    ty = (th * th).sum() + th.sum()
    tgh, tgx = torch.autograd.grad(ty, [th, tx])
    np.testing.assert_allclose(gh.data, tgh.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx.data, tgx.numpy(), rtol=1e-12)
    assert h.grad is None and x.grad is None


def test_grad_runs_only_the_functions_between_outputs_and_inputs():
    calls = []
    x = Variable(np.array(1.5))
    w = Variable(np.array(2.0))
    a = _Recorded("behind_h", calls)(x)
    h = a * w
    y = _Recorded("after_h", calls)(h * 3.0)
    zerograd.grad(y, h, retain_graph=True)
    assert calls == ["after_h"]  # nothing behind h runs
    calls.clear()
    zerograd.grad(y, w, retain_graph=True)
    assert calls == ["after_h"]  # the branch to x is not needed for w
    calls.clear()
    zerograd.grad(y, x)
    assert calls == ["after_h", "behind_h"]


def test_grad_of_an_output_with_respect_to_itself():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 3.0
    gy, gx = zerograd.grad(y, [y, x], grad_outputs=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(gy.data, [1.0, 10.0])
    np.testing.assert_array_equal(gx.data, [3.0, 30.0])
    (gl,) = zerograd.grad(x, x)  # a leaf: the seed itself
    np.testing.assert_array_equal(gl.data, [1.0, 1.0])


def test_grad_retain_graph_false_releases_saved_arrays(no_gc):
    x = Variable(np.array([0.5, 1.0]))
    a = x * 2.0
    b = F.sin(a)  # keeps a
    y = F.exp(b)  # keeps its output
    a_ref = weakref.ref(a.data)
    del a, b
    seed = np.ones(2)
    (g1,) = zerograd.grad(y, x, seed, retain_graph=True)
    assert a_ref() is not None
    (g2,) = zerograd.grad(y, x, seed)  # retain_graph defaults to create_graph (False)
    np.testing.assert_array_equal(g1.data, g2.data)
    assert a_ref() is None  # sin's saved input went with the pass
    assert y.data is not None  # (exp's output is the result itself: it stays)
    with pytest.raises(RuntimeError, match=r"Exp\.backward.*released.*retain_graph=True"):
        zerograd.grad(y, x, seed)
    with pytest.raises(RuntimeError, match="released"):
        y.backward()


def test_grad_released_function_that_saved_nothing_still_works():
    x = Variable(np.array([1.0, 2.0]))
    y = -(x * 2.0 + 1.0)  # none of these functions saves an array
    for _ in range(2):
        (g,) = zerograd.grad(y, x)
        np.testing.assert_array_equal(g.data, [-2.0, -2.0])


class _Halves(Function):  # declares nothing: keeps its input and outputs
    def forward(self, x):
        return x[:2] * 1.0, x[2:] * 1.0

    def backward(self, g0, g1):
        return F.concat([g0, g1])


@pytest.mark.parametrize("split", [_Halves, lambda: lambda x: F.split(x, 2)])
def test_grad_released_multi_output_function_with_an_unused_output(split):
    # One output gets no gradient: the engine fills it with zeros, and must first say
    # that the function was released (it read the released state: a TypeError).
    x = Variable(np.arange(4.0))
    a, b = split()(x)
    y = a * 2.0
    del a, b
    zerograd.grad(y, x)
    if split is _Halves:
        with pytest.raises(RuntimeError, match=r"_Halves\.backward.*released"):
            y.backward()
    else:  # split saves nothing: a second pass works
        y.backward()
        np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 0.0, 0.0])


def test_grad_argument_errors():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 2.0
    with pytest.raises(TypeError, match=r"grad: inputs must be a Variable.*ndarray"):
        zerograd.grad(y, np.ones(2))
    with pytest.raises(TypeError, match="grad: outputs"):
        zerograd.grad([y, 3.0], x)
    with pytest.raises(ValueError, match=r"2 output\(s\) but 1 grad_outputs"):
        zerograd.grad([y, y], x, grad_outputs=[np.ones(2)])
    with pytest.raises(ValueError, match=r"grad_outputs\[0\] has shape \(1,\).*\(2,\)"):
        zerograd.grad(y, x, grad_outputs=np.ones(1))
    with pytest.raises(TypeError, match=r"grad_outputs\[0\] must be an array"):
        zerograd.grad(y, x, grad_outputs=1.0)
    c = Variable(np.ones(2), requires_grad=False)
    with pytest.raises(ValueError, match=r"inputs\[1\] has requires_grad=False"):
        zerograd.grad((x * c).sum(), [x, c])


def test_grad_batched_cotangents_equal_one_pass_each(rng):
    # Functions marked elementwise (tanh, matmul, sum, ...) take the whole batch; the
    # others (GetItem) one row at a time inside the same pass: the results must agree.
    x = Variable(rng.standard_normal((2, 3)))
    W = Variable(rng.standard_normal((3, 4)))
    y = F.tanh(x @ W) * 2.0 + F.sin(x[:, :1] - 1.0) + (x * x).sum(axis=1, keepdims=True)
    cts = rng.standard_normal((5, 2, 4))
    gx, gW = zerograd.grad(
        y, [x, W], grad_outputs=cts, is_grads_batched=True, retain_graph=True
    )
    assert gx.shape == (5, 2, 3) and gW.shape == (5, 3, 4)
    for k in range(5):
        ex, eW = zerograd.grad(y, [x, W], grad_outputs=cts[k], retain_graph=True)
        np.testing.assert_allclose(gx.data[k], ex.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gW.data[k], eW.data, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"\(batch,\) \+ \(2, 4\)"):
        zerograd.grad(y, x, grad_outputs=cts[0], is_grads_batched=True)


def test_grad_batched_with_create_graph(rng):
    x = Variable(rng.standard_normal(3))
    y = x * x * x + F.sin(x)
    cts = np.eye(3)
    (J,) = zerograd.grad(y, x, grad_outputs=cts, create_graph=True, is_grads_batched=True)
    np.testing.assert_allclose(J.data, np.diag(3 * x.data**2 + np.cos(x.data)), rtol=1e-12)
    (h,) = zerograd.grad(J.sum(), x)  # d/dx of the trace-like sum: 6x - sin x
    np.testing.assert_allclose(h.data, 6 * x.data - np.sin(x.data), rtol=1e-12)


# =========================================================================================
# Saved state: what a Function keeps for its backward
# =========================================================================================
def test_saves_declarations_of_the_core_and_math_functions():
    from zerograd.core import (
        Div,
        DivConstant,
        DivFromConstant,
        Neg,
        Pow,
        PowVariable,
        Sub,
        SubConstant,
    )
    from zerograd.functions.math import Cos, Log, Sin, Sqrt, Tanh

    declared = {
        Add: (), Sub: (), Neg: (), MulConstant: (), SubConstant: (), DivConstant: (),
        SubFromConstant: (), Mul: ("inputs",), Div: ("inputs",), Pow: ("inputs",),
        PowVariable: ("inputs", "outputs"), DivFromConstant: ("inputs", "outputs"),
        Square: ("inputs",), Exp: ("outputs",), Log: ("inputs",), Sin: ("inputs",),
        Cos: ("inputs",), Tanh: ("outputs",), Sqrt: ("outputs",),
    }
    for cls, saves in declared.items():
        assert tuple(cls.saves) == saves, cls.__name__
    assert Function.saves == ("inputs", "outputs")  # the book's functions keep both


def test_a_function_that_saves_nothing_does_not_keep_its_input_array(no_gc):
    x = Variable(np.ones(1000))
    a = F.sin(x)  # a's array is what we watch
    ref = weakref.ref(a.data)
    y = -(a * 2.0 + 1.0)  # MulConstant, AddConstant, Neg: none keeps an array
    del a
    assert ref() is None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, -2.0 * np.cos(1.0))


def test_saved_inputs_and_outputs_stay_alive_until_the_graph_goes(no_gc):
    x = Variable(np.ones(3))
    a = x * 2.0
    b = F.sin(a)  # keeps a
    c = F.tanh(b)  # keeps its output c, not b
    b_ref, a_ref, c_ref = weakref.ref(b.data), weakref.ref(a.data), weakref.ref(c.data)
    d = -c  # Neg keeps nothing, but holds c: its creator saved c's array anyway
    del a, b, c
    assert a_ref() is not None and c_ref() is not None and b_ref() is None
    d.sum().backward()
    np.testing.assert_allclose(x.grad.data, -(1 - np.tanh(np.sin(2.0)) ** 2) * np.cos(2.0) * 2)
    del d
    assert a_ref() is None and c_ref() is None


def test_a_book_style_function_declaring_nothing_keeps_its_inputs_and_outputs(no_gc):
    class BookExp(Function):  # the book's step 9 style: backward reads both
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            x = self.inputs[0].data
            y = self.outputs[0]()
            assert y is not None and np.array_equal(y.data, np.exp(x))
            return gy * y

    x = Variable(np.array([0.5, 1.0]))
    y = BookExp()(x * 1.0)
    z = -y  # Neg saves nothing
    del y
    z.sum().backward(create_graph=True)
    np.testing.assert_allclose(x.grad.data, -np.exp(x.data))
    gx = x.grad
    x.cleargrad()
    gx.sum().backward()  # double backprop through the book-style function
    np.testing.assert_allclose(x.grad.data, -np.exp(x.data))


def test_double_backprop_through_outputs_kept_as_arrays():
    # Tanh keeps its output; its user (Neg) does not save it. With create_graph the
    # gradient's graph must reach x through tanh's output.
    torch = pytest.importorskip("torch")
    a = np.array([-0.3, 0.8])
    x = Variable(a)
    y = -F.tanh(x * 1.5)
    y.sum().backward(create_graph=True)
    g = x.grad
    x.cleargrad()
    g.sum().backward()
    t = _torch_leaf(torch, a)
    (tg,) = torch.autograd.grad((-torch.tanh(t * 1.5)).sum(), t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, th.numpy(), rtol=1e-12)


def test_inputs_of_a_function_that_saves_nothing_are_stand_ins():
    x = Variable(np.ones(3), name="x")
    a = F.sin(x)
    f = (a * 2.0).creator
    assert f.inputs[0] is a  # still alive: the Variable itself
    del a
    (standin,) = f.inputs
    assert standin.data is None  # its array is gone: only enough to walk the graph
    assert type(standin.creator).__name__ == "Sin" and standin.creator.inputs[0] is x
    assert standin.generation == 1 and f.inputs[0] is standin  # the same one again


def test_names_of_gone_intermediates_are_remembered_for_drawings():
    from zerograd.core import graph_functions

    x = Variable(np.ones(3), name="x")
    a = F.sin(x)
    a.name = "a"
    y = a * 2.0
    del a
    (a_again,) = y.creator.inputs
    assert a_again.name == "a"
    assert [type(f).__name__ for f in graph_functions(y)] == ["MulConstant", "Sin"]


def test_saves_declaration_errors():
    with pytest.raises(TypeError, match=r"Bad\.saves must be a tuple of names"):

        class Bad(Function):
            saves = 3

    with pytest.raises(ValueError, match=r"Odd\.saves: 'in puts'"):

        class Odd(Function):
            saves = ("in puts",)

    with pytest.raises(ValueError, match=r"Typo\.saves: 'input' looks like a typo of 'inputs'"):

        class Typo(Function):
            saves = ("input",)

    class One(Function):
        saves = "inputs"  # a single name is accepted

    assert One._keep == 1


def test_named_saved_arrays_are_reported_and_released(rng):
    from zerograd.core import saved_arrays

    class Masked(Function):
        saves = ("mask",)

        def forward(self, x):
            self.mask = x > 0
            return x * self.mask

        def backward(self, gy):
            return gy * self.mask

    x = Variable(rng.standard_normal(5))
    y = Masked()(x * 1.0)
    assert [what for what, _ in saved_arrays(y.creator)] == ["mask"]
    (g,) = zerograd.grad(y.sum(), x)
    np.testing.assert_array_equal(g.data, (x.data > 0).astype(float))
    with pytest.raises(RuntimeError, match=r"Masked\.backward.*released"):
        zerograd.grad(y.sum(), x)


def test_graph_of_10k_small_ops_keeps_only_what_backward_needs():
    # The memory benchmark's graph: of mul, add, sin, tanh, neg, only sin's input and
    # tanh's output are saved: 2 arrays per 5 functions (the book's engine kept 5).
    from zerograd.debug import saved_memory

    x = Variable(np.full(1024, 0.5, dtype=np.float32))
    y = x
    for _ in range(200):
        y = -F.tanh(F.sin(y * 0.9 + 0.1))
    report = saved_memory(y)
    assert report.n_functions == 1000
    assert report.nbytes == 400 * 1024 * 4


# =========================================================================================
# Root gradient, integer operators, in-place edits (hostile-input regressions)
# =========================================================================================
def test_root_gradient_of_a_broadcasting_shape_is_refused():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 2.0
    y.grad = np.ones((3, 2))  # broadcasts against (2,): must not be summed silently
    with pytest.raises(ValueError, match=r"backward:.*shape \(3, 2\).*shape \(2,\)"):
        y.backward()
    assert x.grad is None


def test_root_gradient_of_a_wrong_shape_names_backward_not_an_op():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 2.0
    y.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"^backward: .*\(3,\).*\(2,\)") as info:
        y.backward()
    assert "MulConstant" not in str(info.value)
    y.grad = 1.0
    with pytest.raises(TypeError, match=r"backward: .*float"):
        y.backward()
    y.grad = Variable(np.full(2, 3.0))  # the right shape, as a Variable: honoured
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])


def test_uint8_minus_one_is_numpy_s_result():
    a = np.array([5], np.uint8)
    y = Variable(a) - 1
    assert y.dtype == np.uint8 and y.data.tolist() == [4]
    np.testing.assert_array_equal(y.data, a - 1)


_INT_DTYPES = [np.uint8, np.int8, np.uint32, np.int32, np.int64, np.bool_]
_OPERATORS = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("truediv", lambda a, b: a / b), ("pow", lambda a, b: a**b),
]
_CONSTANTS = [1, -1, 2, 300, 2.5, np.uint8(1), np.int64(-1), np.float64(0.5)]


@pytest.mark.parametrize("dtype", _INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name, op", _OPERATORS, ids=[n for n, _ in _OPERATORS])
@pytest.mark.parametrize("side", ["x op c", "c op x"])
def test_integer_operators_with_numbers_behave_as_numpy(dtype, name, op, side):
    a = np.array([5, 3], dtype=dtype)
    for c in _CONSTANTS:
        if side == "x op c":
            f = lambda u, c=c: op(u, c)  # noqa: E731
        else:
            f = lambda u, c=c: op(c, u)  # noqa: E731
        with np.errstate(all="ignore"):
            try:
                expected, error = f(a), None
            except Exception as e:  # whatever NumPy raises, we must raise too
                expected, error = None, type(e)
            if error is not None:
                with pytest.raises(error):
                    f(Variable(a))
                continue
            got = f(Variable(a))
        expected = np.asarray(expected)
        assert got.dtype == expected.dtype, (c, got.dtype, expected.dtype)
        np.testing.assert_array_equal(got.data, expected, err_msg=f"constant {c!r}")


def test_as_dtype_is_the_one_cast_of_core_and_functions():
    import zerograd.functions._arrays as arrays
    import zerograd.functions.activation as activation
    import zerograd.functions.loss as loss
    import zerograd.functions.math as math_
    from zerograd.core import as_dtype

    x32 = np.ones(2, np.float32)
    assert as_dtype(x32.astype(np.float64), x32.dtype).dtype == np.float32
    assert as_dtype(x32, x32.dtype) is x32
    s = as_dtype(np.float64(0.5), np.dtype(np.float32))  # a NumPy scalar: an array
    assert type(s) is np.ndarray and s.dtype == np.float32 and s.shape == ()
    u8 = np.ones(2, np.uint8)
    assert as_dtype(u8 / 2, u8.dtype).dtype == np.float64  # integers keep NumPy's result
    assert type(as_dtype(np.uint8(3), u8.dtype)) is np.ndarray
    assert not hasattr(zerograd.core, "keep_dtype")
    assert activation.as_dtype is loss.as_dtype is math_.as_dtype is arrays.as_dtype is as_dtype


# =========================================================================================
# retain_grad, accumulation and cutting, on the new engine
# =========================================================================================
def test_retain_grad_twice_accumulates_without_counting_stale_gradients_again():
    x = Variable(np.array(2.0))
    a = square(x)
    y = a * 3.0
    y.backward(retain_grad=True)
    y.backward(retain_grad=True)  # y.grad is ones from the first call: the same seed
    assert float(x.grad.data) == 2 * 12.0  # each pass adds 12, stale a.grad is not re-sent
    assert float(a.grad.data) == 2 * 3.0
    assert float(y.grad.data) == 1.0


def test_unchain_backward_stops_other_graphs_through_the_cut():
    x = Variable(np.array(2.0))
    a = square(x)
    h = a * 2.0
    z = a * 5.0  # another user of a, recorded before the cut
    h.unchain_backward()
    assert a.creator is None
    z.backward()
    assert x.grad is None  # nothing flows past the cut
    assert float(a.grad.data) == 5.0  # a is a leaf for z too, as in DeZero


def test_backward_reading_an_unused_dropped_output_still_gets_it(no_gc):
    class SinCos(Function):  # declares nothing: keeps inputs and outputs
        def forward(self, x):
            return np.sin(x), np.cos(x)

        def backward(self, gs, gc_):
            s, c = self.outputs[0](), self.outputs[1]()
            return gs * c - gc_ * s  # d/dx (sin, cos) = (cos, -sin)

    x = Variable(np.array([0.3, 1.2]))
    s, c = SinCos()(x)
    del c  # unused and gone: its gradient is zeros, but backward reads its value
    (s * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * np.cos(x.data))


def test_graph_walkers_see_shapes_constants_and_the_same_stand_ins():
    from zerograd.core import output_meta

    x = Variable(np.ones((2, 3), dtype=np.float32))
    c = np.full(3, 2.0, dtype=np.float32)
    h = F.sin(x) * 2.0
    y = h + c  # Add keeps nothing for backward; h is gone after this
    del h
    add = y.creator
    a, const = add.inputs
    assert a.data is None and a.shape == (2, 3) and a.dtype == np.float32 and a.ndim == 2
    assert a.size == 6 and len(a) == 2 and "not kept" in repr(a)
    assert add.inputs[0] is a  # the same stand-in each time, while add lives
    mul = a.creator
    assert type(mul).__name__ == "MulConstant" and mul.outputs[0]() is a
    np.testing.assert_array_equal(const.data, c)  # a constant stays: exporters need it
    assert output_meta(mul) == [((2, 3), np.dtype(np.float32))]
    assert not hasattr(mul, "_output_meta")  # (a shim of the earlier engine: gone)
    s, _ = _TwoOutputs()(x * 1.0)  # the second output is gone
    assert output_meta(s.creator) == [((2, 3), np.dtype(np.float32))] * 2


# =========================================================================================
# NumPy's errors from a forward, named (the function, its inputs' shapes and dtypes)
# =========================================================================================
def test_a_forward_error_names_the_function_and_its_inputs():
    x = Variable(np.zeros(2))
    y = Variable(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError) as info:
        x + y  # the operator goes straight to Add
    message = str(info.value)
    assert message.startswith("Add: operands could not be broadcast")
    assert "(inputs: float64 (2,), float32 (3,))" in message
    assert isinstance(info.value.__cause__, ValueError)  # NumPy's own error, kept


def test_a_public_function_names_itself_before_the_function():
    with pytest.raises(ValueError, match=r"^rsub: Sub: operands could not be broadcast"):
        F.rsub(np.zeros(2), np.zeros(3))
    with pytest.raises(TypeError, match=r"^neg: Neg: .*\(inputs: bool \(1,\)\)"):
        F.neg(np.array([True]))
    with pytest.raises(ValueError, match=r"^mean_squared_error_simple: Sub: operands"):
        F.mean_squared_error_simple(np.zeros(2), np.zeros(3))  # the book's composition


def test_errors_of_user_functions_are_named_too():
    class Reject(Function):
        saves = ()

        def forward(self, x):
            raise ValueError("no negative numbers")

    with pytest.raises(ValueError, match=r"^Reject: no negative numbers \(inputs: int64 \(\)\)"):
        Reject()(np.array(-1))

    class Broken(Function):  # other kinds of errors pass through unchanged
        saves = ()

        def forward(self, x):
            raise KeyError("k")

    with pytest.raises(KeyError):
        Broken()(np.array(1.0))


def test_a_pass_that_releases_a_function_still_gives_its_creator_the_saved_output():
    # With retain_graph=False each function drops what it saved once its backward ran; a
    # Variable kept only by such a function (the output of x ** y, which its own
    # backward reads) is made again from the array its creator saved.
    x = Variable(np.array([1.5, 2.0]))
    c = Variable(np.array([0.3, -1.0]))
    gx, gc = zerograd.grad(((x ** c) ** 2).sum(), [x, c], create_graph=True)
    (h_kept,) = zerograd.grad((gx * gx).sum(), [x], retain_graph=True)
    (h,) = zerograd.grad((gx * gx).sum(), [x])  # walks x ** (c - 1) recorded by backward
    np.testing.assert_allclose(h.data, h_kept.data, rtol=1e-14)
