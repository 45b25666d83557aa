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

Data-parallel, the same loop takes a ``DistributedOptimizer``: ``scaler.step`` averages
the scaled gradients over the ranks before it checks them, so every rank skips the
same steps.

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
    allow more. A ``min_scale`` above 2**15 cannot be kept then: ``backward`` refuses
    such a loss.

    A step is ``backward(loss)``, then ``step(optimizer)``; to work on the true
    gradients in between (clip them, log their norm), call ``unscale(optimizer)``
    first: ``step`` then updates without dividing them again. With a
    :class:`~zerograd.distributed.DistributedOptimizer`, the (scaled) gradients are
    averaged over the ranks before they are checked for overflow, so that every rank
    takes, or skips, the same steps.

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
        self.dynamic = _checks.flag(name, "dynamic", dynamic)
        self.growth_factor = _checks.real(name, "growth_factor", growth_factor, "positive")
        if self.growth_factor <= 1:
            raise ValueError(f"{name}: growth_factor must be > 1, got {growth_factor!r}")
        self.backoff_factor = _checks.real(name, "backoff_factor", backoff_factor,
                                           "positive")
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
        # What unscale() found since the last backward (None: not called): step() then
        # uses it instead of dividing the gradients a second time.
        self._unscaled: bool | None = None

    def backward(self, loss: Variable, **kwargs) -> None:
        """Run ``loss.backward(**kwargs)`` for ``loss * scale``: the gradients come out
        multiplied by the scale (the loss's value itself is not changed).

        Raises:
            ValueError: when ``loss`` is not a single value, or is float16 while
                ``min_scale`` is above 2**15, the largest scale float16 can seed.
        """
        if loss.size != 1:
            raise ValueError(
                f"LossScaler.backward: the loss must be a single value, got shape "
                f"{loss.shape}; reduce it first (e.g. F.mean or .sum())"
            )
        dtype = loss.dtype
        if dtype.kind == "f":
            # the largest power of two that is finite in the loss's dtype
            cap = 2.0 ** (np.finfo(dtype).maxexp - 1)
            if cap < self.min_scale:
                raise ValueError(
                    f"LossScaler.backward: the loss is {dtype}, which holds scales up to "
                    f"{cap:g}, but min_scale is {self.min_scale:g}; compute the loss in "
                    f"float32, or make the scaler with min_scale <= {cap:g}"
                )
            self.scale = min(self.scale, cap)
        xp = get_array_module(loss.data)
        loss.grad = Variable(xp.full(loss.shape, self.scale, dtype=dtype))
        loss.backward(**kwargs)
        self._unscaled = None

    def unscale(self, optimizer, weight: float | None = None) -> bool:
        """Divide the gradients of the optimizer's parameters by the scale, in float32
        (float64 gradients stay float64); False, and nothing changed, when any
        gradient holds an Inf or NaN.

        With a :class:`~zerograd.distributed.DistributedOptimizer` the gradients are
        first averaged over the ranks (``weight``: this rank's weight, as in its
        ``update``), so every rank finds the same answer. :meth:`step` after it does
        not divide the gradients again.

        Raises:
            RuntimeError: when the optimizer has no target, or the gradients were
                unscaled already since the last :meth:`backward` (dividing them twice
                would be wrong silently).
        """
        if self._unscaled is not None:
            raise RuntimeError(
                "LossScaler.unscale: the gradients were unscaled already since the last "
                "backward; call step(optimizer), which will not divide them again"
            )
        allreduce, _ = _parts(optimizer, weight)
        if allreduce is not None:
            allreduce(weight)
        self._unscaled = self._divide(optimizer)
        return self._unscaled

    def _divide(self, optimizer) -> bool:
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

    def step(self, optimizer, weight: float | None = None) -> bool:
        """Unscale the gradients (unless :meth:`unscale` did since the last backward)
        and update, or skip the update when a gradient overflowed; then adapt the
        scale. Returns whether it updated.

        ``optimizer`` may be a :class:`~zerograd.distributed.DistributedOptimizer`: the
        scaled gradients are averaged over the ranks first (``weight`` as in its
        ``update``), then checked, unscaled and used by the optimizer it wraps, so that
        every rank skips the same steps.

        Raises:
            RuntimeError: when the optimizer has no target.
        """
        _, local = _parts(optimizer, weight)
        if self._unscaled is None:
            self.unscale(optimizer, weight)
        ok, self._unscaled = self._unscaled, None
        if ok:
            local.update()  # (the gradients are averaged already)
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
        self.apply_state_dict(self.check_state_dict(state))

    def check_state_dict(self, state: Mapping) -> LossScaler:
        """The first half of :meth:`load_state_dict`: check ``state``; return the plan
        for :meth:`apply_state_dict`."""
        where = "LossScaler.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
        try:
            probe = LossScaler(state["scale"], state["dynamic"], state["growth_factor"],
                               state["backoff_factor"], state["growth_interval"],
                               state["min_scale"], state["max_scale"])
            probe.good_steps = _checks.count("LossScaler", "good_steps",
                                             state["good_steps"], 0)
            probe.skipped = _checks.count("LossScaler", "skipped", state["skipped"], 0)
        except KeyError as e:
            raise ValueError(f"{where}: missing {e} in the state") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
        unknown = sorted(set(state) - {"scale", "good_steps", "skipped", *self._SETTINGS})
        if unknown:
            raise ValueError(f"{where}: unexpected keys {unknown}")
        return probe

    def apply_state_dict(self, plan: LossScaler) -> None:
        """The second half of :meth:`load_state_dict` (it cannot fail)."""
        self.__dict__.update(plan.__dict__)

    def __repr__(self) -> str:
        kind = "dynamic" if self.dynamic else "static"
        return f"LossScaler(scale={self.scale:g}, {kind}, skipped={self.skipped})"


def _parts(optimizer, weight) -> tuple:
    """``(allreduce, local)``: the function that averages the gradients over the ranks
    (None for a plain optimizer) and the optimizer that updates."""
    if getattr(optimizer, "target", None) is None:
        raise RuntimeError("LossScaler: the optimizer has no target; call "
                           "optimizer.setup(model) first")
    allreduce = getattr(optimizer, "allreduce_grads", None)
    if allreduce is None:
        if weight is not None:
            raise ValueError("LossScaler: weight is a rank's weight in the average of a "
                             "DistributedOptimizer; a plain optimizer takes none")
        return None, optimizer
    return allreduce, optimizer.__wrapped__
