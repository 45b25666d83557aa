"""The converters of :func:`zerograd.onnx.export`: one row per Function class.

Each converter ``convert(b, f)`` reads the hyperparameters of the Function ``f`` and adds
ONNX nodes to the :class:`~zerograd.onnx.export.Builder` ``b`` that compute
``b.outputs`` from ``b.input(i)``.

Classes are named here by module and attribute, in one table (:data:`TABLE`), and looked
up on first use (``name``, or ``_name`` once a class is made private): when a Function is
renamed or moved, its row is the one line to change. A row whose class cannot be found
is left out of the lookup (and listed by :func:`unresolved`, which the tests check is
empty).
"""

from __future__ import annotations

import importlib
import math

import numpy as np

__all__ = ["TABLE", "converters", "register_converter", "unresolved"]

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


# =========================================================================================
# Elementwise arithmetic and math
# =========================================================================================
def _binary(op):
    def convert(b, f):
        dtype = b.out_dtype()
        b.node(op, [b.input(0, dtype), b.input(1, dtype)], b.outputs)

    return convert


def _with_constant(op, constant_first=False):
    """``x op c`` (or ``c op x``) for the operators that keep a Python number as is."""

    def convert(b, f):
        dtype = b.out_dtype()
        x, c = b.input(0, dtype), b.scalar(f.c, dtype)
        b.node(op, [c, x] if constant_first else [x, c], b.outputs)

    return convert


def _unary(op, **attrs):
    def convert(b, f):
        b.node(op, [b.input(0, b.out_dtype())], b.outputs, **attrs)

    return convert


def _cast(b, f):
    b.node("Cast", [b.input(0)], b.outputs,
           to=int(b.helper.np_dtype_to_tensor_dtype(np.dtype(b.out_dtype()))))


def _square(b, f):
    x = b.input(0, b.out_dtype())
    b.node("Mul", [x, x], b.outputs)


def _pow(b, f):
    dtype = b.out_dtype()
    b.node("Pow", [b.input(0, dtype), b.scalar(f.c, dtype)], b.outputs)


# =========================================================================================
# Activations
# =========================================================================================
def _leaky_relu(b, f):
    b.node("LeakyRelu", [b.input(0)], b.outputs, alpha=float(f.slope))


def _softmax_like(op):
    """Softmax or LogSoftmax over ``f.axis`` (a tuple of axes after normalization)."""

    def convert(b, f):
        axes = f.axis if isinstance(f.axis, (tuple, list)) else (f.axis,)
        x = b.input(0)
        if len(axes) == 1:
            b.node(op, [x], b.outputs, axis=int(axes[0]))
            return
        # Several axes: written out, with the maximum subtracted first (no overflow).
        shifted = b.node("Sub", [x, b.reduce("ReduceMax", x, axes, True)])
        e = b.node("Exp", [shifted])
        total = b.reduce("ReduceSum", e, axes, True)
        if op == "Softmax":
            b.node("Div", [e, total], b.outputs)
        else:
            b.node("Sub", [shifted, b.node("Log", [total])], b.outputs)

    return convert


def _gelu(b, f):
    x = b.input(0)
    dtype = b.in_dtype(0)
    approximate = getattr(f, "approximate", "none")
    if b.opset >= 20:
        b.node("Gelu", [x], b.outputs, approximate=approximate)
        return
    half = b.scalar(0.5, dtype)
    if approximate == "tanh":
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [x, x]), x])
        inner = b.node("Add", [x, b.node("Mul", [cube, b.scalar(0.044715, dtype)])])
        t = b.node("Tanh", [b.node("Mul", [inner, b.scalar(math.sqrt(2 / math.pi), dtype)])])
    else:
        # 0.5 x (1 + erf(x / sqrt(2)))
        t = b.node("Erf", [b.node("Mul", [x, b.scalar(math.sqrt(0.5), dtype)])])
    one_plus = b.node("Add", [t, b.scalar(1.0, dtype)])
    b.node("Mul", [b.node("Mul", [x, half]), one_plus], b.outputs)


# =========================================================================================
# Shapes
# =========================================================================================
def _target_shape(b, j=0):
    """The traced output shape as a Reshape target: the batch axis (if any) as -1."""
    shape = list(b.out_shape(j))
    axis = b.output_batch_axis(j)
    if axis is not None:
        shape[axis[0]] = -1
    return b.ints(shape)


def _reshape(b, f):
    b.node("Reshape", [b.input(0), _target_shape(b)], b.outputs)


def _transpose(b, f):
    ndim = len(b.in_shape(0))
    axes = f.axes
    perm = list(range(ndim))[::-1] if axes is None else [int(a) % ndim for a in axes]
    b.node("Transpose", [b.input(0)], b.outputs, perm=perm)


def _broadcast_to(b, f):
    b.node("Expand", [b.input(0), b.shape_of(b.out_shape(), b.output_batch_axis())],
           b.outputs)


def _sum_to(b, f):
    x_shape, shape = b.in_shape(0), b.out_shape()
    lead = len(x_shape) - len(shape)
    axes = list(range(lead)) + [
        lead + i for i, n in enumerate(shape) if n == 1 and x_shape[lead + i] != 1
    ]
    if not axes:
        b.node("Identity", [b.input(0)], b.outputs)
        return
    y = b.reduce("ReduceSum", b.input(0), axes, True)
    b.node("Reshape", [y, _target_shape(b)], b.outputs)


def _reduction(op):
    def convert(b, f):
        ndim = len(b.in_shape(0))
        axes = None if f.axis is None else [int(a) % max(ndim, 1) for a in f.axis]
        if ndim == 0:
            b.node("Identity", [b.input(0)], b.outputs)
            return
        b.reduce(op, b.input(0), axes, f.keepdims, b.outputs)

    return convert


def _clip(b, f):
    dtype = b.out_dtype()
    lo = "" if f.x_min is None else b.scalar(f.x_min, dtype)
    hi = "" if f.x_max is None else b.scalar(f.x_max, dtype)
    b.node("Clip", [b.input(0, dtype), lo, hi], b.outputs)


def _concat(b, f):
    dtype = b.out_dtype()
    b.node("Concat", [b.input(i, dtype) for i in range(len(f.inputs))], b.outputs,
           axis=int(f.axis))


def _split(b, f):
    length = b.in_shape(0)[f.axis]
    batch = b.input_batch_axis(0)
    if batch is not None and batch[0] == f.axis:
        raise b.fail("it splits the batch axis, whose length is left free; pass "
                     "dynamic_batch=False")
    sections = f.indices_or_sections
    if isinstance(sections, (int, np.integer)):
        sizes = [length // int(sections)] * int(sections)
    else:
        cuts = [0] + [min(max(int(i), 0), length) for i in sections] + [length]
        sizes = [max(e - s, 0) for s, e in zip(cuts, cuts[1:])]
    b.node("Split", [b.input(0), b.ints(sizes)], b.outputs, axis=int(f.axis))


def _where(b, f):
    dtype = b.out_dtype()
    from zerograd.cuda import as_numpy

    cond = _input_array(b, f.condition)  # a condition given as a model input stays one
    if cond is None:
        cond1 = as_numpy(f.condition)
        cond = (b.const(cond1, "cond") if b.twin is None
                else b.const_pair(cond1, as_numpy(b.twin.condition), "cond"))
    elif f.condition.dtype != bool:
        cond = b.cast(cond, bool)
    b.node("Where", [cond, b.input(0, dtype), b.input(1, dtype)], b.outputs)


def _input_array(b, array):
    """The graph input whose data ``array`` is (the model used its input's data, as
    embedding ids or a mask), or None."""
    for x in b.trace.inputs:
        if array is x.data:
            return b.name_of(x)
    return None


# ---- indexing --------------------------------------------------------------------------------
def _index_entries(slices, ndim):
    """NumPy indexing as a list of ``(kind, value)`` with kinds ``slice``, ``int``,
    ``new`` and ``array``; Ellipsis expanded, boolean arrays turned into integer ones."""
    from zerograd import cuda

    items = slices if isinstance(slices, tuple) else (slices,)
    entries = []
    for s in items:
        if s is None:
            entries.append(("new", None))
        elif s is Ellipsis:
            entries.append(("ellipsis", None))
        elif isinstance(s, slice):
            entries.append(("slice", s))
        elif isinstance(s, (int, np.integer)):
            entries.append(("int", int(s)))
        else:
            a = s if (isinstance(s, np.ndarray) or cuda.is_cupy_array(s)) else np.asarray(s)
            if a.dtype == bool:
                entries.extend(("array", idx) for idx in cuda.get_array_module(a).nonzero(a))
            else:
                entries.append(("array", a))
    used = sum(1 for kind, _ in entries if kind in ("slice", "int", "array"))
    out = []
    for kind, value in entries:
        if kind == "ellipsis":
            out.extend([("slice", slice(None))] * (ndim - used))
        else:
            out.append((kind, value))
    used = sum(1 for kind, _ in out if kind in ("slice", "int", "array"))
    out.extend([("slice", slice(None))] * (ndim - used))
    return out


def _index_array(b, a1, a2):
    """The ONNX value of an index array: a graph input when the model indexed with its
    input's data (embedding ids), else a constant."""
    name = _input_array(b, a1)
    if name is not None:
        return name if a1.dtype == np.int64 else b.cast(name, np.int64)
    from zerograd import cuda

    a1 = cuda.as_numpy(a1).astype(np.int64)
    if a2 is None:
        return b.const(a1, "index")
    return b.const_pair(a1, cuda.as_numpy(a2).astype(np.int64), "index")


def _get_item(b, f):
    shape = b.in_shape(0)
    entries = _index_entries(f.slices, len(shape))
    twin_entries = _index_entries(b.twin.slices, len(shape)) if b.twin is not None else None
    arrays = [k for k, (kind, _) in enumerate(entries) if kind == "array"]
    ints = [k for k, (kind, _) in enumerate(entries) if kind == "int"]
    news = [k for k, (kind, _) in enumerate(entries) if kind == "new"]
    if len(arrays) > 1:
        raise b.fail("indexing with several index arrays is not supported; index one "
                     "axis at a time")
    if arrays and news:
        raise b.fail("indexing that mixes an index array with None is not supported")
    if arrays and ints:
        advanced = sorted(arrays + ints)
        if advanced[-1] - advanced[0] != len(advanced) - 1:
            raise b.fail("an index array and integers on axes that are not adjacent "
                         "(NumPy moves their axes to the front) are not supported")
    # 1. Every slice and integer at once (an integer i as the slice i:i+1).
    starts, ends, axes, steps = [], [], [], []
    axis = 0
    for kind, value in entries:
        if kind == "new":
            continue
        if kind == "slice":
            step = 1 if value.step is None else int(value.step)
            if step == 0:
                raise b.fail("a slice step of 0")
            if not (value.start in (None, 0) and value.stop is None and step == 1):
                if step > 0:
                    start = 0 if value.start is None else int(value.start)
                    stop = INT64_MAX if value.stop is None else int(value.stop)
                else:
                    start = INT64_MAX if value.start is None else int(value.start)
                    stop = INT64_MIN if value.stop is None else int(value.stop)
                starts.append(start)
                ends.append(stop)
                axes.append(axis)
                steps.append(step)
        elif kind == "int":
            starts.append(value)
            ends.append(value + 1 if value != -1 else INT64_MAX)
            axes.append(axis)
            steps.append(1)
        axis += 1
    steps_to_emit = []  # (op type, extra inputs, attributes), the last writes b.outputs
    if axes:
        steps_to_emit.append(
            ("Slice", [b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)], {}))
    # 2. The index array, on its axis of the input.
    int_axes = [sum(1 for kind, _ in entries[:k] if kind != "new") for k in ints]
    if arrays:
        k = arrays[0]
        array_axis = sum(1 for kind, _ in entries[:k] if kind != "new")
        a1 = entries[k][1]
        a2 = twin_entries[k][1] if twin_entries is not None else None
        steps_to_emit.append(("Gather", [_index_array(b, a1, a2)], {"axis": array_axis}))
        extra = np.ndim(a1) - 1  # the axis became the index array's axes
        int_axes = [a + extra if a > array_axis else a for a in int_axes]
    # 3. Integers remove their axes; None adds axes.
    if int_axes:
        steps_to_emit.append(("Squeeze", [b.ints(int_axes)], {}))
    if news:
        positions = []
        out_axis = 0
        for kind, _ in entries:
            if kind == "new":
                positions.append(out_axis)
                out_axis += 1
            elif kind == "slice":
                out_axis += 1
        steps_to_emit.append(("Unsqueeze", [b.ints(positions)], {}))
    if not steps_to_emit:  # x[:] or x[...]
        steps_to_emit.append(("Identity", [], {}))
    y = b.input(0)
    for k, (op, extra, attrs) in enumerate(steps_to_emit):
        last = k == len(steps_to_emit) - 1
        y = b.node(op, [y] + extra, b.outputs if last else None, **attrs)


# =========================================================================================
# Linear algebra, convolution, pooling, normalization
# =========================================================================================
def _matmul(b, f):
    dtype = b.out_dtype()
    b.node("MatMul", [b.input(0, dtype), b.input(1, dtype)], b.outputs)


def _linear(b, f):
    dtype = b.out_dtype()
    x, W = b.input(0, dtype), b.input(1, dtype)
    bias = b.input(2, dtype) if len(f.inputs) == 3 else None
    if len(b.in_shape(0)) == 2:
        b.node("Gemm", [x, W] + ([bias] if bias else []), b.outputs)
    elif bias is None:
        b.node("MatMul", [x, W], b.outputs)
    else:
        b.node("Add", [b.node("MatMul", [x, W]), bias], b.outputs)


def _pads(pad):
    ph, pw = pad
    return [int(ph), int(pw), int(ph), int(pw)]


def _conv(b, f):
    W_shape = b.in_shape(1)
    inputs = [b.input(i) for i in range(len(f.inputs))]
    b.node("Conv", inputs, b.outputs, kernel_shape=list(W_shape[2:]),
           strides=[int(s) for s in f.stride], pads=_pads(f.pad))


def _deconv(b, f):
    from zerograd.utils.shape import get_deconv_outsize

    kh, kw = b.in_shape(1)[2:]
    h, w = b.in_shape(0)[2:]
    (sh, sw), (ph, pw) = f.stride, f.pad
    default = (get_deconv_outsize(h, kh, sh, ph), get_deconv_outsize(w, kw, sw, pw))
    extra = [int(o - d) for o, d in zip(f.outsize, default)]
    inputs = [b.input(i) for i in range(len(f.inputs))]
    b.node("ConvTranspose", inputs, b.outputs, kernel_shape=[kh, kw],
           strides=[int(sh), int(sw)], pads=_pads(f.pad), output_padding=extra)


def _max_pool(b, f):
    b.node("MaxPool", [b.input(0)], b.outputs, kernel_shape=[int(k) for k in f.kernel_size],
           strides=[int(s) for s in f.stride], pads=_pads(f.pad))


def _average_pool(b, f):
    # zerograd counts padding as zeros in the average, as PyTorch's default does.
    b.node("AveragePool", [b.input(0)], b.outputs,
           kernel_shape=[int(k) for k in f.kernel_size], strides=[int(s) for s in f.stride],
           pads=_pads(f.pad), count_include_pad=1)


def _window_picker(b, kernel, dtype):
    """Convolution weights ``(KH*KW, 1, KH, KW)`` whose output channel ``i*KW + j`` is
    pixel ``(i, j)`` of each window: im2col of one channel as a convolution (exact: one
    weight of 1 per output), and col2im as its transpose."""
    kh, kw = kernel
    picker = np.zeros((kh * kw, 1, kh, kw), dtype=dtype)
    for k in range(kh * kw):
        picker[k, 0, k // kw, k % kw] = 1
    return b.const(picker, "window_picker")


def _outsize(h, w, f):
    """(OH, OW) of an Im2col or Col2im on images of ``h`` by ``w``."""
    (kh, kw), (sh, sw), (ph, pw) = f.kernel_size, f.stride, f.pad
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def _im2col(b, f):
    """``Im2col``: each channel of each image as an image of its own, through a Conv
    that copies every window pixel to a channel of its own, then the columns' layout."""
    n, c, h, w = b.in_shape(0)
    kh, kw = (int(k) for k in f.kernel_size)
    free = b.input_batch_axis(0) is not None  # the batch size is left free: -1
    images = b.node("Reshape", [b.input(0), b.ints([-1 if free else n * c, 1, h, w])])
    picked = b.node("Conv", [images, _window_picker(b, (kh, kw), b.in_dtype(0))],
                    kernel_shape=[kh, kw], strides=[int(s) for s in f.stride],
                    pads=_pads(f.pad))  # (N*C, KH*KW, OH, OW)
    if f.to_matrix:  # (N, OH, OW, C*KH*KW): one row per window
        oh, ow = _outsize(h, w, f)
        picked = b.node("Reshape", [picked, b.ints([-1 if free else n, c * kh * kw, oh, ow])])
        picked = b.node("Transpose", [picked], perm=[0, 2, 3, 1])
    b.node("Reshape", [picked, _target_shape(b)], b.outputs)


def _col2im(b, f):
    """``Col2im``, im2col's adjoint: the transposed convolution with the same weights
    (overlapping windows add up), each channel as an image of its own."""
    n, c, h, w = (int(v) for v in f.input_shape)
    kh, kw = (int(k) for k in f.kernel_size)
    (sh, sw), (ph, pw) = f.stride, f.pad
    oh, ow = _outsize(h, w, f)
    free = b.input_batch_axis(0) is not None
    col = b.input(0)
    if f.to_matrix:  # (N*OH*OW, C*KH*KW) -> (N, C*KH*KW, OH, OW)
        col = b.node("Reshape", [col, b.ints([-1 if free else n, oh, ow, c * kh * kw])])
        col = b.node("Transpose", [col], perm=[0, 3, 1, 2])
    col = b.node("Reshape", [col, b.ints([-1 if free else n * c, kh * kw, oh, ow])])
    # The windows may not reach the last rows and columns: output_padding adds them.
    extra = [h - ((oh - 1) * sh + kh - 2 * ph), w - ((ow - 1) * sw + kw - 2 * pw)]
    images = b.node("ConvTranspose", [col, _window_picker(b, (kh, kw), b.in_dtype(0))],
                    kernel_shape=[kh, kw], strides=[int(sh), int(sw)], pads=_pads(f.pad),
                    output_padding=extra)  # (N*C, 1, H, W)
    b.node("Reshape", [images, _target_shape(b)], b.outputs)


def _layer_norm(b, f):
    axes = tuple(f.axes)
    ndim = len(b.in_shape(0))
    if axes != tuple(range(ndim - len(axes), ndim)):
        raise b.fail(f"normalization over axes {axes} (not the last ones)")
    x = b.input(0)
    shape = b.in_shape(0)[ndim - len(axes):]
    gamma, beta = b.input(1), b.input(2)
    if tuple(b.in_shape(1)) != tuple(shape):  # param_shape differs from the stored shape
        gamma = b.node("Reshape", [gamma, b.ints(shape)])
        beta = b.node("Reshape", [beta, b.ints(shape)])
    b.node("LayerNormalization", [x, gamma, beta], b.outputs[:1], axis=-len(axes),
           epsilon=float(f.eps))


# =========================================================================================
# Recurrent cells (one step each; a loop of them is unrolled over the traced steps)
# =========================================================================================
def _is_zero_constant(b, x) -> bool:
    """A state the model made as zeros (a new sequence), not given by the caller."""
    from zerograd.core import Parameter

    return (x.creator is None and not isinstance(x, Parameter) and x.data is not None
            and not bool(x.data.any()) and all(x is not v for v in b.trace.inputs))


def _lstm_cell(b, f):
    """``LSTMCell``: inputs ``(c_prev, a)`` with the gates i, f, g, o side by side in
    ``a``; outputs ``c = f*c_prev + i*g`` and ``h = o*tanh(c)``."""
    dtype = b.out_dtype()
    H = b.in_shape(0)[-1]
    ai, af, ag, ao = b.node("Split", [b.input(1, dtype), b.ints([H] * 4)], 4, axis=-1)
    i, o = b.node("Sigmoid", [ai]), b.node("Sigmoid", [ao])
    g = b.node("Tanh", [ag])
    ig = b.node("Mul", [i, g])
    c, h = b.outputs
    if _is_zero_constant(b, b.in_var(0)):
        # A new sequence starts from zeros: c = i*g (and no batch-sized constant).
        b.node("Identity", [ig], [c])
    else:
        fc = b.node("Mul", [b.node("Sigmoid", [af]), b.input(0, dtype)])
        b.node("Add", [fc, ig], [c])
    b.node("Mul", [o, b.node("Tanh", [c])], [h])


def _gru_cell(b, f):
    """``GRUCell``: inputs ``(h_prev, ax, ah)`` with the gates r, z, n side by side;
    ``n = tanh(ax_n + r*ah_n)``, output ``h = n + z*(h_prev - n)``."""
    dtype = b.out_dtype()
    H = b.in_shape(0)[-1]
    sizes = b.ints([H] * 3)
    xr, xz, xn = b.node("Split", [b.input(1, dtype), sizes], 3, axis=-1)
    hr, hz, hn = b.node("Split", [b.input(2, dtype), sizes], 3, axis=-1)
    r = b.node("Sigmoid", [b.node("Add", [xr, hr])])
    z = b.node("Sigmoid", [b.node("Add", [xz, hz])])
    n = b.node("Tanh", [b.node("Add", [xn, b.node("Mul", [r, hn])])])
    if _is_zero_constant(b, b.in_var(0)):
        b.node("Sub", [n, b.node("Mul", [z, n])], b.outputs)  # h_prev = 0
    else:
        change = b.node("Mul", [z, b.node("Sub", [b.input(0, dtype), n])])
        b.node("Add", [n, change], b.outputs)


# =========================================================================================
# Whole-sequence recurrent Functions -> ONNX's own LSTM, GRU and RNN operators
# =========================================================================================
# zerograd keeps a layer's weights as (in, gates*H) matrices whose column blocks are the
# gates in PyTorch's order; ONNX wants (1, gates*H, in) with the row blocks in its own
# order, and one bias vector for the input product followed by one for the recurrent
# product. ``order[k]`` is the zerograd block that ONNX's block k holds.
_LSTM_ORDER = (0, 3, 1, 2)  # zerograd i, f, g, o -> ONNX i, o, f, c
_GRU_ORDER = (1, 0, 2)  # zerograd r, z, n -> ONNX z, r, h
_RNN_ORDER = (0,)


def _reorder_array(a, order, axis):
    """The blocks of ``a`` along ``axis`` (``len(order)`` of them) in ``order``."""
    blocks = np.split(a, len(order), axis=axis)
    return np.concatenate([blocks[k] for k in order], axis=axis)


def _reorder_value(b, name, order, length, axis):
    """The same as :func:`_reorder_array` on an ONNX value of ``length`` along ``axis``."""
    if tuple(order) == tuple(range(len(order))):
        return name
    H = length // len(order)
    blocks = b.node("Split", [name, b.ints([H] * len(order))], len(order), axis=axis)
    return b.node("Concat", [blocks[k] for k in order], axis=axis)


def _weight_prefix(b, indices):
    """The dotted prefix shared by the state_dict names of the weight inputs (``l0`` for
    ``l0.x2h.W`` and ``l0.h2h.W``), or None when none of them is a named Parameter."""
    names = [b.param_name(b.in_var(i)) for i in indices if i is not None]
    parts = [n.split(".")[:-1] for n in names if n is not None]
    if not parts:
        return None
    prefix = parts[0]
    for p in parts[1:]:
        k = 0
        while k < min(len(prefix), len(p)) and prefix[k] == p[k]:
            k += 1
        prefix = prefix[:k]
    return ".".join(prefix)


def _onnx_weight(b, f, role, sources, from_arrays, from_values, weights):
    """ONNX's ``W``, ``R`` or ``B`` (``role``) made from the Function's inputs
    ``sources`` (None for a block of zeros).

    When every source is a Parameter or a constant, the array is made here in ONNX's
    layout (``from_arrays``): an initializer named ``<prefix>.<role>`` if a source is a
    Parameter (it is what a runtime, and :func:`~zerograd.onnx.load`, trains), where
    ``<prefix>`` is the layer that holds the Function's ``weights`` (``l0`` for
    ``l0.x2h.W``, ``l0.h2h.W``); else a Constant. Otherwise the graph computes it from
    the values (``from_values``).
    """
    from zerograd import cuda
    from zerograd.core import Parameter

    dtype = np.dtype(b.out_dtype())
    xs = [None if i is None else b.in_var(i) for i in sources]
    if any(x is not None and x.creator is not None for x in xs):
        return from_values([None if i is None else b.input(i, dtype) for i in sources])
    key = (type(f), role, dtype.str) + tuple(id(x) for x in xs)
    name = b.memo.get(key)  # a layer called on several sequences: one copy
    if name is None:
        array = from_arrays([None if x is None else
                             np.asarray(cuda.as_numpy(x.data)).astype(dtype, copy=False)
                             for x in xs])
        if any(isinstance(x, Parameter) for x in xs):
            prefix = _weight_prefix(b, weights)
            if prefix is None:
                prefix = type(f).__name__.replace("Sequence", "").lower()
            name = b.initializer(array, f"{prefix}.{role}" if prefix else role)
        else:
            name = b.const(array, role)
        b.memo[key] = name
    return name


def _state_input(b, i):
    """``initial_h``/``initial_c`` from input ``i``: omitted (zeros) when the model
    started a new sequence, else the given state with ONNX's direction axis."""
    if _is_zero_constant(b, b.in_var(i)):
        return ""
    return b.node("Unsqueeze", [b.input(i, b.out_dtype()), b.ints([0])])


def _sequence(op, n_gates, order, states, weights, biases, **attrs):
    """The converter of a whole-sequence Function as one ONNX ``op`` node.

    The Function's inputs are ``x`` (0), the initial states (``states``), the input and
    recurrent weight matrices (``weights``) and biases (``biases``: the input product's
    and the recurrent product's, None for zeros); its outputs ``y`` ``(T, N, H)`` and
    the last states ``(N, H)``, ONNX's ``Y`` ``(T, 1, N, H)`` and ``Y_h``/``Y_c``
    ``(1, N, H)`` without the direction axis.
    """

    def convert(b, f):
        dtype = np.dtype(b.out_dtype())
        H = int(b.in_shape(weights[1])[0])
        G = n_gates * H

        def matrix_array(arrays):  # (in, G) -> (1, G, in), row blocks in ONNX's order
            return _reorder_array(arrays[0].T, order, axis=0)[None]

        def matrix_value(values):
            t = b.node("Transpose", [values[0]], perm=[1, 0])
            return b.node("Unsqueeze", [_reorder_value(b, t, order, G, 0), b.ints([0])])

        def bias_array(arrays):  # two (G,) -> (1, 2G)
            return np.concatenate([np.zeros(G, dtype) if a is None
                                   else _reorder_array(a, order, axis=0) for a in arrays])[None]

        def bias_value(values):
            parts = [b.const(np.zeros(G, dtype), "zeros") if v is None
                     else _reorder_value(b, v, order, G, 0) for v in values]
            return b.node("Unsqueeze", [b.node("Concat", parts, axis=0), b.ints([0])])

        named = list(weights) + [i for i in biases if i is not None]
        W = _onnx_weight(b, f, "W", [weights[0]], matrix_array, matrix_value, named)
        R = _onnx_weight(b, f, "R", [weights[1]], matrix_array, matrix_value, named)
        B = _onnx_weight(b, f, "B", list(biases), bias_array, bias_value, named)
        inputs = [b.input(0, dtype), W, R, B, ""] + [_state_input(b, i) for i in states]
        while inputs[-1] == "":
            inputs.pop()
        ys = b.node(op, inputs, 1 + len(states), hidden_size=H, **attrs)
        b.node("Squeeze", [ys[0], b.ints([1])], [b.outputs[0]])
        for y_last, out in zip(ys[1:], b.outputs[1:]):
            b.node("Squeeze", [y_last, b.ints([0])], [out])

    return convert


# =========================================================================================
# The table
# =========================================================================================
# (module, class name, converter): the one place where Function classes are named.
TABLE = [
    # core arithmetic
    ("zerograd.core", "Add", _binary("Add")),
    ("zerograd.core", "Sub", _binary("Sub")),
    ("zerograd.core", "Mul", _binary("Mul")),
    ("zerograd.core", "Div", _binary("Div")),
    ("zerograd.core", "PowVariable", _binary("Pow")),
    ("zerograd.core", "Neg", _unary("Neg")),
    ("zerograd.core", "Pow", _pow),
    ("zerograd.core", "AddConstant", _with_constant("Add")),
    ("zerograd.core", "SubConstant", _with_constant("Sub")),
    ("zerograd.core", "SubFromConstant", _with_constant("Sub", constant_first=True)),
    ("zerograd.core", "MulConstant", _with_constant("Mul")),
    ("zerograd.core", "DivConstant", _with_constant("Div")),
    ("zerograd.core", "DivFromConstant", _with_constant("Div", constant_first=True)),
    # elementwise math
    ("zerograd.functions.math", "Square", _square),
    ("zerograd.functions.math", "Exp", _unary("Exp")),
    ("zerograd.functions.math", "Log", _unary("Log")),
    ("zerograd.functions.math", "Sin", _unary("Sin")),
    ("zerograd.functions.math", "Cos", _unary("Cos")),
    ("zerograd.functions.math", "Tanh", _unary("Tanh")),
    ("zerograd.functions.math", "Sqrt", _unary("Sqrt")),
    ("zerograd.functions.math", "Erf", _unary("Erf")),
    # activations
    ("zerograd.functions.activation", "Sigmoid", _unary("Sigmoid")),
    ("zerograd.functions.activation", "ReLU", _unary("Relu")),
    ("zerograd.functions.activation", "LeakyReLU", _leaky_relu),
    ("zerograd.functions.activation", "Softmax", _softmax_like("Softmax")),
    ("zerograd.functions.activation", "LogSoftmax", _softmax_like("LogSoftmax")),
    ("zerograd.functions.activation", "Softplus", _unary("Softplus")),
    ("zerograd.functions.activation", "GELU", _gelu),
    # shapes, reductions, indexing
    ("zerograd.functions.array", "Reshape", _reshape),
    ("zerograd.functions.array", "Transpose", _transpose),
    ("zerograd.functions.array", "BroadcastTo", _broadcast_to),
    ("zerograd.functions.array", "SumTo", _sum_to),
    ("zerograd.functions.array", "Sum", _reduction("ReduceSum")),
    ("zerograd.functions.array", "Max", _reduction("ReduceMax")),
    ("zerograd.functions.array", "Min", _reduction("ReduceMin")),
    ("zerograd.functions.array", "GetItem", _get_item),
    ("zerograd.functions.array", "Clip", _clip),
    ("zerograd.functions.array", "_AsType", _cast),
    ("zerograd.functions.array", "Concat", _concat),
    ("zerograd.functions.array", "Split", _split),
    ("zerograd.functions.array", "Where", _where),
    # linear algebra
    ("zerograd.functions.linalg", "MatMul", _matmul),
    ("zerograd.functions.linalg", "Linear", _linear),
    # convolution and pooling
    ("zerograd.functions.conv", "Conv2d", _conv),
    ("zerograd.functions.conv", "Deconv2d", _deconv),
    ("zerograd.functions.conv", "Pooling", _max_pool),
    ("zerograd.functions.conv", "AveragePooling", _average_pool),
    ("zerograd.functions.conv", "Im2col", _im2col),
    ("zerograd.functions.conv", "Col2im", _col2im),
    # normalization (batch_norm in test mode is an affine map of Mul/Add/Reshape)
    ("zerograd.functions.normalization", "_LayerNorm", _layer_norm),
    # recurrent layers
    ("zerograd.functions.rnn", "LSTMCell", _lstm_cell),
    ("zerograd.functions.rnn", "GRUCell", _gru_cell),
    # (inputs: x, h0[, c0], W_x, W_h, biases; LSTM's one bias is both products')
    ("zerograd.functions.rnn", "LSTMSequence",
     _sequence("LSTM", 4, _LSTM_ORDER, (1, 2), (3, 4), (5, None))),
    ("zerograd.functions.rnn", "GRUSequence",
     _sequence("GRU", 3, _GRU_ORDER, (1,), (2, 3), (4, 5), linear_before_reset=1)),
    ("zerograd.functions.rnn", "RNNSequence",
     _sequence("RNN", 1, _RNN_ORDER, (1,), (2, 3), (4, None))),
]

_extra: dict = {}  # classes registered at run time
_resolved: dict | None = None
_missing: list[str] = []


def _find_class(module: str, name: str):
    """The Function class ``module.name``, or its private form ``module._name`` (classes
    whose names collide with a layer's are being made private), or None."""
    from zerograd.core import Function

    namespace = importlib.import_module(module)
    for candidate in (name, "_" + name):
        cls = getattr(namespace, candidate, None)
        if isinstance(cls, type) and issubclass(cls, Function):
            return cls
    return None


def _resolve() -> dict:
    global _resolved
    if _resolved is None:
        table = {}
        for module, name, convert in TABLE:
            cls = _find_class(module, name)
            if cls is None:
                _missing.append(f"{module}.{name}")
                continue
            table[cls] = convert
        _resolved = table
    return _resolved


def converters() -> dict:
    """``{Function class: converter}``: the table, plus registered converters."""
    return {**_resolve(), **_extra}


def unresolved() -> list[str]:
    """Rows of :data:`TABLE` whose class was not found (renamed or moved)."""
    _resolve()
    return list(_missing)


def register_converter(cls, convert=None):
    """Register ``convert(b, f)`` as the ONNX converter of the Function class ``cls``.

    Usable as a decorator. ``b`` is the export's Builder: ``b.input(i)`` names input
    ``i``, ``b.outputs`` the outputs to produce, ``b.node(op_type, inputs, outputs,
    **attributes)`` adds a node.

    Example:
        >>> from zerograd import Function
        >>> class Double(Function):
        ...     def forward(self, x):
        ...         return 2 * x
        >>> @register_converter(Double)
        ... def _(b, f):
        ...     b.node("Add", [b.input(0), b.input(0)], b.outputs)
    """
    if convert is None:
        return lambda fn: register_converter(cls, fn)
    _extra[cls] = convert
    return convert
