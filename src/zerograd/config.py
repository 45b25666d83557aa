"""Global switches: backprop on/off, train/test mode, anomaly detection.

Each switch lives in a :class:`contextvars.ContextVar`, so changing it in one thread
(or asyncio task) never changes it in another. ``Config.enable_backprop`` reads like the
book's class attribute, but is a property backed by the context variable.

Example:
    >>> from zerograd import Config, no_grad
    >>> Config.enable_backprop
    True
    >>> with no_grad():
    ...     Config.enable_backprop
    False
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

_SWITCHES: dict[str, contextvars.ContextVar] = {
    "enable_backprop": contextvars.ContextVar("enable_backprop", default=True),
    "train": contextvars.ContextVar("train", default=True),
    "detect_anomaly": contextvars.ContextVar("detect_anomaly", default=False),
    # A callable ``tracer(function, gys, gxs)`` called by the backward engine, or None.
    "backward_tracer": contextvars.ContextVar("backward_tracer", default=None),
}

# Module-level aliases: the engine reads these on every call, so skip the dict lookup.
enable_backprop_var = _SWITCHES["enable_backprop"]
train_var = _SWITCHES["train"]
detect_anomaly_var = _SWITCHES["detect_anomaly"]
backward_tracer_var = _SWITCHES["backward_tracer"]


def _switch(name: str) -> contextvars.ContextVar:
    try:
        return _SWITCHES[name]
    except KeyError:
        raise AttributeError(
            f"Config has no switch {name!r}; known switches: {', '.join(_SWITCHES)}"
        ) from None


class _ConfigMeta(type):
    """Makes ``Config.name`` read and write the context variable of that name."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _switch(name).get()

    def __setattr__(cls, name: str, value: Any) -> None:
        # Setting directly changes the switch for the current context only (thread,
        # task); prefer ``using_config``, which restores the old value.
        _switch(name).set(value)


class Config(metaclass=_ConfigMeta):
    """The switches, read as ``Config.enable_backprop`` and ``Config.train``."""


class using_config(contextlib.ContextDecorator):
    """Set a switch of :class:`Config` for the duration of a ``with`` block.

    Usable as a decorator too. The old value is restored even if the block raises.

    Example:
        >>> with using_config("train", False):
        ...     Config.train
        False
        >>> Config.train
        True
    """

    def __init__(self, name: str, value: Any):
        self._var = _switch(name)
        self._value = value
        # One stack of tokens per thread: an instance entered in two threads at once
        # (a shared ``cm = no_grad()``) restores each thread's own old value.
        self._local = threading.local()

    def _recreate_cm(self):
        # As a decorator, each call gets an instance of its own (ContextDecorator's hook).
        return type(self)(self._var.name, self._value)

    def __enter__(self):
        tokens = self._local.__dict__.setdefault("tokens", [])
        tokens.append(self._var.set(self._value))
        return self

    def __exit__(self, *exc_info):
        self._var.reset(self._local.tokens.pop())
        return False


def no_grad(func: Callable | None = None):
    """Switch off graph recording: ``with no_grad():`` or as a decorator.

    Both ``@no_grad`` and ``@no_grad()`` work.

    Example:
        >>> @no_grad
        ... def evaluate():
        ...     return Config.enable_backprop
        >>> evaluate()
        False
    """
    if func is None:
        return using_config("enable_backprop", False)
    if not callable(func):
        raise TypeError(
            f"no_grad: expected a function to decorate or no argument, got "
            f"{type(func).__name__}; use `with no_grad():` or `@no_grad`"
        )

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with using_config("enable_backprop", False):
            return func(*args, **kwargs)

    return wrapper


def test_mode() -> using_config:
    """Switch layers such as dropout and batch norm to inference behaviour.

    Example:
        >>> with test_mode():
        ...     Config.train
        False
    """
    return using_config("train", False)


test_mode.__test__ = False  # keep pytest from collecting it as a test
