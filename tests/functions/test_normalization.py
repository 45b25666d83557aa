"""Tests for zerograd.functions.normalization: batch_norm (train and test mode), layer_norm.

The forward, first and second derivatives and PyTorch comparison run from ``op_db.py``;
this file keeps the running statistics (against PyTorch's), batch sizes, third
derivatives and error messages.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, test_mode
from zerograd.cuda import as_numpy
from zerograd.testing import check_double_backward, check_torch


def _named(f, name):
    f.__name__ = name
    return f


def _arr(xp, rng, shape, dtype=np.float64, scale=1.0, shift=0.0):
    return xp.asarray((rng.standard_normal(shape) * scale + shift).astype(dtype))


BN_SHAPES = [(5, 3), (1, 2, 3, 3), (3, 2, 2, 3), (4, 1)]


def _bn_inputs(xp, rng, shape, dtype):
    c = shape[1]
    x = _arr(xp, rng, shape, dtype, scale=2.0, shift=0.5)
    gamma = _arr(xp, rng, (c,), dtype, shift=1.0)
    beta = _arr(xp, rng, (c,), dtype)
    mean = _arr(xp, rng, (c,), dtype)
    var = xp.asarray(rng.uniform(0.5, 2.0, c).astype(dtype))
    return x, gamma, beta, mean, var


def _tolerances(dtype):
    return {"atol": 1e-4, "rtol": 1e-3} if dtype == np.float32 else {}


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("train", [True, False], ids=["train", "test"])
def test_batch_norm_against_torch(xp, rng, dtype, shape, train):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as tF

    x, gamma, beta, mean, var = _bn_inputs(xp, rng, shape, dtype)
    decay, eps = 0.8, 1e-3
    ours_mean, ours_var = mean.copy(), var.copy()
    f = _named(lambda x, g, b: F.batch_norm(x, g, b, ours_mean, ours_var, decay, eps), "bn")
    theirs_mean = torch.from_numpy(as_numpy(mean).copy())
    theirs_var = torch.from_numpy(as_numpy(var).copy())

    def torch_f(x, g, b):
        return tF.batch_norm(
            x, theirs_mean, theirs_var, g, b, training=train, momentum=1 - decay, eps=eps
        )

    if train:
        check_torch(f, torch_f, x, gamma, beta, second_order=True, **_tolerances(dtype))
    else:
        with test_mode():
            check_torch(f, torch_f, x, gamma, beta, second_order=True, **_tolerances(dtype))
    # One forward on each side (check_torch ran ours once): the running statistics agree.
    np.testing.assert_allclose(as_numpy(ours_mean), theirs_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(as_numpy(ours_var), theirs_var.numpy(), rtol=1e-5)
    if not train:
        np.testing.assert_array_equal(as_numpy(ours_mean), as_numpy(mean))


def test_batch_norm_running_statistics_are_unbiased():
    x = np.array([[1.0], [3.0]])
    mean, var = np.zeros(1), np.ones(1)
    F.batch_norm(x, np.ones(1), np.zeros(1), mean, var, decay=0.5)
    # batch mean 2, biased variance 1, unbiased 2: running = 0.5 * old + 0.5 * batch
    np.testing.assert_allclose(mean, [1.0])
    np.testing.assert_allclose(var, [1.5])


def test_batch_norm_test_mode_backward_and_no_update():
    x = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
    gamma = Variable(np.array([2.0, 3.0]))
    beta = Variable(np.zeros(2))
    mean, var = np.array([1.0, 2.0]), np.array([4.0, 9.0])
    with test_mode():
        y = F.batch_norm(x, gamma, beta, mean, var, eps=0.0)
    np.testing.assert_allclose(y.data, [[0.0, 0.0], [2.0, 2.0]])
    y.backward()
    np.testing.assert_allclose(x.grad.data, [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(gamma.grad.data, [1.0, 2 / 3])
    np.testing.assert_allclose(beta.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(mean, [1.0, 2.0])


def test_batch_norm_accepts_variables_for_running_stats():
    mean, var = Variable(np.zeros(2)), Variable(np.ones(2))
    F.batch_norm(np.array([[1.0, 2.0], [3.0, 6.0]]), np.ones(2), np.zeros(2), mean, var)
    np.testing.assert_allclose(mean.data, [0.2, 0.4])


def test_batch_nrom_alias():
    assert F.batch_nrom is F.batch_norm


def test_batch_norm_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"batch_norm: expected gamma of shape \(3,\)"):
        F.batch_norm(x, np.ones(2), np.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: expected var of shape \(3,\)"):
        F.batch_norm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"batch_norm: expected x of shape \(N, C\)"):
        F.batch_norm(np.zeros(3), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"layer_norm: expected beta of shape \(4,\)"):
        F.layer_norm(np.zeros((2, 4)), np.ones(4), np.zeros(2))


@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm"])
def test_recorded_and_plain_backward_agree(xp, rng, norm):
    # Without create_graph the backward reuses forward's arrays; with it, it recomputes
    # them from differentiable functions. Both must give the same gradients.
    x, gamma, beta, mean, var = _bn_inputs(xp, rng, (3, 4, 2, 2), np.float64)
    if norm == "layer_norm":
        gamma, beta = _arr(xp, rng, (2,), shift=1.0), _arr(xp, rng, (2,))
    grads = []
    for create_graph in (False, True):
        vs = [Variable(a.copy()) for a in (x, gamma, beta)]
        if norm == "batch_norm":
            y = F.batch_norm(*vs, mean.copy(), var.copy())
        else:
            y = F.layer_norm(*vs)
        (y * y * y).sum().backward(create_graph=create_graph)
        grads.append([as_numpy(v.grad.data) for v in vs])
    for plain, recorded in zip(*grads):
        np.testing.assert_allclose(plain, recorded, rtol=1e-10, atol=1e-12)


# ---- batches too small to normalise (issue 13) ----------------------------------------------
@pytest.mark.parametrize("shape", [(1, 3), (1, 2, 1, 1), (0, 3), (0, 2, 4, 4)], ids=str)
def test_batch_norm_refuses_one_or_no_value_per_channel_in_training(shape):
    c = shape[1]
    mean, var = np.zeros(c), np.ones(c)
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per "
                       r"channel when training, got x.shape=.*test_mode"):
        F.batch_norm(np.ones(shape), np.ones(c), np.zeros(c), mean, var)
    np.testing.assert_array_equal(mean, np.zeros(c))  # the running statistics untouched
    np.testing.assert_array_equal(var, np.ones(c))
    with test_mode():  # normalising with the running statistics needs no batch
        assert F.batch_norm(np.ones(shape), np.ones(c), np.zeros(c), mean, var).shape == shape


def test_batch_norm_of_one_image_with_several_pixels_is_fine():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    y = F.batch_norm(x, np.ones(1), np.zeros(1), np.zeros(1), np.ones(1), eps=0.0)
    np.testing.assert_allclose(y.data.mean(), 0.0, atol=1e-12)


@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm"])
def test_third_derivatives_numerically(rng, norm):
    # The gradient Functions' backwards (hand-derived second derivatives) are composed
    # from differentiable functions: check the derivative of the second derivative too.
    x = rng.standard_normal((3, 2, 2, 2) if norm == "batch_norm" else (3, 4))
    c = x.shape[1] if norm == "batch_norm" else x.shape[-1]
    w = rng.standard_normal(x.shape)

    def first(xv, gv, bv):
        if norm == "batch_norm":
            y = F.batch_norm(xv, gv, bv, np.zeros(c), np.ones(c))
        else:
            y = F.layer_norm(xv, gv, bv)
        (y * y * y).sum().backward(create_graph=True)
        gx, gg = xv.grad, gv.grad
        for v in (xv, gv, bv):
            v.cleargrad()
        return (gx * w).sum() + (gg * bv).sum()

    gamma, beta = rng.standard_normal(c) + 1, rng.standard_normal(c)
    check_double_backward(_named(first, f"d/dx {norm}"), x, gamma, beta)


def test_batch_norm_of_integers_in_test_mode_is_not_truncated():
    # Issue 13 sweep: 1 / sqrt(var + eps) was cast to x's integer dtype (0).
    with test_mode():
        y = F.batch_norm(np.array([[1], [3]]), np.ones(1), np.zeros(1), np.zeros(1), np.ones(1))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, [[1 / np.sqrt(1 + 2e-5)], [3 / np.sqrt(1 + 2e-5)]])


def test_batch_norm_of_zero_channels():
    y = F.batch_norm(np.zeros((4, 0)), np.ones(0), np.zeros(0), np.zeros(0), np.ones(0))
    assert y.shape == (4, 0)
