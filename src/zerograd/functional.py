"""Functional transforms, as in JAX and ``torch.func``: grad, value_and_grad, jacobian,
hessian, hvp, jvp and vjp, built on the engine's reverse mode (:func:`zerograd.grad`,
which returns gradients instead of storing them in ``.grad``).

A transform takes a function of arrays or Variables and returns derivatives as
**Variables** (read ``.data`` for the array). They are recorded with
``create_graph=True`` while backprop is enabled, so every result can be differentiated
again: ``grad(grad(f))`` works, and so does a loss built from a gradient.

The transforms never touch the ``grad`` of your Variables: the arguments being
differentiated are fresh leaves inside the transform, and any Variable that ``f``
closes over (a model's parameters, say) keeps the ``grad`` it had. Where a result does
not depend on an argument, its derivative is zeros, never None.

Example:
    >>> import numpy as np
    >>> import zerograd.functions as F
    >>> def f(x):
    ...     return (x ** 3).sum()
    >>> grad(f)(np.array([1.0, 2.0]))
    variable([ 3. 12.])
    >>> grad(lambda x: grad(f)(x).sum())(np.array([1.0, 2.0]))   # 6 x
    variable([ 6. 12.])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zerograd import core
from zerograd.config import enable_backprop_var, using_config
from zerograd.core import Function, Variable, as_array, as_variable
from zerograd.cuda import get_array_module, is_cupy_array
from zerograd.functions.array import concat

__all__ = ["grad", "value_and_grad", "jacobian", "hessian", "hvp", "jvp", "vjp"]


# =========================================================================================
# Plumbing
# =========================================================================================
class _Identity(Function):
    """Links a transform's private leaf to the caller's Variable, so that the caller
    can differentiate through the transform."""

    saves = ()
    elementwise = True

    def forward(self, x):
        return x

    def backward(self, gy):
        return gy  # d/dx x = 1


def _normalize_argnums(name: str, argnums, nargs: int) -> tuple[tuple, bool]:
    """``argnums`` as a tuple of non-negative ints, and whether it was a single int."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums or not all(isinstance(i, int) for i in nums):
        raise TypeError(f"{name}: argnums must be an int or a tuple of ints, got {argnums!r}")
    out = []
    for i in nums:
        if not -nargs <= i < nargs:
            raise ValueError(
                f"{name}: argnums={argnums!r} but the function got {nargs} positional "
                f"argument(s); use indices in [0, {nargs - 1}]"
            )
        out.append(i % nargs)
    return tuple(out), single


def _leaf(name: str, value: Any, link: bool) -> Variable:
    """A fresh Variable to differentiate with respect to, with ``value``'s data.

    With ``link`` (backprop on) a Variable that requires grad is reached through an
    identity, so that derivatives computed here can themselves be differentiated with
    respect to the caller's Variable.
    """
    if isinstance(value, Variable):
        data = value.data
    elif isinstance(value, np.ndarray) or is_cupy_array(value):
        data = value
    else:
        data = as_array(value)  # Python and NumPy scalars, lists
    if data is None or data.dtype.kind != "f":
        what = "None" if data is None else f"dtype {data.dtype}"
        raise TypeError(
            f"{name}: can only differentiate with respect to floating-point arrays, got "
            f"{what}; convert it first, e.g. x.astype(np.float64)"
        )
    if isinstance(value, Variable) and value.requires_grad and link:
        return _Identity()(value)
    return Variable(data)


def _gradients(ys: Sequence, cotangents, leaves: Sequence, create_graph: bool) -> list:
    """The gradients of ``ys`` (seeded with ``cotangents``: None for ones, or one per
    output) with respect to ``leaves``, as Variables: zeros where there is no
    dependence. Nothing's ``grad`` is touched, and the graph stays usable."""
    return list(
        core.grad(ys, leaves, cotangents, create_graph=create_graph, retain_graph=True)
    )


def _as_outputs(ys) -> tuple[list, bool]:
    """f's result as a list of Variables, and whether it was a single one."""
    if isinstance(ys, (tuple, list)):
        return [as_variable(y) for y in ys], False
    return [as_variable(ys)], True


def _primals_and_tangents(name: str, primals, tangents, keep: bool):
    """Leaf Variables for ``primals``, checked tangents of their shapes, and whether a
    single primal was given."""
    xs, single = _as_primals(name, primals)
    vs, _ = _as_primals(name, tangents)
    if len(vs) != len(xs):
        raise ValueError(
            f"{name}: {len(xs)} primals but {len(vs)} tangents; give one per primal"
        )
    leaves = [_leaf(name, x, keep) for x in xs]
    vs = [_tangent(name, v, x, k) for k, (v, x) in enumerate(zip(vs, leaves))]
    return leaves, vs, single


def _direction(value, like: Variable):
    """``value`` as a Variable without gradient, of ``like``'s dtype and device."""
    if isinstance(value, Variable):
        return value
    data = get_array_module(like.data).asarray(value, dtype=like.dtype)
    return Variable(data, requires_grad=False)


def _cotangent(name: str, value, y: Variable, k: int) -> Variable:
    v = _direction(value, y)
    if v.shape != y.shape:
        raise ValueError(
            f"{name}: cotangent {k} has shape {v.shape}, but output {k} of the function has "
            f"shape {y.shape}; give one of the output's shape"
        )
    return v


def _tangent(name: str, value, x: Variable, k: int) -> Variable:
    v = _direction(value, x)
    if v.shape != x.shape:
        raise ValueError(
            f"{name}: tangent {k} has shape {v.shape}, but primal {k} has shape {x.shape}; "
            "give one tangent per primal, of the primal's shape"
        )
    return v


def _scalar(name: str, y) -> Variable:
    y = as_variable(y)
    if y.size != 1:
        raise ValueError(
            f"{name}: the function must return a scalar (one element), got shape "
            f"{y.shape}; reduce it (.sum(), a loss) or use jacobian/vjp for array outputs"
        )
    return y


def _detach(y: Variable, keep: bool) -> Variable:
    return y if keep else as_variable(y.data)


def _as_primals(name: str, primals) -> tuple[list, bool]:
    if isinstance(primals, (tuple, list)):
        if not primals:
            raise ValueError(f"{name}: primals is empty; give at least one argument")
        return list(primals), False
    return [primals], True


# =========================================================================================
# Transforms
# =========================================================================================
def _differentiable_args(name: str, argnums, args, keep: bool) -> tuple[list, list, bool]:
    """Replace the arguments selected by ``argnums`` with fresh leaf Variables.

    Returns the new argument list, the leaves, and whether argnums was a single int.
    """
    nums, single = _normalize_argnums(name, argnums, len(args))
    args = list(args)
    leaves = []
    for i in nums:
        args[i] = _leaf(name, args[i], keep)
        leaves.append(args[i])
    return args, leaves, single


def value_and_grad(f: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """Make a function returning ``(f(*args), grad)`` from the same evaluation.

    Args:
        f: returns a scalar (a one-element Variable or array); with ``has_aux`` a pair
            ``(scalar, aux)``, where ``aux`` is passed through.
        argnums: the position (int) or positions (tuple) of the arguments to
            differentiate with respect to.
        has_aux: see ``f``.

    Returns:
        A function returning ``(value, grads)`` (``((value, aux), grads)`` with
        ``has_aux``): Variables, ``grads`` a single one for an int ``argnums`` or a
        tuple matching ``argnums``.

    Example:
        >>> value, g = value_and_grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(
        ...     np.array([1.0, 2.0]), np.array([3.0, 4.0]))
        >>> value, g
        (variable(11.0), (variable([3. 4.]), variable([1. 2.])))
    """

    def wrapper(*args):
        keep = enable_backprop_var.get()  # record the result's graph only if asked
        args, leaves, single = _differentiable_args("value_and_grad", argnums, args, keep)
        with using_config("enable_backprop", True):
            out = f(*args)
            if has_aux:
                if not (isinstance(out, (tuple, list)) and len(out) == 2):
                    raise ValueError(
                        "value_and_grad: with has_aux=True the function must return a "
                        f"pair (value, aux), got {type(out).__name__}"
                    )
                out, aux = out
            y = _scalar("value_and_grad", out)
            grads = _gradients([y], None, leaves, create_graph=keep)
        grads = grads[0] if single else tuple(grads)
        y = _detach(y, keep)
        return ((y, aux) if has_aux else y), grads

    return wrapper


def grad(f: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """Make a function returning the gradient of the scalar function ``f``.

    Args:
        f: returns a scalar (one element); with ``has_aux``, a pair ``(scalar, aux)``.
        argnums: int or tuple of ints, the arguments to differentiate with respect to.
        has_aux: then the new function returns ``(grads, aux)``.

    Returns:
        A function of the same arguments returning Variables: one gradient for an int
        ``argnums`` (of that argument's shape), a tuple of them for a tuple.

    Example:
        >>> import zerograd.functions as F
        >>> df = grad(F.exp)
        >>> ddf = grad(df)
        >>> df(np.array(0.0)), ddf(np.array(0.0))
        (variable(1.0), variable(1.0))
    """
    value_grad = value_and_grad(f, argnums, has_aux)

    def wrapper(*args):
        value, grads = value_grad(*args)
        return (grads, value[1]) if has_aux else grads

    return wrapper


def vjp(f: Callable, *primals):
    """Evaluate ``f(*primals)`` and return it with a function that pulls cotangents
    back: ``vjp_fn(ct) = ct^T J``, one gradient per primal.

    Args:
        f: returns a Variable/array or a tuple of them.
        primals: the arguments (arrays or Variables, all differentiated).

    Returns:
        ``(y, vjp_fn)``: ``y`` as ``f`` returned it (Variables); ``vjp_fn(ct)`` takes a
        cotangent shaped like ``y`` (a tuple for a tuple output) and returns a tuple of
        Variables, one per primal. It may be called many times.

    Example:
        >>> y, vjp_fn = vjp(lambda x: x * 2.0, np.array([1.0, 2.0]))
        >>> y, vjp_fn(np.array([1.0, 10.0]))
        (variable([2. 4.]), (variable([ 2. 20.]),))
    """
    if not primals:
        raise ValueError("vjp: no primals; call vjp(f, x, ...)")
    keep = enable_backprop_var.get()
    leaves = [_leaf("vjp", x, keep) for x in primals]
    with using_config("enable_backprop", True):
        out = f(*leaves)
    ys, single = _as_outputs(out)

    def vjp_fn(cotangent):
        cts = [cotangent] if single else list(cotangent)
        if len(cts) != len(ys):
            raise ValueError(
                f"vjp: the function has {len(ys)} outputs but {len(cts)} cotangents "
                "were given; give a tuple with one per output"
            )
        cts = [_cotangent("vjp", ct, y, k) for k, (y, ct) in enumerate(zip(ys, cts))]
        record = enable_backprop_var.get()
        with using_config("enable_backprop", True):
            grads = _gradients(ys, cts, leaves, create_graph=record)
        return tuple(grads)

    ys_out = [_detach(y, keep) for y in ys]
    return (ys_out[0] if single else tuple(ys_out)), vjp_fn


def jacobian(f: Callable, argnums=0, chunk_size: int | None = None) -> Callable:
    """Make a function returning the Jacobian of ``f`` by reverse mode.

    The rows of the Jacobian of an output ``y`` are the vector-Jacobian products with
    the unit vectors of ``y``'s shape. They go through the graph together, as a batch
    of cotangents in one backward pass (``zerograd.grad(..., is_grads_batched=True)``):
    elementwise functions handle the whole batch at once, others one row at a time
    within the same pass. ``chunk_size`` bounds how many rows share a pass (memory
    grows with it).

    Args:
        f: returns a Variable/array or a tuple of them.
        argnums: int or tuple of ints, the arguments to differentiate with respect to.
        chunk_size: rows per backward pass; None for all of them in one pass.

    Returns:
        A function returning Variables of shape ``y.shape + x.shape``: one for an int
        ``argnums`` and a single output, a tuple over ``argnums`` for a tuple, and for
        a function with a tuple of outputs, a tuple (over outputs) of those.

    Example:
        >>> J = jacobian(lambda x: x ** 2)(np.array([1.0, 2.0]))
        >>> J
        variable([[2. 0.]
                  [0. 4.]])
    """
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(
            f"jacobian: chunk_size must be a positive int or None, got {chunk_size!r}"
        )

    def wrapper(*args):
        keep = enable_backprop_var.get()  # record the result's graph only if asked
        args, leaves, single_arg = _differentiable_args("jacobian", argnums, args, keep)
        with using_config("enable_backprop", True):
            ys, single_out = _as_outputs(f(*args))
            result = []
            for y in ys:
                per_arg = _jacobian_rows(y, leaves, chunk_size, keep)
                result.append(per_arg[0] if single_arg else tuple(per_arg))
        if not keep:
            result = [_tree_detach(r) for r in result]
        return result[0] if single_out else tuple(result)

    return wrapper


def _jacobian_rows(y: Variable, leaves: list, chunk_size, keep: bool) -> list:
    """d y / d leaf for each leaf, shaped ``y.shape + leaf.shape``: batches of unit
    cotangents, one backward pass per batch."""
    xp = get_array_module(y.data)
    m = y.size
    if m == 0:
        return [as_variable(xp.zeros(y.shape + x.shape, dtype=x.dtype)) for x in leaves]
    step = m if chunk_size is None else chunk_size
    blocks = [[] for _ in leaves]
    for start in range(0, m, step):
        stop = min(start + step, m)
        seed = xp.zeros((stop - start, m), dtype=y.dtype)
        seed[xp.arange(stop - start), xp.arange(start, stop)] = 1
        seed = seed.reshape((stop - start,) + y.shape)
        grads = core.grad(
            y, leaves, seed, create_graph=keep, retain_graph=True, is_grads_batched=True
        )
        for block, g in zip(blocks, grads):
            block.append(g)
    out = []
    for x, block in zip(leaves, blocks):
        J = block[0] if len(block) == 1 else concat(block, axis=0)
        out.append(J.reshape(y.shape + x.shape))
    return out


def _tree_detach(r):
    if isinstance(r, tuple):
        return tuple(as_variable(v.data) for v in r)
    return as_variable(r.data)


def hessian(f: Callable, argnums=0) -> Callable:
    """Make a function returning the Hessian of the scalar function ``f``: the
    Jacobian of its gradient (reverse over reverse).

    Returns:
        For an int ``argnums`` a Variable of shape ``x.shape + x.shape``; for a tuple,
        a tuple of tuples, ``H[i][j]`` of shape ``x_i.shape + x_j.shape``.

    Example:
        >>> H = hessian(lambda x: (x[0] ** 2) * x[1])(np.array([1.0, 3.0]))
        >>> H
        variable([[6. 2.]
                  [2. 0.]])
    """
    return jacobian(grad(f, argnums), argnums)


def hvp(f: Callable, primals, tangents):
    """Hessian-vector product of the scalar function ``f`` at ``primals`` along
    ``tangents``, without forming the Hessian (two backward passes).

    Args:
        f: a scalar function of one or more arguments.
        primals: the arguments: a tuple, or a single array/Variable.
        tangents: one per primal, of the same shapes (same structure).

    Returns:
        ``(f(*primals), H v)`` as Variables; ``H v`` is a tuple when ``primals`` is.

    Example:
        >>> f = lambda x: (x ** 3).sum()          # Hessian diag(6 x)
        >>> value, hv = hvp(f, np.array([1.0, 2.0]), np.array([1.0, 1.0]))
        >>> value, hv
        (variable(9.0), variable([ 6. 12.]))
    """
    keep = enable_backprop_var.get()
    leaves, vs, single = _primals_and_tangents("hvp", primals, tangents, keep)
    with using_config("enable_backprop", True):
        y = _scalar("hvp", f(*leaves))
        grads = _gradients([y], None, leaves, create_graph=True)
        # H v is the vector-Jacobian product of the gradient with v (H is symmetric).
        hv = _gradients(grads, vs, leaves, create_graph=keep)
    y = _detach(y, keep)
    return y, (hv[0] if single else tuple(hv))


def jvp(f: Callable, primals, tangents):
    """Forward-mode product ``J v`` of ``f`` at ``primals`` along ``tangents``.

    Computed in reverse mode by the double-vjp trick: ``u -> J^T u`` is linear in
    ``u``, and its gradient along ``v`` is ``J v``. Costs two backward passes.

    Args:
        f: returns a Variable/array or a tuple of them.
        primals: the arguments: a tuple, or a single array/Variable.
        tangents: one per primal, of the same shapes.

    Returns:
        ``(f(*primals), J v)`` as Variables, ``J v`` shaped like the output (a tuple
        for a tuple output).

    Example:
        >>> import zerograd.functions as F
        >>> y, t = jvp(F.sin, (np.array([0.0, 1.0]),), (np.array([2.0, 0.0]),))
        >>> t   # cos(x) * v
        variable([2. 0.])
    """
    keep = enable_backprop_var.get()
    leaves, vs, _ = _primals_and_tangents("jvp", primals, tangents, keep)
    with using_config("enable_backprop", True):
        ys, single = _as_outputs(f(*leaves))
        us = [Variable(get_array_module(y.data).zeros_like(y.data)) for y in ys]
        grads = _gradients(ys, us, leaves, create_graph=True)  # J^T u, linear in u
        tangents_out = _gradients(grads, vs, us, create_graph=keep)  # d/du <J^T u, v>
    ys = [_detach(y, keep) for y in ys]
    if single:
        return ys[0], tangents_out[0]
    return tuple(ys), tuple(tangents_out)
