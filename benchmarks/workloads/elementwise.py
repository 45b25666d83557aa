"""Workload 6: every elementwise function and reduction, from 1 element to 10^7.

Each case is one function at one size (``"tanh 1e6"``), float32, timed forward+backward
and reported in microseconds per operation:

- elementwise functions (unary, and binary with a second operand that needs a gradient
  too) run as a chain of K applications, ``y = f(y)``, then one backward through the
  chain: K = 100 at 1 and 10^3 elements, 10 at 10^5, 1 at 10^6 and 10^7, so that the
  fixed cost of starting a backward pass (larger in PyTorch) does not hide the cost per
  operation on small arrays; the figure is the time divided by K;
- reductions (sum, mean, max, min) and softmax/log_softmax (over rows of 100 elements,
  the last axis) run once per backward.

On small arrays the figure is the framework's cost per operation; on large ones, the
passes over memory each gradient formula makes. A chain's values may leave a function's
domain after a few links (exp overflows to inf, log of a negative number is NaN); NumPy's
warnings are silenced for every framework, and neither inf nor NaN slows the arithmetic
(only subnormal numbers would; the starting points avoid them).

The numpy floor computes the same forward with NumPy ufuncs and the backward with the
textbook formula (``gy * (1 - y * y)`` for tanh), as one would write it by hand. NumPy
has no erf, so the floor skips erf and the exact GELU.
"""

from __future__ import annotations

import numpy as np
from common import Result, Skip, import_torch, median, require_zerograd, time_calls

NAME = "elementwise"
FRAMEWORKS = ("zerograd", "torch", "numpy")
MAX_ROUNDS = 3  # 135 cases a round; three rounds take a few minutes

SIZES = {"1": 1, "1e3": 10**3, "1e5": 10**5, "1e6": 10**6, "1e7": 10**7}
CHAIN = {"1": 100, "1e3": 100, "1e5": 10, "1e6": 1, "1e7": 1}
REPEATS = {"1": 30, "1e3": 30, "1e5": 20, "1e6": 7, "1e7": 5}
QUICK_REPEATS = {"1": 10, "1e3": 10, "1e5": 7, "1e6": 3, "1e7": 3}

UNARY = ("neg", "exp", "log", "sin", "cos", "tanh", "sqrt", "square", "erf", "sigmoid",
         "relu", "leaky_relu", "softplus", "gelu", "gelu_tanh", "clip")
BINARY = ("add", "sub", "mul", "div", "pow")
REDUCTIONS = ("sum", "mean", "max", "min", "softmax", "log_softmax")
OPS = UNARY + BINARY + REDUCTIONS
# Inputs kept in each function's domain (and a chain's fixed point away from subnormals).
POSITIVE = {"log", "sqrt", "pow"}
CHAIN_START = {"square": 1.0, "gelu": 5.0, "gelu_tanh": 5.0}

CASES = tuple(f"{op} {size}" for size in SIZES for op in OPS)
GROUPS = [[f"{op} {size}" for op in OPS] for size in SIZES]  # one process per size


def parse_case(case: str):
    op, size = case.split()
    return op, size


# ---- inputs --------------------------------------------------------------------------------
def make_inputs(op: str, size: str, seed: int = 0):
    """float32 arrays for ``op`` at ``size``: x (and a second operand for binary ops)."""
    n = SIZES[size]
    rng = np.random.default_rng(seed)
    if op in REDUCTIONS[-2:]:  # softmax over rows of 100 (of n for smaller arrays)
        shape = (max(n // 100, 1), min(n, 100))
    else:
        shape = (n,)
    if CHAIN[size] > 1 and op not in REDUCTIONS:  # a chain: one value everywhere
        x = np.full(shape, CHAIN_START.get(op, 0.5), dtype=np.float32)
    elif op in POSITIVE:
        x = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    if op not in BINARY:
        return [x]
    b = np.full(shape, 0.5, dtype=np.float32) if CHAIN[size] > 1 else (
        rng.uniform(0.5, 2.0, shape).astype(np.float32))
    return [x, b]


def chain_length(op: str, size: str) -> int:
    return 1 if op in REDUCTIONS else CHAIN[size]


# ---- zerograd ------------------------------------------------------------------------------
def _zerograd_op(op: str):
    require_zerograd("functions.tanh")  # Skip if zerograd does not import
    import zerograd.functions as F

    table = {
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "clip": lambda x: F.clip(x, -0.5, 0.5),
        "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
        "softmax": lambda x: F.softmax(x, axis=-1),
        "log_softmax": lambda x: F.log_softmax(x, axis=-1),
    }
    if op in table:
        return table[op]
    if not hasattr(F, op):
        raise Skip(f"zerograd.functions.{op} not available")
    return getattr(F, op)


def _zerograd(op: str, size: str):
    (Variable,) = require_zerograd("core.Variable")
    f = _zerograd_op(op)
    k = chain_length(op, size)
    leaves = [Variable(a) for a in make_inputs(op, size)]
    x = leaves[0]
    second = leaves[1:]

    def step():
        y = x
        for _ in range(k):
            y = f(y, *second)
        y.backward()
        for v in leaves:
            v.cleargrad()

    return step


# ---- PyTorch -------------------------------------------------------------------------------
def _torch_op(op: str):
    torch = import_torch()
    TF = torch.nn.functional
    table = {
        "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sin": torch.sin,
        "cos": torch.cos, "tanh": torch.tanh, "sqrt": torch.sqrt, "square": torch.square,
        "erf": torch.erf, "sigmoid": torch.sigmoid, "relu": torch.relu,
        "leaky_relu": lambda t: TF.leaky_relu(t, 0.2), "softplus": TF.softplus,
        "gelu": TF.gelu, "gelu_tanh": lambda t: TF.gelu(t, approximate="tanh"),
        "clip": lambda t: t.clamp(-0.5, 0.5),
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
        "pow": torch.pow,
        "sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin,
        "softmax": lambda t: TF.softmax(t, dim=-1),
        "log_softmax": lambda t: TF.log_softmax(t, dim=-1),
    }
    return torch, table[op]


def _torch(op: str, size: str):
    torch, f = _torch_op(op)
    k = chain_length(op, size)
    leaves = [torch.from_numpy(a).requires_grad_() for a in make_inputs(op, size)]
    x = leaves[0]
    second = leaves[1:]

    def step():
        y = x
        for _ in range(k):
            y = f(y, *second)
        y.backward(torch.ones_like(y))
        for v in leaves:
            v.grad = None

    return step


# ---- the NumPy floor: forward and backward written out ---------------------------------------
def _np_unary(op: str):
    """(forward(x) -> (y, saved), backward(gy, saved) -> gx) for a unary op."""
    if op == "neg":
        return (lambda x: (-x, None)), (lambda g, s: -g)
    if op == "exp":
        def fwd(x):
            y = np.exp(x)
            return y, y
        return fwd, (lambda g, y: g * y)
    if op == "log":
        return (lambda x: (np.log(x), x)), (lambda g, x: g / x)
    if op == "sin":
        return (lambda x: (np.sin(x), x)), (lambda g, x: g * np.cos(x))
    if op == "cos":
        return (lambda x: (np.cos(x), x)), (lambda g, x: -g * np.sin(x))
    if op == "tanh":
        def fwd(x):
            y = np.tanh(x)
            return y, y
        return fwd, (lambda g, y: g * (1 - y * y))
    if op == "sqrt":
        def fwd(x):
            y = np.sqrt(x)
            return y, y
        return fwd, (lambda g, y: g / (2 * y))
    if op == "square":
        return (lambda x: (x * x, x)), (lambda g, x: 2 * x * g)
    if op == "sigmoid":
        def fwd(x):
            y = 1 / (1 + np.exp(-x))
            return y, y
        return fwd, (lambda g, y: g * y * (1 - y))
    if op == "relu":
        return (lambda x: (np.maximum(x, 0), x)), (lambda g, x: g * (x > 0))
    if op == "leaky_relu":
        return ((lambda x: (np.where(x > 0, x, 0.2 * x), x)),
                (lambda g, x: np.where(x > 0, g, 0.2 * g)))
    if op == "softplus":
        return ((lambda x: (np.logaddexp(0, x), x)),
                (lambda g, x: g / (1 + np.exp(-x))))
    if op == "gelu_tanh":
        c, a = np.float32(np.sqrt(2 / np.pi)), np.float32(0.044715)

        def fwd(x):
            t = np.tanh(c * (x + a * x * x * x))
            return 0.5 * x * (1 + t), (x, t)

        def bwd(g, saved):
            x, t = saved
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x))

        return fwd, bwd
    if op == "clip":
        return ((lambda x: (np.clip(x, -0.5, 0.5), x)),
                (lambda g, x: g * ((x >= -0.5) & (x <= 0.5))))
    raise Skip(f"NumPy has no {op} (no erf)")


def _np_binary(op: str):
    """(forward(a, b) -> (y, saved), backward(gy, saved) -> (ga, gb))."""
    if op == "add":
        return (lambda a, b: (a + b, None)), (lambda g, s: (g, g))
    if op == "sub":
        return (lambda a, b: (a - b, None)), (lambda g, s: (g, -g))
    if op == "mul":
        return (lambda a, b: (a * b, (a, b))), (lambda g, s: (g * s[1], g * s[0]))
    if op == "div":
        return ((lambda a, b: (a / b, (a, b))),
                (lambda g, s: (g / s[1], -g * s[0] / (s[1] * s[1]))))

    def fwd(a, b):  # pow
        y = a**b
        return y, (a, b, y)

    def bwd(g, s):
        a, b, y = s
        return g * b * a ** (b - 1), g * y * np.log(a)

    return fwd, bwd


def _np_reduction(op: str):
    """(forward(x) -> (y, saved), backward(gy, saved) -> gx)."""
    if op == "sum":
        return (lambda x: (x.sum(), x.shape)), (lambda g, shape: np.broadcast_to(g, shape))
    if op == "mean":
        return ((lambda x: (x.mean(), x.shape)),
                (lambda g, shape: np.broadcast_to(g / np.prod(shape), shape)))
    if op in ("max", "min"):
        reduce = np.max if op == "max" else np.min

        def fwd(x):
            y = reduce(x)
            return y, (x, y)

        def bwd(g, s):
            x, y = s
            mask = x == y
            return mask * (g / mask.sum())

        return fwd, bwd
    if op == "softmax":
        def fwd(x):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
            return y, y

        def bwd(g, y):
            gx = y * g
            return gx - y * gx.sum(axis=-1, keepdims=True)

        return fwd, bwd

    def fwd(x):  # log_softmax
        z = x - x.max(axis=-1, keepdims=True)
        y = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return y, y

    return fwd, (lambda g, y: g - np.exp(y) * g.sum(axis=-1, keepdims=True))


def _numpy(op: str, size: str):
    inputs = make_inputs(op, size)
    k = chain_length(op, size)
    if op in BINARY:
        fwd, bwd = _np_binary(op)
        x, b = inputs

        def step():
            saved, y = [], x
            for _ in range(k):
                y, s = fwd(y, b)
                saved.append(s)
            g, gb = np.ones_like(y), None
            for s in reversed(saved):
                g, gbi = bwd(g, s)
                gb = gbi if gb is None else gb + gbi  # b is used by every link
            return g, gb

        return step
    fwd, bwd = _np_reduction(op) if op in REDUCTIONS else _np_unary(op)
    (x,) = inputs

    def step():
        saved, y = [], x
        for _ in range(k):
            y, s = fwd(y)
            saved.append(s)
        g = np.ones_like(y)
        for s in reversed(saved):
            g = bwd(g, s)
        return g

    return step


_IMPLS = {"zerograd": _zerograd, "torch": _torch, "numpy": _numpy}


def run(framework: str, cases, quick: bool) -> dict:
    """Microseconds per operation, forward+backward, for each case."""
    out = {}
    with np.errstate(all="ignore"):
        for case in cases:
            op, size = parse_case(case)
            try:
                step = _IMPLS[framework](op, size)
            except Skip as e:
                out[case] = e
                continue
            repeats = (QUICK_REPEATS if quick else REPEATS)[size]
            times = time_calls(step, repeats, warmup=2)
            per_op = median(times) / chain_length(op, size) * 1e6
            out[case] = [Result("forward+backward", "us/op", per_op)]
    return out


def zerograd_step(case: str = "tanh 1e6"):
    """One forward+backward of the case in zerograd (for profiling.py)."""
    op, size = parse_case(case)
    return _zerograd(op, size)
