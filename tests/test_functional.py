"""Functional transforms against torch.func / torch.autograd.functional and closed forms."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Parameter, Variable, no_grad
from zerograd import functional as FT
from zerograd.cuda import as_numpy

SHAPES = [(), (3,), (2, 3)]

# torch.func itself warns about torch.jit.script on this torch version
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torch")


def _f(x):
    return (F.sin(x) * x**2).sum()


def _tf(x):
    return (x.sin() * x**2).sum()


def _tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _close(got, expected, dtype=np.float64):
    assert isinstance(got, Variable)
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    assert got.dtype == dtype
    np.testing.assert_allclose(as_numpy(got.data), expected, **_tol(dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_grad_matches_torch(shape, xp, dtype, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    g = FT.grad(_f)(xp.asarray(x, dtype=dtype))
    _close(g, torch.func.grad(_tf)(torch.tensor(x)), dtype)


def test_grad_argnums_and_value_and_grad(rng):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal(3), rng.standard_normal((2, 3))  # y broadcasts against x

    def f(x, y):
        return (F.exp(x) * y).sum() + (x * x).sum()

    def tf(x, y):
        return (x.exp() * y).sum() + (x * x).sum()

    value, (gx, gy) = FT.value_and_grad(f, argnums=(0, 1))(x, y)
    tx, ty = torch.tensor(x), torch.tensor(y)
    tgx, tgy = torch.func.grad(tf, argnums=(0, 1))(tx, ty)
    _close(value, tf(tx, ty))
    _close(gx, tgx)
    _close(gy, tgy)
    _close(FT.grad(f, argnums=-1)(x, y), tgy)


def test_grad_has_aux():
    (g, aux) = FT.grad(lambda x: ((x * x).sum(), "aux"), has_aux=True)(np.array([1.0, 2.0]))
    assert aux == "aux"
    _close(g, [2.0, 4.0])
    (value, aux), g = FT.value_and_grad(lambda x: ((x * x).sum(), 7), has_aux=True)(
        np.array(3.0)
    )
    assert aux == 7
    _close(value, 9.0)
    _close(g, 6.0)


def test_higher_order_grads_closed_form(dtype):
    x = np.array([0.3, -1.2], dtype=dtype)

    def f(x):
        return F.exp(F.sin(x)).sum()

    d1 = FT.grad(f)
    d2 = FT.grad(lambda x: d1(x).sum())
    d3 = FT.grad(lambda x: d2(x).sum())
    x64 = x.astype(np.float64)
    s, c = np.sin(x64), np.cos(x64)
    _close(d1(x), c * np.exp(s), dtype)
    _close(d2(x), (c * c - s) * np.exp(s), dtype)
    _close(d3(x), (c**3 - 3 * s * c - c) * np.exp(s), dtype)


def test_zeros_where_no_dependence():
    x = np.array([1.0, 2.0])
    g = FT.grad(lambda x, y: (x * 2.0).sum(), argnums=1)(x, np.ones((2, 2)))
    _close(g, np.zeros((2, 2)))
    # the derivative of a linear function's gradient
    _close(FT.grad(lambda x: FT.grad(lambda x: (3.0 * x).sum())(x).sum())(x), np.zeros(2))
    _close(FT.grad(lambda x: 5.0)(x), np.zeros(2))
    _close(FT.hessian(lambda x: (3.0 * x).sum())(x), np.zeros((2, 2)))
    _, t = FT.jvp(lambda x, y: x * 2.0, (x, x), (x, x))
    _close(t, 2 * x)


def test_grads_of_caller_variables_untouched():
    W = Parameter(np.array([[1.0, 2.0], [3.0, 4.0]]))
    W.grad = Variable(np.full((2, 2), 7.0))
    x = Variable(np.array([1.0, -1.0]))
    y = F.matmul(W, F.reshape(x, (2, 1)))  # a graph already hanging off x
    y.grad = Variable(np.ones((2, 1)))
    g = FT.grad(lambda x: F.matmul(W, F.reshape(x, (2, 1))).sum())(x)
    _close(g, [4.0, 6.0])
    np.testing.assert_array_equal(W.grad.data, np.full((2, 2), 7.0))
    assert x.grad is None
    np.testing.assert_array_equal(y.grad.data, np.ones((2, 1)))


def test_result_is_differentiable_wrt_caller_variable():
    x = Variable(np.array([0.5, 2.0]))
    g = FT.grad(lambda x: (x**3).sum())(x)  # 3 x^2
    (g * g).sum().backward()  # d/dx sum(9 x^4) = 36 x^3
    np.testing.assert_allclose(x.grad.data, 36 * x.data**3)
    # closures over an outer variable: d/dx of grad_y sum(x y^2) = 2 y
    y0 = np.array([1.0, -3.0])
    outer = FT.grad(lambda x: FT.grad(lambda y: (x * y**2).sum())(y0).sum())
    _close(outer(np.array([2.0, 5.0])), 2 * y0)


def test_no_grad_still_differentiates_but_records_nothing():
    with no_grad():
        value, g = FT.value_and_grad(_f)(np.array([0.5, 1.0]))
        H = FT.hessian(_f)(np.array([0.5, 1.0]))
    assert g.creator is None and value.creator is None and H.creator is None
    x = np.array([0.5, 1.0])
    _close(g, np.cos(x) * x**2 + 2 * x * np.sin(x))


@pytest.mark.parametrize("shape", [(), (3,)])
def test_jacobian_matches_torch(shape, dtype, rng, xp):
    torch = pytest.importorskip("torch")
    W = rng.standard_normal((4, 3))
    x = rng.standard_normal(shape)

    def f(x):
        Wd = xp.asarray(W, dtype=x.dtype)
        Wx = F.matmul(Wd, F.reshape(x, (-1, 1))) if x.ndim else Wd[:, 0] * x
        return F.tanh(Wx)

    def tf(x):
        Wx = torch.tensor(W) @ x.reshape(-1, 1) if x.ndim else torch.tensor(W[:, 0]) * x
        return Wx.tanh()

    J = FT.jacobian(f)(xp.asarray(x, dtype=dtype))
    expected = torch.func.jacrev(tf)(torch.tensor(x))
    assert J.shape == tuple(expected.shape)
    _close(J, expected, dtype)


def test_jacobian_tuple_argnums_and_outputs(rng):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal(2), rng.standard_normal(3)

    def f(x, y):
        return F.reshape(x, (2, 1)) * y, F.exp(x).sum()

    def tf(x, y):
        return x.reshape(2, 1) * y, x.exp().sum()

    (J00, J01), (J10, J11) = FT.jacobian(f, argnums=(0, 1))(x, y)
    (T00, T01), (T10, T11) = torch.func.jacrev(tf, argnums=(0, 1))(
        torch.tensor(x), torch.tensor(y)
    )
    for got, expected in [(J00, T00), (J01, T01), (J10, T10), (J11, T11)]:
        _close(got, expected)


def test_hessian_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(3)

    def f(x):
        return (F.exp(x) * F.sin(x)).sum() + x[0] * x[1] * x[2]

    def tf(x):
        return (x.exp() * x.sin()).sum() + x[0] * x[1] * x[2]

    H = FT.hessian(f)(x.astype(dtype))
    _close(H, torch.func.hessian(tf)(torch.tensor(x)), dtype)
    # tuple argnums: a tuple of tuples
    a, b = rng.standard_normal(2), rng.standard_normal(())

    def g(a, b):
        return (a**2 * b).sum() + F.sin(b) * a[0]

    def tg(a, b):
        return (a**2 * b).sum() + b.sin() * a[0]

    Hs = FT.hessian(g, argnums=(0, 1))(a, b)
    Ts = torch.autograd.functional.hessian(tg, (torch.tensor(a), torch.tensor(b)))
    for i in range(2):
        for j in range(2):
            _close(Hs[i][j], Ts[i][j])


def test_hvp_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    x, v = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    value, hv = FT.hvp(_f, x.astype(dtype), v.astype(dtype))
    tvalue, thv = torch.autograd.functional.hvp(_tf, torch.tensor(x), torch.tensor(v))
    _close(value, tvalue, dtype)
    _close(hv, thv, dtype)
    # tuple primals give a tuple
    value, hvs = FT.hvp(lambda a, b: (a * a * b).sum(), (x, v), (v, x))
    assert isinstance(hvs, tuple) and len(hvs) == 2
    _close(hvs[0], 2 * v * v + 2 * x * x)  # d/da: 2ab; H = [[2b, 2a], [2a, 0]]
    _close(hvs[1], 2 * x * v)


def test_jvp_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal(3), rng.standard_normal((2, 3))
    vx, vy = rng.standard_normal(3), rng.standard_normal((2, 3))

    def f(x, y):
        return F.tanh(x * y), F.exp(x).sum()

    def tf(x, y):
        return (x * y).tanh(), x.exp().sum()

    (out0, out1), (t0, t1) = FT.jvp(
        f, (x.astype(dtype), y.astype(dtype)), (vx.astype(dtype), vy.astype(dtype))
    )
    T = [torch.tensor(a) for a in (x, y, vx, vy)]
    (e0, e1), (te0, te1) = torch.func.jvp(tf, (T[0], T[1]), (T[2], T[3]))
    for got, expected in [(out0, e0), (out1, e1), (t0, te0), (t1, te1)]:
        _close(got, expected, dtype)


def test_vjp_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal(3), rng.standard_normal((2, 3))
    out, vjp_fn = FT.vjp(lambda x, y: F.sin(x) * y, x, y)
    tout, tvjp_fn = torch.func.vjp(lambda x, y: x.sin() * y, torch.tensor(x), torch.tensor(y))
    _close(out, tout)
    for _ in range(2):  # it can be called again
        ct = rng.standard_normal((2, 3))
        gx, gy = vjp_fn(ct)
        tgx, tgy = tvjp_fn(torch.tensor(ct))
        _close(gx, tgx)
        _close(gy, tgy)
    # a tuple output takes a tuple of cotangents
    (a, b), vjp_fn = FT.vjp(lambda x: (x * 2.0, (x * x).sum()), x)
    (g,) = vjp_fn((np.ones(3), np.array(10.0)))
    _close(g, 2.0 + 20.0 * x)


def test_float32_stays_float32_everywhere(xp):
    x = xp.asarray([0.5, 1.5], dtype=np.float32)
    v = xp.asarray([1.0, -1.0], dtype=np.float32)
    results = [
        FT.grad(_f)(x),
        FT.jacobian(F.sin)(x),
        FT.hessian(_f)(x),
        FT.hvp(_f, x, v)[1],
        FT.jvp(F.sin, (x,), (v,))[1],
        FT.vjp(F.sin, x)[1](v)[0],
    ]
    for r in results:
        assert r.dtype == np.float32


def test_errors():
    with pytest.raises(ValueError, match="scalar"):
        FT.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        FT.grad(lambda x: x.sum())(np.arange(3))
    with pytest.raises(ValueError, match="argnums"):
        FT.grad(_f, argnums=2)(np.ones(3))
    with pytest.raises(TypeError, match="argnums"):
        FT.grad(_f, argnums="x")(np.ones(3))
    _, vjp_fn = FT.vjp(F.sin, np.ones(3))
    with pytest.raises(ValueError, match="cotangent 0 has shape"):
        vjp_fn(np.ones(2))
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        FT.jvp(F.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(ValueError, match="1 primals but 2 tangents"):
        FT.hvp(_f, (np.ones(3),), (np.ones(3), np.ones(3)))


# ---- built on zerograd.grad: no .grad juggling, no cut creators, batched Jacobians -------
def _spy(log):
    from zerograd import Function

    class Spy(Function):
        saves = ()

        def forward(self, x):
            return x.copy()

        def backward(self, gy):
            log.append("spy")
            return gy

    return Spy()


def test_transforms_do_not_run_the_graph_behind_closed_over_variables():
    log = []
    W = Parameter(np.array([1.0, 2.0]))
    h = _spy(log)(W) * 3.0  # a graph the transform must not walk
    g = FT.grad(lambda x: (x * h).sum())(np.array([1.0, 1.0]))
    _close(g, [3.0, 6.0])
    assert log == [] and W.grad is None and h.grad is None
    assert type(h.creator).__name__ == "MulConstant"


def test_the_caller_variable_keeps_its_creator_during_the_transform():
    x = Variable(np.array([0.5, 1.0]))
    h = F.sin(x)
    creator = h.creator
    seen = []

    def f(v):
        seen.append(h.creator is creator)  # nothing is cut while the transform runs
        return (v * v).sum()

    g = FT.grad(f)(h)
    assert seen == [True] and h.creator is creator
    _close(g, 2 * np.sin(x.data))
    g.sum().backward()  # and the result leads back to x through h's creator
    np.testing.assert_allclose(x.grad.data, 2 * np.cos(x.data))


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 5, 100])
def test_jacobian_chunks_agree_with_torch(chunk_size, rng):
    torch = pytest.importorskip("torch")
    W = rng.standard_normal((5, 3))
    x = rng.standard_normal(3)

    def f(x):
        return F.tanh(F.matmul(W, F.reshape(x, (3, 1)))) * x.sum() + 1.0

    def tf(x):
        return torch.tanh(torch.tensor(W) @ x.reshape(3, 1)) * x.sum() + 1.0

    J = FT.jacobian(f, chunk_size=chunk_size)(x)
    _close(J, torch.func.jacrev(tf)(torch.tensor(x)))


@pytest.mark.parametrize("chunk_size, passes", [(None, 1), (4, 3), (1, 12)])
def test_jacobian_walks_the_graph_once_per_chunk(chunk_size, passes, monkeypatch, rng):
    from zerograd import core

    calls = []
    real = core.grad

    def counting(*args, **kwargs):
        calls.append(kwargs.get("is_grads_batched"))
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "grad", counting)
    x = rng.standard_normal((3, 4))
    J = FT.jacobian(lambda x: F.exp(x) * 2.0 - x, chunk_size=chunk_size)(x)
    assert calls == [True] * passes  # not one pass per output element (12)
    expected = np.diag((2 * np.exp(x) - 1).ravel()).reshape(3, 4, 3, 4)
    _close(J, expected)


# function, the class whose backward is watched, and where its gradient stack comes from
STACKED = {
    "reshape": (lambda x: F.reshape(x, (3, 4)) * 2.0, "array.Reshape"),
    "transpose": (lambda x: F.transpose(x.reshape(3, 4)) * 2.0, "array.Transpose"),
    "sum": (lambda x: F.sum(F.reshape(x, (3, 4)) ** 2, axis=0), "array.Sum"),
    "broadcast_to": (lambda x: F.broadcast_to(x, (2, 12)) * 2.0, "array.BroadcastTo"),
    "sum_to": (lambda x: F.sum_to(F.reshape(x, (3, 4)) ** 2, (1, 4)), "array.SumTo"),
    "softmax": (lambda x: F.softmax(F.reshape(x, (3, 4)), axis=1), "activation.Softmax"),
    "log_softmax": (lambda x: F.log_softmax(F.reshape(x, (3, 4)), axis=0),
                    "activation.LogSoftmax"),
}


@pytest.mark.parametrize("name", sorted(STACKED))
def test_jacobian_sends_the_stack_through_shape_functions_at_once(name, monkeypatch, rng):
    # Reshapes, reductions and the softmax family are marked `elementwise`: their
    # backward takes all the rows of a Jacobian in one call, not one call per row.
    import importlib

    f, where = STACKED[name]
    module, cls = where.split(".")
    cls = getattr(importlib.import_module(f"zerograd.functions.{module}"), cls)
    calls = []
    real = cls.backward

    def counting(self, gy):
        calls.append(gy.shape)
        return real(self, gy)

    x = rng.standard_normal(12)
    expected = FT.jacobian(f, chunk_size=1)(x)  # (one row at a time: the oracle)
    monkeypatch.setattr(cls, "backward", counting)
    J = FT.jacobian(f)(x)
    rows = int(np.prod(J.shape[:-1]))
    assert len(calls) == 1 and calls[0][0] == rows
    np.testing.assert_allclose(J.data, expected.data, rtol=1e-13, atol=1e-14)


def test_jacobian_of_a_jacobian_is_differentiable(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(3)
    H = FT.jacobian(FT.jacobian(lambda x: F.sin(x) * x.sum()), chunk_size=2)(x)
    T = torch.func.jacrev(torch.func.jacrev(lambda x: x.sin() * x.sum()))(torch.tensor(x))
    _close(H, T)


def test_jacobian_chunk_size_is_checked():
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        FT.jacobian(F.sin, chunk_size=0)
