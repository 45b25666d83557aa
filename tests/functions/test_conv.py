"""Tests for zerograd.functions.conv: im2col/col2im, conv2d, deconv2d, pooling.

The forward, first and second derivatives and PyTorch comparison of every function run
from ``op_db.py``; this file keeps im2col against loops, adjointness, the composed
oracles, padding and routing rules, skipped gradients and error messages.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_function
from zerograd.utils.shape import pair


def _named(f, name):
    f.__name__ = name
    return f


def _arr(xp, rng, shape, dtype=np.float64):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def _channels_last(xp, a):
    """The same (N, C, H, W) values with channels-last memory, as conv2d returns them."""
    return xp.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _is_channels_last(a):
    return a.transpose(0, 2, 3, 1).flags.c_contiguous


def _values_and_grads(f, *arrays):
    """f's output and the gradients of <f, f> for every input, as NumPy arrays."""
    vs = [Variable(a) for a in arrays]
    y = f(*vs)
    (y * y).sum().backward()
    return [as_numpy(y.data)] + [as_numpy(v.grad.data) for v in vs]


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


def test_col2im_overlaps_add_up():
    y = F.col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), 2, 1, 0, to_matrix=False)
    np.testing.assert_array_equal(y.data[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


# =========================================================================================
# conv2d
# =========================================================================================
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


def test_conv2d_returns_channels_last_memory(xp, rng):
    # The matrix product writes (N*H*W, OC); conv2d returns it as an NCHW view.
    x, W = _arr(xp, rng, (2, 3, 5, 4)), _arr(xp, rng, (4, 3, 3, 3))
    y = F.conv2d(x, W, pad=1)
    assert y.shape == (2, 4, 5, 4)
    assert _is_channels_last(y.data)
    expected = F.conv2d(x, W, pad=1).data
    np.testing.assert_array_equal(as_numpy(xp.ascontiguousarray(y.data)), as_numpy(expected))


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES, ids=CONV_IDS)
def test_conv2d_any_input_layout(xp, rng, x_shape, W_shape, stride, pad):
    # Channels-last input (what one conv2d hands the next) takes the other im2col path.
    x, W, b = _arr(xp, rng, x_shape), _arr(xp, rng, W_shape), _arr(xp, rng, W_shape[:1])

    def conv(x, W, b):
        return F.conv2d(x, W, b, stride, pad)

    expected = _values_and_grads(conv, x, W, b)
    for got, want in zip(_values_and_grads(conv, _channels_last(xp, x), W, b), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, pad", [(1, 0), (1, 1), (1, 2), (2, 1)])
def test_deconv2d_any_input_layout(xp, rng, stride, pad):
    # Stride 1 (pad < kernel) is a convolution with the flipped kernel; the rest scatter.
    x, W, b = _arr(xp, rng, (2, 3, 4, 5)), _arr(xp, rng, (3, 2, 3, 3)), _arr(xp, rng, (2,))

    def deconv(x, W, b):
        return F.deconv2d(x, W, b, stride, pad)

    expected = _values_and_grads(deconv, x, W, b)
    for got, want in zip(_values_and_grads(deconv, _channels_last(xp, x), W, b), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_small_cnn_against_torch_to_second_order(xp, rng):
    # The benchmark's network in miniature: every intermediate is channels-last, so the
    # layout-dependent paths of conv2d, its gradients and pooling all run, to second order.
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x = _arr(xp, rng, (2, 1, 8, 6))
    W1, b1 = _arr(xp, rng, (3, 1, 3, 3)), _arr(xp, rng, (3,))
    W2, b2 = _arr(xp, rng, (4, 3, 3, 3)), _arr(xp, rng, (4,))

    def net(x, W1, b1, W2, b2):
        h = F.pooling(F.tanh(F.conv2d(x, W1, b1, pad=1)), 2, stride=2)
        return F.pooling(F.tanh(F.conv2d(h, W2, b2, pad=1)), 2, stride=2)

    def torch_net(x, W1, b1, W2, b2):
        h = TF.max_pool2d(torch.tanh(TF.conv2d(x, W1, b1, padding=1)), 2)
        return TF.max_pool2d(torch.tanh(TF.conv2d(h, W2, b2, padding=1)), 2)

    check_function(net, x, W1, b1, W2, b2, torch_f=torch_net)


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


@pytest.mark.parametrize("x_shape, k, stride, pad", POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("pool", [F.pooling, F.average_pooling])
def test_pooling_any_input_layout(xp, rng, x_shape, k, stride, pad, pool):
    x = _arr(xp, rng, x_shape)
    x[..., 0] = x[..., 1]  # ties, routed to the first maximum in either layout

    def f(x):
        return pool(x, k, stride, pad)

    expected = _values_and_grads(f, x)
    for got, want in zip(_values_and_grads(f, _channels_last(xp, x)), expected):
        np.testing.assert_array_equal(got, want)


def test_max_pooling_gradient_with_the_other_layout(xp, rng):
    # A channels-last pooling input receiving a C-ordered gradient (after a reshape).
    x = Variable(_channels_last(xp, _arr(xp, rng, (2, 3, 4, 6))))
    y = F.pooling(x, 2, stride=2)
    gy = _arr(xp, rng, y.shape)
    (y * gy).sum().backward()
    x2 = Variable(xp.ascontiguousarray(x.data))
    (F.pooling(x2, 2, stride=2) * gy).sum().backward()
    np.testing.assert_array_equal(as_numpy(x.grad.data), as_numpy(x2.grad.data))


def test_max_pooling_ties_go_to_the_first_maximum(xp):
    # Each 2x2 window holds its maximum twice, in a different pair of places.
    x = xp.asarray([[[[1.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 4.0, 4.0]]]])
    for a in (x, _channels_last(xp, xp.concatenate([x, x], axis=1))[:, :1]):
        v = Variable(a)
        F.pooling(v, 2, stride=2).sum().backward()
        np.testing.assert_array_equal(
            as_numpy(v.grad.data)[0, 0],
            [[1, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 0]],
        )


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


def test_conv2d_simple_names_itself_for_impossible_geometry():
    # Issue 13 sweep: a ZeroDivisionError (stride 0), or im2col's name.
    x, W = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match="conv2d_simple: expected kernel_size >= 1, stride"):
        F.conv2d_simple(x, W, stride=0)
    with pytest.raises(ValueError, match="conv2d_simple: the kernel"):
        F.conv2d_simple(x, np.ones((1, 1, 5, 5)))


@pytest.mark.parametrize("op", ["conv2d", "deconv2d"])
def test_an_empty_kernel_is_refused(op):
    # Issue 13 sweep: a (2, 1, 0, 0) W gave an output (PyTorch refuses it).
    with pytest.raises(ValueError, match=rf"{op}: expected kernel_size >= 1"):
        getattr(F, op)(np.ones((1, 1, 3, 3)), np.ones((1, 1, 0, 0)))
