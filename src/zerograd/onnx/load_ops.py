"""The operators :func:`zerograd.onnx.load` reads: one handler per ONNX operator.

A handler ``handler(node, xs)`` computes the node from its input Variables ``xs`` (None
for an omitted optional input) with zerograd's Functions and returns its output
Variable(s). Values that only describe shapes (``Shape``, the index arithmetic an
exporter writes around ``Reshape``) are computed on plain integer arrays: they carry no
gradient.
"""

from __future__ import annotations

import numpy as np

import zerograd.functions as F
from zerograd import cuda
from zerograd.core import Parameter, Variable, as_variable
from zerograd.functions.array import _AsType

__all__ = ["handlers", "HANDLERS"]


# =========================================================================================
# Helpers
# =========================================================================================
def _array(x) -> np.ndarray:
    """The host array of a Variable that holds a constant (a shape, axes, a bound)."""
    return cuda.as_numpy(x.data if isinstance(x, Variable) else x)


def _ints(x) -> list[int]:
    return [int(v) for v in np.asarray(_array(x)).reshape(-1)]


def _const(x, like: Variable | None = None) -> Variable:
    """An array as a constant Variable, on ``like``'s device."""
    if like is not None and cuda.get_array_module(like.data) is not np:
        x = cuda.as_cupy(x)
    return as_variable(x)


def _is_constant(x: Variable) -> bool:
    return x.creator is None and not isinstance(x, Parameter) and not x.requires_grad


def _axes(node, xs, index=1):
    """Axes from the attribute ``axes`` (older opsets) or the input ``index`` (newer)."""
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    if len(xs) > index and xs[index] is not None:
        return _ints(xs[index])
    return None


def _norm_axes(axes, ndim):
    return sorted(int(a) % max(ndim, 1) for a in axes)


# =========================================================================================
# Elementwise
# =========================================================================================
def _both_int(xs) -> bool:
    return all(x.dtype.kind in "iub" for x in xs)


def _add(node, xs):
    return xs[0] + xs[1]


def _sub(node, xs):
    return xs[0] - xs[1]


def _mul(node, xs):
    return xs[0] * xs[1]


def _div(node, xs):
    a, b = xs
    if _both_int(xs):  # integer division truncates toward zero in ONNX
        q = np.trunc(_array(a) / _array(b)).astype(a.dtype)
        return _const(q, a)
    return a / b


def _pow(node, xs):
    x, y = xs
    if _is_constant(y) and y.size == 1:
        c = _array(y).reshape(()).item()
        return F.pow(x, c)
    return x**y


def _unary(fn):
    def handle(node, xs):
        return fn(xs[0])

    return handle


def _sum(node, xs):
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return y


def _reciprocal(node, xs):
    return 1.0 / xs[0]


def _leaky_relu(node, xs):
    return F.leaky_relu(xs[0], node.attr("alpha", 0.01))


def _softmax_like(fn):
    def handle(node, xs):
        x = xs[0]
        if node.opset >= 13:
            return fn(x, axis=node.attr("axis", -1))
        # Before opset 13: softmax over the flattened axes from ``axis`` on.
        axis = node.attr("axis", 1) % max(x.ndim, 1)
        shape = x.shape
        flat = F.reshape(x, (int(np.prod(shape[:axis], dtype=np.int64)), -1))
        return F.reshape(fn(flat, axis=1), shape)

    return handle


def _gelu(node, xs):
    return F.gelu(xs[0], approximate=node.attr("approximate", "none"))


def _clip(node, xs):
    x = xs[0]
    if "min" in node.attrs or "max" in node.attrs:  # opset < 11
        lo, hi = node.attr("min"), node.attr("max")
    else:
        lo = None if len(xs) < 2 or xs[1] is None else _array(xs[1]).item()
        hi = None if len(xs) < 3 or xs[2] is None else _array(xs[2]).item()
    if lo is None and hi is None:
        return x
    return F.clip(x, lo, hi)


def _cast(node, xs):
    import onnx

    x = xs[0]
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(node.attr("to")))
    if dtype == x.dtype:
        return x
    if dtype.kind == "f" and x.dtype.kind == "f" and not _is_constant(x):
        return _AsType(dtype)(x)  # (its gradient is cast back)
    return _const(_array(x).astype(dtype), x)


def _compare(fn):
    def handle(node, xs):
        return _const(fn(*[_array(x) for x in xs]), xs[0])

    return handle


def _where(node, xs):
    cond, x, y = xs
    return F.where(cond.data.astype(bool), x, y)


# =========================================================================================
# Shapes
# =========================================================================================
def _reshape(node, xs):
    x = xs[0]
    shape = _ints(xs[1]) if len(xs) > 1 else list(node.attr("shape"))
    if not node.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    if _is_constant(x):
        return _const(_array(x).reshape(shape), x)
    return F.reshape(x, tuple(shape))


def _flatten(node, xs):
    x = xs[0]
    axis = node.attr("axis", 1) % (x.ndim + 1) if x.ndim else 0
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return F.reshape(x, (lead, -1))


def _transpose(node, xs):
    perm = node.attr("perm")
    return F.transpose(xs[0], None if perm is None else tuple(perm))


def _squeeze(node, xs):
    x = xs[0]
    axes = _axes(node, xs)
    if axes is None:
        axes = [i for i, n in enumerate(x.shape) if n == 1]
    axes = _norm_axes(axes, x.ndim)
    shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    if _is_constant(x):
        return _const(_array(x).reshape(shape), x)
    return F.reshape(x, shape)


def _unsqueeze(node, xs):
    x = xs[0]
    axes = _norm_axes(_axes(node, xs), x.ndim + len(_axes(node, xs)))
    if _is_constant(x):
        return _const(np.expand_dims(_array(x), tuple(axes)), x)
    return F.expand_dims(x, tuple(axes))


def _shape(node, xs):
    shape = np.asarray(xs[0].shape, dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end", None)
    return _const(shape[start:end], xs[0])


def _size(node, xs):
    return _const(np.asarray(xs[0].size, dtype=np.int64), xs[0])


def _constant_of_shape(node, xs):
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return _const(np.full(_ints(xs[0]), value[0], dtype=value.dtype), xs[0])


def _range(node, xs):
    start, limit, delta = (_array(x).item() for x in xs)
    return _const(np.arange(start, limit, delta, dtype=xs[0].dtype), xs[0])


def _expand(node, xs):
    x = xs[0]
    shape = np.broadcast_shapes(x.shape, tuple(_ints(xs[1])))
    if _is_constant(x):
        return _const(np.broadcast_to(_array(x), shape).copy(), x)
    return F.broadcast_to(x, shape)


def _tile(node, xs):
    x, reps = xs[0], _ints(xs[1])
    for axis, r in enumerate(reps):
        if r != 1:
            x = F.concat([x] * r, axis=axis)
    return x


def _concat(node, xs):
    xs = [x for x in xs if x is not None]
    axis = node.attr("axis")
    if all(_is_constant(x) for x in xs):
        return _const(np.concatenate([_array(x) for x in xs], axis=axis), xs[0])
    return F.concat(xs, axis=axis)


def _split(node, xs):
    x = xs[0]
    axis = node.attr("axis", 0) % x.ndim
    sizes = node.attr("split")
    if sizes is None and len(xs) > 1 and xs[1] is not None:
        sizes = _ints(xs[1])
    if sizes is None:
        n = node.attr("num_outputs", len(node.outputs))
        length = x.shape[axis]
        step = -(-length // n)  # the last piece may be smaller (opset 18's rule)
        sizes = [min(step, length - i * step) for i in range(n)]
    cuts = np.cumsum(sizes)[:-1].tolist()
    return F.split(x, cuts, axis=axis)


def _slice(node, xs):
    x = xs[0]
    if "starts" in node.attrs:  # opset < 10
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes, steps = node.attr("axes"), None
    else:
        starts, ends = _ints(xs[1]), _ints(xs[2])
        axes = _ints(xs[3]) if len(xs) > 3 and xs[3] is not None else None
        steps = _ints(xs[4]) if len(xs) > 4 and xs[4] is not None else None
    axes = list(range(len(starts))) if axes is None else [a % x.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        index[a] = slice(s, e, st)  # Python's slicing clamps as ONNX does
    index = tuple(index)
    if _is_constant(x):
        return _const(_array(x)[index].copy(), x)
    return F.get_item(x, index)


def _gather(node, xs):
    x, idx = xs
    axis = node.attr("axis", 0) % x.ndim
    ids = idx.data
    if ids.dtype.kind not in "iu":
        raise node.error(f"indices of dtype {ids.dtype}; expected integers")
    if _is_constant(x):
        return _const(np.take(_array(x), _array(ids), axis=axis), x)
    ids = cuda.get_array_module(x.data).where(ids < 0, ids + x.shape[axis], ids)
    return F.get_item(x, (slice(None),) * axis + (ids,))


def _reduce(fn):
    def handle(node, xs):
        x = xs[0]
        axes = _axes(node, xs)
        keepdims = bool(node.attr("keepdims", 1))
        if axes is None or len(axes) == 0:
            if node.attr("noop_with_empty_axes", 0):
                return x
            axes = None
        else:
            axes = tuple(_norm_axes(axes, x.ndim))
        return fn(x, axis=axes, keepdims=keepdims)

    return handle


def _global_pool(fn):
    def handle(node, xs):
        x = xs[0]
        return fn(x, axis=tuple(range(2, x.ndim)), keepdims=True)

    return handle


def _identity(node, xs):
    return xs[0]


def _dropout(node, xs):
    x = xs[0]
    if len(node.outputs) > 1 and node.outputs[1]:
        xp = cuda.get_array_module(x.data)
        return [x, _const(xp.ones(x.shape, dtype=bool), x)]
    return x


# =========================================================================================
# Linear algebra, convolution, pooling, normalization
# =========================================================================================
def _matmul(node, xs):
    return F.matmul(xs[0], xs[1])


def _gemm(node, xs):
    a, b = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 else None
    if node.attr("transA", 0):
        a = F.transpose(a)
    if node.attr("transB", 0):
        b = F.transpose(b)
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if alpha != 1.0:
        a = a * alpha
    if c is not None and beta != 1.0:
        c = c * beta
    if c is not None and c.shape == (b.shape[1],):
        return F.linear(a, b, c)
    y = F.linear(a, b)
    return y if c is None else y + c


def _conv_geometry(node, x_shape, kernel):
    """stride and symmetric pads of a 2-D Conv/pooling node, checked."""
    if len(kernel) != 2 or len(x_shape) != 4:
        raise node.error(f"only 2-D images (N, C, H, W) are supported, got input shape "
                         f"{tuple(x_shape)} and kernel {tuple(kernel)}")
    if any(d != 1 for d in node.attr("dilations", [1, 1])):
        raise node.error(f"dilations {node.attr('dilations')} are not supported")
    auto_pad = node.attr("auto_pad", "NOTSET")
    strides = list(node.attr("strides", [1, 1]))
    pads = list(node.attr("pads", [0, 0, 0, 0]))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s in zip(x_shape[2:], kernel, strides):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            if total % 2:
                raise node.error(f"auto_pad {auto_pad} needs uneven padding here")
            pads.append(total // 2)
        pads = pads + pads
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    if pads[:2] != pads[2:]:
        raise node.error(f"asymmetric pads {pads} are not supported")
    return tuple(strides), tuple(pads[:2])


def _grouped(node, x, W, b, w_axis, conv):
    """A convolution with ``group`` groups as that many convolutions on the channel
    groups of ``x`` and the blocks of ``W`` (along ``w_axis``) and ``b``, side by side."""
    groups = int(node.attr("group", 1))
    if groups == 1:
        return conv(x, W, b)
    if groups < 1 or x.shape[1] % groups or W.shape[w_axis] % groups:
        raise node.error(f"group={groups} does not divide the input's {x.shape[1]} "
                         f"channels and the weights' {W.shape[w_axis]}")
    xs = F.split(x, groups, axis=1)
    Ws = F.split(W, groups, axis=w_axis)
    bs = F.split(b, groups, axis=0) if b is not None else [None] * groups
    return F.concat([conv(*args) for args in zip(xs, Ws, bs)], axis=1)


def _conv(node, xs):
    x, W = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    stride, pad = _conv_geometry(node, x.shape, W.shape[2:])
    return _grouped(node, x, W, b, 0,
                    lambda x, W, b: F.conv2d(x, W, b, stride=stride, pad=pad))


def _conv_transpose(node, xs):
    x, W = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    kh, kw = W.shape[2:]
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise node.error(f"auto_pad {node.attr('auto_pad')} is not supported")
    stride, pad = _conv_geometry(node, x.shape, (kh, kw))
    out = node.attr("output_shape")
    if out is None:
        extra = list(node.attr("output_padding", [0, 0]))
        out = [s * (n - 1) + k - 2 * p + e
               for n, k, s, p, e in zip(x.shape[2:], (kh, kw), stride, pad, extra)]
    outsize = tuple(out[-2:])
    return _grouped(node, x, W, b, 0,
                    lambda x, W, b: F.deconv2d(x, W, b, stride=stride, pad=pad, outsize=outsize))


def _pool_checks(node):
    if node.attr("ceil_mode", 0):
        raise node.error("ceil_mode=1 is not supported")
    if node.attr("storage_order", 0):
        raise node.error("storage_order=1 is not supported")


def _max_pool(node, xs):
    _pool_checks(node)
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.error("the Indices output is not supported")
    x = xs[0]
    kernel = tuple(node.attr("kernel_shape"))
    stride, pad = _conv_geometry(node, x.shape, kernel)
    return F.pooling(x, kernel, stride=stride, pad=pad)


def _average_pool(node, xs):
    _pool_checks(node)
    x = xs[0]
    kernel = tuple(node.attr("kernel_shape"))
    stride, pad = _conv_geometry(node, x.shape, kernel)
    y = F.average_pooling(x, kernel, stride=stride, pad=pad)
    if node.attr("count_include_pad", 0) or pad == (0, 0):
        return y
    # Padding left out of the count: divide by the share of real pixels in each window.
    xp = cuda.get_array_module(x.data)
    ones = xp.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
    share = F.average_pooling(ones, kernel, stride=stride, pad=pad).data
    return y / _const(share, x)


def _batch_norm(node, xs):
    x, scale, bias, mean, var = xs[:5]
    if node.attr("training_mode", 0) or (len(node.outputs) > 1 and any(node.outputs[1:])):
        raise node.error("the training form (running statistics as outputs) is not "
                         "supported; export the model in inference mode")
    eps = node.attr("epsilon", 1e-5)
    decay = node.attr("momentum", 0.9)
    # The running statistics are the model's buffers: batch_norm updates them in place
    # in training mode (as L.BatchNorm does) and uses them in test mode.
    return F.batch_norm(x, scale, bias, mean.data, var.data, decay=decay, eps=eps)


def _layer_norm(node, xs):
    x, scale = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 else None
    axis = node.attr("axis", -1) % x.ndim
    eps = node.attr("epsilon", 1e-5)
    wanted = [o for o in node.outputs[1:] if o]
    if axis == x.ndim - 1 and not wanted and scale.shape == (x.shape[-1],):
        if bias is None:
            xp = cuda.get_array_module(x.data)
            bias = _const(xp.zeros(x.shape[-1], dtype=x.dtype), x)
        return F.layer_norm(x, scale, bias, eps=eps)
    # Several normalized axes (or the statistics asked for): written out.
    axes = tuple(range(axis, x.ndim))
    mean = F.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    inv_std = (F.mean(xc * xc, axis=axes, keepdims=True) + eps) ** -0.5
    y = xc * inv_std * scale
    if bias is not None:
        y = y + bias
    return [y, mean, inv_std][: len(node.outputs)]


# =========================================================================================
# Recurrent layers (the ONNX RNN, GRU and LSTM operators)
# =========================================================================================
# Each direction runs as one of zerograd's whole-sequence Functions (F.lstm_sequence,
# F.gru_sequence, F.rnn_sequence) when the node computes what they compute (default
# activations, no peepholes; for GRU, linear_before_reset=1 as PyTorch's); otherwise
# the step is unrolled over the sequence with elementwise Functions.
#
# ONNX holds the gate blocks as row blocks of W (gates*H, in) in its own order;
# zerograd's sequence Functions take (in, gates*H) matrices with column blocks in
# PyTorch's order. ``_ZEROGRAD_GATES[op][k]``: the ONNX block of zerograd's block k.
_ZEROGRAD_GATES = {
    "LSTM": (0, 2, 3, 1),  # i, f, g, o from ONNX's i, o, f, c
    "GRU": (1, 0, 2),  # r, z, n from ONNX's z, r, h
    "RNN": (0,),
}


def _recurrent_checks(node, default_activations):
    if node.attr("clip") is not None:
        raise node.error("the clip attribute is not supported")
    acts = node.attr("activations")
    direction = node.attr("direction", "forward")
    n = 2 if direction == "bidirectional" else 1
    if acts is not None and [a.lower() for a in acts] != [
        a.lower() for a in default_activations * n
    ]:
        raise node.error(f"activations {acts} are not supported (only the defaults "
                         f"{default_activations})")
    if node.attr("input_forget", 0):
        raise node.error("input_forget=1 is not supported")
    return direction


def _sequence(node, xs):
    """The input as ``(T, N, I)``, and whether the layout is batch-first."""
    x = xs[0]
    batch_first = bool(node.attr("layout", 0))
    if batch_first:
        x = F.transpose(x, (1, 0, 2))
    seq_lens = xs[4] if len(xs) > 4 else None
    if seq_lens is not None and any(n != x.shape[0] for n in _ints(seq_lens)):
        raise node.error("sequences of different lengths (sequence_lens) are not "
                         "supported; pad them to one length")
    return x, batch_first


def _initial(xs, k, d, batch_first):
    """Direction d's initial state from input k, or None (zeros)."""
    if len(xs) > k and xs[k] is not None:
        h = xs[k]
        return h[:, d] if batch_first else h[d]
    return None


def _zeros(shape, like):
    xp = cuda.get_array_module(like.data)
    return _const(xp.zeros(shape, dtype=like.dtype), like)


def _run_directions(node, xs, run, n_states):
    """Run each direction with ``run(x, W_d, R_d, B_d or None, states, d)`` on the
    time-major input (reversed in time for the reverse direction), which returns every
    step's ``h`` ``(T, N, H)`` and the last states; returns the ONNX outputs
    ``Y (T, D, N, H)`` (or batch-first) and the last of each state ``(D, N, H)``."""
    direction = node.attr("direction", "forward")
    x, batch_first = _sequence(node, xs)
    W, R = xs[1], xs[2]
    B = xs[3] if len(xs) > 3 else None
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    backwards = (slice(None, None, -1),)
    ys, lasts = [], [[] for _ in range(n_states)]
    for d, name in enumerate(dirs):
        states = [_initial(xs, 5 + s, d, batch_first) for s in range(n_states)]
        xd = x[backwards] if name == "reverse" else x
        y, finals = run(xd, W[d], R[d], None if B is None else B[d], states, d)
        ys.append(y[backwards] if name == "reverse" else y)
        for s in range(n_states):
            lasts[s].append(finals[s])
    Y = F.stack(ys, axis=1)  # (T, D, N, H)
    finals = [F.stack(last, axis=0) for last in lasts]  # (D, N, H)
    if batch_first:
        Y = F.transpose(Y, (2, 0, 1, 3))
        finals = [F.transpose(s, (1, 0, 2)) for s in finals]
    return [Y] + finals


def _gates_as_columns(op, M):
    """An ONNX ``(gates*H, K)`` matrix as zerograd's ``(K, gates*H)``, blocks reordered."""
    return F.transpose(_reorder(op, M, axis=0))


def _reorder(op, v, axis):
    order = _ZEROGRAD_GATES[op]
    if len(order) == 1:
        return v
    blocks = F.split(v, len(order), axis=axis)
    return F.concat([blocks[k] for k in order], axis=axis)


def _unrolled(step):
    """``run`` for :func:`_run_directions` from a one-step function
    ``step(xw_t, states, R, bias_r, d) -> states`` (``d``: the direction)."""

    def run(x, W, R, B, states, d):
        H = R.shape[-1]
        n_gates = W.shape[0] // H
        xw = F.matmul(x, F.transpose(W))  # every step's input product at once
        bias_r = None
        if B is not None:
            xw = xw + B[: n_gates * H]
            bias_r = B[n_gates * H:]
        states = [_zeros((x.shape[1], H), x) if s is None else s for s in states]
        ys = []
        for t in range(x.shape[0]):
            states = step(xw[t], states, R, bias_r, d)
            ys.append(states[0])
        return F.stack(ys, axis=0), states

    return run


def _lstm(node, xs):
    _recurrent_checks(node, ["Sigmoid", "Tanh", "Tanh"])
    P = xs[7] if len(xs) > 7 else None

    def run_sequence(x, W, R, B, states, d):
        b = None
        if B is not None:
            Wb, Rb = F.split(B, 2)
            b = _reorder("LSTM", Wb + Rb, axis=0)
        y, h, c = F.lstm_sequence(x, *states, _gates_as_columns("LSTM", W),
                                  _gates_as_columns("LSTM", R), b)
        return y, [h, c]

    def step(xw_t, states, Rd, bias_r, d):
        h, c = states
        gates = xw_t + F.matmul(h, F.transpose(Rd))
        if bias_r is not None:
            gates = gates + bias_r
        i, o, f, g = F.split(gates, 4, axis=-1)  # ONNX's gate order: i, o, f, c
        pi, po, pf = F.split(P[d], 3, axis=-1)  # peepholes
        i, f = i + pi * c, f + pf * c
        i, f, g = F.sigmoid(i), F.sigmoid(f), F.tanh(g)
        c = f * c + i * g
        h = F.sigmoid(o + po * c) * F.tanh(c)
        return [h, c]

    run = run_sequence if P is None else _unrolled(step)
    return _run_directions(node, xs, run, n_states=2)[: len(node.outputs)]


def _gru(node, xs):
    _recurrent_checks(node, ["Sigmoid", "Tanh"])

    def run_sequence(x, W, R, B, states, d):
        b_x = b_h = None
        if B is not None:
            b_x, b_h = (_reorder("GRU", v, axis=0) for v in F.split(B, 2))
        y, h = F.gru_sequence(x, states[0], _gates_as_columns("GRU", W),
                              _gates_as_columns("GRU", R), b_x, b_h)
        return y, [h]

    def step(xw_t, states, Rd, bias_r, d):
        # (linear_before_reset=0: the reset gate scales h before the product)
        (h,) = states
        xz, xr, xh = F.split(xw_t, 3, axis=-1)  # ONNX's gate order: z, r, h
        Rz, Rr, Rh = F.split(Rd, 3, axis=0)
        bz = br = bh = 0.0
        if bias_r is not None:
            bz, br, bh = F.split(bias_r, 3, axis=-1)
        z = F.sigmoid(xz + F.matmul(h, F.transpose(Rz)) + bz)
        r = F.sigmoid(xr + F.matmul(h, F.transpose(Rr)) + br)
        n = F.tanh(xh + F.matmul(r * h, F.transpose(Rh)) + bh)
        return [n + z * (h - n)]  # (1 - z) n + z h

    run = run_sequence if node.attr("linear_before_reset", 0) else _unrolled(step)
    return _run_directions(node, xs, run, n_states=1)[: len(node.outputs)]


def _rnn(node, xs):
    _recurrent_checks(node, ["Tanh"])

    def run(x, W, R, B, states, d):
        b = None
        if B is not None:
            Wb, Rb = F.split(B, 2)
            b = Wb + Rb
        y, h = F.rnn_sequence(x, states[0], F.transpose(W), F.transpose(R), b)
        return y, [h]

    return _run_directions(node, xs, run, n_states=1)[: len(node.outputs)]


# =========================================================================================
# The table
# =========================================================================================
HANDLERS = {
    # elementwise
    "Add": _add,
    "Sub": _sub,
    "Mul": _mul,
    "Div": _div,
    "Pow": _pow,
    "Sum": _sum,
    "Neg": _unary(F.neg),
    "Reciprocal": _reciprocal,
    "Exp": _unary(F.exp),
    "Log": _unary(F.log),
    "Sin": _unary(F.sin),
    "Cos": _unary(F.cos),
    "Tanh": _unary(F.tanh),
    "Sqrt": _unary(F.sqrt),
    "Erf": _unary(F.erf),
    "Sigmoid": _unary(F.sigmoid),
    "Relu": _unary(F.relu),
    "LeakyRelu": _leaky_relu,
    "Softplus": _unary(F.softplus),
    "Gelu": _gelu,
    "Softmax": _softmax_like(F.softmax),
    "LogSoftmax": _softmax_like(F.log_softmax),
    "Clip": _clip,
    "Cast": _cast,
    "Where": _where,
    "Equal": _compare(np.equal),
    "Less": _compare(np.less),
    "Greater": _compare(np.greater),
    "Not": _compare(np.logical_not),
    "And": _compare(np.logical_and),
    "Or": _compare(np.logical_or),
    # shapes
    "Identity": _identity,
    "Dropout": _dropout,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Shape": _shape,
    "Size": _size,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Expand": _expand,
    "Tile": _tile,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
    "Constant": None,  # evaluated once by the model (see OnnxModel)
    # reductions
    "ReduceSum": _reduce(F.sum),
    "ReduceMean": _reduce(F.mean),
    "ReduceMax": _reduce(F.max),
    "ReduceMin": _reduce(F.min),
    "GlobalAveragePool": _global_pool(F.mean),
    "GlobalMaxPool": _global_pool(F.max),
    # linear algebra, convolution, pooling, normalization
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    # recurrent
    "LSTM": _lstm,
    "GRU": _gru,
    "RNN": _rnn,
}


def handlers() -> dict:
    """``{ONNX operator: handler}``."""
    return HANDLERS

