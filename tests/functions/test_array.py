"""Tests for zerograd.functions.array: shapes, indexing, reductions, joins, where."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward, check_function, check_torch

try:  # the oracle for check_function's comparisons; those are skipped without it
    import torch
except ImportError:
    torch = None


def _normal(xp, rng, shape, dtype):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def _torch():
    return pytest.importorskip("torch")  # for tests that use torch directly


# ---- reshape, transpose ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, new_shape", [((2, 3), (3, 2)), ((6,), (2, -1)), ((), (1, 1)), ((2, 3, 4), (4, 6))]
)
def test_reshape(xp, dtype, rng, shape, new_shape):
    x = _normal(xp, rng, shape, dtype)
    check_function(lambda v: F.reshape(v, new_shape), x, torch_f=lambda t: t.reshape(new_shape))


def test_reshape_method_forms(rng):
    x = Variable(rng.standard_normal((2, 3)))
    assert x.reshape(3, 2).shape == (3, 2)
    assert x.reshape((6,)).shape == (6,)
    assert F.reshape(x, (2, 3)) is x  # nothing to do: no function recorded


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)], ids=str)
def test_transpose(xp, dtype, rng, axes):
    x = _normal(xp, rng, (2, 3, 4), dtype)
    torch_axes = tuple(reversed(range(3))) if axes is None else axes
    check_function(
        lambda v: F.transpose(v, axes), x, torch_f=lambda t: t.permute(*torch_axes)
    )


def test_transpose_method_and_T(rng):
    x = Variable(rng.standard_normal((2, 3, 4)))
    assert x.T.shape == (4, 3, 2)
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.transpose((2, 1, 0)).shape == (4, 3, 2)


# ---- get_item ---------------------------------------------------------------------------------
INDICES = [
    ("int", 1),
    ("negative-int", -1),
    ("slice", slice(1, None)),
    ("step-slice", (slice(None), slice(None, None, 2))),
    ("int-array-repeats", np.array([0, 2, 0, 0])),
    ("int-arrays-pair", (np.array([0, 1, 1]), np.array([2, 2, 0]))),
    ("bool-mask", np.array([True, False, True])),
    ("ellipsis-none", (Ellipsis, None)),
    ("mixed", (slice(0, 2), np.array([3, 3, 1]))),
]


def _torch_index(index):
    def one(i):
        return torch.from_numpy(i) if isinstance(i, np.ndarray) else i

    return tuple(one(i) for i in index) if isinstance(index, tuple) else one(index)


@pytest.mark.parametrize("name, index", INDICES, ids=[i[0] for i in INDICES])
def test_get_item(xp, dtype, rng, name, index):
    x = _normal(xp, rng, (3, 4), dtype)
    xp_index = (
        tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
        if isinstance(index, tuple)
        else (xp.asarray(index) if isinstance(index, np.ndarray) else index)
    )
    y = F.get_item(x, xp_index)
    np.testing.assert_array_equal(as_numpy(y.data), as_numpy(x)[index])
    check_backward(lambda v: v[xp_index], x)
    check_double_backward(lambda v: v[xp_index], x)
    if torch is not None:
        check_torch(lambda v: v[index], lambda t: t[_torch_index(index)], as_numpy(x))


def test_get_item_repeated_indices_accumulate():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = x[np.array([0, 0, 2, 0])]
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


def test_get_item_with_list_and_variable_indices():
    x = Variable(np.arange(5.0))
    np.testing.assert_array_equal(F.get_item(x, [1, 1]).data, [1.0, 1.0])
    np.testing.assert_array_equal(x[Variable(np.array([4, 0]))].data, [4.0, 0.0])


# ---- broadcast_to, sum_to ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, target", [((3,), (2, 3)), ((), (2, 2)), ((2, 1), (2, 3)), ((1, 3), (4, 2, 3))],
    ids=str,
)
def test_broadcast_to(xp, dtype, rng, shape, target):
    x = _normal(xp, rng, shape, dtype)
    check_function(
        lambda v: F.broadcast_to(v, target), x, torch_f=lambda t: t.broadcast_to(target)
    )


@pytest.mark.parametrize(
    "shape, target",
    [((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), (2, 1)), ((2, 3), ()), ((4, 2, 3), (1, 3))],
    ids=str,
)
def test_sum_to(xp, dtype, rng, shape, target):
    x = _normal(xp, rng, shape, dtype)
    y = F.sum_to(x, target)
    assert y.shape == target and y.dtype == dtype
    host = as_numpy(x).astype(np.float64)
    lead = host.ndim - len(target)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(target) if n == 1 and host.shape[lead + i] != 1
    )
    expected = host.sum(axis=axes, keepdims=True).reshape(target)
    np.testing.assert_allclose(as_numpy(y.data), expected, rtol=1e-5, atol=1e-5)
    check_backward(lambda v: F.sum_to(v, target), x)
    check_double_backward(lambda v: F.sum_to(v, target), x)


def test_sum_to_error():
    with pytest.raises(ValueError, match="sum_to"):
        F.sum_to(np.ones((2, 3)), (4,))


# ---- reductions --------------------------------------------------------------------------------
REDUCE_AXES = [None, 0, -1, (0, 2)]


def _torch_reduce(name, axis, keepdims):
    def f(t):
        if axis is None:
            out = getattr(t, name)()
            return out.reshape((1,) * t.ndim) if keepdims else out
        return getattr(t, name)(dim=axis, keepdim=keepdims)

    return f


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", REDUCE_AXES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "average"])
def test_sum_and_mean(xp, dtype, rng, name, axis, keepdims):
    x = _normal(xp, rng, (2, 3, 4), dtype)
    f = getattr(F, name)
    torch_name = "sum" if name == "sum" else "mean"
    y = f(x, axis, keepdims)
    assert y.dtype == dtype
    check_function(
        lambda v: f(v, axis=axis, keepdims=keepdims), x,
        torch_f=_torch_reduce(torch_name, axis, keepdims),
    )


def test_sum_of_a_0d_array(xp, dtype, rng):
    x = _normal(xp, rng, (), dtype)
    check_function(F.sum, x, torch_f=lambda t: t.sum())
    check_function(F.mean, x, torch_f=lambda t: t.mean())


def test_sum_method():
    x = Variable(np.ones((2, 3)))
    assert x.sum(axis=1, keepdims=True).shape == (2, 1)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", REDUCE_AXES, ids=str)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min(xp, dtype, rng, name, axis, keepdims):
    x = _normal(xp, rng, (2, 3, 4), dtype)
    torch_name = "amax" if name == "max" else "amin"

    def torch_f(t):
        if axis is None:
            out = getattr(t, torch_name)()
            return out.reshape((1,) * t.ndim) if keepdims else out
        return getattr(t, torch_name)(dim=axis, keepdim=keepdims)

    check_function(
        lambda v: getattr(F, name)(v, axis, keepdims), x, torch_f=torch_f, second_order=False
    )


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_ties_share_the_gradient(xp, name):
    _torch()
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    if name == "min":
        data = -data
    x = Variable(xp.asarray(data))
    y = getattr(F, name)(x, axis=1)
    y.backward()
    expected = np.array([[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(as_numpy(x.grad.data), expected)
    t = torch.tensor(data, requires_grad=True)
    (t.amax(dim=1) if name == "max" else t.amin(dim=1)).sum().backward()
    np.testing.assert_allclose(as_numpy(x.grad.data), t.grad.numpy())


def test_max_all_ties():
    x = Variable(np.array([2.0, 2.0, 1.0, 2.0]))
    y = F.max(x)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [1 / 3, 1 / 3, 0, 1 / 3])


# ---- expand_dims, flatten ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, axis", [((2, 3), 0), ((2, 3), 1), ((2, 3), -1), ((3,), (0, 2)), ((), 0)], ids=str
)
def test_expand_dims(xp, dtype, rng, shape, axis):
    x = _normal(xp, rng, shape, dtype)
    y = F.expand_dims(x, axis)
    assert y.shape == np.expand_dims(np.zeros(shape), axis).shape
    check_function(
        lambda v: F.expand_dims(v, axis), x,
        torch_f=lambda t: t.reshape(np.expand_dims(np.zeros(shape), axis).shape),
    )


@pytest.mark.parametrize("axis", [3, -4, (0, 0)], ids=str)
def test_expand_dims_errors(axis):
    with pytest.raises(ValueError, match="expand_dims"):
        F.expand_dims(np.zeros((2, 3)), axis)


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (2, 3)], ids=str)
def test_flatten(xp, dtype, rng, shape):
    x = _normal(xp, rng, shape, dtype)
    y = F.flatten(x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    check_function(F.flatten, x, torch_f=lambda t: t.reshape(shape[0], -1))


def test_flatten_of_empty_batch_and_error():
    assert F.flatten(np.zeros((0, 3, 2))).shape == (0, 6)
    with pytest.raises(ValueError, match="flatten"):
        F.flatten(np.array(1.0))


# ---- clip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (None, 0.3), (-0.3, None)], ids=str)
@pytest.mark.parametrize("shape", [(), (3, 4)], ids=str)
def test_clip(xp, dtype, rng, bounds, shape):
    x = _normal(xp, rng, shape, dtype)
    lo, hi = bounds
    y = F.clip(x, lo, hi)
    assert y.dtype == dtype
    check_function(lambda v: F.clip(v, lo, hi), x, torch_f=lambda t: t.clamp(lo, hi))


def test_clip_gradient_at_the_bounds_is_one_like_torch(xp):
    _torch()
    data = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    x = Variable(xp.asarray(data))
    F.clip(x, 0.0, 1.0).backward()
    t = torch.tensor(data, requires_grad=True)
    t.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_array_equal(as_numpy(x.grad.data), t.grad.numpy())
    np.testing.assert_array_equal(as_numpy(x.grad.data), [0, 1, 1, 1, 0])


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="clip: x_min and x_max are both None"):
        F.clip(np.ones(2), None, None)


# ---- concat, stack, split ------------------------------------------------------------------
@pytest.mark.parametrize(
    "shapes, axis",
    [([(2, 3), (1, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1), ([(2, 1, 3), (2, 2, 3)], -2),
     ([(3,)], 0)],
    ids=str,
)
def test_concat(xp, dtype, rng, shapes, axis):
    xs = [_normal(xp, rng, s, dtype) for s in shapes]
    y = F.concat(xs, axis)
    assert y.dtype == dtype
    check_function(
        lambda *vs: F.concat(vs, axis=axis), *xs,
        torch_f=lambda *ts: torch.cat(ts, dim=axis),
    )


def test_concat_errors():
    with pytest.raises(ValueError, match=r"concat: arrays must have the same shape .*"
                       r"xs\[0\].shape=\(2, 3\) and xs\[1\].shape=\(2, 4\)"):
        F.concat([np.zeros((2, 3)), np.zeros((2, 4))], axis=0)
    with pytest.raises(ValueError, match="concat"):
        F.concat([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match="at least one"):
        F.concat([])
    with pytest.raises(TypeError, match="sequence"):
        F.concat(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="0-d"):
        F.concat([np.array(1.0), np.array(2.0)])
    with pytest.raises(ValueError, match="out of range"):
        F.concat([np.zeros((2, 3)), np.zeros((2, 3))], axis=2)


@pytest.mark.parametrize("shape, axis", [((3,), 0), ((2, 3), 1), ((2, 3), -1), ((), 0)],
                         ids=str)
def test_stack(xp, dtype, rng, shape, axis):
    xs = [_normal(xp, rng, shape, dtype) for _ in range(3)]
    y = F.stack(xs, axis)
    assert y.shape == np.stack([np.zeros(shape)] * 3, axis).shape
    check_function(
        lambda *vs: F.stack(vs, axis=axis), *xs,
        torch_f=lambda *ts: torch.stack(ts, dim=axis),
    )


def test_stack_errors():
    with pytest.raises(ValueError, match=r"stack: arrays must have the same shape"):
        F.stack([np.zeros((2, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match="at least one"):
        F.stack([])


@pytest.mark.parametrize(
    "shape, sections, axis",
    [((6, 2), 3, 0), ((2, 5), [1, 4], 1), ((2, 5), [2], -1), ((4,), 1, 0), ((4, 3), [0, 2], 0)],
    ids=str,
)
def test_split(xp, dtype, rng, shape, sections, axis):
    x = _normal(xp, rng, shape, dtype)
    ys = F.split(x, sections, axis)
    expected = np.split(as_numpy(x), sections, axis)
    assert isinstance(ys, list) and len(ys) == len(expected)
    for y, e in zip(ys, expected):
        assert y.dtype == dtype
        np.testing.assert_array_equal(as_numpy(y.data), e)
    check_function(
        lambda v: F.split(v, sections, axis), x,
        torch_f=lambda t: torch.tensor_split(t, sections, dim=axis),
    )


def test_split_unused_pieces_get_zero_gradient(xp):
    x = Variable(xp.arange(6.0))
    _, middle, _ = F.split(x, 3)
    (middle * middle).sum().backward()
    np.testing.assert_array_equal(as_numpy(x.grad.data), [0, 0, 4, 6, 0, 0])


def test_split_concat_roundtrip_second_order(rng):
    x = rng.standard_normal((4, 3))
    check_double_backward(lambda v: F.concat(F.split(v * v, 2), axis=1) ** 2, x)


def test_split_errors():
    with pytest.raises(ValueError, match=r"split: cannot cut axis 0 of length 5 into 2"):
        F.split(np.zeros(5), 2)
    with pytest.raises(ValueError, match="0-d"):
        F.split(np.array(1.0), 1)


# ---- where ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cshape, xshape, yshape",
    [((2, 3), (2, 3), (2, 3)), ((2, 3), (2, 3), (3,)), ((3,), (2, 1), ()), ((), (2,), (2,))],
    ids=str,
)
def test_where(xp, dtype, rng, cshape, xshape, yshape):
    cond = xp.asarray(rng.random(cshape) < 0.5)
    x = _normal(xp, rng, xshape, dtype)
    y = _normal(xp, rng, yshape, dtype)
    out = F.where(cond, x, y)
    assert out.dtype == dtype
    check_function(F.where, cond, x, y, torch_f=lambda c, a, b: torch.where(c, a, b))


def test_where_with_python_scalars(xp):
    x = Variable(xp.asarray(np.array([1.0, -2.0, 3.0], dtype=np.float32)))
    y = F.where(x.data > 0, x, 0.0)
    assert y.dtype == np.float32
    z = F.where(x.data > 0, 1.0, x)
    assert z.dtype == np.float32
    (y + z).sum().backward()
    np.testing.assert_array_equal(as_numpy(x.grad.data), [1.0, 1.0, 1.0])


def test_where_condition_must_be_boolean():
    with pytest.raises(TypeError, match="where: condition must be a boolean array"):
        F.where(np.array([1, 0]), np.ones(2), np.zeros(2))


def test_float32_stays_float32_in_shape_functions(rng):
    x = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    parts = F.split(x, 3, axis=1)
    y = F.concat([F.flatten(F.expand_dims(p, 0)) for p in parts], axis=1)
    y = F.mean(F.clip(F.stack([y, y]), -1.0, 1.0)) + F.average(F.where(x.data > 0, x, 0.0))
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_clip_does_not_truncate_integers():
    np.testing.assert_allclose(F.clip(np.arange(5), 1.5, 3.5).data, [1.5, 1.5, 2, 3, 3.5])
