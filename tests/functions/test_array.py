"""Tests for zerograd.functions.array: shapes, indexing, reductions, joins, where.

Every function's forward, first and second derivatives and PyTorch comparison run from
``op_db.py``; this file keeps what the table cannot express: ties, repeated indices,
methods, error messages, dtypes, NaN slices.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_double_backward

try:  # the oracle for check_function's comparisons; those are skipped without it
    import torch
except ImportError:
    torch = None


def _normal(xp, rng, shape, dtype):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def _torch():
    return pytest.importorskip("torch")  # for tests that use torch directly


# ---- reshape, transpose ------------------------------------------------------------------------
def test_reshape_method_forms(rng):
    x = Variable(rng.standard_normal((2, 3)))
    assert x.reshape(3, 2).shape == (3, 2)
    assert x.reshape((6,)).shape == (6,)
    assert F.reshape(x, (2, 3)) is x  # nothing to do: no function recorded


def test_transpose_method_and_T(rng):
    x = Variable(rng.standard_normal((2, 3, 4)))
    assert x.T.shape == (4, 3, 2)
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.transpose((2, 1, 0)).shape == (4, 3, 2)


# ---- get_item ---------------------------------------------------------------------------------
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
def test_sum_to_error():
    with pytest.raises(ValueError, match="sum_to"):
        F.sum_to(np.ones((2, 3)), (4,))


# ---- reductions --------------------------------------------------------------------------------
def test_sum_method():
    x = Variable(np.ones((2, 3)))
    assert x.sum(axis=1, keepdims=True).shape == (2, 1)


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
@pytest.mark.parametrize("axis", [3, -4, (0, 0)], ids=str)
def test_expand_dims_errors(axis):
    with pytest.raises(ValueError, match="expand_dims"):
        F.expand_dims(np.zeros((2, 3)), axis)


def test_flatten_of_empty_batch_and_error():
    assert F.flatten(np.zeros((0, 3, 2))).shape == (0, 6)
    with pytest.raises(ValueError, match="flatten"):
        F.flatten(np.array(1.0))


# ---- clip ---------------------------------------------------------------------------------------
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


def test_stack_errors():
    with pytest.raises(ValueError, match=r"stack: arrays must have the same shape"):
        F.stack([np.zeros((2, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match="at least one"):
        F.stack([])


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


def test_max_of_a_nan_slice_gives_nan_gradient_there_as_torch_amax():
    x = Variable(np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 0.0]]))
    y = F.max(x, axis=1)
    with np.errstate(all="raise"):  # no 0 / 0 on the way
        y.backward()
    assert np.isnan(y.data[0]) and y.data[1] == 3.0
    np.testing.assert_array_equal(x.grad.data, [[np.nan] * 3, [1, 0, 0]])


def test_mean_of_integers_does_not_wrap():
    # Issue 13 sweep: the sum of int64s wrapped before the division.
    x = np.full(4, 2**61, dtype=np.int64)
    y = F.mean(x)
    assert y.dtype == np.float64 and float(y.data) == 2.0**61


def test_mean_of_float16_accumulates_in_float32():
    x = np.full(100, 1000.0, dtype=np.float16)  # the float16 sum (1e5) overflows
    y = F.mean(x)
    assert y.dtype == np.float16 and float(y.data) == 1000.0
    v = Variable(x)
    F.mean(v).backward()
    assert v.grad.dtype == np.float16


@pytest.mark.parametrize("call, message", [
    (lambda: F.sum(np.ones(3), axis=1), "sum: axis 1 is out of range"),
    (lambda: F.sum(np.array(1.0), axis=0), "sum: axis 0 is out of range for a 0-d"),
    (lambda: F.mean(np.ones((2, 2)), axis=(0, 0)), "mean: repeated axis"),
    (lambda: F.max(np.ones((0, 3)), axis=0), "max: the reduction .* covers no element"),
    (lambda: F.reshape(np.ones(6), (4,)), r"reshape: .*x.shape=\(6,\)"),
    (lambda: F.transpose(np.ones((2, 3)), (0,)), "transpose: axes must be a permutation"),
    (lambda: F.broadcast_to(np.ones(3), (4,)), r"broadcast_to: .*x.shape=\(3,\)"),
    (lambda: F.get_item(np.ones(3), 5), "get_item: index 5 is out of bounds"),
    (lambda: F.concat([np.ones(3)], axis=0.5), "concat: axis must be an int"),
])
def test_bad_arguments_name_the_function(call, message):
    with pytest.raises((TypeError, ValueError, IndexError), match=message):
        call()


def test_clip_keeps_the_dtype_of_a_0d_array_under_numpy_1_too():
    # NumPy 1.x promotes a 0-d array with Python bounds (int8 -> int64, float32 ->
    # float64); zerograd gives NumPy 2's dtypes under both.
    assert F.clip(np.array(5, dtype=np.int8), 0, 3).dtype == np.int8
    assert F.clip(np.array(5.0, dtype=np.float32), 0.0, 3.0).dtype == np.float32
    assert F.clip(np.array(5, dtype=np.int8), 0.5, 3.5).dtype == np.float64


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                    reason="NumPy 1.x promotes int8 to hold the bound instead of refusing it")
def test_clip_bound_out_of_the_integer_range_is_named():
    with pytest.raises(ValueError, match="clip: .*-129"):
        F.clip(np.array([0], dtype=np.int8), None, -129)
