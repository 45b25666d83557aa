"""Optimizers, gradient hooks and learning-rate schedules.

An :class:`Optimizer` updates the parameters of its target (a Layer or Model, anything
with ``params()``) from their gradients. Each update works in place on
``param.data``, on the parameter's own device, and keeps its dtype (float32 stays
float32). Per-parameter state (moments, step counts) is held by the optimizer, keyed
by the parameter object itself, and saved with :meth:`Optimizer.save` keyed by the
parameter's position in ``target.params()``.

float16 parameters train through float32 *master weights*: the optimizer keeps a
float32 copy of each float16 parameter and float32 state for it, applies the update to
the copy and rounds the result into the parameter (see :mod:`zerograd.amp` for the
loss scaling that goes with it).

Hooks run on the list of parameters that have a gradient, before the update:
:class:`WeightDecay`, :class:`ClipGrad`, :class:`FreezeParam`. Schedules
(:class:`StepDecay`, :class:`ExponentialDecay`, :class:`CosineAnnealing`,
:class:`LinearWarmup`) set the optimizer's learning rate each time you call their
``step()``.

Every hyperparameter is checked when it is set (by the constructor, a schedule,
``load_state_dict`` or by hand): a negative, NaN or infinite rate, a momentum or beta
outside [0, 1) or an ``eps`` that is not positive is refused with a ``ValueError`` (a
value that is not a number at all, with a ``TypeError``), naming the class.

Example:
    >>> import numpy as np
    >>> from zerograd import Parameter, Variable
    >>> w = Parameter(np.array([1.0, -2.0]))
    >>> optimizer = SGD(lr=0.1).setup([w])
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> optimizer.update()
    >>> w.data
    array([ 0.8, -1.6])
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping

import numpy as np

from zerograd import _checks
from zerograd.core import Parameter, Variable, as_variable
from zerograd.cuda import as_cupy, as_numpy, get_array_module
from zerograd.random import book_mode
from zerograd.utils.io import read_arrays, save_arrays

__all__ = [
    "Optimizer",
    "SGD",
    "MomentumSGD",
    "AdaGrad",
    "AdaDelta",
    "Adam",
    "AdamW",
    "WeightDecay",
    "ClipGrad",
    "FreezeParam",
    "LRScheduler",
    "StepDecay",
    "ExponentialDecay",
    "CosineAnnealing",
    "LinearWarmup",
]


# =========================================================================================
# Checked hyperparameters
# =========================================================================================
class Hyperparameter:
    """A class attribute that checks every value assigned to it (see
    :func:`zerograd._checks.real`: a TypeError for a value that is not a real number, a
    ValueError for one outside the rule's range).

    Example:
        >>> class Step:
        ...     size = Hyperparameter("positive", "the step length")
        >>> s = Step(); s.size = 2
        >>> s.size
        2.0
        >>> s.size = float("nan")
        Traceback (most recent call last):
        ...
        ValueError: Step: size must be a finite number > 0, got nan (the step length)
    """

    def __init__(self, rule: str = "rate", hint: str = ""):
        if rule not in _checks.RULES:
            raise ValueError(
                f"Hyperparameter: unknown rule {rule!r}; one of {list(_checks.RULES)}")
        self.rule = rule
        self.hint = hint

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(
                f"{type(obj).__name__}: hyperparameter {self.name!r} is not set yet"
            ) from None

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = self.check(type(obj).__name__, value)

    def check(self, owner: str, value) -> float:
        """``value`` as a float when it is allowed, else the exception."""
        return _checks.real(owner, self.name, value, self.rule, self.hint)


def _check_hyper(owner_type: type, name: str, value) -> float:
    """Check ``value`` for hyperparameter ``name`` of ``owner_type`` (a plain finite
    float when the class does not declare a :class:`Hyperparameter`)."""
    rule = getattr(owner_type, name, None)
    if isinstance(rule, Hyperparameter):
        return rule.check(owner_type.__name__, value)
    return _checks.real(owner_type.__name__, name, value, "finite")


def _scalar(value):
    """A 0-d numeric array or number as a Python int/float, or None when it is not one."""
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.shape != () or array.dtype.kind not in "iuf":
        return None
    return array.item()


def _is_low_precision(array) -> bool:
    """float16 (or any float narrower than float32): trained through master weights."""
    return array.dtype.kind == "f" and array.dtype.itemsize < 4


# =========================================================================================
# Optimizer
# =========================================================================================
class _ParamList:
    """A target made of a plain sequence of Parameters (``setup([W, b])``)."""

    def __init__(self, params):
        self._params = list(params)

    def params(self):
        yield from self._params


class Optimizer:
    """Base class: updates every parameter of ``target`` that has a gradient.

    Subclasses implement ``update_one(param)`` and list their hyperparameters in
    ``hyperparams`` (saved with the state), each declared as a :class:`Hyperparameter`
    so that bad values are refused. ``rate_name`` is the attribute that a
    learning-rate schedule sets (``"lr"``, or ``"alpha"`` for Adam).
    ``nonnegative_slots`` names the per-parameter state arrays that cannot be negative
    (second moments), for the checks of ``load_state_dict``.

    A parameter in float16 is updated through a float32 master copy: ``update_one``
    sees a float32 Parameter (whose state is float32 too), and the result is rounded
    into the float16 parameter. When the float16 weights are changed from outside (by
    ``load_weights``, say), the master copy follows them at the next update.

    Attributes:
        target: what ``setup`` was given.
        hooks: callables run as ``hook(params)`` on the parameters that have a
            gradient, before they are updated.
        t: the number of ``update()`` calls so far.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> class HalfStep(Optimizer):
        ...     def update_one(self, param):
        ...         param.data -= 0.5 * param.grad.data
        >>> w = Parameter(np.array([4.0]))
        >>> w.grad = Variable(np.array([2.0]))
        >>> HalfStep().setup([w]).update()
        >>> w.data
        array([3.])
    """

    hyperparams: tuple = ()
    rate_name: str = "lr"
    nonnegative_slots: tuple = ()

    def __init__(self):
        self.target = None
        self.hooks: list = []
        self.t = 0  # number of update() calls
        # id(param) -> (param, state). The entry holds the parameter itself, so its id
        # cannot be reused by another object while the entry exists.
        self._states: dict[int, tuple[Parameter, dict]] = {}
        # id(float16 param) -> (param, float32 master Parameter); the master's state is
        # in _states under the master.
        self._masters: dict[int, tuple[Parameter, Parameter]] = {}

    def setup(self, target) -> Optimizer:
        """Set what to optimize: a Layer/Model (anything with ``params()``) or a list of
        Parameters. Returns the optimizer, so ``Adam().setup(model)`` reads well.

        Raises:
            TypeError: when ``target`` is neither, or the list holds something that is
                not a Parameter.
            ValueError: when a Parameter appears twice (it would be updated twice per
                step); a Layer yields a shared Parameter once, so pass the model.
        """
        if not hasattr(target, "params"):
            if not isinstance(target, (list, tuple)):
                raise TypeError(
                    f"{type(self).__name__}.setup: expected a Layer/Model (with params()) "
                    f"or a list of Parameters, got {type(target).__name__}"
                )
            for i, param in enumerate(target):
                if not isinstance(param, Parameter):
                    raise TypeError(
                        f"{type(self).__name__}.setup: item {i} of the list is a "
                        f"{type(param).__name__}, not a Parameter; wrap arrays as "
                        "Parameter(np.array(...))"
                    )
            target = _ParamList(target)
        self._check_unique(list(target.params()))
        self.target = target
        return self

    def _check_unique(self, params: list) -> None:
        if len({id(p) for p in params}) == len(params):
            return
        first: dict[int, int] = {}
        repeats = []
        for i, param in enumerate(params):
            if id(param) in first:
                repeats.append(f"{first[id(param)]} and {i}")
            else:
                first[id(param)] = i
        raise ValueError(
            f"{type(self).__name__}: the same Parameter appears more than once in the "
            f"target (positions {', '.join(repeats)}); it would be updated several times "
            "per step. Pass each Parameter once (a Layer's params() already yields a "
            "shared Parameter once)"
        )

    def _params(self) -> list:
        if self.target is None:
            raise RuntimeError(
                f"{type(self).__name__}: no target to optimize; call "
                "optimizer.setup(model) first"
            )
        params = list(self.target.params())
        self._check_unique(params)  # a target's params() may change after setup
        return params

    def update(self) -> None:
        """Run the hooks, then update every parameter that has a gradient."""
        params = [p for p in self._params() if p.grad is not None]
        for hook in self.hooks:
            hook(params)
        self.t += 1
        for param in params:
            if param.grad is None:  # a hook (FreezeParam) may have removed it
                continue
            if _is_low_precision(param.data):
                self._update_through_master(param)
            else:
                self.update_one(param)

    def update_one(self, param: Parameter) -> None:
        """Update one parameter in place from ``param.grad``."""
        raise NotImplementedError(f"{type(self).__name__}.update_one is not implemented")

    def add_hook(self, f: Callable) -> None:
        """Add ``f``, called as ``f(params)`` before each update (see WeightDecay)."""
        if not callable(f):
            raise TypeError(f"add_hook: expected a callable, got {type(f).__name__}")
        self.hooks.append(f)

    # ---- float16 parameters: float32 master weights ---------------------------------------
    def master_of(self, param: Parameter) -> Parameter:
        """The float32 master copy of the float16 parameter ``param`` (made on first
        use, and refreshed from ``param`` when its weights were changed from outside).

        Example:
            >>> w = Parameter(np.array([1.0, 2.0], dtype=np.float16))
            >>> SGD().master_of(w).data
            array([1., 2.], dtype=float32)
        """
        entry = self._masters.get(id(param))
        if entry is None or entry[0] is not param:
            master = Parameter(param.data.astype(np.float32), name=param.name)
            self._masters[id(param)] = (param, master)
            return master
        master = entry[1]
        xp = get_array_module(param.data)
        if get_array_module(master.data) is not xp:
            master.data = as_numpy(master.data) if xp is np else as_cupy(master.data)
        # Weights loaded into the float16 parameter since the last update win over the
        # master copy (which would otherwise silently undo the load).
        if not xp.array_equal(master.data.astype(param.data.dtype), param.data):
            master.data = param.data.astype(np.float32)
        return master

    def _update_through_master(self, param: Parameter) -> None:
        master = self.master_of(param)
        master.grad = Variable(param.grad.data.astype(np.float32))
        try:
            self.update_one(master)
        finally:
            master.grad = None
        param.data[...] = master.data  # rounded to float16

    # ---- per-parameter state ------------------------------------------------------------
    def init_state(self, param: Parameter) -> dict:
        """The state of a parameter seen for the first time (moments as zero arrays)."""
        return {}

    def state_of(self, param: Parameter) -> dict:
        """The state dict of ``param`` (created by ``init_state`` on first use); for a
        float16 parameter, the float32 state of its master copy.

        The state follows its parameter's device: after ``model.to_gpu()`` (or
        ``to_cpu()``) the arrays move on the next update.
        """
        if param.data is not None and _is_low_precision(param.data):
            param = self.master_of(param)
        entry = self._states.get(id(param))
        if entry is None or entry[0] is not param:
            entry = (param, self.init_state(param))
            self._states[id(param)] = entry
        state = entry[1]
        xp = get_array_module(param.data)
        for slot, value in state.items():
            if hasattr(value, "shape") and get_array_module(value) is not xp:
                state[slot] = as_numpy(value) if xp is np else as_cupy(value)
        return state

    def _owner_of(self, param: Parameter) -> Parameter:
        """Where ``param``'s state is kept: its master copy, or itself."""
        entry = self._masters.get(id(param))
        return entry[1] if entry is not None and entry[0] is param else param

    def state_dict(self) -> dict:
        """The optimizer's state as a flat dict of NumPy arrays.

        Keys: ``"t"`` (update count), ``"hyper/<name>"`` for each hyperparameter, and
        ``"param/<i>/<slot>"`` for the state of the i-th parameter of
        ``target.params()`` (only parameters that have state). A float16 parameter's
        float32 master copy is the slot ``"master"``, for every optimizer (SGD, which
        keeps no other state, too: without it a resumed run would restart from the
        float16 weights, rounded, and not continue exactly).

        Example:
            >>> w = Parameter(np.array([1.0], dtype=np.float16))
            >>> w.grad = Variable(np.array([1e-4], dtype=np.float16))
            >>> optimizer = SGD(lr=0.1).setup([w])
            >>> optimizer.update()
            >>> sorted(optimizer.state_dict())
            ['hyper/lr', 'param/0/master', 't']
        """
        out = {"t": np.asarray(self.t, dtype=np.int64)}
        for name in self.hyperparams:
            out[f"hyper/{name}"] = np.asarray(float(getattr(self, name)))
        for i, param in enumerate(self._params()):
            owner = self._owner_of(param)
            if owner is not param:
                out[f"param/{i}/master"] = np.array(as_numpy(owner.data))
            entry = self._states.get(id(owner))
            if entry is None or entry[0] is not owner:
                continue
            for slot, value in entry[1].items():
                out[f"param/{i}/{slot}"] = np.array(as_numpy(value))
        return out

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict`` returned. Call it after ``setup`` with the same
        model (weights loaded). The state replaces the optimizer's whole state.

        Everything is checked before anything changes: ``t`` and every hyperparameter
        present and valid (as at construction), every key known, each parameter's
        state complete (all the slots ``init_state`` makes), counts non-negative ints,
        arrays of the parameter's shape, finite, and non-negative where they must be.

        Raises:
            ValueError: listing every problem; the optimizer is unchanged.
            TypeError: when ``state`` is not a mapping.
        """
        self.apply_state_dict(self.check_state_dict(state))

    def check_state_dict(self, state: Mapping, data_of: Callable | None = None) -> tuple:
        """The first half of :meth:`load_state_dict`: check ``state`` and return the
        plan that :meth:`apply_state_dict` carries out, changing nothing.

        Args:
            state: what :meth:`state_dict` returned.
            data_of: ``data_of(param)`` gives the array each parameter will hold when
                the plan is applied (a checkpoint loads the weights and the
                optimizer's state together); by default, what it holds now.

        Raises:
            ValueError, TypeError: as :meth:`load_state_dict`.
        """
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{name}.load_state_dict: expected a dict as made by state_dict(), got "
                f"{type(state).__name__}"
            )
        params = self._params()
        data_of = data_of or (lambda p: p.data)
        problems: list[str] = []
        t = None
        if "t" not in state:
            problems.append("missing 't' (the number of updates so far)")
        else:
            t = _scalar(state["t"])
            if not isinstance(t, int) or t < 0:
                problems.append(f"'t' must be an int >= 0, got {_show(state['t'])}")
        hyper = {}
        for h in self.hyperparams:
            key = f"hyper/{h}"
            if key not in state:
                problems.append(f"missing {key!r}")
                continue
            value = _scalar(state[key])
            try:
                if value is None:
                    raise TypeError(f"{h} must be a number, got {_show(state[key])}")
                hyper[h] = _check_hyper(type(self), h, value)
            except (TypeError, ValueError) as e:
                problems.append(f"{key!r}: {str(e).removeprefix(name + ': ')}")
        given: dict[int, dict] = {}
        for key in state:
            parts = key.split("/") if isinstance(key, str) else []
            if key == "t" or (len(parts) == 2 and parts[0] == "hyper"):
                if key != "t" and parts[1] not in self.hyperparams:
                    problems.append(
                        f"unknown hyperparameter {parts[1]!r}; {name} has "
                        f"{list(self.hyperparams)}: was it saved by another optimizer?"
                    )
                continue
            if len(parts) == 3 and parts[0] == "param" and parts[1].isdigit():
                i = int(parts[1])
                if i >= len(params):
                    problems.append(
                        f"state for parameter {i}, but the target has {len(params)} "
                        "parameters; was it saved from another model?"
                    )
                else:
                    given.setdefault(i, {})[parts[2]] = state[key]
                continue
            hypers = "|".join(self.hyperparams)
            problems.append(
                f"unexpected key {key!r}; expected 't', 'hyper/<{hypers}>' or "
                "'param/<index>/<slot>'"
            )
        new_states = {}
        for i in sorted(given):
            slots = self._check_param_state(i, data_of(params[i]), given[i], problems)
            if slots is not None:
                new_states[i] = slots
        if problems:
            listing = "\n  ".join(problems)
            raise ValueError(
                f"{name}.load_state_dict: {len(problems)} problem(s); nothing was loaded:"
                f"\n  {listing}"
            )
        return params, t, hyper, new_states

    def _check_param_state(self, i: int, data, slots: dict, problems: list) -> dict | None:
        """The checked state of parameter ``i`` (which will hold ``data``), converted to
        arrays on its device; None (and ``problems`` extended) when it does not fit."""
        name = type(self).__name__
        if data is None:
            problems.append(
                f"parameter {i} is not initialized yet (data is None); load the model's "
                "weights or run it once first"
            )
            return None
        xp = get_array_module(data)
        low = _is_low_precision(data)
        proto = Parameter(xp.zeros(data.shape, np.float32) if low else data)
        template = self.init_state(proto)
        expected = set(template) | ({"master"} if low else set())
        unknown = sorted(set(slots) - expected)
        missing = sorted(expected - set(slots))
        if low and set(slots) == {"master"}:
            missing = []  # a master copy made before any state: nothing else to restore
        if unknown:
            more = "" if low or "master" not in unknown else " ('master' is kept for float16)"
            problems.append(
                f"unknown state {unknown} for parameter {i}{more}; {name} keeps "
                f"{sorted(expected)}: was it saved by another optimizer?"
            )
        if missing:
            problems.append(
                f"parameter {i}: incomplete state, {missing} missing (has {sorted(slots)})"
            )
        if unknown or missing:
            return None
        out = {}
        ok = True
        for slot, value in slots.items():
            ref = template.get(slot, proto.data if slot == "master" else None)
            where = f"state {slot!r} of parameter {i}"
            if isinstance(ref, int):
                count = _scalar(value)
                if not isinstance(count, int) or count < 0:
                    problems.append(f"{where} must be an int >= 0, got {_show(value)}")
                    ok = False
                out[slot] = count
                continue
            array = np.asarray(as_numpy(value))
            if array.dtype.kind not in "iuf":
                problems.append(f"{where} must be a numeric array, got dtype {array.dtype}")
                ok = False
                continue
            if array.shape != ref.shape:
                problems.append(
                    f"{where} has shape {array.shape}, the parameter has {ref.shape}"
                )
                ok = False
                continue
            if not np.isfinite(array).all():
                problems.append(f"{where} holds NaN or infinite values")
                ok = False
                continue
            if slot in self.nonnegative_slots and (array < 0).any():
                problems.append(f"{where} holds negative values (it is a sum of squares)")
                ok = False
                continue
            out[slot] = xp.asarray(array, dtype=ref.dtype)
        return out if ok else None

    def apply_state_dict(self, plan: tuple) -> None:
        """The second half of :meth:`load_state_dict`: carry out a plan made by
        :meth:`check_state_dict` (it cannot fail)."""
        params, t, hyper, new_states = plan
        self.t = t
        for key, value in hyper.items():
            setattr(self, key, value)  # checked already
        self._states = {}
        self._masters = {}
        for i, slots in new_states.items():
            param = owner = params[i]
            slots = dict(slots)
            if "master" in slots:
                owner = Parameter(slots.pop("master").copy(), name=param.name)
                self._masters[id(param)] = (param, owner)
            if slots:
                slots = {k: v.copy() if hasattr(v, "copy") else v for k, v in slots.items()}
                self._states[id(owner)] = (owner, slots)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to ``path`` (exactly that name), in the format its
        suffix names (``.npz``; see ``zerograd.utils.io.save_arrays``).

        The file is written to a temporary name and renamed, so an interrupted save
        never leaves a truncated file behind.
        """
        save_arrays(path, self.state_dict())

    def load(self, path: str | os.PathLike) -> None:
        """Restore the state written by :meth:`save`.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: when the file is empty, truncated, corrupt or not an archive of
                named arrays, or its state does not fit (see :meth:`load_state_dict`).
        """
        state = read_arrays(path, f"{type(self).__name__}.load",
                            "save the optimizer again with Optimizer.save")
        self.load_state_dict(state)


def _show(value) -> str:
    """A short description of a value for an error message."""
    if hasattr(value, "shape") and getattr(value, "shape", ()) != ():
        return f"an array of shape {value.shape}"
    return repr(value.item() if hasattr(value, "item") else value)


def _grad(param: Parameter):
    return param.grad.data


# =========================================================================================
# Optimizers
# =========================================================================================
class SGD(Optimizer):
    """Stochastic gradient descent: ``W <- W - lr * grad``.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([1.0]))
        >>> w.grad = Variable(np.array([0.5]))
        >>> SGD(lr=0.1).setup([w]).update()
        >>> w.data
        array([0.95])
    """

    hyperparams = ("lr",)
    lr = Hyperparameter("rate", "the learning rate")

    def __init__(self, lr: float = 0.01):
        super().__init__()
        self.lr = lr

    def update_one(self, param):
        param.data -= float(self.lr) * _grad(param)


class MomentumSGD(Optimizer):
    """SGD with momentum: ``v <- momentum * v + grad``, ``W <- W - lr * v``.

    With a constant ``lr`` this is the book's ``v <- momentum * v - lr * grad``,
    ``W <- W + v``; keeping the learning rate out of ``v`` makes a new rate (from a
    schedule) apply at once, and matches ``torch.optim.SGD(momentum=...)``.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([1.0]))
        >>> optimizer = MomentumSGD(lr=0.1, momentum=0.9).setup([w])
        >>> for _ in range(2):
        ...     w.grad = Variable(np.array([1.0]))
        ...     optimizer.update()
        >>> w.data   # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
        array([0.71])
    """

    hyperparams = ("lr", "momentum")
    lr = Hyperparameter("rate", "the learning rate")
    momentum = Hyperparameter("fraction", "the fraction of the previous step kept")

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        super().__init__()
        self.lr = lr
        self.momentum = momentum

    def init_state(self, param):
        return {"v": get_array_module(param.data).zeros_like(param.data)}

    def update_one(self, param):
        v = self.state_of(param)["v"]
        v *= float(self.momentum)
        v += _grad(param)
        param.data -= float(self.lr) * v


class AdaGrad(Optimizer):
    """AdaGrad: ``h <- h + grad^2``, ``W <- W - lr * grad / (sqrt(h) + eps)``.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([1.0]))
        >>> w.grad = Variable(np.array([3.0]))
        >>> AdaGrad(lr=0.5).setup([w]).update()
        >>> w.data.round(6)
        array([0.5])
    """

    hyperparams = ("lr", "eps")
    nonnegative_slots = ("h",)
    lr = Hyperparameter("rate", "the learning rate")
    eps = Hyperparameter("positive", "added to the denominator; 1e-8 is typical")

    def __init__(self, lr: float = 0.001, eps: float = 1e-8):
        super().__init__()
        self.lr = lr
        self.eps = eps

    def init_state(self, param):
        return {"h": get_array_module(param.data).zeros_like(param.data)}

    def update_one(self, param):
        xp = get_array_module(param.data)
        g = _grad(param)
        h = self.state_of(param)["h"]
        tmp = g * g
        h += tmp
        xp.sqrt(h, out=tmp)
        tmp += float(self.eps)
        xp.divide(g, tmp, out=tmp)
        tmp *= float(self.lr)
        param.data -= tmp  # W <- W - lr g / (sqrt(h) + eps)


class AdaDelta(Optimizer):
    """AdaDelta (Zeiler 2012): a step size from running averages of squared gradients
    and squared updates, so no learning rate is needed (``lr`` scales the step, 1.0 by
    default as in the paper and PyTorch).

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([1.0]))
        >>> w.grad = Variable(np.array([1.0]))
        >>> AdaDelta().setup([w]).update()
        >>> float(w.data[0]) < 1.0
        True
    """

    hyperparams = ("rho", "eps", "lr")
    nonnegative_slots = ("msg", "msdx")
    rho = Hyperparameter("closed_fraction", "the decay of the running averages")
    eps = Hyperparameter("positive", "added inside the square roots; 1e-6 is typical")
    lr = Hyperparameter("rate", "a factor on the step, 1.0 in the paper")

    def __init__(self, rho: float = 0.95, eps: float = 1e-6, lr: float = 1.0):
        super().__init__()
        self.rho = rho
        self.eps = eps
        self.lr = lr

    def init_state(self, param):
        xp = get_array_module(param.data)
        return {"msg": xp.zeros_like(param.data), "msdx": xp.zeros_like(param.data)}

    def update_one(self, param):
        xp = get_array_module(param.data)
        rho, eps = float(self.rho), float(self.eps)
        state = self.state_of(param)
        msg, msdx = state["msg"], state["msdx"]
        g = _grad(param)
        msg *= rho
        msg += (1 - rho) * g * g
        dx = xp.sqrt((msdx + eps) / (msg + eps)) * g
        msdx *= rho
        msdx += (1 - rho) * dx * dx
        param.data -= float(self.lr) * dx


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments.

    ``m <- beta1 m + (1 - beta1) grad``, ``v <- beta2 v + (1 - beta2) grad^2``,
    ``W <- W - alpha * m_hat / (sqrt(v_hat) + eps)``, where the hats divide by
    ``1 - beta^t``. This is the paper's Algorithm 1 and ``torch.optim.Adam``; the
    book's version puts ``eps`` outside the bias correction, a difference of order
    ``eps`` (in book mode, see :mod:`zerograd.random`, Adam computes as the book's, so
    its printed results come out to the last digit). ``alpha`` is the rate a schedule
    sets.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([1.0]))
        >>> w.grad = Variable(np.array([0.5]))
        >>> optimizer = Adam(alpha=0.1).setup([w])
        >>> optimizer.update()
        >>> w.data.round(6)   # the first step moves each weight by alpha
        array([0.9])
    """

    hyperparams = ("alpha", "beta1", "beta2", "eps")
    rate_name = "alpha"
    nonnegative_slots = ("v",)
    alpha = Hyperparameter("rate", "the learning rate")
    beta1 = Hyperparameter("fraction", "the decay of the first moment, 0.9 is typical")
    beta2 = Hyperparameter("fraction", "the decay of the second moment, 0.999 is typical")
    eps = Hyperparameter("positive", "added to the denominator; 1e-8 is typical")

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__()
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    @property
    def lr(self) -> float:
        """The bias-corrected step size ``alpha sqrt(1 - beta2^t) / (1 - beta1^t)`` of
        the latest update (of the first one, before any update), as DeZero's."""
        return self._lr(max(self.t, 1))

    def _lr(self, t: int) -> float:
        fix1 = 1.0 - math.pow(self.beta1, t)
        fix2 = 1.0 - math.pow(self.beta2, t)
        return float(self.alpha) * math.sqrt(fix2) / fix1

    def init_state(self, param):
        xp = get_array_module(param.data)
        return {"m": xp.zeros_like(param.data), "v": xp.zeros_like(param.data), "step": 0}

    def update_one(self, param):
        xp = get_array_module(param.data)
        state = self.state_of(param)
        state["step"] = t = state["step"] + 1
        beta1, beta2 = float(self.beta1), float(self.beta2)
        m, v = state["m"], state["v"]
        g = _grad(param)
        # One scratch array and in-place steps: this runs on every weight, every step.
        tmp = g - m
        tmp *= 1 - beta1
        m += tmp  # m <- beta1 m + (1 - beta1) g
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - beta2
        v += tmp  # v <- beta2 v + (1 - beta2) g^2
        if book_mode():
            # The book's formula and rounding order, eps outside the bias correction, and
            # its bias correction by the optimizer's update count (not the parameter's):
            # its printed results (steps 59-60) depend on the last digits.
            param.data -= self._lr(self.t) * m / (xp.sqrt(v) + float(self.eps))
            return
        # alpha m_hat / (sqrt(v_hat) + eps), with both corrections moved out of the arrays
        eps_hat = float(self.eps) * math.sqrt(1.0 - beta2**t)
        xp.sqrt(v, out=tmp)
        tmp += eps_hat
        xp.divide(m, tmp, out=tmp)
        tmp *= self._lr(t)
        param.data -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as
    ``torch.optim.AdamW``: ``W <- W (1 - alpha weight_decay)`` before the Adam step.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([1.0]))
        >>> w.grad = Variable(np.array([0.0]))
        >>> AdamW(alpha=0.1, weight_decay=0.5).setup([w]).update()
        >>> w.data   # only the decay moves it: 1 * (1 - 0.1 * 0.5)
        array([0.95])
    """

    hyperparams = ("alpha", "beta1", "beta2", "eps", "weight_decay")
    weight_decay = Hyperparameter("rate", "the decay per unit of alpha")

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(alpha, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def update_one(self, param):
        param.data *= 1.0 - float(self.alpha) * float(self.weight_decay)
        super().update_one(param)


# =========================================================================================
# Hooks
# =========================================================================================
class WeightDecay:
    """L2 regularization as a hook: ``grad <- grad + rate * W``.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w = Parameter(np.array([2.0]))
        >>> w.grad = Variable(np.array([0.0]))
        >>> optimizer = SGD(lr=0.5).setup([w])
        >>> optimizer.add_hook(WeightDecay(0.1))
        >>> optimizer.update()
        >>> w.data   # 2 - 0.5 * 0.1 * 2
        array([1.9])
    """

    rate = Hyperparameter("rate", "the L2 penalty's factor")

    def __init__(self, rate: float):
        self.rate = rate

    def __call__(self, params) -> None:
        rate = float(self.rate)
        for param in params:
            if param.grad is None:  # frozen by an earlier hook
                continue
            # A new gradient array: gradients may share arrays (x + x), so never
            # modify one in place.
            param.grad = as_variable(param.grad.data + rate * param.data)


class ClipGrad:
    """Scale all gradients together so that their global L2 norm is at most
    ``max_norm`` (``torch.nn.utils.clip_grad_norm_``).

    Example:
        >>> from zerograd import Parameter, Variable
        >>> a, b = Parameter(np.array([3.0])), Parameter(np.array([4.0]))
        >>> a.grad, b.grad = Variable(np.array([3.0])), Variable(np.array([4.0]))
        >>> ClipGrad(1.0)([a, b])
        >>> a.grad.data.round(6), b.grad.data.round(6)
        (array([0.6]), array([0.8]))
    """

    max_norm = Hyperparameter("positive", "the largest global L2 norm allowed")

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def __call__(self, params) -> None:
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        total = 0.0
        for param in params:
            g = param.grad.data
            if _is_low_precision(g):
                g = g.astype(np.float32)  # squares of float16 overflow past 256
            total += float((g * g).sum())
        rate = float(self.max_norm) / (math.sqrt(total) + 1e-6)
        if rate < 1.0:
            for param in params:
                param.grad = as_variable(param.grad.data * rate)


class FreezeParam:
    """Keep the parameters of some layers (or single Parameters) fixed: their
    gradients are dropped before the update.

    Example:
        >>> from zerograd import Parameter, Variable
        >>> w, b = Parameter(np.array([1.0])), Parameter(np.array([1.0]))
        >>> w.grad, b.grad = Variable(np.array([1.0])), Variable(np.array([1.0]))
        >>> optimizer = SGD(lr=0.5).setup([w, b])
        >>> optimizer.add_hook(FreezeParam(b))
        >>> optimizer.update()
        >>> w.data, b.data
        (array([0.5]), array([1.]))
    """

    def __init__(self, *layers):
        self.freeze_params: list = []
        for layer in layers:
            if isinstance(layer, Parameter):
                self.freeze_params.append(layer)
            elif hasattr(layer, "params"):
                self.freeze_params.extend(layer.params())
            else:
                raise TypeError(
                    f"FreezeParam: expected Layers or Parameters, got {type(layer).__name__}"
                )

    def __call__(self, params) -> None:
        for param in self.freeze_params:
            param.grad = None


# =========================================================================================
# Learning-rate schedules
# =========================================================================================
class LRScheduler:
    """Base class: sets the optimizer's learning rate to ``rate(step)``.

    The rate at construction is ``rate(0)``; each ``step()`` (once an epoch, or once an
    iteration: your choice, and ``step_size``/``t_max`` count in the same unit)
    advances to the next. ``base_lr`` is the optimizer's rate when the schedule is
    made (``lr``, or ``alpha`` for Adam and AdamW).

    Subclasses implement ``rate(step) -> float`` and list the attributes that define
    them in ``settings`` (saved and restored with the position).

    Example:
        >>> class Halving(LRScheduler):
        ...     def rate(self, step):
        ...         return self.base_lr / 2**step
        >>> optimizer = SGD(lr=1.0)
        >>> schedule = Halving(optimizer)
        >>> schedule.step(); schedule.step()
        >>> optimizer.lr
        0.25
    """

    settings: tuple = ()
    base_lr = Hyperparameter("rate", "the rate the schedule starts from")

    def __init__(self, optimizer: Optimizer, base_lr: float | None = None):
        if not hasattr(optimizer, "rate_name"):
            raise TypeError(
                f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        if base_lr is None:
            base_lr = getattr(optimizer, optimizer.rate_name)
        self.base_lr = base_lr
        self.last_step = 0
        self._set_rate(self._rate_at(0))

    def rate(self, step: int) -> float:
        raise NotImplementedError(f"{type(self).__name__}.rate is not implemented")

    @property
    def lr(self) -> float:
        """The rate for the current step."""
        return self._rate_at(self.last_step)

    def step(self) -> None:
        """Advance one step and set the optimizer's rate.

        Raises:
            ValueError: when the next step's rate is not one the optimizer accepts (a
                ``gamma`` > 1 run long enough overflows to infinity); nothing changes
                then (the step count included).

        Example:
            >>> schedule = ExponentialDecay(SGD(lr=1.0), gamma=1e200)
            >>> schedule.step()
            >>> schedule.step()
            Traceback (most recent call last):
            ...
            ValueError: ExponentialDecay: step 2 gives the rate inf, which SGD refuses (SGD: \
lr must be a finite number >= 0, got inf (the learning rate))
            >>> schedule.last_step
            1
        """
        rate = self._rate_at(self.last_step + 1)  # first: a refused rate changes nothing
        self.last_step += 1
        self._set_rate(rate)

    def _rate_at(self, step: int) -> float:
        """``rate(step)``, checked as the optimizer checks its rate (a ValueError naming
        the schedule otherwise)."""
        name = type(self).__name__
        try:
            rate = float(self.rate(step))
        except OverflowError:  # Python's float power raises where a product gives inf
            rate = math.inf
        except ZeroDivisionError as e:
            raise ValueError(f"{name}: the rate of step {step} cannot be computed ({e}); "
                             "check base_lr and the settings") from None
        owner = type(_unwrapped(self.optimizer))
        try:
            return _check_hyper(owner, self.optimizer.rate_name, rate)
        except ValueError as e:
            raise ValueError(f"{name}: step {step} gives the rate {rate!r}, which "
                             f"{owner.__name__} refuses ({e})") from None

    def _set_rate(self, rate: float) -> None:
        setattr(self.optimizer, self.optimizer.rate_name, rate)

    def state_dict(self) -> dict:
        """The position, ``base_lr`` and settings, to save with the optimizer:
        ``{"type": ..., "last_step": ..., "base_lr": ..., <settings>...}`` (plain
        Python values).

        Example:
            >>> StepDecay(SGD(lr=1.0), step_size=2).state_dict()
            {'type': 'StepDecay', 'last_step': 0, 'base_lr': 1.0, 'step_size': 2, 'gamma': 0.1}
        """
        state = {"type": type(self).__name__, "last_step": self.last_step,
                 "base_lr": self.base_lr}
        for name in self.settings:
            state[name] = getattr(self, name)
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from a saved position (and set the optimizer's rate for it).

        Raises:
            ValueError: when the state is for another kind of schedule, a value is
                missing or invalid, or the rate it gives at its position is not one
                the optimizer accepts; nothing changes then.
        """
        self.apply_state_dict(self.check_state_dict(state))

    def check_state_dict(self, state: Mapping) -> tuple:
        """The first half of :meth:`load_state_dict`: check ``state``, the rate it
        gives included, and return the plan for :meth:`apply_state_dict`."""
        name = type(self).__name__
        probe = self._probe(state)
        try:
            rate = probe._rate_at(probe.last_step)
        except ValueError as e:
            raise ValueError(f"{name}.load_state_dict: {str(e).removeprefix(name + ': ')}"
                             ) from None
        return probe, rate

    def apply_state_dict(self, plan: tuple) -> None:
        """The second half of :meth:`load_state_dict`: carry out a plan made by
        :meth:`check_state_dict` (it cannot fail)."""
        probe, rate = plan
        self._adopt(probe)
        self._set_rate(rate)

    def _probe(self, state: Mapping) -> LRScheduler:
        """A copy of this schedule with the values of ``state``, each set through its
        own check (a ValueError naming the schedule otherwise)."""
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got "
                            f"{type(state).__name__}")
        saved = state.get("type", name)
        if saved != name:
            raise ValueError(
                f"{name}.load_state_dict: the state is of a {saved}, not a {name}; make "
                "the same schedule as the run that saved it"
            )
        missing = [k for k in ("last_step", "base_lr", *self.settings) if k not in state]
        if missing:
            raise ValueError(f"{name}.load_state_dict: missing {missing} in the state")
        unknown = sorted(set(state) - {"type", "last_step", "base_lr", *self.settings})
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unexpected keys {unknown}")
        probe = copy.copy(self)  # the same optimizer; its own copies of the values
        try:
            probe.last_step = _checks.count(name, "last_step", _py(state["last_step"]), 0)
            for key in ("base_lr", *self.settings):
                setattr(probe, key, _py(state[key]))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}.load_state_dict: {e}") from None
        return probe

    def _adopt(self, probe: LRScheduler) -> None:
        """Take the checked values of ``probe``, made by :meth:`_probe`."""
        for key in ("last_step", "base_lr", *self.settings):
            self.__dict__[key] = probe.__dict__[key]


def _unwrapped(optimizer):
    """The optimizer that a wrapper (a ``DistributedOptimizer``, which names it
    ``__wrapped__``) drives, or ``optimizer`` itself."""
    while hasattr(optimizer, "__wrapped__"):
        optimizer = optimizer.__wrapped__
    return optimizer


def _py(value):
    """A number from a state (a Python number, or a 0-d array loaded from a file)."""
    scalar = _scalar(value) if hasattr(value, "shape") else None
    return value if scalar is None else scalar


class _Checked:
    """A schedule setting checked on assignment by ``check(owner, name, value)``."""

    def __init__(self, check: Callable):
        self.check = check

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__[self.name]

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = self.check(type(obj).__name__, self.name, value)


class StepDecay(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps
    (``torch.optim.lr_scheduler.StepLR``).

    Example:
        >>> optimizer = SGD(lr=1.0)
        >>> schedule = StepDecay(optimizer, step_size=2, gamma=0.5)
        >>> rates = []
        >>> for _ in range(5):
        ...     rates.append(optimizer.lr)
        ...     schedule.step()
        >>> rates
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    settings = ("step_size", "gamma")
    step_size = _Checked(_checks.count)
    gamma = Hyperparameter("positive", "the factor applied every step_size steps")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 base_lr: float | None = None):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, base_lr)

    def rate(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class ExponentialDecay(LRScheduler):
    """Multiply the rate by ``gamma`` every step (``ExponentialLR``).

    Example:
        >>> optimizer = SGD(lr=1.0)
        >>> schedule = ExponentialDecay(optimizer, gamma=0.5)
        >>> schedule.step()
        >>> optimizer.lr
        0.5
    """

    settings = ("gamma",)
    gamma = Hyperparameter("positive", "the factor applied every step")

    def __init__(self, optimizer: Optimizer, gamma: float, base_lr: float | None = None):
        self.gamma = gamma
        super().__init__(optimizer, base_lr)

    def rate(self, step):
        return self.base_lr * self.gamma**step


class CosineAnnealing(LRScheduler):
    """Cosine annealing from ``base_lr`` down to ``eta_min`` over ``t_max`` steps,
    then ``eta_min`` (``CosineAnnealingLR``'s closed form, without restarts).

    Example:
        >>> optimizer = SGD(lr=1.0)
        >>> schedule = CosineAnnealing(optimizer, t_max=4)
        >>> rates = []
        >>> for _ in range(5):
        ...     rates.append(round(optimizer.lr, 4))
        ...     schedule.step()
        >>> rates
        [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    settings = ("t_max", "eta_min")
    t_max = _Checked(_checks.count)
    eta_min = Hyperparameter("rate", "the rate at the end")

    def __init__(self, optimizer: Optimizer, t_max: int, eta_min: float = 0.0,
                 base_lr: float | None = None):
        self.t_max = t_max
        self.eta_min = eta_min
        super().__init__(optimizer, base_lr)

    def rate(self, step):
        step = min(step, self.t_max)
        cosine = (1.0 + math.cos(math.pi * step / self.t_max)) / 2.0
        return self.eta_min + (self.base_lr - self.eta_min) * cosine


class LinearWarmup(LRScheduler):
    """Ramp the rate up linearly over ``warmup_steps`` steps, then hand over to the
    schedule ``after`` (or keep ``base_lr``).

    Step ``k < warmup_steps`` gets ``base_lr * (k + 1) / warmup_steps``; step
    ``warmup_steps + j`` gets ``after.rate(j)``. Make ``after`` first, on the same
    optimizer, and call only the warm-up's ``step()``.

    Example:
        >>> optimizer = SGD(lr=1.0)
        >>> schedule = LinearWarmup(optimizer, 2, after=StepDecay(optimizer, 1, 0.5))
        >>> rates = []
        >>> for _ in range(5):
        ...     rates.append(optimizer.lr)
        ...     schedule.step()
        >>> rates
        [0.5, 1.0, 1.0, 0.5, 0.25]
    """

    settings = ("warmup_steps",)
    warmup_steps = _Checked(_checks.count)

    def __init__(self, optimizer: Optimizer, warmup_steps: int,
                 after: LRScheduler | None = None, base_lr: float | None = None):
        self.warmup_steps = warmup_steps
        if after is not None and not isinstance(after, LRScheduler):
            raise TypeError(
                f"LinearWarmup: after must be a schedule (an LRScheduler), got "
                f"{type(after).__name__}"
            )
        if after is not None and after.optimizer is not optimizer:
            raise ValueError(
                "LinearWarmup: the schedule given as `after` drives another optimizer; "
                "make both schedules on the same optimizer"
            )
        self.after = after
        if base_lr is None and after is not None:
            base_lr = after.base_lr
        super().__init__(optimizer, base_lr)

    def rate(self, step):
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.after is None:
            return self.base_lr
        return self.after.rate(step - self.warmup_steps)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.after is not None:
            state["after"] = self.after.state_dict()
        return state

    def _probe(self, state: Mapping) -> LinearWarmup:
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got "
                            f"{type(state).__name__}")
        if (self.after is None) != ("after" not in state):
            has = "has" if "after" in state else "has no"
            this = "has none" if self.after is None else "has one"
            raise ValueError(
                f"{name}.load_state_dict: the state {has} schedule after the warm-up, this "
                f"warm-up {this}; make the same schedules as the run that saved it"
            )
        probe = super()._probe({k: v for k, v in state.items() if k != "after"})
        if self.after is not None:
            probe.after = self.after._probe(state["after"])
        return probe

    def _adopt(self, probe: LRScheduler) -> None:
        super()._adopt(probe)
        if self.after is not None:
            self.after._adopt(probe.after)
