"""Mixed precision: train float16 models with a loss scaler.

Training in float16 halves the memory of weights and activations, and is what GPUs
compute fastest. Two things go wrong with it, and zerograd handles both:

- **Updates vanish.** A step smaller than float16's spacing (about 1e-3 near 1.0) does
  not change a float16 weight, and Adam's ``eps=1e-8`` is 0 in float16. Optimizers keep
  a float32 *master* copy of each float16 parameter and float32 state for it (see
  :class:`zerograd.optimizers.Optimizer`), so nothing is needed from you.
- **Gradients underflow.** Gradients below float16's smallest value (6e-8) become 0.
  :class:`LossScaler` multiplies the loss by a large factor before ``backward`` (so the
  gradients are larger by the same factor), then divides the gradients by it in
  float32 before the update, and skips any step whose gradients overflowed.

A training step in float16:

.. code-block:: python

    model.astype(np.float16)                 # before making the optimizer
    optimizer = optimizers.Adam().setup(model)
    scaler = LossScaler()                     # dynamic scaling
    for x, t in loader:
        loss = F.softmax_cross_entropy(model(x.astype(np.float16)), t)
        model.cleargrads()
        scaler.backward(loss)                 # backward of loss * scale
        scaler.step(optimizer)                # unscale, check, update (or skip)

Example:
    >>> import numpy as np
    >>> from zerograd import Parameter, optimizers
    >>> w = Parameter(np.array([1.0], dtype=np.float16))
    >>> optimizer = optimizers.SGD().setup([w])
    >>> small = np.float16(1e-4)
    >>> (w * small * small).sum().backward()   # d/dw = 1e-8: 0 in float16
    >>> w.grad.data
    array([0.], dtype=float16)
    >>> w.cleargrad()
    >>> scaler = LossScaler()
    >>> scaler.backward((w * small * small).sum())
    >>> scaler.unscale(optimizer), w.grad.dtype, f"{float(w.grad.data[0]):.2e}"
    (True, dtype('float32'), '1.00e-08')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from zerograd import _checks
from zerograd.core import Variable
from zerograd.cuda import get_array_module

__all__ = ["LossScaler"]


class LossScaler:
    """Scale the loss up for ``backward``, the gradients down for the update, and skip
    the steps whose gradients overflowed.

    Dynamic scaling (the default) halves the scale after each overflow and doubles it
    after ``growth_interval`` good steps in a row, so it settles near the largest scale
    that does not overflow. Static scaling (``dynamic=False``) keeps ``scale`` fixed,
    and still skips overflowing steps.

    When the loss itself is float16, the scale is kept at most 2**15 (the seed of the
    backward pass, ``scale``, must be finite in float16); compute the loss in float32 to
    allow more.

    Args:
        scale: the initial (or fixed) scale, a finite number > 0.
        dynamic: adapt the scale (see above).
        growth_factor: multiplies the scale after ``growth_interval`` good steps (> 1).
        backoff_factor: multiplies the scale after an overflow (in (0, 1)).
        growth_interval: good steps in a row before growing (an int >= 1).
        min_scale, max_scale: the range the dynamic scale stays in.

    Attributes:
        scale: the current scale.
        skipped: how many steps were skipped because of overflows.
    """

    def __init__(self, scale: float = 2.0**15, dynamic: bool = True,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 1000, min_scale: float = 1.0,
                 max_scale: float = 2.0**24):
        name = "LossScaler"
        self.scale = _checks.real(name, "scale", scale, "positive")
        self.dynamic = bool(dynamic)
        self.growth_factor = _checks.real(name, "growth_factor", growth_factor, "positive")
        if self.growth_factor <= 1:
            raise ValueError(f"{name}: growth_factor must be > 1, got {growth_factor!r}")
        self.backoff_factor = _checks.real(name, "backoff_factor", backoff_factor, "positive")
        if self.backoff_factor >= 1:
            raise ValueError(f"{name}: backoff_factor must be in (0, 1), got "
                             f"{backoff_factor!r}")
        self.growth_interval = _checks.count(name, "growth_interval", growth_interval, 1)
        self.min_scale = _checks.real(name, "min_scale", min_scale, "positive")
        self.max_scale = _checks.real(name, "max_scale", max_scale, "positive")
        if not self.min_scale <= self.scale <= self.max_scale:
            raise ValueError(
                f"{name}: scale {scale!r} is outside [min_scale, max_scale] = "
                f"[{min_scale!r}, {max_scale!r}]"
            )
        self.good_steps = 0
        self.skipped = 0

    def backward(self, loss: Variable, **kwargs) -> None:
        """Run ``loss.backward(**kwargs)`` for ``loss * scale``: the gradients come out
        multiplied by the scale (the loss's value itself is not changed).

        Raises:
            ValueError: when ``loss`` is not a single value.
        """
        if loss.size != 1:
            raise ValueError(
                f"LossScaler.backward: the loss must be a single value, got shape "
                f"{loss.shape}; reduce it first (e.g. F.mean or .sum())"
            )
        dtype = loss.dtype
        if dtype.kind == "f":
            # the largest power of two that is finite in the loss's dtype
            self.scale = min(self.scale, 2.0 ** (np.finfo(dtype).maxexp - 1))
        xp = get_array_module(loss.data)
        loss.grad = Variable(xp.full(loss.shape, self.scale, dtype=dtype))
        loss.backward(**kwargs)

    def unscale(self, optimizer) -> bool:
        """Divide the gradients of the optimizer's parameters by the scale, in float32
        (float64 gradients stay float64); False, and nothing changed, when any
        gradient holds an Inf or NaN."""
        params = [p for p in optimizer.target.params() if p.grad is not None]
        inverse = 1.0 / self.scale
        grads = []
        for param in params:
            g = param.grad.data
            if g.dtype.kind == "f" and g.dtype.itemsize < 4:
                g = g.astype(np.float32)
            g = g * inverse  # a new array: gradients may be shared between parameters
            if not bool(get_array_module(g).isfinite(g).all()):
                return False
            grads.append(g)
        for param, g in zip(params, grads):
            param.grad = Variable(g)
        return True

    def step(self, optimizer) -> bool:
        """Unscale the gradients and run ``optimizer.update()``, or skip the update when
        a gradient overflowed; then adapt the scale. Returns whether it updated."""
        if optimizer.target is None:
            raise RuntimeError("LossScaler.step: the optimizer has no target; call "
                               "optimizer.setup(model) first")
        ok = self.unscale(optimizer)
        if ok:
            optimizer.update()
        else:
            self.skipped += 1
        if self.dynamic:
            self._adapt(ok)
        return ok

    def _adapt(self, ok: bool) -> None:
        if not ok:
            self.scale = max(self.scale * self.backoff_factor, self.min_scale)
            self.good_steps = 0
            return
        self.good_steps += 1
        if self.good_steps >= self.growth_interval:
            self.scale = min(self.scale * self.growth_factor, self.max_scale)
            self.good_steps = 0

    _SETTINGS = ("dynamic", "growth_factor", "backoff_factor", "growth_interval",
                 "min_scale", "max_scale")

    def state_dict(self) -> dict:
        """The scale, the counters and the settings (plain Python values)."""
        state = {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped}
        state.update({name: getattr(self, name) for name in self._SETTINGS})
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` returned (checked first; nothing changes when
        it does not fit).

        Raises:
            ValueError: on a missing or invalid entry.
        """
        try:
            probe = LossScaler(state["scale"], state["dynamic"], state["growth_factor"],
                               state["backoff_factor"], state["growth_interval"],
                               state["min_scale"], state["max_scale"])
            probe.good_steps = _checks.count("LossScaler", "good_steps", state["good_steps"], 0)
            probe.skipped = _checks.count("LossScaler", "skipped", state["skipped"], 0)
        except KeyError as e:
            raise ValueError(f"LossScaler.load_state_dict: missing {e} in the state") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"LossScaler.load_state_dict: {e}") from None
        self.__dict__.update(probe.__dict__)

    def __repr__(self) -> str:
        kind = "dynamic" if self.dynamic else "static"
        return f"LossScaler(scale={self.scale:g}, {kind}, skipped={self.skipped})"
