"""Convolution and pooling on NCHW images: conv2d, deconv2d, pooling, im2col, col2im.

Images are ``(N, C, H, W)``. ``kernel_size``, ``stride`` and ``pad`` are an int or a pair
``(for H, for W)`` everywhere. The fused functions never loop over pixels: windows are
strided views of the (padded) image, so a convolution is one copy plus one matrix
product, and scattering back (col2im) is one strided add per kernel offset.

Memory layout. conv2d (and deconv2d with stride 1) return ``(N, C, H, W)`` arrays whose
memory is channels-last, ``(N, H, W, C)``: a transposed view, the layout the matrix
product writes, so that no copy is needed to put it back. Elementwise functions keep
that layout, and the next convolution, pooling and the gradients read it with the
channels of a pixel side by side. Shapes and values are NCHW's in every respect; only
``strides`` (and ``flags``) show the difference. ``np.ascontiguousarray(y)`` gives a
C-ordered copy where one is needed.

Every backward is written with these same functions, so derivatives of any order work:
conv2d's input gradient is a deconv2d and deconv2d's is a conv2d, each other's adjoint.

Example:
    >>> import numpy as np
    >>> from zerograd import Variable
    >>> x = Variable(np.ones((1, 1, 4, 4)))
    >>> W = Variable(np.ones((2, 1, 3, 3)))
    >>> y = conv2d(x, W, pad=1)
    >>> y.shape
    (1, 2, 4, 4)
    >>> y.sum().backward()
    >>> x.grad.shape, W.grad.shape
    ((1, 1, 4, 4), (2, 1, 3, 3))
"""

from __future__ import annotations

import numpy as np

from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.array import broadcast_to, reshape, transpose
from zerograd.functions.array import max as max_
from zerograd.functions.linalg import linear, matmul_array
from zerograd.utils.shape import get_conv_outsize, get_deconv_outsize, pair

__all__ = [
    "Im2col",
    "Col2im",
    "im2col",
    "col2im",
    "Conv2d",
    "Deconv2d",
    "Conv2DGradW",
    "Conv2DGradB",
    "conv2d",
    "deconv2d",
    "Pooling",
    "Pooling2DGrad",
    "Pooling2DWithIndexes",
    "AveragePooling",
    "AveragePoolingGrad",
    "pooling",
    "average_pooling",
    "conv2d_simple",
    "pooling_simple",
]


# =========================================================================================
# Array helpers (no autograd): padding, windows as strided views, scatter back
# =========================================================================================
def _pad(x, ph, pw, value=0):
    """x with ``ph`` rows and ``pw`` columns of ``value`` on each side, in x's layout.

    (Written out rather than with ``np.pad``, whose generality costs tens of
    microseconds a call.)
    """
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    img = _empty_images(xp, (n, c, h + 2 * ph, w + 2 * pw), x.dtype, _channels_last(x))
    img[...] = value
    img[:, :, ph : ph + h, pw : pw + w] = x
    return img


def _windows(x, kh, kw, sh, sw, ph, pw, value=0):
    """The sliding windows of the padded image as a read-only strided view.

    Returns a ``(N, C, KH, KW, OH, OW)`` view: ``v[n, c, i, j, p, q]`` is the padded
    pixel ``(p * sh + i, q * sw + j)``. Nothing is copied except for padding.
    """
    xp = get_array_module(x)
    x = _pad(x, ph, pw, value)
    n, c, h, w = x.shape
    oh = (h - kh) // sh + 1
    ow = (w - kw) // sw + 1
    s0, s1, s2, s3 = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, kh, kw, oh, ow), strides=(s0, s1, s2, s3, s2 * sh, s3 * sw)
    )


def _col2im_array(col, img_shape, sh, sw, ph, pw):
    """Add each window of ``col`` (N, C, KH, KW, OH, OW) back into an image.

    One strided slice-add per kernel offset (KH * KW of them), never a loop over pixels.
    Pixels covered by several windows receive the sum; pixels covered by none, zero.
    """
    xp = get_array_module(col)
    n, c, kh, kw, oh, ow = col.shape
    h, w = img_shape[2], img_shape[3]
    img = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * oh, sh)
        for j in range(kw):
            img[:, :, rows, j : j + sw * ow : sw] += col[:, :, i, j]
    if ph == 0 and pw == 0:
        return img
    return img[:, :, ph : ph + h, pw : pw + w]


def _channels_last(x) -> bool:
    """Whether an (N, C, H, W) array's memory is (N, H, W, C) (what conv2d returns)."""
    return x.shape[1] > 1 and x.transpose(0, 2, 3, 1).flags.c_contiguous


def _empty_images(xp, shape, dtype, channels_last: bool):
    """An uninitialised (N, C, H, W) array, channels-last in memory if asked."""
    if not channels_last:
        return xp.empty(shape, dtype=dtype)
    n, c, h, w = shape
    return xp.empty((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)


def _gemm(a, b):
    """The matrix products of the convolutions (one place, for other array types):
    float16 ones in float32 on NumPy, which has no float16 BLAS (``matmul_array``)."""
    return matmul_array(a, b)


def _pixel_rows(y):
    """(N, C, H, W) -> (N*H*W, C), a row per pixel: free for channels-last memory."""
    n, c, h, w = y.shape
    return y.transpose(0, 2, 3, 1).reshape(n * h * w, c)


def _conv_columns(x, kh, kw, sh, sw, ph, pw, oh, ow, ones: bool = False):
    """The im2col matrix of a convolution's matrix product, in the better orientation.

    Returns ``(col, rows)``. For channels-last ``x`` (rows=True) ``col`` is
    ``(N*OH*OW, KH*KW*C)``, a row per output pixel in (i, j, c) order: the copy moves a
    window's KW pixels with all their channels as one run. Otherwise (rows=False) it is
    ``(C*KH*KW, N*OH*OW)`` in (c, i, j) order, copied image row by image row. Either way
    the product with the weights gives the output one row per pixel: channels-last.
    With ``ones``, ``col`` has one more column (row) of ones, which multiplies the bias
    inside the same product.
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    k, p = kh * kw * c, n * oh * ow
    rows = _channels_last(x)
    if rows:
        img = _pad(x, ph, pw).transpose(0, 2, 3, 1)
        s0, s1, s2, s3 = img.strides
        view = xp.lib.stride_tricks.as_strided(
            img, shape=(n, oh, ow, kh, kw, c), strides=(s0, s1 * sh, s2 * sw, s1, s2, s3)
        )
        if not ones:
            return view.reshape(p, k), True
        col = xp.empty((p, k + 1), dtype=x.dtype)
        e = col.itemsize
        # The first k columns of each row, seen with the window's shape (an explicit
        # view: a reshape could copy, and the copy would be written instead).
        rows_of = xp.lib.stride_tricks.as_strided(
            col, shape=view.shape,
            strides=(oh * ow * (k + 1) * e, ow * (k + 1) * e, (k + 1) * e, kw * c * e, c * e, e),
        )
        rows_of[...] = view
        col[:, k] = 1
        return col, True
    view = _windows(x, kh, kw, sh, sw, ph, pw)[..., :oh, :ow].transpose(1, 2, 3, 0, 4, 5)
    if not ones:
        return view.reshape(k, p), False
    col = xp.empty((k + 1, p), dtype=x.dtype)
    col[:k].reshape(view.shape)[...] = view  # a contiguous block: the reshape is a view
    col[k] = 1
    return col, False


def _weight_matrix(W, rows: bool):
    """W (OC, C, KH, KW) as the (OC, K) matrix that matches ``_conv_columns``'s order."""
    oc = W.shape[0]
    return (W.transpose(0, 2, 3, 1) if rows else W).reshape(oc, -1)


def _conv_forward(x, W, b, stride, pad):
    """Cross-correlation of x (N, C, H, W) with W (OC, C, KH, KW): one matrix product.

    Returns ``(y, (col, rows))``: y (N, OC, OH, OW) in channels-last memory, and the
    columns (with their orientation), which the weight gradient multiplies again. The
    bias rides in the product as one more column of W against a column of ones.
    """
    (sh, sw), (ph, pw) = stride, pad
    n, _, h, w = x.shape
    oc, _, kh, kw = W.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    col, rows = _conv_columns(x, kh, kw, sh, sw, ph, pw, oh, ow, ones=b is not None)
    Wm = _weight_matrix(W, rows)
    if b is not None:
        xp = get_array_module(W)
        Wm = xp.concatenate([Wm, b.reshape(oc, 1).astype(Wm.dtype, copy=False)], axis=1)
    y = _gemm(col, Wm.T) if rows else _gemm(col.T, Wm.T)  # (N*OH*OW, OC)
    return y.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2), (col, rows)


def _geometry(op: str, kernel_size, stride, pad) -> tuple:
    """kernel_size, stride and pad as pairs, checked (kernel and stride at least 1,
    pad at least 0); kernel_size may be None where W gives it."""
    stride, pad = pair(stride), pair(pad)
    kernel = None if kernel_size is None else pair(kernel_size)
    if min(stride) < 1 or min(pad) < 0 or (kernel is not None and min(kernel) < 1):
        got = f"stride={stride}, pad={pad}"
        if kernel is not None:
            got = f"kernel_size={kernel}, " + got
        raise ValueError(
            f"{op}: expected kernel_size >= 1, stride >= 1 and pad >= 0, got {got}"
        )
    return kernel, stride, pad


def _check_images(op: str, name: str, x) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"{op}: expected {name} of shape (N, C, H, W), got {name}.shape={x.shape}; "
            "add the missing axes with reshape (e.g. x.reshape(1, 1, H, W))"
        )


def _check_outsize(op: str, h: int, w: int, kh: int, kw: int, sh, sw, ph, pw) -> tuple:
    oh = get_conv_outsize(h, kh, sh, ph)
    ow = get_conv_outsize(w, kw, sw, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"{op}: the kernel ({kh}, {kw}) does not fit the padded image "
            f"({h + 2 * ph}, {w + 2 * pw}) (input ({h}, {w}), pad ({ph}, {pw})); "
            "use a smaller kernel or more padding"
        )
    return oh, ow


# =========================================================================================
# im2col / col2im
# =========================================================================================
class Im2col(Function):
    """Image to columns; its adjoint (and so its gradient) is col2im."""

    saves = ()  # linear: the gradient needs only x's shape

    def __init__(self, kernel_size, stride, pad, to_matrix):
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.to_matrix = to_matrix

    def forward(self, x):
        xp = get_array_module(x)
        self.input_shape = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.pad
        view = _windows(x, kh, kw, sh, sw, ph, pw)
        if self.to_matrix:
            # (N, OH, OW, C, KH, KW): one row per output pixel; reshape copies once.
            n, c, _, _, oh, ow = view.shape
            return view.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
        return xp.ascontiguousarray(view)  # never hand out the overlapping view

    def backward(self, gy):
        # d/dx: im2col is linear, its transpose scatters the columns back (col2im).
        return col2im(
            gy, self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix
        )


class Col2im(Function):
    """Columns to image (overlaps add up); its adjoint (and so its gradient) is im2col."""

    saves = ()  # linear: the gradient needs only the geometry

    def __init__(self, input_shape, kernel_size, stride, pad, to_matrix):
        self.input_shape = input_shape
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.to_matrix = to_matrix

    def forward(self, col):
        n, c, h, w = self.input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.pad
        oh = get_conv_outsize(h, kh, sh, ph)
        ow = get_conv_outsize(w, kw, sw, pw)
        if self.to_matrix:
            col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
        return _col2im_array(col, self.input_shape, sh, sw, ph, pw)

    def backward(self, gy):
        # d/dcol: col2im is linear, its transpose gathers the windows again (im2col).
        return im2col(gy, self.kernel_size, self.stride, self.pad, self.to_matrix)


def im2col(x, kernel_size, stride=1, pad=0, to_matrix: bool = True) -> Variable:
    """Unfold the sliding windows of an image batch into columns.

    Args:
        x: images ``(N, C, H, W)``.
        kernel_size, stride, pad: an int or a pair ``(for H, for W)``.
        to_matrix: return one row per window, ``(N * OH * OW, C * KH * KW)``; if False,
            the windows as ``(N, C, KH, KW, OH, OW)``.

    Shape: ``(N, C, H, W) -> (N*OH*OW, C*KH*KW)`` (or ``(N, C, KH, KW, OH, OW)``),
    with ``OH = (H + 2*pad - KH) // stride + 1``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> im2col(x, 2, stride=2).data
        array([[ 0.,  1.,  4.,  5.],
               [ 2.,  3.,  6.,  7.],
               [ 8.,  9., 12., 13.],
               [10., 11., 14., 15.]])
    """
    x = as_variable(x)
    _check_images("im2col", "x", x)
    kernel_size, stride, pad = _geometry("im2col", kernel_size, stride, pad)
    _check_outsize("im2col", *x.shape[2:], *kernel_size, *stride, *pad)
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


def col2im(col, input_shape, kernel_size, stride=1, pad=0, to_matrix: bool = True) -> Variable:
    """Fold columns back into images, adding where windows overlap (im2col's adjoint).

    Args:
        col: ``(N * OH * OW, C * KH * KW)``, or ``(N, C, KH, KW, OH, OW)`` when
            ``to_matrix`` is False.
        input_shape: the image shape ``(N, C, H, W)``.
        kernel_size, stride, pad: as given to :func:`im2col`.

    Shape: ``(N*OH*OW, C*KH*KW) -> (N, C, H, W)``.

    Example:
        >>> col2im(np.ones((9, 4)), (1, 1, 4, 4), 2, stride=1).data[0, 0]
        array([[1., 2., 2., 1.],
               [2., 4., 4., 2.],
               [2., 4., 4., 2.],
               [1., 2., 2., 1.]])
    """
    col = as_variable(col)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        raise ValueError(
            f"col2im: input_shape must be (N, C, H, W), got {input_shape}"
        )
    kernel_size, stride, pad = _geometry("col2im", kernel_size, stride, pad)
    n, c, h, w = input_shape
    (kh, kw) = kernel_size
    oh, ow = _check_outsize("col2im", h, w, kh, kw, *stride, *pad)
    expected = (n * oh * ow, c * kh * kw) if to_matrix else (n, c, kh, kw, oh, ow)
    if col.shape != expected:
        raise ValueError(
            f"col2im: col.shape={col.shape} does not match input_shape={input_shape} "
            f"with kernel {kernel_size}, stride {stride}, pad {pad}: expected {expected}"
        )
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(col)


# =========================================================================================
# conv2d / deconv2d
# =========================================================================================
class Conv2d(Function):
    """2-D convolution (cross-correlation); inputs ``x, W`` or ``x, W, b``."""

    # backward needs x and W (for the gradients as functions of them) and the columns
    # the forward built, which the weight gradient multiplies again
    saves = ("inputs", "col")

    def __init__(self, stride, pad):
        self.stride = stride
        self.pad = pad

    def forward(self, x, W, b=None):
        y, self.col = _conv_forward(x, W, b, self.stride, self.pad)
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        # d/dx conv(x, W) is the transposed convolution of gy with the same W.
        gx = None
        if x.requires_grad:
            gx = deconv2d(gy, W, None, self.stride, self.pad, outsize=x.shape[2:])
        # d/dW = sum over batch and pixels of gy times the input windows.
        gW = None
        if W.requires_grad:
            gW = _conv2d_grad_w(x, gy, W.shape[2:], self.stride, self.pad, col=self.col)
        if len(self.inputs) == 2:
            return gx, gW
        gb = Conv2DGradB()(gy) if self.inputs[2].requires_grad else None  # d/db = 1
        return gx, gW, gb


class Deconv2d(Function):
    """Transposed convolution (conv2d's adjoint in x); inputs ``x, W`` or ``x, W, b``."""

    saves = ("inputs",)  # backward: conv2d(gy, W) and the weight gradient of (gy, x)

    def __init__(self, stride, pad, outsize):
        self.stride = stride
        self.pad = pad
        self.outsize = outsize

    def forward(self, x, W, b=None):
        (sh, sw), (ph, pw) = self.stride, self.pad
        cin, cout, kh, kw = W.shape
        if (sh, sw) == (1, 1) and ph < kh and pw < kw:
            # With stride 1 the transposed convolution is a convolution of x padded by
            # K-1-pad with the kernel flipped and its channels swapped: windows gathered
            # in one copy, no scattering back.
            flipped = W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
            y, _ = _conv_forward(x, flipped, b, (1, 1), (kh - 1 - ph, kw - 1 - pw))
            return y
        n, _, h, w = x.shape
        # col[n, o, i, j, p, q] = sum_c W[c, o, i, j] x[n, c, p, q], one matrix product:
        # (OC*KH*KW, C) @ (C, N*H*W); then the windows are added back into the image.
        x2 = x.transpose(1, 0, 2, 3).reshape(cin, n * h * w)
        col = _gemm(W.reshape(cin, cout * kh * kw).T, x2).reshape(cout, kh, kw, n, h, w)
        col = col.transpose(3, 0, 1, 2, 4, 5)
        y = _col2im_array(col, (n, cout) + self.outsize, sh, sw, ph, pw)
        if b is not None:
            y += b.reshape(1, cout, 1, 1)
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        # d/dx deconv(x, W) is the convolution of gy with the same W.
        gx = conv2d(gy, W, None, self.stride, self.pad) if x.requires_grad else None
        # d/dW: the same windowed product as conv2d's, with the roles of x and gy swapped.
        gW = _conv2d_grad_w(gy, x, W.shape[2:], self.stride, self.pad) if W.requires_grad else None
        if len(self.inputs) == 2:
            return gx, gW
        gb = Conv2DGradB()(gy) if self.inputs[2].requires_grad else None  # d/db = 1
        return gx, gW, gb


class Conv2DGradW(Function):
    """The weight gradient of conv2d: ``gW[o, c, i, j] = sum gy[n, o, p, q] *
    x_pad[n, c, p*sh + i, q*sw + j]``, bilinear in ``x`` and ``gy``."""

    saves = ("inputs",)  # backward: deconv2d(gy, ggW) and conv2d(x, ggW)

    def __init__(self, kernel_size, stride, pad, col=None):
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.col = col  # x's columns (and their orientation), when conv2d built them

    def forward(self, x, gy):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.pad
        c = x.shape[1]
        oc, oh, ow = gy.shape[1:]
        if self.col is None:
            col, rows = _conv_columns(x, kh, kw, sh, sw, ph, pw, oh, ow)
        else:
            col, rows = self.col
            self.col = None  # used once: the gradient's graph must not keep it alive
        # One matrix product over (batch, pixel): (OC, N*P) @ (N*P, K); a column of
        # ones the forward added for the bias is left out (a strided view).
        k = kh * kw * c
        g = _pixel_rows(gy).T
        if rows:
            gW = _gemm(g, col[:, :k]).reshape(oc, kh, kw, c).transpose(0, 3, 1, 2)
        else:
            gW = _gemm(g, col[:k].T).reshape(oc, c, kh, kw)
        return get_array_module(gW).ascontiguousarray(gW)

    def backward(self, ggW):
        x, gy = self.inputs
        # <ggW, gW(x, gy)> = <gy, conv2d(x, ggW)>: d/dx is deconv2d(gy, ggW), d/dgy conv2d.
        gx = None
        if x.requires_grad:
            gx = deconv2d(gy, ggW, None, self.stride, self.pad, outsize=x.shape[2:])
        ggy = conv2d(x, ggW, None, self.stride, self.pad) if gy.requires_grad else None
        return gx, ggy


class Conv2DGradB(Function):
    """The bias gradient of conv2d and deconv2d: ``gy`` summed over batch and pixels."""

    saves = ()  # backward broadcasts; it needs only the shape

    def forward(self, gy):
        self.shape = gy.shape
        if _channels_last(gy):
            # A matrix-vector product: summing the rows of (N*H*W, C) with a reduction
            # would walk C values at a time.
            ones = get_array_module(gy).ones(gy.size // gy.shape[1], dtype=gy.dtype)
            return _gemm(ones, _pixel_rows(gy))
        return gy.sum(axis=(0, 2, 3))

    def backward(self, ggb):
        # d/dgy: every pixel of channel o contributed once to gb[o].
        return broadcast_to(reshape(ggb, (1, -1, 1, 1)), self.shape)


def _conv2d_grad_w(x, gy, kernel_size, stride, pad, col=None) -> Variable:
    """conv2d's gradient with respect to W, ``(OC, C, KH, KW)``, as a function of ``x``
    and ``gy`` (differentiable in both, for double backprop; deconv2d uses it too).
    ``col``: x's im2col matrix, if the caller has it."""
    return Conv2DGradW(pair(kernel_size), pair(stride), pair(pad), col)(x, gy)


def conv2d(x, W, b=None, stride=1, pad=0) -> Variable:
    """2-D convolution (cross-correlation, as in every framework) of an image batch.

    Args:
        x: images ``(N, C, H, W)``.
        W: filters ``(OC, C, KH, KW)``.
        b: optional bias ``(OC,)``.
        stride, pad: an int or a pair ``(for H, for W)``; padding is with zeros.

    Shape: ``(N, C, H, W) -> (N, OC, OH, OW)`` with
    ``OH = (H + 2*pad - KH) // stride + 1``, the same for OW.

    Raises:
        ValueError: when ranks or channel counts do not match, or the kernel does not
            fit the padded image.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> W = np.ones((1, 1, 2, 2))
        >>> conv2d(x, W, stride=2).data
        array([[[[10., 18.],
                 [42., 50.]]]])
    """
    x, W = as_variable(x), as_variable(W)
    _check_images("conv2d", "x", x)
    if W.ndim != 4:
        raise ValueError(
            f"conv2d: expected W of shape (OC, C, KH, KW), got W.shape={W.shape}"
        )
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"conv2d: channel counts differ, x.shape={x.shape}, W.shape={W.shape} "
            f"({x.shape[1]} != {W.shape[1]}); W is (out_channels, in_channels, KH, KW)"
        )
    _, stride, pad = _geometry("conv2d", W.shape[2:], stride, pad)  # (a 0x0 kernel too)
    _check_outsize("conv2d", *x.shape[2:], *W.shape[2:], *stride, *pad)
    if b is None:
        return Conv2d(stride, pad)(x, W)
    b = as_variable(b)
    if b.shape != (W.shape[0],):
        raise ValueError(
            f"conv2d: expected b of shape ({W.shape[0]},) (one per output channel), got "
            f"b.shape={b.shape}"
        )
    return Conv2d(stride, pad)(x, W, b)


def deconv2d(x, W, b=None, stride=1, pad=0, outsize=None) -> Variable:
    """Transposed convolution ("deconvolution"), the adjoint of :func:`conv2d` in x.

    Args:
        x: images ``(N, C, H, W)``.
        W: filters ``(C, OC, KH, KW)`` (input channels first, as in Chainer and DeZero).
        b: optional bias ``(OC,)``.
        stride, pad: an int or a pair ``(for H, for W)``.
        outsize: the output ``(OH, OW)``; by default ``stride*(H-1) + KH - 2*pad``. Any
            size that a conv2d with the same kernel, stride and pad maps back to
            ``(H, W)`` is allowed (at most ``stride - 1`` larger than the default).

    Shape: ``(N, C, H, W) -> (N, OC, OH, OW)``.

    Raises:
        ValueError: when ranks, channel counts or ``outsize`` do not fit.

    Example:
        >>> x = np.ones((1, 1, 2, 2))
        >>> deconv2d(x, np.ones((1, 1, 2, 2)), stride=1).data
        array([[[[1., 2., 1.],
                 [2., 4., 2.],
                 [1., 2., 1.]]]])
    """
    x, W = as_variable(x), as_variable(W)
    _check_images("deconv2d", "x", x)
    if W.ndim != 4:
        raise ValueError(
            f"deconv2d: expected W of shape (C, OC, KH, KW), got W.shape={W.shape}"
        )
    if x.shape[1] != W.shape[0]:
        raise ValueError(
            f"deconv2d: channel counts differ, x.shape={x.shape}, W.shape={W.shape} "
            f"({x.shape[1]} != {W.shape[0]}); W is (in_channels, out_channels, KH, KW)"
        )
    _, stride, pad = _geometry("deconv2d", W.shape[2:], stride, pad)  # (a 0x0 kernel too)
    (sh, sw), (ph, pw) = stride, pad
    h, w = x.shape[2:]
    kh, kw = W.shape[2:]
    if outsize is None:
        outsize = (get_deconv_outsize(h, kh, sh, ph), get_deconv_outsize(w, kw, sw, pw))
    outsize = pair(outsize)
    back = (get_conv_outsize(outsize[0], kh, sh, ph), get_conv_outsize(outsize[1], kw, sw, pw))
    if min(outsize) <= 0 or back != (h, w):
        default = (get_deconv_outsize(h, kh, sh, ph), get_deconv_outsize(w, kw, sw, pw))
        raise ValueError(
            f"deconv2d: outsize={outsize} does not fit input ({h}, {w}) with kernel "
            f"({kh}, {kw}), stride {stride}, pad {pad}; the default is {default}, and each "
            "size may exceed it by at most stride - 1"
        )
    if b is None:
        return Deconv2d(stride, pad, outsize)(x, W)
    b = as_variable(b)
    if b.shape != (W.shape[1],):
        raise ValueError(
            f"deconv2d: expected b of shape ({W.shape[1]},) (one per output channel), got "
            f"b.shape={b.shape}"
        )
    return Deconv2d(stride, pad, outsize)(x, W, b)


# =========================================================================================
# Pooling
# =========================================================================================
def _offsets(kernel_size):
    """The kernel offsets ``(k, i, j)``, row-major: k = i * KW + j."""
    kh, kw = kernel_size
    return [(i * kw + j, i, j) for i in range(kh) for j in range(kw)]


def _shifted(img, i, j, stride, out_hw):
    """The pixels at kernel offset ``(i, j)`` of every window, ``(N, C, OH, OW)``: a view."""
    (sh, sw), (oh, ow) = stride, out_hw
    return img[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]


def _lowest(dtype):
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


def _tiles(kernel_size, stride, pad) -> bool:
    """Whether the windows tile the image: stride equal to the kernel, no padding."""
    return tuple(stride) == tuple(kernel_size) and tuple(pad) == (0, 0)


def _max_of(xp, views):
    """The elementwise maximum of ``views`` as a new array (in the first one's layout)."""
    if len(views) == 1:
        return views[0].copy(order="K")
    y = xp.maximum(views[0], views[1])
    for v in views[2:]:
        xp.maximum(y, v, out=y)
    return y


def _max_windows(x, kernel_size, stride, pad):
    """Each window's maximum, ``(N, C, OH, OW)``, in x's memory layout."""
    xp = get_array_module(x)
    (kh, kw), (oh, ow) = kernel_size, _pooled_hw(x.shape, kernel_size, stride, pad)
    if _tiles(kernel_size, stride, pad):
        # The rows of each window first: x[:, :, i::KH] keeps whole image rows together
        # (long runs in memory) and leaves 1/KH of the data for the columns, whose
        # pixels interleave.
        rows = [x[:, :, i : kh * oh : kh, : kw * ow] for i in range(kh)]
        t = rows[0] if kh == 1 else _max_of(xp, rows)
        return _max_of(xp, [t[..., j::kw] for j in range(kw)])
    # Padding is -inf: a pad value must never win over a real (negative) pixel.
    img = _pad(x, *pad, _lowest(x.dtype))
    views = [_shifted(img, i, j, stride, (oh, ow)) for _, i, j in _offsets(kernel_size)]
    return _max_of(xp, views)


def _first_max_index(x, y, kernel_size, stride, pad):
    """For each window, the offset ``k = i * KW + j`` of its first maximum (row-major,
    so ties go to the first one, PyTorch's choice)."""
    xp = get_array_module(x)
    img = _pad(x, *pad, _lowest(x.dtype))
    offsets = _offsets(kernel_size)
    dtype = np.min_scalar_type(len(offsets) - 1)
    # The index is the number of offsets before the first maximum: add 1 for every
    # offset k such that none of 0..k holds the maximum. Boolean and integer passes over
    # y-sized arrays cost little beside the comparisons with x (np.where with a scalar
    # would cost four times as much).
    idx = xp.zeros_like(y, dtype=dtype)
    seen = None
    for _, i, j in offsets[:-1]:
        hit = _shifted(img, i, j, stride, y.shape[2:]) == y
        seen = hit if seen is None else xp.logical_or(seen, hit, out=seen)
        idx += ~seen
    return idx


def _same_layout(a, like):
    """``a`` with the memory layout of ``like`` (channels-last or not), copied if needed."""
    if a.shape[1] == 1 or _channels_last(like) == _channels_last(a):
        return a
    xp = get_array_module(a)
    if _channels_last(like):
        return xp.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(a)


class Pooling(Function):
    """Max pooling; the backward finds which element of each window was the maximum."""

    saves = ("inputs", "outputs")  # the maxima are found again by comparing x with y

    def __init__(self, kernel_size, stride, pad):
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad

    def forward(self, x):
        return _max_windows(x, self.kernel_size, self.stride, self.pad)

    def indexes(self):
        """For each window, the offset ``k = i * KW + j`` of its first maximum."""
        x, y = self.inputs[0].data, self.outputs[0]().data
        return _first_max_index(x, y, self.kernel_size, self.stride, self.pad)

    def backward(self, gy):
        (x,) = self.inputs
        # d/dx max = 1 at the chosen element of each window, 0 elsewhere.
        return Pooling2DGrad(self, x.shape)(gy)


def _pooled_hw(shape, kernel_size, stride, pad):
    h, w = shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, pad
    return get_conv_outsize(h, kh, sh, ph), get_conv_outsize(w, kw, sw, pw)


class Pooling2DGrad(Function):
    """Max pooling's backward: route each window's gradient to its maximum.

    ``pool`` is the :class:`Pooling`, or a :class:`Pooling2DWithIndexes` whose routing
    is reused (the backward of the backward).
    """

    saves = ("indexes",)  # the routing; the backward gathers with it

    def __init__(self, pool, input_shape=None):
        self.kernel_size = pool.kernel_size
        self.stride = pool.stride
        self.pad = pool.pad
        if isinstance(pool, Pooling):
            x = pool.inputs[0]
            self.indexes = pool.indexes()
            self.input_shape = x.shape if input_shape is None else tuple(input_shape)
            self.channels_last = _channels_last(x.data)
        else:
            self.indexes = pool.indexes
            self.input_shape = pool.input_shape
            self.channels_last = pool.channels_last

    def forward(self, gy):
        xp = get_array_module(gy)
        idx, shape = self.indexes, self.input_shape
        gy = _same_layout(gy, idx)
        if _tiles(self.kernel_size, self.stride, self.pad):
            # Every pixel is in at most one window: write each offset's share once.
            (kh, kw), (oh, ow) = self.kernel_size, idx.shape[2:]
            gx = _empty_images(xp, shape, gy.dtype, self.channels_last)
            if shape[2] != kh * oh or shape[3] != kw * ow:
                gx[...] = 0  # pixels past the last whole window get no gradient
            for k, i, j in _offsets(self.kernel_size):
                xp.multiply(gy, idx == k, out=_shifted(gx, i, j, self.stride, (oh, ow)))
            return gx
        (ph, pw) = self.pad
        n, c, h, w = shape
        img = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
        for k, i, j in _offsets(self.kernel_size):
            _shifted(img, i, j, self.stride, gy.shape[2:])[...] += (idx == k) * gy
        return img[:, :, ph : ph + h, pw : pw + w]

    def backward(self, ggx):
        # Scattering to fixed positions is linear; its adjoint gathers from them.
        return Pooling2DWithIndexes(self)(ggx)


class Pooling2DWithIndexes(Function):
    """Pick from each window of ``x`` the element a max pooling chose (fixed indexes)."""

    saves = ("indexes",)  # the routing; the backward scatters with it

    def __init__(self, grad: Pooling2DGrad):
        self.kernel_size = grad.kernel_size
        self.stride = grad.stride
        self.pad = grad.pad
        self.indexes = grad.indexes
        self.input_shape = grad.input_shape
        self.channels_last = grad.channels_last

    def forward(self, x):
        xp = get_array_module(x)
        img = _pad(x, *self.pad)
        idx = self.indexes
        y = xp.zeros(idx.shape, dtype=x.dtype)
        for k, i, j in _offsets(self.kernel_size):
            s = _shifted(img, i, j, self.stride, y.shape[2:])
            y += xp.where(idx == k, s, x.dtype.type(0))
        return y

    def backward(self, gy):
        return Pooling2DGrad(self)(gy)  # adjoint: scatter


class AveragePooling(Function):
    """Average pooling; padding counts as zeros in the average (as Chainer, PyTorch)."""

    saves = ()  # the gradient spreads gy evenly: it needs only x's shape

    def __init__(self, kernel_size, stride, pad):
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad

    def forward(self, x):
        self.input_shape = x.shape
        img = _pad(x, *self.pad)
        out_hw = _pooled_hw(x.shape, self.kernel_size, self.stride, self.pad)
        y = _shifted(img, 0, 0, self.stride, out_hw).copy(order="K")
        for _, i, j in _offsets(self.kernel_size)[1:]:
            y += _shifted(img, i, j, self.stride, out_hw)
        y /= len(_offsets(self.kernel_size))
        return y

    def backward(self, gy):
        # d/dx mean = 1 / (KH*KW) for every element of every window containing x.
        grad = AveragePoolingGrad(self.kernel_size, self.stride, self.pad, self.input_shape)
        return grad(gy)


class AveragePoolingGrad(Function):
    """Average pooling's backward: spread each window's gradient evenly over it."""

    saves = ()  # linear in gy: nothing to keep

    def __init__(self, kernel_size, stride, pad, input_shape):
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.input_shape = input_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.pad
        n, c, oh, ow = gy.shape
        col = xp.broadcast_to((gy / (kh * kw))[:, :, None, None], (n, c, kh, kw, oh, ow))
        return _col2im_array(col, self.input_shape, sh, sw, ph, pw)

    def backward(self, ggx):
        # Spreading is linear; its adjoint is averaging over the windows again.
        return AveragePooling(self.kernel_size, self.stride, self.pad)(ggx)


def _pool_args(op: str, x, kernel_size, stride, pad):
    x = as_variable(x)
    _check_images(op, "x", x)
    kernel_size, stride, pad = _geometry(op, kernel_size, stride, pad)
    if any(2 * p > k for p, k in zip(pad, kernel_size)):
        raise ValueError(
            f"{op}: pad {pad} is more than half the kernel {kernel_size}: some windows "
            "would hold only padding; use pad <= kernel_size // 2"
        )
    _check_outsize(op, *x.shape[2:], *kernel_size, *stride, *pad)
    return x, kernel_size, stride, pad


def pooling(x, kernel_size, stride=1, pad=0) -> Variable:
    """Max pooling over the windows of an image batch.

    Padding is with -inf, so it never wins. The gradient of each window goes to its
    maximum (the first one, on ties), as in PyTorch.

    Args:
        x: images ``(N, C, H, W)``.
        kernel_size, stride, pad: an int or a pair ``(for H, for W)``. Note DeZero's
            default ``stride=1``; pass ``stride=kernel_size`` for the usual pooling.

    Shape: ``(N, C, H, W) -> (N, C, OH, OW)``, ``OH = (H + 2*pad - KH) // stride + 1``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> pooling(x, 2, stride=2).data
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    x, kernel_size, stride, pad = _pool_args("pooling", x, kernel_size, stride, pad)
    return Pooling(kernel_size, stride, pad)(x)


def average_pooling(x, kernel_size, stride=1, pad=0) -> Variable:
    """Average pooling over the windows of an image batch (padding counts as zeros).

    Shape: ``(N, C, H, W) -> (N, C, OH, OW)``, ``OH = (H + 2*pad - KH) // stride + 1``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> average_pooling(x, 2, stride=2).data
        array([[[[ 2.5,  4.5],
                 [10.5, 12.5]]]])
    """
    x, kernel_size, stride, pad = _pool_args("average_pooling", x, kernel_size, stride, pad)
    return AveragePooling(kernel_size, stride, pad)(x)


# =========================================================================================
# The book's teaching versions, composed from im2col (test oracles for the fused ones)
# =========================================================================================
def conv2d_simple(x, W, b=None, stride=1, pad=0) -> Variable:
    """conv2d as the book first writes it: im2col, then one ``linear``.

    Slower than :func:`conv2d` (it materialises the columns and transposes); same result.

    Shape: ``(N, C, H, W) -> (N, OC, OH, OW)``, W ``(OC, C, KH, KW)``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> conv2d_simple(x, np.ones((1, 1, 2, 2)), stride=2).data
        array([[[[10., 18.],
                 [42., 50.]]]])
    """
    x, W = as_variable(x), as_variable(W)
    _check_images("conv2d_simple", "x", x)
    if W.ndim != 4 or x.shape[1] != W.shape[1]:
        raise ValueError(
            f"conv2d_simple: expected W of shape (OC, {x.shape[1]}, KH, KW) for "
            f"x.shape={x.shape}, got W.shape={W.shape}"
        )
    n, _, h, w = x.shape
    oc, _, kh, kw = W.shape
    _, (sh, sw), (ph, pw) = _geometry("conv2d_simple", (kh, kw), stride, pad)
    oh, ow = _check_outsize("conv2d_simple", h, w, kh, kw, sh, sw, ph, pw)
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    y = linear(col, transpose(reshape(W, (oc, -1))), b)
    return transpose(reshape(y, (n, oh, ow, oc)), (0, 3, 1, 2))


def pooling_simple(x, kernel_size, stride=1, pad=0) -> Variable:
    """Max pooling as the book first writes it: im2col, then ``max`` over each window.

    Unlike :func:`pooling`, padding is with zeros (im2col's), and tied maxima share
    the gradient (``max``'s rule).

    Shape: ``(N, C, H, W) -> (N, C, OH, OW)``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> pooling_simple(x, 2, stride=2).data
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    x, kernel_size, stride, pad = _pool_args("pooling_simple", x, kernel_size, stride, pad)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, pad
    oh, ow = get_conv_outsize(h, kh, sh, ph), get_conv_outsize(w, kw, sw, pw)
    col = reshape(im2col(x, kernel_size, stride, pad, to_matrix=True), (-1, kh * kw))
    y = max_(col, axis=1)
    return transpose(reshape(y, (n, oh, ow, c)), (0, 3, 1, 2))
