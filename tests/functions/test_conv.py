"""Tests for zerograd.functions.conv: im2col/col2im, conv2d, deconv2d, pooling."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward, check_function, check_torch
from zerograd.utils.shape import pair


def _named(f, name):
    f.__name__ = name
    return f


def _arr(xp, rng, shape, dtype=np.float64):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


# (x shape, W shape (OC, C, KH, KW), stride, pad): strides 1, 2, tuples; pads 0, 1,
# tuples; odd sizes; batch 1; non-square kernels; a kernel as large as the image.
CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1),
    ((2, 1, 6, 7), (2, 1, 2, 3), (2, 1), (1, 0)),
    ((1, 2, 5, 5), (2, 2, 5, 5), 1, (0, 2)),
    ((2, 2, 8, 7), (3, 2, 3, 3), 3, 1),
    ((1, 1, 4, 4), (1, 1, 1, 1), 1, 0),
]
CONV_IDS = [f"x{c[0]}-W{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in CONV_CASES]


# =========================================================================================
# im2col / col2im
# =========================================================================================
def _im2col_reference(x, kh, kw, sh, sw, ph, pw):
    """Windows by explicit loops: (N, C, KH, KW, OH, OW)."""
    n, c, h, w = x.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    col = np.zeros((n, c, kh, kw, oh, ow))
    for p in range(oh):
        for q in range(ow):
            col[:, :, :, :, p, q] = xp_[:, :, p * sh : p * sh + kh, q * sw : q * sw + kw]
    return col


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES, ids=CONV_IDS)
def test_im2col_matches_loops(xp, rng, x_shape, W_shape, stride, pad):
    x = rng.standard_normal(x_shape)
    k = W_shape[2:]
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    expected = _im2col_reference(x, *k, sh, sw, ph, pw)
    col = F.im2col(xp.asarray(x), k, stride, pad, to_matrix=False)
    np.testing.assert_allclose(as_numpy(col.data), expected)
    n, c, kh, kw, oh, ow = expected.shape
    matrix = expected.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)
    np.testing.assert_allclose(as_numpy(F.im2col(xp.asarray(x), k, stride, pad).data), matrix)


@pytest.mark.parametrize("to_matrix", [True, False])
@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES, ids=CONV_IDS)
def test_im2col_col2im_adjoint(xp, rng, x_shape, W_shape, stride, pad, to_matrix):
    x = _arr(xp, rng, x_shape)
    k = W_shape[2:]
    col = F.im2col(x, k, stride, pad, to_matrix)
    c = _arr(xp, rng, col.shape)
    img = F.col2im(c, x_shape, k, stride, pad, to_matrix)
    assert img.shape == x_shape
    lhs = float((col.data * c).sum())
    rhs = float((x * img.data).sum())
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("to_matrix", [True, False])
def test_im2col_col2im_gradients(xp, rng, dtype, to_matrix):
    x = _arr(xp, rng, (1, 2, 4, 5), dtype)
    f = _named(lambda x: F.im2col(x, (2, 3), (1, 2), 1, to_matrix), "im2col")
    check_backward(f, x)
    check_double_backward(f, x)
    col = F.im2col(x, (2, 3), (1, 2), 1, to_matrix)
    assert col.dtype == dtype
    c = _arr(xp, rng, col.shape, dtype)
    g = _named(lambda c: F.col2im(c, x.shape, (2, 3), (1, 2), 1, to_matrix), "col2im")
    check_backward(g, c)
    check_double_backward(g, c)


def test_col2im_overlaps_add_up():
    y = F.col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), 2, 1, 0, to_matrix=False)
    np.testing.assert_array_equal(y.data[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


# =========================================================================================
# conv2d
# =========================================================================================
def _torch_conv(stride, pad):
    import torch.nn.functional as tF

    def f(x, W, b=None):
        return tF.conv2d(x, W, b, stride=pair(stride), padding=pair(pad))

    return f


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES, ids=CONV_IDS)
def test_conv2d_against_torch(xp, rng, x_shape, W_shape, stride, pad, bias):
    pytest.importorskip("torch")
    x, W = _arr(xp, rng, x_shape), _arr(xp, rng, W_shape)
    inputs = [x, W] + ([_arr(xp, rng, W_shape[:1])] if bias else [])
    f = _named(lambda *a: F.conv2d(*a, stride=stride, pad=pad), "conv2d")
    check_torch(f, _torch_conv(stride, pad), *inputs, second_order=True)


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES[:3], ids=CONV_IDS[:3])
def test_conv2d_numerical(xp, rng, x_shape, W_shape, stride, pad):
    x, W, b = _arr(xp, rng, x_shape), _arr(xp, rng, W_shape), _arr(xp, rng, W_shape[:1])
    f = _named(lambda x, W, b: F.conv2d(x, W, b, stride, pad), "conv2d")
    check_backward(f, x, W, b)
    check_double_backward(f, x, W, b)


def test_conv2d_float32(xp, rng):
    torch = pytest.importorskip("torch")  # noqa: F841
    x = _arr(xp, rng, (2, 3, 6, 5), np.float32)
    W = _arr(xp, rng, (4, 3, 3, 2), np.float32)
    b = _arr(xp, rng, (4,), np.float32)
    f = _named(lambda x, W, b: F.conv2d(x, W, b, 2, 1), "conv2d")
    check_function(f, x, W, b, torch_f=_torch_conv(2, 1))
    xv, Wv = Variable(x), Variable(W)
    y = F.conv2d(xv, Wv, b, 2, 1)
    y.backward()
    assert y.dtype == xv.grad.dtype == Wv.grad.dtype == np.float32


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES, ids=CONV_IDS)
def test_conv2d_simple_agrees(xp, rng, x_shape, W_shape, stride, pad):
    x, W, b = _arr(xp, rng, x_shape), _arr(xp, rng, W_shape), _arr(xp, rng, W_shape[:1])
    values = []
    for conv in (F.conv2d, F.conv2d_simple):
        xv, Wv, bv = Variable(x.copy()), Variable(W.copy()), Variable(b.copy())
        y = conv(xv, Wv, bv, stride, pad)
        (y * y).sum().backward()
        values.append([as_numpy(v) for v in (y.data, xv.grad.data, Wv.grad.data, bv.grad.data)])
    for got, expected in zip(*values):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_conv2d_skips_unneeded_input_gradient(rng):
    x = Variable(rng.standard_normal((2, 1, 4, 4)), requires_grad=False)
    W = Variable(rng.standard_normal((2, 1, 3, 3)))
    F.conv2d(x, W, pad=1).sum().backward()
    assert x.grad is None
    assert W.grad.shape == W.shape


def test_conv2d_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = F.conv2d(x, np.ones((1, 1, 2, 2)), np.array([1.0]), stride=2)
    np.testing.assert_array_equal(y.data[0, 0], [[11, 19], [43, 51]])


# =========================================================================================
# deconv2d
# =========================================================================================
# (x shape, W shape (C, OC, KH, KW), stride, pad, extra output size or None)
DECONV_CASES = [
    ((2, 3, 4, 4), (3, 2, 3, 3), 1, 0, None),
    ((1, 2, 3, 4), (2, 3, 3, 2), 2, 1, None),
    ((2, 1, 3, 3), (1, 2, 2, 3), (2, 1), (1, 0), None),
    ((1, 2, 3, 3), (2, 2, 3, 3), 2, 1, (1, 1)),
    ((1, 1, 2, 3), (1, 1, 4, 4), 3, (1, 2), (2, 0)),
]
DECONV_IDS = [f"x{c[0]}-W{c[1]}-s{c[2]}-p{c[3]}-o{c[4]}".replace(" ", "") for c in DECONV_CASES]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("x_shape, W_shape, stride, pad, extra", DECONV_CASES, ids=DECONV_IDS)
def test_deconv2d_against_torch(xp, rng, x_shape, W_shape, stride, pad, extra, bias):
    pytest.importorskip("torch")
    import torch.nn.functional as tF


    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    (kh, kw), (h, w) = W_shape[2:], x_shape[2:]
    outsize = None
    if extra is not None:
        outsize = (sh * (h - 1) + kh - 2 * ph + extra[0], sw * (w - 1) + kw - 2 * pw + extra[1])
    x, W = _arr(xp, rng, x_shape), _arr(xp, rng, W_shape)
    inputs = [x, W] + ([_arr(xp, rng, W_shape[1:2])] if bias else [])
    f = _named(lambda *a: F.deconv2d(*a, stride=stride, pad=pad, outsize=outsize), "deconv2d")

    def torch_f(x, W, b=None):
        return tF.conv_transpose2d(
            x, W, b, stride=pair(stride), padding=pair(pad), output_padding=extra or 0
        )

    check_torch(f, torch_f, *inputs, second_order=True)


def test_deconv2d_numerical_and_float32(xp, rng, dtype):
    x, W, b = (_arr(xp, rng, s, dtype) for s in ((1, 2, 3, 4), (2, 3, 3, 2), (3,)))
    f = _named(lambda x, W, b: F.deconv2d(x, W, b, stride=2, pad=1), "deconv2d")
    check_backward(f, x, W, b)
    check_double_backward(f, x, W, b)
    assert f(x, W, b).dtype == dtype


def test_deconv2d_is_conv2d_adjoint(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    W = rng.standard_normal((4, 3, 3, 2))
    y = F.conv2d(x, W, stride=2, pad=1)
    gy = rng.standard_normal(y.shape)
    gx = F.deconv2d(gy, W, stride=2, pad=1, outsize=(7, 6))
    assert np.isclose(float((y.data * gy).sum()), float((x * gx.data).sum()))


# =========================================================================================
# pooling
# =========================================================================================
# (x shape, kernel, stride, pad); the first is the reshape fast path.
POOL_CASES = [
    ((2, 3, 4, 6), 2, 2, 0),
    ((1, 2, 5, 5), 2, 2, 0),
    ((2, 2, 5, 6), 3, 2, 1),
    ((1, 1, 5, 7), (2, 3), (1, 2), (1, 1)),
    ((1, 2, 4, 4), 3, 1, 0),
    ((2, 1, 6, 4), (3, 2), (3, 2), 0),
]
POOL_IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in POOL_CASES]


@pytest.mark.parametrize("x_shape, k, stride, pad", POOL_CASES, ids=POOL_IDS)
def test_pooling_against_torch(xp, rng, x_shape, k, stride, pad):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = _arr(xp, rng, x_shape)
    f = _named(lambda x: F.pooling(x, k, stride, pad) ** 2, "pooling")
    check_torch(f, lambda t: tF.max_pool2d(t, k, stride, pad) ** 2, x, second_order=True)
    g = _named(lambda x: F.average_pooling(x, k, stride, pad) ** 2, "average_pooling")
    check_torch(g, lambda t: tF.avg_pool2d(t, k, stride, pad) ** 2, x, second_order=True)


@pytest.mark.parametrize("x_shape, k, stride, pad", POOL_CASES, ids=POOL_IDS)
def test_pooling_numerical(xp, rng, dtype, x_shape, k, stride, pad):
    x = _arr(xp, rng, x_shape, dtype)
    for pool in (F.pooling, F.average_pooling):
        f = _named(lambda x, pool=pool: pool(x, k, stride, pad) ** 2, pool.__name__)
        check_backward(f, x)
        check_double_backward(f, x)
        assert f(x).dtype == dtype


def test_max_pooling_pads_with_minus_infinity(xp):
    x = -xp.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = F.pooling(x, 2, stride=2, pad=1)
    np.testing.assert_array_equal(as_numpy(y.data)[0, 0], [[-1, -2], [-4, -5]])


def test_max_pooling_routes_gradient_to_one_element(xp):
    x = Variable(xp.zeros((1, 1, 2, 2)))
    F.pooling(x, 2, stride=2).backward()
    np.testing.assert_array_equal(as_numpy(x.grad.data)[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("x_shape, k, stride, pad", POOL_CASES, ids=POOL_IDS)
def test_pooling_simple_agrees(xp, rng, x_shape, k, stride, pad):
    # pooling_simple pads with zeros: use positive inputs so padding cannot win.
    x = xp.asarray(rng.uniform(0.5, 1.5, x_shape))
    values = []
    for pool in (F.pooling, F.pooling_simple):
        xv = Variable(x.copy())
        y = pool(xv, k, stride, pad)
        (y * y).sum().backward()
        values.append((as_numpy(y.data), as_numpy(xv.grad.data)))
    for got, expected in zip(*values):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


# =========================================================================================
# errors
# =========================================================================================
def test_errors_name_op_and_shapes():
    x = np.zeros((2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: channel counts differ.*3 != 4"):
        F.conv2d(x, np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: expected x of shape \(N, C, H, W\)"):
        F.conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: expected W"):
        F.conv2d(x, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: expected b of shape \(2,\)"):
        F.conv2d(x, np.zeros((2, 3, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"conv2d: the kernel \(7, 7\) does not fit"):
        F.conv2d(x, np.zeros((2, 3, 7, 7)))
    with pytest.raises(ValueError, match=r"deconv2d: channel counts differ.*3 != 2"):
        F.deconv2d(x, np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"deconv2d: outsize=\(20, 20\) does not fit"):
        F.deconv2d(x, np.zeros((3, 2, 3, 3)), outsize=(20, 20))
    with pytest.raises(ValueError, match=r"pooling: expected x of shape"):
        F.pooling(np.zeros((5, 5)), 2)
    with pytest.raises(ValueError, match=r"col2im: col.shape=\(3, 4\) does not match"):
        F.col2im(np.zeros((3, 4)), (1, 1, 4, 4), 2, 2)
    with pytest.raises(ValueError, match=r"pair: expected an int or a pair"):
        F.conv2d(x, np.zeros((2, 3, 3, 3)), stride=(1, 2, 3))


@pytest.mark.parametrize("call, message", [
    (lambda x: F.conv2d(x, np.ones((1, 1, 3, 3)), stride=0), "stride >= 1"),
    (lambda x: F.conv2d(x, np.ones((1, 1, 3, 3)), pad=-1), "pad >= 0"),
    (lambda x: F.deconv2d(x, np.ones((1, 1, 3, 3)), stride=(1, 0)), "stride >= 1"),
    (lambda x: F.pooling(x, 0), "kernel_size >= 1"),
    (lambda x: F.average_pooling(x, 2, stride=1, pad=2), "more than half the kernel"),
])
def test_impossible_geometry_is_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.ones((1, 1, 4, 4)))
