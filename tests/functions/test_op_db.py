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
from zerograd import Function, Variable
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


# ---- what a backward keeps (docs/engine.md, "saves") ---------------------------------------
def _function_classes() -> list:
    """Every Function class defined in zerograd.core and the modules of zerograd.functions
    (public and private), by module attribute."""
    import importlib
    import pkgutil

    import zerograd.core

    modules = [zerograd.core] + [
        importlib.import_module(f"zerograd.functions.{info.name}")
        for info in pkgutil.iter_modules(F.__path__)
    ]
    found = {}
    for module in modules:
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function
                    and obj.__module__ == module.__name__):
                found[obj.__qualname__] = obj
    return sorted(found.values(), key=lambda c: (c.__module__, c.__qualname__))


# Function classes allowed to keep the default (everything: inputs and outputs).
# Function classes allowed not to declare saves (none now: every one does; a class
# added here must say why).
UNDECLARED: set[str] = set()


def _declares(cls) -> bool:
    """Whether cls (or a base class below Function) says what its backward keeps."""
    owner = next(c for c in cls.__mro__ if "saves" in c.__dict__)
    return owner is not Function


def test_every_function_class_declares_what_it_saves():
    classes = _function_classes()
    assert len(classes) > 50  # the walk found them
    missing = [c.__qualname__ for c in classes
               if not _declares(c) and c.__qualname__ not in UNDECLARED]
    assert not missing, (
        f"these Function classes do not declare what their backward keeps: {missing}; add "
        "a saves = (...) line under the class line (docs/engine.md, 'What a Function "
        "keeps')"
    )


def test_undeclared_classes_really_declare_nothing():
    names = {c.__qualname__: c for c in _function_classes()}
    stale = sorted(n for n in UNDECLARED if n not in names or _declares(names[n]))
    assert not stale, f"remove {stale} from UNDECLARED: they declare saves now (or are gone)"


def _float_row_params(rows):
    return [p for p in _params(rows) if p.values[2] == np.float64]


def _intermediates(arrays):
    """Float arrays as intermediate results (``leaf * 1.0``: a function that keeps
    nothing), so that the graph alone decides whether they live; other inputs (labels,
    conditions) as they are. Returns (leaves, inputs)."""
    leaves, inputs = [], []
    for a in arrays:
        if a.dtype.kind == "f":
            leaf = Variable(a.copy())
            leaves.append(leaf)
            inputs.append(leaf * 1.0)
        else:
            inputs.append(a)
    return leaves, inputs


def _holds(b, a) -> bool:
    """Whether array b is a, overlaps it, or is a view of it (an empty one included)."""
    if np.may_share_memory(a, b):
        return True
    while b is not None:
        if b is a:
            return True
        b = b.base
    return False


@pytest.mark.parametrize("row, case, dtype", _float_row_params([r for r in OPS
                                                                 if r.differentiable]))
def test_inputs_no_function_saves_are_released(row, case, dtype):
    import weakref

    from zerograd.core import graph_functions, saved_arrays

    leaves, inputs = _intermediates(_inputs(row, case, dtype, np))
    refs = [weakref.ref(x.data) for x in inputs if isinstance(x, Variable)]
    ys = _outputs(_bound(row, case)(*inputs))
    kept = [a for f in graph_functions(ys) for _, a in saved_arrays(f)]
    kept += [y.data for y in ys]  # an output may be a view of an input (reshape)
    del inputs
    for k, ref in enumerate(refs):
        a = ref()
        if a is None or a.size == 0:  # (an empty view shares no memory NumPy can see)
            continue
        assert any(_holds(b, a) for b in kept), (
            f"{row.name}({case}): float input {k} is still alive after it was dropped, but no "
            "function of the graph declares it saved: a Function holds it without saying "
            "so (declare it in saves, or stop holding it)"
        )


def _gradients_to_second_order(row, case, arrays, drop: bool):
    """First and second derivatives of sum(y^2) at the inputs, with the intermediate
    inputs dropped before the backward passes or kept."""
    import zerograd

    leaves, inputs = _intermediates(arrays)
    ys = _outputs(_bound(row, case)(*inputs))
    if drop:
        del inputs
    loss = None
    for y in ys:
        term = (y * y).sum()
        loss = term if loss is None else loss + term
    gs = zerograd.grad(loss, leaves, create_graph=True)
    if not row.twice:
        return [g.data for g in gs], []
    total = None
    for g, w in zip(gs, np.linspace(0.5, 1.5, len(gs))):
        term = (g * g).sum() * float(w)
        total = term if total is None else total + term
    ggs = zerograd.grad(total, leaves)
    return [g.data for g in gs], [g.data for g in ggs]


@pytest.mark.parametrize("row, case, dtype", _float_row_params([r for r in OPS
                                                                 if r.differentiable]))
def test_backprop_without_the_inputs_nobody_saved(row, case, dtype):
    # The same derivatives, first and second order, whether the Variables no function
    # saved are still alive or gone: backward reads only what its function declared.
    arrays = _inputs(row, case, dtype, np)
    kept = _gradients_to_second_order(row, case, arrays, drop=False)
    dropped = _gradients_to_second_order(row, case, arrays, drop=True)
    for order, (a, b) in enumerate(zip(kept, dropped), start=1):
        for k, (ga, gb) in enumerate(zip(a, b)):
            np.testing.assert_allclose(gb, ga, rtol=1e-14, atol=1e-14,
                                       err_msg=f"{row.name}({case}): order {order}, input {k}")


@pytest.mark.parametrize("row, case, dtype", _float_row_params([r for r in OPS
                                                                 if r.differentiable]))
def test_batched_gradients_match_one_at_a_time(row, case, dtype):
    # is_grads_batched sends a stack of gradients through the functions marked
    # `elementwise` at once (and row by row through the others): the flag must be true.
    import zerograd

    arrays = _inputs(row, case, dtype, np)
    rng = np.random.default_rng(1)
    batch = 3
    for create_graph in (False, True):
        leaves, inputs = _intermediates(arrays)
        ys = _outputs(_bound(row, case)(*inputs))
        stacks = [rng.standard_normal((batch,) + y.shape) for y in ys]
        together = zerograd.grad(ys, leaves, stacks, create_graph=create_graph,
                                 retain_graph=True, is_grads_batched=True)
        for b in range(batch):
            one = zerograd.grad(ys, leaves, [np.asarray(s[b]) for s in stacks], retain_graph=True)
            for k, (g, h) in enumerate(zip(together, one)):
                np.testing.assert_allclose(
                    g.data[b], h.data, rtol=1e-12, atol=1e-12,
                    err_msg=f"{row.name}({case}): input {k}, row {b}, create_graph={create_graph}")
    if not row.twice:
        return
    # Second order: a stack through the gradient Functions recorded by the first pass.
    leaves, inputs = _intermediates(arrays)
    ys = _outputs(_bound(row, case)(*inputs))
    loss = None
    for y in ys:
        term = (y * y).sum()
        loss = term if loss is None else loss + term
    gs = zerograd.grad(loss, leaves, create_graph=True)
    stacks = [rng.standard_normal((batch,) + g.shape) for g in gs]
    wanted = [g for g in gs if g.creator is not None]
    if not wanted:
        return
    stacks = [s for s, g in zip(stacks, gs) if g.creator is not None]
    together = zerograd.grad(wanted, leaves, stacks, retain_graph=True, is_grads_batched=True)
    for b in range(batch):
        one = zerograd.grad(wanted, leaves, [np.asarray(s[b]) for s in stacks], retain_graph=True)
        for k, (g, h) in enumerate(zip(together, one)):
            np.testing.assert_allclose(g.data[b], h.data, rtol=1e-12, atol=1e-12,
                                       err_msg=f"{row.name}({case}): second order, input {k}, "
                                       f"row {b}")
