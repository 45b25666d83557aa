"""Every row of ``op_db`` through the same checks, on NumPy and (where a GPU exists) CuPy.

- the forward against PyTorch (or the row's NumPy reference): values, shapes, and the
  dtype (float32 stays float32);
- the gradients against central differences in float64, first and second order
  (``zerograd.testing``);
- the gradients against PyTorch's autograd, first and (twice-differentiable rows) second
  order;
- a meta-test: every public function of ``zerograd.functions`` has a row, or is listed,
  with its reason, in ``op_db.EXCLUDED``.
"""

import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward, check_torch, grads_of


def _load_op_db():
    """tests/functions/op_db.py, by path (the tests are not a package)."""
    name = "zerograd_tests_op_db"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("op_db.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


op_db = _load_op_db()
EXCLUDED, OPS = op_db.EXCLUDED, op_db.OPS

try:
    import torch
except ImportError:
    torch = None


def _params(rows):
    return [
        pytest.param(row, case, dtype, id=f"{row.name}-{case}-{np.dtype(dtype).name}")
        for row in rows
        for case in row.cases
        for dtype in row.dtypes
    ]


ALL = _params(OPS)
DIFFERENTIABLE = _params([row for row in OPS if row.differentiable])
WITH_TORCH = _params([row for row in OPS if row.differentiable and row.torch is not None])


def _inputs(row, case, dtype, xp):
    rng = np.random.default_rng(0)
    return [xp.asarray(a) for a in row.make_inputs(rng, case, dtype)]


def _bound(row, case):
    """The row's op with the case's keyword arguments, named for failure messages."""

    def f(*xs):
        return row.call(*xs, **case.kwargs)

    f.__name__ = f"{row.name}({case})"
    return f


def _outputs(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _squared(f):
    """f's outputs squared: their output gradients then depend on x, so a second backward
    goes through the backward of f's gradient Functions too (for a piecewise-linear or
    linear f the plain second derivative is 0 and never reaches them)."""

    def g(*xs):
        ys = [y * y for y in _outputs(f(*xs))]
        return ys if len(ys) > 1 else ys[0]

    g.__name__ = f"({f.__name__})^2"
    return g


def _forward_tolerances(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-7, "atol": 1e-9}


@pytest.mark.parametrize("row, case, dtype", ALL)
def test_forward(xp, row, case, dtype):
    inputs = _inputs(row, case, dtype, xp)
    ys = _outputs(_bound(row, case)(*inputs))
    for y in ys:
        assert isinstance(y, Variable)
        assert y.dtype == dtype, f"{row.name}({case}): {dtype.__name__} input gave {y.dtype}"
    hosts = [as_numpy(a) for a in inputs]
    if row.torch is not None and torch is not None:
        expected = _outputs(row.torch(*[torch.from_numpy(np.array(a)) for a in hosts],
                                      **case.kwargs))
        expected = [e.detach().numpy() for e in expected]
    elif row.reference is not None:
        floats = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in hosts]
        expected = _outputs(row.reference(*floats, **case.kwargs))
    else:
        pytest.skip("no oracle for the values (PyTorch is not installed)")
    assert len(ys) == len(expected)
    for y, e in zip(ys, expected):
        assert y.shape == e.shape, f"{row.name}({case}): shape {y.shape}, expected {e.shape}"
        np.testing.assert_allclose(
            as_numpy(y.data), e, err_msg=f"{row.name}({case})", **_forward_tolerances(dtype)
        )


@pytest.mark.parametrize("row, case, dtype", DIFFERENTIABLE)
def test_gradients_numerically(xp, row, case, dtype):
    inputs = _inputs(row, case, dtype, xp)
    f = _bound(row, case)
    tolerances = row.tolerances.get(dtype, {})
    check_backward(f, *inputs, **tolerances)
    if row.twice:
        check_double_backward(f, *inputs, **tolerances)
        check_double_backward(_squared(f), *inputs, **tolerances)


@pytest.mark.parametrize("row, case, dtype", DIFFERENTIABLE)
def test_plain_and_recorded_backward_agree(xp, row, case, dtype):
    # A gradient Function runs its forward on arrays when the backward is not recorded,
    # and as a recorded Function under create_graph=True: both must give one gradient.
    inputs = _inputs(row, case, dtype, xp)
    f = _squared(_bound(row, case))
    plain, _, _ = grads_of(f, inputs, create_graph=False)
    recorded, _, _ = grads_of(f, inputs, create_graph=True)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for i, (a, b) in enumerate(zip(plain, recorded)):
        if isinstance(a, Variable) and a.requires_grad:
            assert a.grad.dtype == b.grad.dtype == dtype
            np.testing.assert_allclose(
                as_numpy(a.grad.data), as_numpy(b.grad.data), rtol=tol, atol=tol,
                err_msg=f"{row.name}({case}): input {i}",
            )


@pytest.mark.parametrize("row, case, dtype", WITH_TORCH)
def test_gradients_against_torch(xp, row, case, dtype):
    pytest.importorskip("torch")
    inputs = _inputs(row, case, dtype, xp)
    low = dtype != np.float64
    check_torch(
        _bound(row, case), lambda *ts: row.torch(*ts, **case.kwargs), *inputs,
        second_order=row.twice, atol=1e-4 if low else 1e-6, rtol=1e-3 if low else 1e-5,
    )


# ---- the table covers the package ----------------------------------------------------------
def _public_functions(namespace) -> dict:
    return {
        name: obj
        for name, obj in vars(namespace).items()
        if not name.startswith("_") and callable(obj)
        and not inspect.isclass(obj) and not inspect.ismodule(obj)
    }


def _uncovered(functions: dict, rows, excluded) -> list:
    covered = {id(row.func) for row in rows}
    return sorted(n for n, f in functions.items() if id(f) not in covered and n not in excluded)


def test_every_public_function_has_a_row():
    missing = _uncovered(_public_functions(F), OPS, EXCLUDED)
    assert not missing, (
        f"zerograd.functions has no op_db row for {missing}: add an OpInfo row in "
        "tests/functions/op_db.py (or, if the table cannot express it, add the name to "
        "EXCLUDED with the reason)"
    )


def test_the_meta_test_notices_a_new_function():
    import types

    namespace = types.SimpleNamespace(**_public_functions(F))
    namespace.my_new_op = lambda x: x
    assert _uncovered(_public_functions(namespace), OPS, EXCLUDED) == ["my_new_op"]


def test_excluded_functions_have_no_rows():
    rows = {row.func.__name__ for row in OPS}
    assert not rows & EXCLUDED
