"""Workload 1: per-operation overhead.

A chain of 1,000 small elementwise operations (mul and add by a Python constant, sin,
tanh, neg, repeated) on a one-element float32 array, timed forward only (the graph is
recorded, then dropped) and forward+backward. On one element the arithmetic is nothing:
what is measured is the framework's cost per operation, in microseconds.

The cases ``tanh``, ``sigmoid``, ``sin``, ``relu`` and ``mul`` time a chain of 1,000
calls of that one function on shape ``(1,)`` (``mul``: by the constant 0.999), so that
each unary function's overhead can be compared with PyTorch's on its own.

The numpy floor makes the same 1,000 ufunc calls forward, and for the backward keeps
the values it needs and applies the chain rule by hand (about 600 more ufunc calls).
"""

from __future__ import annotations

import numpy as np
from common import Skip, import_torch, median, require_zerograd, time_calls

NAME = "overhead"
FRAMEWORKS = ("zerograd", "torch", "numpy")
UNARY = ("tanh", "sigmoid", "sin", "relu", "mul")
CASES = ("shape ()", "shape (1,)", *UNARY)
GROUPS = [list(CASES)]

N_OPS = 1000
_BLOCKS = N_OPS // 5  # mul, add, sin, tanh, neg
_SHAPES = {"shape ()": (), "shape (1,)": (1,)}


def _repeats(quick: bool) -> int:
    return 15 if quick else 60


# ---- the three implementations ---------------------------------------------------------
def _zerograd(shape):
    Variable, sin, tanh = require_zerograd("core.Variable", "functions.sin", "functions.tanh")

    def chain(x):
        y = x
        for _ in range(_BLOCKS):
            y = y * 0.9
            y = y + 0.1
            y = sin(y)
            y = tanh(y)
            y = -y
        return y

    x = Variable(np.full(shape, 0.5, dtype=np.float32))

    def forward():
        chain(x)

    def forward_backward():
        y = chain(x)
        y.backward()
        x.cleargrad()

    return forward, forward_backward


def _torch(shape):
    torch = import_torch()
    x = torch.full(shape, 0.5, dtype=torch.float32, requires_grad=True)

    def chain(x):
        y = x
        for _ in range(_BLOCKS):
            y = y * 0.9
            y = y + 0.1
            y = torch.sin(y)
            y = torch.tanh(y)
            y = -y
        return y

    def forward():
        chain(x)

    def forward_backward():
        y = chain(x)
        y.backward()
        x.grad = None

    return forward, forward_backward


def _numpy(shape):
    x = np.full(shape, 0.5, dtype=np.float32)

    def forward():
        y = x
        for _ in range(_BLOCKS):
            y = y * 0.9
            y = y + 0.1
            y = np.sin(y)
            y = np.tanh(y)
            y = -y
        return y

    def forward_backward():
        saved = []
        y = x
        for _ in range(_BLOCKS):
            y = y * 0.9
            y = y + 0.1
            a = y
            y = np.sin(y)
            y = np.tanh(y)
            saved.append((a, y))
            y = -y
        g = np.ones_like(y)
        for a, t in reversed(saved):
            g = -g  # d/dx -x = -1
            g = g * (1.0 - t * t)  # d/dx tanh x = 1 - tanh(x)^2
            g = g * np.cos(a)  # d/dx sin x = cos x
            g = g * 0.9  # d/dx (0.9 x + 0.1) = 0.9
        return g

    return forward, forward_backward


# ---- one function, 1,000 times ---------------------------------------------------------
def _unary_zerograd(name):
    (Variable,) = require_zerograd("core.Variable")
    (F,) = require_zerograd_module("functions")
    fn = {
        "tanh": F.tanh, "sigmoid": F.sigmoid, "sin": F.sin, "relu": F.relu,
        "mul": lambda y: y * 0.999,
    }[name]
    x = Variable(np.full((1,), 0.5, dtype=np.float32))
    return _unary_pair(x, fn, lambda y: y.backward(), lambda: x.cleargrad())


def _unary_torch(name):
    torch = import_torch()
    fn = {
        "tanh": torch.tanh, "sigmoid": torch.sigmoid, "sin": torch.sin, "relu": torch.relu,
        "mul": lambda y: y * 0.999,
    }[name]
    x = torch.full((1,), 0.5, dtype=torch.float32, requires_grad=True)

    def clear():
        x.grad = None

    return _unary_pair(x, fn, lambda y: y.backward(), clear)


def _unary_pair(x, fn, backward, clear):
    def chain():
        y = x
        for _ in range(N_OPS):
            y = fn(y)
        return y

    def forward():
        chain()

    def forward_backward():
        backward(chain())
        clear()

    return forward, forward_backward


def _unary_numpy(name):
    x = np.full((1,), 0.5, dtype=np.float32)
    f, df = {  # df(x, y): dy/dx from the saved input or output
        "tanh": (np.tanh, lambda x, y: 1.0 - y * y),
        "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), lambda x, y: y * (1.0 - y)),
        "sin": (np.sin, lambda x, y: np.cos(x)),
        "relu": (lambda x: np.maximum(x, 0.0), lambda x, y: x > 0),
        "mul": (lambda x: x * 0.999, lambda x, y: 0.999),
    }[name]

    def forward():
        y = x
        for _ in range(N_OPS):
            y = f(y)
        return y

    def forward_backward():
        saved = []
        y = x
        for _ in range(N_OPS):
            out = f(y)
            saved.append((y, out))
            y = out
        g = np.ones_like(y)
        for a, b in reversed(saved):
            g = g * df(a, b)
        return g

    return forward, forward_backward


def require_zerograd_module(name: str):
    """``zerograd.<name>`` as a module (Skip if it cannot be imported)."""
    import importlib

    try:
        return (importlib.import_module(f"zerograd.{name}"),)
    except ImportError as e:
        raise Skip(f"zerograd.{name} not available yet ({type(e).__name__})") from None


_IMPLS = {"zerograd": _zerograd, "torch": _torch, "numpy": _numpy}
_UNARY_IMPLS = {"zerograd": _unary_zerograd, "torch": _unary_torch, "numpy": _unary_numpy}


def run(framework: str, cases, quick: bool) -> dict:
    """Microseconds per operation, forward and forward+backward, for each case."""
    from common import Result

    out = {}
    for case in cases:
        try:
            if case in UNARY:
                forward, forward_backward = _UNARY_IMPLS[framework](case)
            else:
                forward, forward_backward = _IMPLS[framework](_SHAPES[case])
        except Skip as e:
            out[case] = e
            continue
        n = _repeats(quick)
        # Interleave the two measurements so that a burst of load hits both alike.
        f_times, fb_times = [], []
        for _ in range(3):
            f_times += time_calls(forward, n // 3, warmup=2)
            fb_times += time_calls(forward_backward, n // 3, warmup=2)
        out[case] = [
            Result("forward", "us/op", median(f_times) / N_OPS * 1e6),
            Result("forward+backward", "us/op", median(fb_times) / N_OPS * 1e6),
        ]
    return out


def zerograd_step(case: str = "shape ()"):
    """One forward+backward of the 1,000-op chain in zerograd (for profiling.py)."""
    if case in UNARY:
        return _unary_zerograd(case)[1]
    return _zerograd(_SHAPES[case])[1]
