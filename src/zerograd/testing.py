"""Checks for differentiable functions: numerical first and second derivatives, and
PyTorch's autograd as an independent oracle. Use them to test the ops you write.

Every check raises ``AssertionError`` with a message that names the function, the
input shapes, and both values where they differ.

Example:
    >>> import numpy as np
    >>> import zerograd.functions as F
    >>> x = np.random.default_rng(0).standard_normal((2, 3))
    >>> check_backward(F.tanh, x)
    >>> check_double_backward(F.tanh, x)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zerograd.core import Variable
from zerograd.cuda import as_numpy, get_array_module

__all__ = [
    "check_backward",
    "check_double_backward",
    "check_torch",
    "check_function",
    "grads_of",
]


def _name(f: Callable) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


def _outputs(y) -> list:
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _float_inputs(inputs: Sequence) -> list[int]:
    """Indices of the inputs that are differentiable (floating-point arrays)."""
    return [
        i for i, x in enumerate(inputs)
        if x is not None and hasattr(x, "dtype") and np.dtype(x.dtype).kind == "f"
    ]


def grads_of(f: Callable, inputs: Sequence, gys: Sequence | None = None,
             create_graph: bool = False, seed: int = 0):
    """Run ``f`` on Variables made from ``inputs`` and backprop ``gys`` (random by
    default) from its outputs. Returns ``(variables, outputs, gys)``: each variable's
    ``grad`` holds its gradient (None for non-float inputs)."""
    xs = [Variable(x.copy()) if x is not None and hasattr(x, "dtype") else x for x in inputs]
    for i, x in enumerate(xs):
        if isinstance(x, Variable) and i not in _float_inputs(inputs):
            x.requires_grad = False
    ys = _outputs(f(*xs))
    if gys is None:
        rng = np.random.default_rng(seed)
        gys = []
        for y in ys:
            xp = get_array_module(y.data)
            gys.append(xp.asarray(rng.standard_normal(y.shape)).astype(y.dtype))
    loss = None
    for y, gy in zip(ys, gys):
        term = (y * gy).sum()
        loss = term if loss is None else loss + term
    loss.backward(create_graph=create_graph)
    return xs, ys, gys


def _loss_value(f, inputs, gys) -> float:
    ys = _outputs(f(*[Variable(x) if hasattr(x, "dtype") else x for x in inputs]))
    return float(sum(float((as_numpy(y.data).astype(np.float64) * as_numpy(gy)).sum())
                     for y, gy in zip(ys, gys)))


def _numeric_directional(f, inputs, gys, i, v, eps):
    """Central difference of <f(x), gy> along direction v of input i."""
    xp = get_array_module(inputs[i])
    plus = list(inputs)
    minus = list(inputs)
    # xp.asarray: on 0-d inputs the arithmetic gives NumPy scalars, not arrays.
    plus[i] = xp.asarray(inputs[i] + eps * xp.asarray(v))
    minus[i] = xp.asarray(inputs[i] - eps * xp.asarray(v))
    return (_loss_value(f, plus, gys) - _loss_value(f, minus, gys)) / (2 * eps)


def check_backward(
    f: Callable,
    *inputs,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    directions: int = 3,
    seed: int = 0,
) -> None:
    """Check the gradients of ``f`` at ``inputs`` against central differences.

    Gradients of float inputs are compared along ``directions`` random directions (and
    element by element for small inputs). Inputs that are not float arrays (indices,
    say) are passed through unchanged. float32 inputs are checked against differences
    taken in float64, with float32 tolerances.

    Raises:
        AssertionError: naming the function, the input, the shapes and both values.
    """
    inputs = list(inputs)
    floats = _float_inputs(inputs)
    low = any(np.dtype(inputs[i].dtype) != np.float64 for i in floats)
    eps = eps if eps is not None else 1e-6
    atol = atol if atol is not None else (1e-3 if low else 1e-6)
    rtol = rtol if rtol is not None else (1e-2 if low else 1e-5)
    xs, ys, gys = grads_of(f, inputs, seed=seed)
    # Differences are taken in float64 whatever the dtype under test.
    inputs64 = [x.astype(np.float64) if i in floats else x for i, x in enumerate(inputs)]
    gys64 = [as_numpy(g).astype(np.float64) for g in gys]
    rng = np.random.default_rng(seed + 1)
    for i in floats:
        x = inputs[i]
        g = xs[i].grad
        if g is None:
            raise AssertionError(
                f"{_name(f)}: no gradient reached input {i} (shape {x.shape})"
            )
        if g.dtype != x.dtype:
            raise AssertionError(
                f"{_name(f)}: gradient of input {i} has dtype {g.dtype}, input has "
                f"{x.dtype} (float32 must stay float32)"
            )
        g = as_numpy(g.data).astype(np.float64)
        if g.shape != x.shape:
            raise AssertionError(
                f"{_name(f)}: gradient of input {i} has shape {g.shape}, input {x.shape}"
            )
        if x.size <= 16:
            vs = [np.eye(x.size)[k].reshape(x.shape) for k in range(x.size)]
        else:
            vs = [rng.standard_normal(x.shape) for _ in range(directions)]
        for v in vs:
            num = _numeric_directional(f, inputs64, gys64, i, v, eps)
            ana = float((g * v).sum())
            if not np.isclose(ana, num, atol=atol, rtol=rtol):
                raise AssertionError(
                    f"{_name(f)}: gradient of input {i} (shape {x.shape}, {x.dtype}) "
                    f"disagrees with central differences along a direction: backprop "
                    f"{ana!r}, numerical {num!r}"
                )


def check_double_backward(f: Callable, *inputs, seed: int = 0, **tolerances) -> None:
    """Check second derivatives: the gradient of ``<grad f(x), w>`` (computed with
    ``create_graph=True``) against central differences.

    Raises:
        AssertionError: as :func:`check_backward`.
    """
    inputs = list(inputs)
    floats = _float_inputs(inputs)
    rng = np.random.default_rng(seed + 2)
    ws = {i: rng.standard_normal(inputs[i].shape) for i in floats}
    # gys are fixed once so that the first-derivative function is deterministic.
    _, _, gys = grads_of(f, inputs, seed=seed)

    def first_derivative(*xs):
        vs = list(xs)
        ys = _outputs(f(*vs))
        loss = None
        for y, gy in zip(ys, gys):
            xp = get_array_module(y.data)
            term = (y * xp.asarray(gy).astype(y.dtype)).sum()
            loss = term if loss is None else loss + term
        for v in vs:
            if isinstance(v, Variable):
                v.cleargrad()
        loss.backward(create_graph=True)
        total = None
        for i in floats:
            g = vs[i].grad
            if g is None:
                continue
            xp = get_array_module(g.data)
            term = (g * xp.asarray(ws[i]).astype(g.dtype)).sum()
            total = term if total is None else total + term
        if total is None:
            raise AssertionError(f"{_name(f)}: no first derivative to differentiate")
        for v in vs:  # the caller backprops from total: start from clean gradients
            if isinstance(v, Variable):
                v.cleargrad()
        return total

    first_derivative.__name__ = f"d/dx {_name(f)}"
    check_backward(first_derivative, *inputs, seed=seed + 3, **tolerances)


def check_torch(
    f: Callable,
    torch_f: Callable,
    *inputs,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    second_order: bool = False,
    seed: int = 0,
) -> None:
    """Compare ``f``'s values and gradients with PyTorch's autograd on ``torch_f``.

    ``torch_f`` receives torch tensors made from the same inputs (float inputs with
    ``requires_grad=True``). With ``second_order``, the gradients of ``<grad, w>`` are
    compared too. Skips nothing itself: the caller uses ``pytest.importorskip``.

    Raises:
        AssertionError: naming the function, the output or input, and both values.
    """
    import torch

    inputs = list(inputs)
    floats = _float_inputs(inputs)
    xs, ys, gys = grads_of(f, inputs, create_graph=second_order, seed=seed)
    ts = []
    for i, x in enumerate(inputs):
        if x is None or not hasattr(x, "dtype"):
            ts.append(x)
            continue
        t = torch.from_numpy(np.array(as_numpy(x)))
        t.requires_grad_(i in floats)
        ts.append(t)
    tys = _outputs(torch_f(*ts))
    if len(tys) != len(ys):
        raise AssertionError(f"{_name(f)}: {len(ys)} outputs, torch gave {len(tys)}")
    for k, (y, ty) in enumerate(zip(ys, tys)):
        _close(f"{_name(f)}: output {k}", as_numpy(y.data), ty.detach().numpy(), atol, rtol)
    tloss = sum((ty * torch.from_numpy(as_numpy(gy))).sum() for ty, gy in zip(tys, gys))
    tgrads = torch.autograd.grad(
        tloss, [ts[i] for i in floats], create_graph=second_order, allow_unused=True
    )
    for i, tg in zip(floats, tgrads):
        g = xs[i].grad
        expected = np.zeros(inputs[i].shape) if tg is None else tg.detach().numpy()
        if g is None:
            raise AssertionError(f"{_name(f)}: no gradient reached input {i}")
        _close(f"{_name(f)}: gradient of input {i}", as_numpy(g.data), expected, atol, rtol)
    if not second_order:
        return
    rng = np.random.default_rng(seed + 2)
    ws = {i: rng.standard_normal(inputs[i].shape).astype(inputs[i].dtype) for i in floats}
    total = None
    for i in floats:
        xp = get_array_module(xs[i].grad.data)
        term = (xs[i].grad * xp.asarray(ws[i])).sum()
        total = term if total is None else total + term
    for x in xs:
        if isinstance(x, Variable):
            x.cleargrad()
    total.backward()
    ttotal = sum(
        (tg * torch.from_numpy(ws[i])).sum() for i, tg in zip(floats, tgrads) if tg is not None
    )
    if not isinstance(ttotal, torch.Tensor) or not ttotal.requires_grad:
        tgg = [None] * len(floats)
    else:
        tgg = torch.autograd.grad(ttotal, [ts[i] for i in floats], allow_unused=True)
    for i, tg in zip(floats, tgg):
        expected = np.zeros(inputs[i].shape) if tg is None else tg.detach().numpy()
        g = xs[i].grad
        got = np.zeros(inputs[i].shape) if g is None else as_numpy(g.data)
        _close(f"{_name(f)}: second derivative of input {i}", got, expected, atol, rtol)


def _close(what: str, got: Any, expected: Any, atol: float, rtol: float) -> None:
    got = np.asarray(got)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {expected.shape}")
    if not np.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
        err = np.abs(got - expected)
        # A NaN on one side only is the worst error; NaN on both sides is agreement.
        err = np.where(np.isnan(got) != np.isnan(expected), np.inf, np.nan_to_num(err))
        k = int(np.argmax(err)) if err.size else 0
        raise AssertionError(
            f"{what} differs (shape {got.shape}): at flat index {k} got "
            f"{got.ravel()[k]!r}, expected {expected.ravel()[k]!r} "
            f"(max abs error {float(err.max()) if err.size else 0.0:.3g})"
        )


def check_function(
    f: Callable,
    *inputs,
    torch_f: Callable | None = None,
    second_order: bool = True,
    **tolerances: Any,
) -> None:
    """All checks at once: numerical first (and second) derivatives, then PyTorch.

    The PyTorch comparison runs only when ``torch_f`` is given and torch imports.
    """
    check_backward(f, *inputs, **tolerances)
    if second_order:
        check_double_backward(f, *inputs, **tolerances)
    if torch_f is not None:
        try:
            import torch  # noqa: F401
        except ImportError:
            return
        low = any(np.dtype(x.dtype) != np.float64 for x in inputs if hasattr(x, "dtype"))
        check_torch(
            f, torch_f, *inputs, second_order=second_order,
            atol=1e-4 if low else 1e-6, rtol=1e-3 if low else 1e-5,
        )
