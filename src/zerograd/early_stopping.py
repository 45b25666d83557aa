"""Early stopping: stop training when a monitored value stops improving, and go back
to the best weights.

Call :meth:`EarlyStopping.step` once an epoch with the value you watch (held-out
loss, ``mode="min"``; or accuracy, ``mode="max"``). It keeps an in-memory copy of the
model's ``state_dict()`` at the best value so far, and returns True once ``patience``
epochs in a row brought no improvement of more than ``min_delta``; the best weights
are then copied back into the model (``restore_best=True``).

Example:
    >>> import zerograd.layers as L
    >>> model = L.Linear(1, in_size=1)
    >>> stopper = EarlyStopping(patience=2)
    >>> for epoch, loss in enumerate([0.9, 0.5, 0.6, 0.7, 0.4]):
    ...     if stopper.step(loss, model):
    ...         break
    >>> epoch, stopper.best, stopper.best_step
    (3, 0.5, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from zerograd import _checks, cuda

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Watch a value once an epoch; say when to stop; keep and restore the best weights.

    Args:
        patience: how many epochs in a row without improvement end training (>= 1).
        mode: ``"min"`` when smaller is better (a loss), ``"max"`` when larger is
            (an accuracy).
        min_delta: the smallest change that counts as an improvement (>= 0).
        restore_best: copy the best weights back into the model when stopping.

    Attributes:
        best: the best value so far (None before the first step).
        best_step: the number of the step (0-based) that gave it.
        wait: steps since the last improvement.
        stopped: whether ``step`` has returned True.

    A NaN value never counts as an improvement.

    Raises:
        ValueError: on a bad argument (``mode`` not "min"/"max", a ``patience`` < 1, a
            negative ``min_delta``).
    """

    def __init__(self, patience: int, mode: str = "min", min_delta: float = 0.0,
                 restore_best: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(
                f"EarlyStopping: mode must be 'min' (a loss) or 'max' (an accuracy), "
                f"got {mode!r}"
            )
        self.patience = _checks.count("EarlyStopping", "patience", patience, 1)
        self.min_delta = _checks.real("EarlyStopping", "min_delta", min_delta, "rate")
        self.mode = mode
        self.restore_best = bool(restore_best)
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_weights: dict | None = None
        self.wait = 0
        self.steps = 0
        self.stopped = False

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model) -> bool:
        """Record this epoch's ``value``; True when training should stop.

        On an improvement the model's weights are copied (in memory, on their device).
        When the patience runs out and ``restore_best`` is set, the best weights are
        loaded back into ``model`` before returning True.
        """
        value = float(value)
        if self.improved(value):
            self.best, self.best_step, self.wait = value, self.steps, 0
            self.best_weights = {k: v.copy() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        self.steps += 1
        if self.wait >= self.patience:
            self.stopped = True
            if self.restore_best:
                self.restore(model)
        return self.stopped

    def restore(self, model) -> None:
        """Load the best weights seen so far into ``model`` (nothing before any step)."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        """The stopper's state, best weights included (for checkpoints)."""
        weights = None if self.best_weights is None else {
            k: cuda.as_numpy(v) for k, v in self.best_weights.items()}
        return {
            "patience": self.patience, "mode": self.mode, "min_delta": self.min_delta,
            "best": self.best, "best_step": self.best_step, "wait": self.wait,
            "steps": self.steps, "stopped": self.stopped, "best_weights": weights,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` returned (checked first; nothing changes when
        it does not fit).

        Raises:
            ValueError: on a missing or invalid entry.
        """
        self.apply_state_dict(self.check_state_dict(state))

    def check_state_dict(self, state: Mapping) -> dict:
        """The first half of :meth:`load_state_dict`: check ``state`` and convert
        every value; return the plan for :meth:`apply_state_dict`."""
        where = "EarlyStopping.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
        keys = {"patience", "mode", "min_delta", "best", "best_step", "wait", "steps",
                "stopped", "best_weights"}
        missing, unknown = sorted(keys - set(state)), sorted(set(state) - keys)
        if missing or unknown:
            raise ValueError(f"{where}: the state must have exactly the keys "
                             f"{sorted(keys)} (missing {missing}, unexpected {unknown})")
        name = "EarlyStopping"
        try:
            plan = {
                "patience": _checks.count(name, "patience", state["patience"], 1),
                "min_delta": _checks.real(name, "min_delta", state["min_delta"], "rate"),
                "wait": _checks.count(name, "wait", state["wait"], 0),
                "steps": _checks.count(name, "steps", state["steps"], 0),
                "stopped": _checks.flag(name, "stopped", state["stopped"]),
            }
            best, best_step = state["best"], state["best_step"]
            if best is not None and not (_checks.is_real(best) and not math.isnan(best)):
                raise ValueError(f"{name}: best must be a number (not NaN) or None, got "
                                 f"{best!r}")
            best = None if best is None else float(best)
            if best_step is not None:
                best_step = _checks.count(name, "best_step", best_step, 0)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
        mode, weights = state["mode"], state["best_weights"]
        if mode not in ("min", "max"):
            raise ValueError(f"{where}: mode must be 'min' or 'max', got {mode!r}")
        if (best is None) != (best_step is None) or (best is None) != (weights is None):
            raise ValueError(f"{where}: best, best_step and best_weights must be all set "
                             "or all None")
        if weights is not None and not (
                isinstance(weights, Mapping)
                and all(isinstance(k, str) and isinstance(v, np.ndarray)
                        for k, v in weights.items())):
            raise ValueError(f"{where}: best_weights must be a dict of arrays by name")
        plan.update(mode=mode, best=best, best_step=best_step, best_weights=None if (
            weights is None) else {k: np.array(v) for k, v in weights.items()})
        return plan

    def apply_state_dict(self, plan: dict) -> None:
        """The second half of :meth:`load_state_dict` (it cannot fail)."""
        self.__dict__.update(plan)
