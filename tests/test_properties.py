"""Property-based tests (Hypothesis) over every public function of zerograd.functions.

Each property draws shapes (0-sized and broadcasting ones included), dtypes (float16,
float32, float64, signed and unsigned integers, bool) and values (NaN, infinities, huge,
tiny and subnormal numbers), and checks that a call either

- returns what NumPy returns (the values, NaN where NumPy gives NaN, and the dtype) and,
  where PyTorch is installed, what PyTorch returns, with the gradient against PyTorch's
  autograd for float32 and float64 inputs; or
- raises a TypeError or ValueError (IndexError for indexing) whose message names the
  function.

No other exception type, and no silent wrong result. Hypothesis runs derandomized with a
bounded number of examples (the ``PROFILE`` below), so the suite is deterministic and
takes well under a minute.

Where a property cannot hold yet because the fix belongs to code this suite does not
cover (the arithmetic operators live in ``core.py``), the test is marked ``xfail`` with
the reason, strictly: it starts failing, as a reminder, once the fix lands.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None

PROFILE = settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no "explain"
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)

FLOATS = [np.float16, np.float32, np.float64]
INTS = [np.int8, np.int32, np.int64, np.uint8]
DTYPES = FLOATS + INTS + [np.bool_]
NAMED_ERRORS = (TypeError, ValueError)


# ---- strategies ---------------------------------------------------------------------------
def shapes(min_dims=0, max_dims=3, min_side=0, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def elements(dtype, finite=False):
    """Every value of the dtype: NaN, infinities, the extremes, subnormals (floats)."""
    if np.dtype(dtype).kind == "f":
        return hnp.from_dtype(np.dtype(dtype), allow_nan=not finite,
                              allow_infinity=not finite, allow_subnormal=True)
    return hnp.from_dtype(np.dtype(dtype))


def arrays(dtype, shape, finite=False):
    return hnp.arrays(dtype, shape, elements=elements(dtype, finite))


# ---- checking one call --------------------------------------------------------------------
def call(f, *args, **kwargs):
    """("ok", result) or ("error", exception), with NumPy's warnings silenced (NumPy's
    own functions warn alike; the properties are about values and errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                return "ok", f(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the property inspects any exception
                return "error", e


# Errors that cannot name the function yet because they come from core.py's arithmetic
# (NumPy's own TypeError or ValueError, passed through Function.__call__): naming them
# there, once for every op, is the engine's part of issue 13. Keyed by function name.
KNOWN_UNNAMED_IN_CORE = {
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow",
    # the book's compositions reach core's operators first
    "sigmoid_simple", "softmax_simple", "mean_squared_error_simple", "linear_simple",
}


def assert_named(error: Exception, name: str, allowed=NAMED_ERRORS) -> None:
    assert isinstance(error, allowed), (
        f"{name}: raised {type(error).__name__} ({error}); expected one of "
        f"{[e.__name__ for e in allowed]}"
    )
    if name in str(error):
        return
    if name in KNOWN_UNNAMED_IN_CORE and _raised_in_core(error):
        return
    raise AssertionError(f"{name}: the error does not name the function: {error}")


def _raised_in_core(error: Exception) -> bool:
    """Whether the error passed through zerograd/core.py's Function.__call__ (a forward of
    core's arithmetic) and was raised by NumPy, not by zerograd's own checks."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename.replace("\\", "/"))
        tb = tb.tb_next
    last = frames[-1]
    in_core = any(f.endswith("zerograd/core.py") for f in frames)
    return in_core and (last.endswith("zerograd/core.py") or "numpy" in last)


def tolerance(dtype, ulps=4):
    """rtol of a few roundings in ``dtype`` (results computed in another precision)."""
    return ulps * float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0


def assert_values(name, got, expected, rtol=0.0, atol=0.0):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, NumPy {expected.shape}"
    assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype}, NumPy {expected.dtype}"
    if got.dtype.kind in "fc":
        g64, e64 = got.astype(np.float64), expected.astype(np.float64)
        same_nan = np.isnan(g64) == np.isnan(e64)
        assert same_nan.all(), f"{name}: NaN at other places: got {got}, expected {expected}"
        finite = np.isfinite(e64)
        assert (g64[~finite & ~np.isnan(e64)] == e64[~finite & ~np.isnan(e64)]).all(), (
            f"{name}: infinities differ: got {got}, expected {expected}"
        )
        np.testing.assert_allclose(g64[finite], e64[finite], rtol=rtol, atol=atol,
                                   err_msg=name)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)


def quiet(f):
    """f with NumPy's warnings silenced (they are not what the properties check)."""

    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return f(*args, **kwargs)

    return run


@quiet
def torch_grad(torch_f, *arrays_, **kwargs):
    """PyTorch's value and gradients of sum(torch_f(...)) at float arrays."""
    ts = [torch.from_numpy(np.array(a)).requires_grad_() for a in arrays_]
    y = torch_f(*ts, **kwargs)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), [t.grad.numpy() if t.grad is not None else None for t in ts]


@quiet
def zerograd_grad(f, *arrays_, **kwargs):
    vs = [Variable(np.array(a)) for a in arrays_]
    y = f(*vs, **kwargs)
    y.backward()
    return y.data, [v.grad.data if v.grad is not None else np.zeros_like(v.data) for v in vs]


def assert_close_to_torch(name, got, expected, dtype, rtol=None):
    rtol = rtol if rtol is not None else (1e-4 if dtype == np.float32 else 1e-10)
    atol = 1e-30 if dtype == np.float64 else 1e-6 * rtol
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, torch {expected.shape}"
    both_nan = np.isnan(got) & np.isnan(expected)
    same_inf = np.isinf(got) & (got == expected)
    close = np.isclose(got, expected, rtol=rtol, atol=atol)
    bad = ~(both_nan | same_inf | close)
    assert not bad.any(), (
        f"{name}: differs from PyTorch at {np.argwhere(bad)[:3].tolist()}: got "
        f"{got[bad][:3]}, torch {expected[bad][:3]}"
    )


# ---- references for the functions NumPy does not have -----------------------------------
def _real_dtype(x):
    """The dtype of a real-valued function of x: x's float dtype, else float64."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def _per_element(fn):
    """A reference computed element by element in Python floats (float64), then rounded
    once to the result dtype."""

    def ref(x, **kwargs):
        flat = [fn(float(v), **kwargs) for v in np.asarray(x).ravel()]
        return np.array(flat, dtype=np.float64).reshape(np.shape(x)).astype(_real_dtype(x))

    return ref


def _exp(v):
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def _sigmoid(v):
    if math.isnan(v):
        return math.nan
    if v >= 0:
        return 1 / (1 + _exp(-v))
    e = _exp(v)
    return e / (1 + e)


def _softplus(v):
    if math.isnan(v):
        return math.nan
    return max(v, 0.0) + math.log1p(_exp(-abs(v)))


def _gelu(v, approximate="none"):
    if math.isnan(v):
        return math.nan
    if approximate == "tanh":
        c, a = math.sqrt(2 / math.pi), 0.044715
        return 0.5 * v * (1 + math.tanh(c * (v + a * v**3))) if abs(v) < 1e100 else (
            v if v > 0 else -0.0)
    return v * 0.5 * math.erfc(-v / math.sqrt(2)) if not math.isinf(v) else (
        v if v > 0 else math.nan)


def _erf(v):
    return math.nan if math.isnan(v) else math.erf(v)


def _leaky_relu(x, slope=0.2):
    xf = x.astype(_real_dtype(x))
    return np.where(xf > 0, xf, xf * xf.dtype.type(slope))


def _relu(x):
    return np.maximum(x, 0).astype(x.dtype)


# name: (zerograd call, reference, torch call or None, rtol in roundings or None: exact)
UNARY = {
    "neg": (F.neg, np.negative, lambda t: -t, None),
    "exp": (F.exp, np.exp, torch and torch.exp, None),
    "log": (F.log, np.log, torch and torch.log, None),
    "sin": (F.sin, np.sin, torch and torch.sin, None),
    "cos": (F.cos, np.cos, torch and torch.cos, None),
    "tanh": (F.tanh, np.tanh, torch and torch.tanh, None),
    "sqrt": (F.sqrt, np.sqrt, torch and torch.sqrt, None),
    "square": (F.square, lambda x: x * x, torch and torch.square, None),
    "erf": (F.erf, _per_element(_erf), torch and torch.erf, 8),
    "sigmoid": (F.sigmoid, _per_element(_sigmoid), torch and torch.sigmoid, 4),
    # the book's composition: NumPy's dtypes for 1 / (1 + exp(-x)) (float16 for int8)
    "sigmoid_simple": (F.sigmoid_simple, lambda x: 1 / (1 + np.exp(-x)),
                       torch and (lambda t: 1 / (1 + torch.exp(-t))), 8),
    "relu": (F.relu, _relu, torch and torch.relu, None),
    "leaky_relu": (F.leaky_relu, _leaky_relu, TF and (lambda t: TF.leaky_relu(t, 0.2)), None),
    "softplus": (F.softplus, _per_element(_softplus), TF and TF.softplus, 4),
    "gelu": (F.gelu, _per_element(_gelu), TF and TF.gelu, 8),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  _per_element(lambda v: _gelu(v, "tanh")),
                  TF and (lambda t: TF.gelu(t, approximate="tanh")), 8),
    "clip": (lambda x: F.clip(x, -1.5, 2.0), lambda x: np.clip(x, -1.5, 2.0),
             torch and (lambda t: t.clamp(-1.5, 2.0)), None),
}


@PROFILE
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_functions(name, data):
    f, reference, torch_f, ulps = UNARY[name]
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    x = data.draw(arrays(dtype, shapes()), label="x")
    status, y = call(f, x)
    status_ref, expected = call(reference, x)
    if status == "error":
        assert_named(y, name.split("_tanh")[0])
        return
    assert status_ref == "ok", f"{name}: returned {y} where NumPy raises {expected!r}"
    assert isinstance(y, Variable)
    rtol = tolerance(expected.dtype, ulps) if ulps else 0.0
    atol = float(np.finfo(expected.dtype).tiny) if ulps and expected.dtype.kind == "f" else 0
    assert_values(name, y.data, expected, rtol=rtol, atol=atol)
    if torch_f is None or dtype not in (np.float32, np.float64):
        return
    value, (gx,) = zerograd_grad(f, x)
    t_value, (t_gx,) = torch_grad(torch_f, x)
    assert_close_to_torch(f"{name} value", value, t_value, dtype)
    assert_close_to_torch(f"{name} gradient", gx, t_gx, dtype)


# ---- binary arithmetic, with broadcasting and mixed dtypes ---------------------------------
BINARY = {
    "add": (F.add, np.add, torch and torch.add),
    "sub": (F.sub, np.subtract, torch and torch.sub),
    "rsub": (F.rsub, lambda a, b: np.subtract(b, a), torch and (lambda a, b: b - a)),
    "mul": (F.mul, np.multiply, torch and torch.mul),
    "div": (F.div, np.true_divide, torch and torch.div),
    "rdiv": (F.rdiv, lambda a, b: np.true_divide(b, a), torch and (lambda a, b: b / a)),
    "pow": (F.pow, np.power, torch and torch.pow),
}


@PROFILE
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_functions(name, data):
    f, reference, torch_f = BINARY[name]
    (sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3,
                                                              max_side=3), label="shapes")
    da = data.draw(st.sampled_from(DTYPES), label="dtype a")
    same = data.draw(st.booleans(), label="same dtype")
    db = da if same else data.draw(st.sampled_from(DTYPES), label="dtype b")
    a, b = data.draw(arrays(da, sa), label="a"), data.draw(arrays(db, sb), label="b")
    status, y = call(f, a, b)
    status_ref, expected = call(reference, a, b)
    if status == "error":
        assert_named(y, name)
        return
    assert status_ref == "ok", f"{name}: returned {y} where NumPy raises {expected!r}"
    # NumPy itself: the same ufunc, so the same values and dtype (integers wrap as NumPy's)
    assert_values(name, y.data, expected, rtol=tolerance(expected.dtype, 1))
    if torch_f is None or not same or da not in (np.float32, np.float64):
        return
    value, grads = zerograd_grad(f, a, b)
    t_value, t_grads = torch_grad(torch_f, a, b)
    assert_close_to_torch(f"{name} value", value, t_value, da)
    for i, (g, tg) in enumerate(zip(grads, t_grads)):
        assert_close_to_torch(f"{name} gradient {i}", g, tg, da)


@PROFILE
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.xfail(strict=True, reason="core.py's operators pass NumPy's broadcast error "
                   "through unnamed (engine's part of issue 13)")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Hypothesis reporting the failure
def test_binary_functions_name_shapes_that_do_not_broadcast(name, data):
    f = BINARY[name][0]
    a = np.zeros(data.draw(st.integers(2, 4), label="n"))
    b = np.zeros(len(a) + data.draw(st.integers(1, 3), label="extra"))
    status, error = call(f, a, b)
    assert status == "error"
    assert isinstance(error, ValueError) and name in str(error), str(error)


# ---- reductions -----------------------------------------------------------------------------
REDUCTIONS = {
    "sum": (F.sum, np.sum, "sum"),
    "mean": (F.mean, np.mean, "mean"),
    "average": (F.average, np.mean, "mean"),
    "max": (F.max, np.max, "amax"),
    "min": (F.min, np.min, "amin"),
}


def axes_for(ndim):
    """None, an int (out of range too), or a tuple of ints (repeats and out of range too)."""
    one = st.integers(-ndim - 1, ndim)
    return st.one_of(st.none(), one, st.lists(one, max_size=3).map(tuple))


@PROFILE
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions(name, data):
    f, reference, torch_name = REDUCTIONS[name]
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    x = data.draw(arrays(dtype, shapes()), label="x")
    axis = data.draw(axes_for(x.ndim), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    status, y = call(f, x, axis=axis, keepdims=keepdims)
    status_ref, expected = call(reference, x, axis=axis, keepdims=keepdims)
    if status == "error":
        assert_named(y, name)
        return
    assert status_ref == "ok", f"{name}: returned {y} where NumPy raises {expected!r}"
    # sum and mean of many float16 values: NumPy accumulates pairwise in another order
    assert_values(name, y.data, expected, rtol=tolerance(expected.dtype, 64))
    if torch is None or dtype not in (np.float32, np.float64) or x.size == 0 or axis == ():
        return  # (torch reads dim=() as "every axis", NumPy as "no axis")
    dims = tuple(range(x.ndim)) if axis is None else axis
    value, (gx,) = zerograd_grad(f, x, axis=axis, keepdims=keepdims)
    if x.ndim == 0:
        def torch_f(t):
            return getattr(t, torch_name)()
    else:
        def torch_f(t):
            return getattr(t, torch_name)(dim=dims, keepdim=keepdims)
    t_value, (t_gx,) = torch_grad(torch_f, x)
    assert_close_to_torch(f"{name} value", value, t_value, dtype)
    assert_close_to_torch(f"{name} gradient", gx, t_gx, dtype)


# ---- shapes and selection -------------------------------------------------------------------
@PROFILE
@given(data=st.data())
def test_reshape(data):
    x = data.draw(arrays(np.float64, shapes()), label="x")
    shape = data.draw(st.one_of(shapes(max_dims=3), st.just((-1,)),
                                st.tuples(st.just(-1), st.integers(1, 4))), label="shape")
    check_against_numpy("reshape", F.reshape, np.reshape, x, shape)


@PROFILE
@given(data=st.data())
def test_transpose(data):
    x = data.draw(arrays(np.float32, shapes()), label="x")
    axes = data.draw(st.one_of(st.none(), st.permutations(range(x.ndim)).map(tuple),
                               st.lists(st.integers(-4, 4), max_size=4).map(tuple)),
                     label="axes")
    check_against_numpy("transpose", F.transpose, np.transpose, x, axes)


@PROFILE
@given(data=st.data())
def test_broadcast_to_and_sum_to(data):
    x = data.draw(arrays(np.float64, shapes(max_dims=2, max_side=3)), label="x")
    shape = data.draw(shapes(max_dims=3, max_side=3), label="shape")
    check_against_numpy("broadcast_to", F.broadcast_to, np.broadcast_to, x, shape)

    def sum_to_reference(a, shape):
        if np.broadcast_shapes(shape, a.shape) != a.shape:
            raise ValueError("does not broadcast")
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and a.shape[lead + i] != 1)
        return a.sum(axis=axes, keepdims=True).reshape(shape)

    check_against_numpy("sum_to", F.sum_to, sum_to_reference, x, shape)


@PROFILE
@given(data=st.data())
def test_expand_dims_and_flatten(data):
    x = data.draw(arrays(np.float32, shapes()), label="x")
    axis = data.draw(st.one_of(st.integers(-5, 4), st.lists(st.integers(-4, 4), max_size=3)
                               .map(tuple)), label="axis")
    check_against_numpy("expand_dims", F.expand_dims, np.expand_dims, x, axis)
    check_against_numpy("flatten", F.flatten, _flatten_reference, x)


def _flatten_reference(a):
    if a.ndim == 0:
        raise ValueError("a 0-d array has no batch axis")
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


@PROFILE
@given(data=st.data())
def test_get_item(data):
    x = data.draw(arrays(np.float64, shapes(min_dims=1)), label="x")
    index = data.draw(st.one_of(
        st.integers(-6, 6),
        st.slices(6),
        st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
        st.lists(st.integers(-6, 6), max_size=4).map(lambda v: np.array(v, dtype=np.int64)),
    ), label="index")
    status, y = call(F.get_item, x, index)
    status_ref, expected = call(lambda a: a[index], x)
    if status == "error":
        assert_named(y, "get_item", allowed=(TypeError, ValueError, IndexError))
        return
    assert status_ref == "ok", f"get_item: returned {y} where NumPy raises {expected!r}"
    assert_values("get_item", y.data, np.asarray(expected))
    xv = Variable(x.copy())
    F.get_item(xv, index).backward()
    expected_grad = np.zeros_like(x)
    np.add.at(expected_grad, index, 1)
    assert_values("get_item gradient", xv.grad.data, expected_grad)


@PROFILE
@given(data=st.data())
def test_concat_stack_split(data):
    n = data.draw(st.integers(0, 3), label="n arrays")
    base = data.draw(shapes(max_dims=3, max_side=3), label="shape")
    xs = []
    for i in range(n):
        shape = data.draw(st.one_of(st.just(base), shapes(max_dims=3, max_side=3)),
                          label=f"shape {i}")
        xs.append(data.draw(arrays(np.float32, shape), label=f"x{i}"))
    axis = data.draw(st.integers(-4, 3), label="axis")
    check_against_numpy("concat", F.concat, np.concatenate, xs, axis)
    check_against_numpy("stack", F.stack, np.stack, xs, axis)
    if xs:
        sections = data.draw(st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 5),
                                                                     max_size=3)),
                             label="sections")
        check_against_numpy("split", F.split, np.split, xs[0], sections, axis)


@PROFILE
@given(data=st.data())
def test_where(data):
    (sc, sx, sy), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3,
                                                                  max_side=3))
    cdtype = data.draw(st.sampled_from([np.bool_, np.int64, np.float32]), label="cond dtype")
    cond = data.draw(arrays(cdtype, sc), label="cond")
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x, y = data.draw(arrays(dtype, sx), label="x"), data.draw(arrays(dtype, sy), label="y")
    check_against_numpy("where", F.where, np.where, cond, x, y)


@PROFILE
@given(data=st.data())
def test_clip(data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    x = data.draw(arrays(dtype, shapes()), label="x")
    bound = st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-300, 300))
    lo, hi = data.draw(bound, label="x_min"), data.draw(bound, label="x_max")
    check_against_numpy("clip", F.clip, np.clip, x, lo, hi)


def check_against_numpy(name, f, reference, *args):
    """f(*args) returns NumPy's reference(*args) (values and dtype) or raises a named
    error; where it returns float values, its gradient is the one of sum(f)."""
    status, y = call(f, *args)
    status_ref, expected = call(reference, *args)
    if status == "error":
        assert_named(y, name)
        return
    assert status_ref == "ok", f"{name}: returned {y} where NumPy raises {expected!r}"
    ys = y if isinstance(y, list) else [y]
    es = expected if isinstance(expected, list) else [expected]
    assert len(ys) == len(es), f"{name}: {len(ys)} outputs, NumPy {len(es)}"
    for a, b in zip(ys, es):
        assert isinstance(a, Variable)
        assert_values(name, a.data, np.asarray(b))
