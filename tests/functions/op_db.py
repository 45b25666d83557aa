"""One table of zerograd's functions for the tests: a row per op (PyTorch's OpInfo idea).

A row names the public function of ``zerograd.functions`` it covers, how to call it,
its PyTorch counterpart, the inputs to draw (shapes, including ``()``, broadcasting
and 0-sized ones where the op allows them), the dtypes, and whether it is twice
differentiable. ``test_op_db.py`` runs every row through the same checks: the forward
against PyTorch (or a NumPy reference), gradients against central differences (first
and second order), gradients against PyTorch's autograd, on NumPy and, where a GPU
exists, on CuPy (the ``xp`` fixture). Its meta-test fails when a public function of
``zerograd.functions`` has no row and is not in :data:`EXCLUDED`.

Adding an op is adding a row: ``OpInfo(F.my_op, torch=lambda t: ..., cases=UNARY)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import zerograd.functions as F
from zerograd import test_mode
from zerograd.cuda import get_array_module
from zerograd.utils.shape import pair

try:  # the oracle; rows still run their numerical checks without it
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - exercised on machines without torch
    torch = TF = None

FLOATS = (np.float32, np.float64)


# ---- how inputs are drawn ----------------------------------------------------------------
# A maker turns (rng, shape, dtype) into a NumPy array; the test moves it to the device.
def normal(rng, shape, dtype):
    return (2 * rng.standard_normal(shape)).astype(dtype)


def positive(rng, shape, dtype):
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


def away_from_zero(rng, shape, dtype):
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (sign * rng.uniform(0.5, 2.0, shape)).astype(dtype)


def probability(rng, shape, dtype):
    return rng.uniform(0.1, 0.9, shape).astype(dtype)


def labels(classes):
    """Integer class indices in [0, classes): passed through, never differentiated."""

    def make(rng, shape, dtype):
        return rng.integers(0, classes, shape)

    return make


def boolean(rng, shape, dtype):
    return rng.random(shape) < 0.5


def positive_sum(rng, shape, dtype):
    """Values whose sums stay away from 0 (for functions divided by a sum)."""
    return rng.uniform(0.5, 1.5, shape).astype(dtype)


@dataclass(frozen=True)
class Case:
    """One call of an op: the input shapes, and keyword arguments passed to both the op
    and its PyTorch counterpart."""

    shapes: tuple
    kwargs: dict = field(default_factory=dict)

    def __str__(self) -> str:
        shapes = ",".join(str(s).replace(" ", "") for s in self.shapes)
        extra = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return shapes + (f"|{extra}" if extra else "")


def cases(*shape_tuples, **kwargs) -> list[Case]:
    """One Case per tuple of shapes, all with the same keyword arguments."""
    return [Case(tuple(s), dict(kwargs)) for s in shape_tuples]


def unary(*shapes, **kwargs) -> list[Case]:
    return [Case((s,), dict(kwargs)) for s in shapes]


@dataclass(frozen=True)
class OpInfo:
    """A row of the table.

    Attributes:
        func: the public function of ``zerograd.functions`` the row covers.
        cases: the calls to test.
        torch: the PyTorch counterpart, called on tensors with the case's kwargs; None
            where PyTorch has none (then ``reference`` checks the forward).
        op: how to call zerograd (default: ``func(*inputs, **kwargs)``).
        makers: one input maker per input (default: ``normal`` for each).
        variant: a label that tells rows of one function apart.
        reference: a NumPy forward ``reference(*arrays, **kwargs)`` (float64 arrays).
        dtypes: the float dtypes to run.
        twice: whether the op is twice differentiable (second-order checks).
        differentiable: False for a forward-only row (accuracy).
        tolerances: extra keyword arguments for zerograd.testing's checks, per dtype.
    """

    func: Callable
    cases: list
    torch: Callable | None = None
    op: Callable | None = None
    makers: tuple | None = None
    variant: str = ""
    reference: Callable | None = None
    dtypes: tuple = FLOATS
    twice: bool = True
    differentiable: bool = True
    tolerances: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        base = self.func.__name__
        return f"{base}[{self.variant}]" if self.variant else base

    def call(self, *inputs, **kwargs):
        if self.op is not None:
            return self.op(*inputs, **kwargs)
        return self.func(*inputs, **kwargs)

    def make_inputs(self, rng, case: Case, dtype) -> list:
        makers = self.makers or (normal,) * len(case.shapes)
        return [make(rng, shape, dtype) for make, shape in zip(makers, case.shapes)]


# ---- PyTorch adapters ---------------------------------------------------------------------
def _t_reduce(name):
    """torch's sum/mean/amax/amin with NumPy's ``axis`` (None: every axis) and ``keepdims``."""

    def f(t, axis=None, keepdims=False):
        dims = tuple(range(t.ndim)) if axis is None else axis
        if t.ndim == 0:
            return getattr(t, name)()
        return getattr(t, name)(dim=dims, keepdim=keepdims)

    return f


def _t_sum_to(t, shape):
    lead = t.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and t.shape[lead + i] != 1
    )
    return t.sum(dim=axes, keepdim=True).reshape(shape) if axes else t.reshape(shape)


def _t_unfold(x, kernel_size, stride=1, pad=0):
    n, c = x.shape[:2]
    kh, kw = pair(kernel_size)
    cols = TF.unfold(x, (kh, kw), padding=pair(pad), stride=pair(stride))  # (N, CKK, L)
    return cols.transpose(1, 2).reshape(-1, c * kh * kw)


def _t_fold(col, input_shape, kernel_size, stride=1, pad=0):
    n, c, h, w = input_shape
    kh, kw = pair(kernel_size)
    cols = col.reshape(n, -1, c * kh * kw).transpose(1, 2)
    return TF.fold(cols, (h, w), (kh, kw), padding=pair(pad), stride=pair(stride))


def _t_batch_norm(train):
    def f(x, gamma, beta, decay=0.9, eps=2e-5):
        c = x.shape[1]
        mean = torch.zeros(c, dtype=x.dtype) + 0.1
        var = torch.ones(c, dtype=x.dtype) * 1.5
        return TF.batch_norm(x, mean, var, gamma, beta, training=train, eps=eps)

    return f


def _t_deconv(x, W, b=None, stride=1, pad=0, outsize=None):
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    extra = (0, 0)
    if outsize is not None:  # torch's output_padding: the excess over the default size
        (kh, kw), (h, w) = W.shape[2:], x.shape[2:]
        extra = (outsize[0] - (sh * (h - 1) + kh - 2 * ph),
                 outsize[1] - (sw * (w - 1) + kw - 2 * pw))
    return TF.conv_transpose2d(x, W, b, stride=(sh, sw), padding=(ph, pw), output_padding=extra)


def _batch_norm(train):
    """batch_norm with fresh running statistics (0.1 and 1.5) on each call."""

    def f(x, gamma, beta, decay=0.9, eps=2e-5):
        xp = get_array_module(x.data)
        c = x.shape[1]
        mean = xp.full(c, 0.1, dtype=x.dtype)
        var = xp.full(c, 1.5, dtype=x.dtype)
        if train:
            return F.batch_norm(x, gamma, beta, mean, var, decay, eps)
        with test_mode():
            return F.batch_norm(x, gamma, beta, mean, var, decay, eps)

    return f


def _accuracy_reference(y, t):
    return np.asarray((y.argmax(axis=1) == t).mean())


# ---- shapes -------------------------------------------------------------------------------
UNARY = unary((), (3,), (2, 3), (0, 3))
BINARY = cases(
    ((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((3,), ()), ((0, 3), (3,))
)
CONV = [  # x, W, b; strides 1, 2 and pairs, pads 0, 1 and pairs, odd sizes, batch 1,
    # non-square kernels, a kernel as large as the image, a 1x1 kernel
    Case(((2, 3, 5, 5), (4, 3, 3, 3), (4,)), {"stride": 1, "pad": 0}),
    Case(((1, 2, 7, 6), (3, 2, 3, 2), (3,)), {"stride": 2, "pad": 1}),
    Case(((2, 1, 6, 7), (2, 1, 2, 3)), {"stride": (2, 1), "pad": (1, 0)}),
    Case(((1, 2, 5, 5), (2, 2, 5, 5), (2,)), {"stride": 1, "pad": (0, 2)}),
    Case(((2, 2, 8, 7), (3, 2, 3, 3)), {"stride": 3, "pad": 1}),
    Case(((1, 1, 4, 4), (1, 1, 1, 1), (1,)), {"stride": 1, "pad": 0}),
]
DECONV = [  # x, W (C, OC, KH, KW), b; outsize beyond the default where given
    Case(((2, 3, 4, 4), (3, 2, 3, 3), (2,)), {"stride": 1, "pad": 0}),
    Case(((1, 2, 3, 4), (2, 3, 3, 2)), {"stride": 2, "pad": 1}),
    Case(((2, 1, 3, 3), (1, 2, 2, 3), (2,)), {"stride": (2, 1), "pad": (1, 0)}),
    Case(((1, 2, 3, 3), (2, 2, 3, 3)), {"stride": 2, "pad": 1, "outsize": (6, 6)}),
    Case(((1, 1, 2, 3), (1, 1, 4, 4), (1,)), {"stride": 3, "pad": (1, 2), "outsize": (7, 6)}),
]
POOL = [
    Case(((2, 3, 4, 6),), {"kernel_size": 2, "stride": 2, "pad": 0}),
    Case(((1, 2, 5, 5),), {"kernel_size": 2, "stride": 2, "pad": 0}),
    Case(((2, 2, 5, 6),), {"kernel_size": 3, "stride": 2, "pad": 1}),
    Case(((1, 1, 5, 7),), {"kernel_size": (2, 3), "stride": (1, 2), "pad": (1, 1)}),
    Case(((1, 2, 4, 4),), {"kernel_size": 3, "stride": 1, "pad": 0}),
    Case(((2, 1, 6, 4),), {"kernel_size": (3, 2), "stride": (3, 2), "pad": 0}),
]
IM2COL = [
    Case(((1, 2, 4, 5),), {"kernel_size": (2, 3), "stride": (1, 2), "pad": 1}),
    Case(((2, 1, 5, 5),), {"kernel_size": 3, "stride": 2, "pad": 0}),
]
COL2IM = [
    Case(((1 * 5 * 3, 2 * 2 * 3),),
         {"input_shape": (1, 2, 4, 5), "kernel_size": (2, 3), "stride": (1, 2), "pad": 1}),
    Case(((2 * 2 * 2, 1 * 3 * 3),),
         {"input_shape": (2, 1, 5, 5), "kernel_size": 3, "stride": 2, "pad": 0}),
]
LOOSE_FLOAT32 = {np.float32: {"atol": 1e-3, "rtol": 1e-2}}

# ---- the table ----------------------------------------------------------------------------
OPS: list[OpInfo] = [
    # -- math --
    OpInfo(F.add, BINARY, torch=lambda a, b: a + b),
    OpInfo(F.sub, BINARY, torch=lambda a, b: a - b),
    OpInfo(F.rsub, BINARY, torch=lambda a, b: b - a),
    OpInfo(F.mul, BINARY, torch=lambda a, b: a * b),
    OpInfo(F.div, BINARY, torch=lambda a, b: a / b, makers=(away_from_zero, away_from_zero)),
    OpInfo(F.rdiv, BINARY, torch=lambda a, b: b / a, makers=(away_from_zero, away_from_zero)),
    OpInfo(F.neg, UNARY, torch=lambda t: -t),
    OpInfo(F.pow, unary((), (2, 3), (0, 2), c=3) + unary((2, 3), c=0.5) + unary((3,), c=-1.5),
           torch=lambda t, c: t**c, makers=(positive,), variant="constant"),
    OpInfo(F.pow, BINARY[:4], torch=lambda a, b: a**b, makers=(positive, normal),
           variant="variable"),
    OpInfo(F.square, UNARY, torch=lambda t: t * t),
    OpInfo(F.exp, UNARY, torch=lambda t: t.exp()),
    OpInfo(F.log, UNARY, torch=lambda t: t.log(), makers=(positive,)),
    OpInfo(F.sin, UNARY, torch=lambda t: t.sin()),
    OpInfo(F.cos, UNARY, torch=lambda t: t.cos()),
    OpInfo(F.tanh, UNARY, torch=lambda t: t.tanh()),
    OpInfo(F.sqrt, UNARY, torch=lambda t: t.sqrt(), makers=(positive,)),
    OpInfo(F.erf, UNARY, torch=lambda t: t.erf()),
    # -- shapes, reductions, selection --
    OpInfo(F.reshape, unary((2, 3), shape=(3, 2)) + unary((6,), shape=(2, -1))
           + unary((), shape=(1, 1)) + unary((0, 3), shape=(3, 0)),
           torch=lambda t, shape: t.reshape(shape)),
    OpInfo(F.transpose, unary((2, 3, 4), axes=None) + unary((2, 3, 4), axes=(1, 0, 2))
           + unary((2, 3, 4), axes=(-1, 0, 1)) + unary((2, 3), axes=None),
           torch=lambda t, axes: t.permute(*(range(t.ndim)[::-1] if axes is None else axes))),
    OpInfo(F.broadcast_to, unary((3,), shape=(2, 3)) + unary((), shape=(2, 2))
           + unary((2, 1), shape=(2, 3)) + unary((1, 3), shape=(4, 0, 3)),
           torch=lambda t, shape: t.broadcast_to(shape)),
    OpInfo(F.sum_to, unary((2, 3), shape=(3,)) + unary((2, 3), shape=(2, 1))
           + unary((2, 3), shape=()) + unary((4, 2, 3), shape=(1, 3)),
           torch=_t_sum_to),
    OpInfo(F.sum, unary((2, 3, 4), axis=None) + unary((2, 3, 4), axis=0, keepdims=True)
           + unary((2, 3, 4), axis=(0, 2)) + unary((), axis=None) + unary((0, 3), axis=0),
           torch=_t_reduce("sum")),
    OpInfo(F.mean, unary((2, 3, 4), axis=None) + unary((2, 3, 4), axis=-1, keepdims=True)
           + unary((2, 3, 4), axis=(0, 2)) + unary((), axis=None),
           torch=_t_reduce("mean")),
    OpInfo(F.average, unary((2, 3, 4), axis=1) + unary((3,), axis=None, keepdims=True),
           torch=_t_reduce("mean")),
    # max and min are piecewise linear; random inputs have no ties (ties: test_array.py)
    OpInfo(F.max, unary((2, 3, 4), axis=None) + unary((2, 3, 4), axis=1, keepdims=True)
           + unary((2, 3, 4), axis=(0, 2)) + unary((), axis=None),
           torch=_t_reduce("amax")),
    OpInfo(F.min, unary((2, 3, 4), axis=None) + unary((2, 3, 4), axis=-1)
           + unary((3,), axis=0, keepdims=True),
           torch=_t_reduce("amin")),
    OpInfo(F.get_item, unary((3, 4), index=1) + unary((3, 4), index=(slice(None), slice(0, 4, 2)))
           + unary((3, 4), index=np.array([0, 2, 0, 0])) + unary((3, 4), index=(Ellipsis, None))
           + unary((3, 4), index=(np.array([0, 1, 1]), np.array([2, 2, 0])))
           + unary((3, 4), index=np.array([True, False, True])),
           op=lambda x, index: F.get_item(x, _on_device(index, x)),
           torch=lambda t, index: t[_torch_index(index)]),
    OpInfo(F.expand_dims, unary((2, 3), axis=1) + unary((3,), axis=(0, 2)) + unary((), axis=0),
           torch=lambda t, axis: t.reshape(np.expand_dims(np.zeros(t.shape), axis).shape)),
    OpInfo(F.flatten, unary((2, 3, 4), (5,), (0, 2, 3)),
           torch=lambda t: t.reshape(t.shape[0], int(np.prod(t.shape[1:])))),
    OpInfo(F.clip, unary((), (3, 4), x_min=-0.5, x_max=0.5) + unary((3, 4), x_min=None, x_max=0.3)
           + unary((0, 2), x_min=-0.3, x_max=None),
           torch=lambda t, x_min, x_max: t.clamp(x_min, x_max)),
    OpInfo(F.concat, cases(((2, 3), (1, 3)), axis=0) + cases(((2, 3), (2, 1), (2, 2)), axis=1)
           + cases(((2, 1, 3), (2, 0, 3)), axis=-2),
           op=lambda *xs, axis: F.concat(xs, axis), torch=lambda *ts, axis: torch.cat(ts, axis)),
    OpInfo(F.stack, cases(((3,), (3,), (3,)), axis=0) + cases(((2, 3), (2, 3)), axis=-1)
           + cases(((), ()), axis=0),
           op=lambda *xs, axis: F.stack(xs, axis), torch=lambda *ts, axis: torch.stack(ts, axis)),
    OpInfo(F.split, unary((6, 2), sections=3, axis=0) + unary((2, 5), sections=[1, 4], axis=1)
           + unary((4, 3), sections=[0, 2], axis=0),
           op=lambda x, sections, axis: F.split(x, sections, axis),
           torch=lambda t, sections, axis: torch.tensor_split(t, sections, dim=axis)),
    OpInfo(F.where, cases(((2, 3), (2, 3), (2, 3)), ((2, 3), (2, 3), (3,)), ((3,), (2, 1), ()),
                          ((), (2,), (2,))),
           makers=(boolean, normal, normal), torch=lambda c, a, b: torch.where(c, a, b)),
    # -- linear algebra --
    OpInfo(F.matmul, cases(((2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)),
                           ((2, 3), (2, 3, 4)), ((2, 1, 2, 3), (4, 3, 2)), ((3,), (3, 4)),
                           ((2, 3), (3,)), ((3,), (3,)), ((0, 3), (3, 2))),
           torch=lambda a, b: a @ b),
    OpInfo(F.linear, cases(((4, 3), (3, 2), (2,)), ((2, 4, 3), (3, 5), (5,)), ((3,), (3, 2)),
                           ((0, 3), (3, 2), (2,))),
           torch=lambda x, W, b=None: x @ W + (0 if b is None else b)),
    OpInfo(F.linear_simple, cases(((4, 3), (3, 2), (2,)), ((3,), (3, 2))),
           torch=lambda x, W, b=None: x @ W + (0 if b is None else b)),
    # -- activations --
    OpInfo(F.sigmoid, UNARY, torch=lambda t: t.sigmoid()),
    OpInfo(F.sigmoid_simple, UNARY[:3], torch=lambda t: t.sigmoid()),
    OpInfo(F.relu, UNARY, torch=lambda t: t.relu()),
    OpInfo(F.leaky_relu, UNARY, torch=lambda t: TF.leaky_relu(t, 0.2)),
    OpInfo(F.leaky_relu, unary((2, 3), slope=0.01), variant="slope",
           torch=lambda t, slope: TF.leaky_relu(t, slope)),
    OpInfo(F.softplus, UNARY, torch=lambda t: TF.softplus(t)),
    OpInfo(F.gelu, UNARY, torch=lambda t: TF.gelu(t)),
    OpInfo(F.gelu, unary((2, 3), (), approximate="tanh"), variant="tanh",
           torch=lambda t, approximate: TF.gelu(t, approximate=approximate)),
    OpInfo(F.softmax, unary((2, 3), axis=1) + unary((2, 3, 4), axis=0) + unary((4,), axis=-1)
           + unary((2, 3, 4), axis=(1, 2)) + unary((0, 3), axis=1),
           torch=lambda t, axis: _t_softmax(t, axis, log=False)),
    OpInfo(F.softmax_simple, unary((2, 3), axis=1) + unary((2, 3, 4), axis=2),
           torch=lambda t, axis: _t_softmax(t, axis, log=False)),
    OpInfo(F.log_softmax, unary((2, 3), axis=1) + unary((2, 3, 4), axis=0)
           + unary((2, 3, 4), axis=(1, 2)) + unary((4,), axis=0),
           torch=lambda t, axis: _t_softmax(t, axis, log=True)),
    # -- losses and metrics --
    OpInfo(F.mean_squared_error, cases(((4, 1), (4, 1)), ((4, 3), (3,)), ((4, 1), (4, 3)),
                                       ((), ()), ((5,), ())),
           torch=lambda a, b: ((a - b) ** 2).mean()),
    OpInfo(F.mean_squared_error_simple, cases(((4, 1), (4, 1)), ((4, 3), (3,))),
           torch=lambda a, b: ((a - b) ** 2).mean()),
    OpInfo(F.softmax_cross_entropy, cases(((4, 3), (4,)), ((1, 5), (1,))),
           makers=(normal, labels(3)), variant="",
           torch=lambda x, t: TF.cross_entropy(x, t.long())),
    OpInfo(F.softmax_cross_entropy_simple, cases(((4, 3), (4,)), ((1, 5), (1,))),
           makers=(normal, labels(3)), torch=lambda x, t: TF.cross_entropy(x, t.long())),
    OpInfo(F.sigmoid_cross_entropy, cases(((4, 1), (4, 1)), ((3, 2), (3, 2)), ((), ())),
           makers=(normal, labels(2)),
           torch=lambda x, t: TF.binary_cross_entropy_with_logits(x, t.to(x.dtype))),
    OpInfo(F.binary_cross_entropy, cases(((4, 1), (4, 1)), ((3, 2), (3, 2)), ((), ())),
           makers=(probability, labels(2)),
           torch=lambda p, t: TF.binary_cross_entropy(p, t.to(p.dtype))),
    OpInfo(F.accuracy, cases(((5, 3), (5,)), ((1, 4), (1,))), makers=(normal, labels(3)),
           reference=_accuracy_reference, differentiable=False),
    # -- normalization, embedding --
    OpInfo(F.batch_norm, cases(((5, 3), (3,), (3,)), ((2, 2, 3, 3), (2,), (2,)),
                               ((3, 1), (1,), (1,)), ((1, 2, 2, 3), (2,), (2,)), eps=1e-3),
           op=_batch_norm(train=True), torch=_t_batch_norm(train=True), variant="train",
           tolerances=LOOSE_FLOAT32),
    OpInfo(F.batch_norm, cases(((5, 3), (3,), (3,)), ((2, 2, 3, 3), (2,), (2,)),
                               ((1, 3), (3,), (3,)), ((0, 3), (3,), (3,))),
           op=_batch_norm(train=False), torch=_t_batch_norm(train=False), variant="test"),
    OpInfo(F.layer_norm, cases(((5,), (5,), (5,)), ((3, 4), (4,), (4,)),
                               ((2, 3, 5), (5,), (5,)), ((0, 4), (4,), (4,)), eps=1e-3),
           torch=lambda x, g, b, eps: TF.layer_norm(x, (x.shape[-1],), g, b, eps=eps),
           tolerances=LOOSE_FLOAT32),
    OpInfo(F.embed_id, cases(((), (4, 3)), ((5,), (4, 3)), ((2, 3), (4, 3)), ((0,), (4, 3))),
           makers=(labels(4), normal), torch=lambda i, W: TF.embedding(i, W)),
    # -- convolution and pooling --
    OpInfo(F.conv2d, CONV, torch=lambda x, W, b=None, stride=1, pad=0: TF.conv2d(
        x, W, b, stride=pair(stride), padding=pair(pad))),
    OpInfo(F.conv2d_simple, CONV[:2], torch=lambda x, W, b=None, stride=1, pad=0: TF.conv2d(
        x, W, b, stride=pair(stride), padding=pair(pad))),
    OpInfo(F.deconv2d, DECONV, torch=_t_deconv),
    OpInfo(F.pooling, POOL, torch=lambda t, kernel_size, stride, pad: TF.max_pool2d(
        t, kernel_size, stride, pad)),
    # pooling_simple pads with zeros: positive inputs, so that padding never wins
    OpInfo(F.pooling_simple, POOL[:2], makers=(positive,),
           torch=lambda t, kernel_size, stride, pad: TF.max_pool2d(t, kernel_size, stride, pad)),
    OpInfo(F.average_pooling, POOL, torch=lambda t, kernel_size, stride, pad: TF.avg_pool2d(
        t, kernel_size, stride, pad)),
    OpInfo(F.im2col, IM2COL, torch=_t_unfold),
    OpInfo(F.col2im, COL2IM, torch=_t_fold),
]


# Public functions the table does not cover, and why.
EXCLUDED = {
    # Random: its masks cannot match another framework's; tests/functions/test_dropout.py
    # checks it (owned with zerograd.random).
    "dropout",
    # The recurrent cells and sequences (functions/rnn.py): tested against torch.nn.LSTM,
    # GRU and RNN with the same weights in tests/functions/test_rnn.py, where their state
    # tuples and weight layouts are spelled out.
    "lstm",
    "gru",
    "lstm_sequence",
    "gru_sequence",
    "rnn_sequence",
}


# ---- helpers the rows use -----------------------------------------------------------------
def _t_softmax(t, axis, log):
    """torch's softmax over one or several axes (it takes one dim: flatten them)."""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % t.ndim for a in axes)
    if len(axes) == 1:
        return (TF.log_softmax if log else TF.softmax)(t, dim=axes[0])
    rest = [a for a in range(t.ndim) if a not in axes]
    moved = t.permute(*rest, *axes)
    flat = moved.reshape(*moved.shape[: len(rest)], -1)
    out = (TF.log_softmax if log else TF.softmax)(flat, dim=-1).reshape(moved.shape)
    inverse = np.argsort(rest + list(axes))
    return out.permute(*inverse)


def _on_device(index, x):
    """Index arrays on x's device (CuPy wants its own arrays)."""
    xp = get_array_module(x.data if hasattr(x, "data") else x)
    if isinstance(index, np.ndarray):
        return xp.asarray(index)
    if isinstance(index, tuple):
        return tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
    return index


def _torch_index(index):
    def one(i):
        return torch.from_numpy(i) if isinstance(i, np.ndarray) else i

    return tuple(one(i) for i in index) if isinstance(index, tuple) else one(index)
