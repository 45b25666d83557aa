"""Optimizers, gradient hooks and learning-rate schedules.

An :class:`Optimizer` updates the parameters of its target (a Layer or Model, anything
with ``params()``) from their gradients. Each update works in place on
``param.data``, on the parameter's own device, and keeps its dtype (float32 stays
float32). Per-parameter state (moments, step counts) is held by the optimizer, keyed
by the parameter object itself, and saved with :meth:`Optimizer.save` keyed by the
parameter's position in ``target.params()``.

Hooks run on the list of parameters that have a gradient, before the update:
:class:`WeightDecay`, :class:`ClipGrad`, :class:`FreezeParam`. Schedules
(:class:`StepDecay`, :class:`ExponentialDecay`, :class:`CosineAnnealing`,
:class:`LinearWarmup`) set the optimizer's learning rate each time you call their
``step()``.

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

import math
from collections.abc import Callable

import numpy as np

from zerograd.core import Parameter, as_variable
from zerograd.cuda import as_cupy, as_numpy, get_array_module
from zerograd.utils.io import NotAnArchiveError, atomic_savez, load_npz

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
    ``hyperparams`` (saved with the state). ``rate_name`` is the attribute that a
    learning-rate schedule sets (``"lr"``, or ``"alpha"`` for Adam).

    Attributes:
        target: what ``setup`` was given.
        hooks: callables run as ``hook(params)`` on the parameters that have a
            gradient, before they are updated.

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

    def __init__(self):
        self.target = None
        self.hooks: list = []
        self.t = 0  # number of update() calls
        # id(param) -> (param, state). The entry holds the parameter itself, so its id
        # cannot be reused by another object while the entry exists.
        self._states: dict[int, tuple[Parameter, dict]] = {}

    def setup(self, target) -> Optimizer:
        """Set what to optimize: a Layer/Model (anything with ``params()``) or a list of
        Parameters. Returns the optimizer, so ``Adam().setup(model)`` reads well."""
        if not hasattr(target, "params"):
            if not isinstance(target, (list, tuple)):
                raise TypeError(
                    f"{type(self).__name__}.setup: expected a Layer/Model (with params()) "
                    f"or a list of Parameters, got {type(target).__name__}"
                )
            target = _ParamList(target)
        self.target = target
        return self

    def _params(self) -> list:
        if self.target is None:
            raise RuntimeError(
                f"{type(self).__name__}: no target to optimize; call "
                "optimizer.setup(model) first"
            )
        return list(self.target.params())

    def update(self) -> None:
        """Run the hooks, then update every parameter that has a gradient."""
        params = [p for p in self._params() if p.grad is not None]
        for hook in self.hooks:
            hook(params)
        self.t += 1
        for param in params:
            if param.grad is not None:  # a hook (FreezeParam) may have removed it
                self.update_one(param)

    def update_one(self, param: Parameter) -> None:
        """Update one parameter in place from ``param.grad``."""
        raise NotImplementedError(f"{type(self).__name__}.update_one is not implemented")

    def add_hook(self, f: Callable) -> None:
        """Add ``f``, called as ``f(params)`` before each update (see WeightDecay)."""
        if not callable(f):
            raise TypeError(f"add_hook: expected a callable, got {type(f).__name__}")
        self.hooks.append(f)

    # ---- per-parameter state ------------------------------------------------------------
    def init_state(self, param: Parameter) -> dict:
        """The state of a parameter seen for the first time (moments as zero arrays)."""
        return {}

    def state_of(self, param: Parameter) -> dict:
        """The state dict of ``param`` (created by ``init_state`` on first use).

        The state follows its parameter's device: after ``model.to_gpu()`` (or
        ``to_cpu()``) the arrays move on the next update.
        """
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

    def state_dict(self) -> dict:
        """The optimizer's state as a flat dict of NumPy arrays.

        Keys: ``"t"`` (update count), ``"hyper/<name>"`` for each hyperparameter, and
        ``"param/<i>/<slot>"`` for the state of the i-th parameter of
        ``target.params()`` (only parameters that have state).
        """
        out = {"t": np.asarray(self.t, dtype=np.int64)}
        for name in self.hyperparams:
            out[f"hyper/{name}"] = np.asarray(float(getattr(self, name)))
        for i, param in enumerate(self._params()):
            entry = self._states.get(id(param))
            if entry is None or entry[0] is not param:
                continue
            for slot, value in entry[1].items():
                out[f"param/{i}/{slot}"] = np.array(as_numpy(value))
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned. Call it after ``setup`` with the same
        model (weights loaded). Nothing changes when the state does not fit.

        Raises:
            ValueError: on an unknown key, a parameter index out of range, a slot this
                optimizer does not use or a shape that differs from the parameter's.
        """
        name = type(self).__name__
        params = self._params()
        new_states: dict[int, dict] = {}
        hyper = {}
        t = self.t
        for key, value in state.items():
            parts = key.split("/")
            if key == "t":
                t = int(value)
            elif parts[0] == "hyper" and len(parts) == 2:
                if parts[1] not in self.hyperparams:
                    raise ValueError(
                        f"{name}.load_state_dict: unknown hyperparameter {parts[1]!r}; "
                        f"{name} has {list(self.hyperparams)}: was it saved by another "
                        "optimizer?"
                    )
                hyper[parts[1]] = float(value)
            elif parts[0] == "param" and len(parts) == 3 and parts[1].isdigit():
                i, slot = int(parts[1]), parts[2]
                if i >= len(params):
                    raise ValueError(
                        f"{name}.load_state_dict: state for parameter {i}, but the target "
                        f"has {len(params)} parameters; was it saved from another model?"
                    )
                param = params[i]
                if param.data is None:
                    raise ValueError(
                        f"{name}.load_state_dict: parameter {i} is not initialized yet "
                        "(data is None); load the model's weights or run it once first"
                    )
                template = self.init_state(param)
                if slot not in template:
                    raise ValueError(
                        f"{name}.load_state_dict: unknown state {slot!r} for parameter {i}; "
                        f"{name} keeps {sorted(template)}: was it saved by another optimizer?"
                    )
                ref = template[slot]
                value = np.asarray(value)
                if isinstance(ref, int):
                    new_states.setdefault(i, template)[slot] = int(value)
                    continue
                if value.shape != ref.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: state {slot!r} of parameter {i} has shape "
                        f"{value.shape}, the parameter has {ref.shape}"
                    )
                xp = get_array_module(param.data)
                new_states.setdefault(i, template)[slot] = xp.asarray(value, dtype=ref.dtype)
            else:
                raise ValueError(
                    f"{name}.load_state_dict: unexpected key {key!r}; expected 't', "
                    f"'hyper/<{'|'.join(self.hyperparams)}>' or 'param/<index>/<slot>'"
                )
        # Everything checked: apply.
        self.t = t
        for key, value in hyper.items():
            setattr(self, key, value)
        for i, slots in new_states.items():
            self._states[id(params[i])] = (params[i], slots)

    def save(self, path: str) -> None:
        """Write ``state_dict()`` to an ``.npz`` file at ``path`` (exactly that name).

        The file is written to a temporary name and renamed, so an interrupted save
        never leaves a truncated file behind.
        """
        atomic_savez(path, self.state_dict())

    def load(self, path: str) -> None:
        """Restore the state written by :meth:`save`.

        Raises:
            ValueError: when the file is not an ``.npz`` archive or does not fit.
        """
        try:
            state = load_npz(path)
        except NotAnArchiveError:
            raise ValueError(
                f"{type(self).__name__}.load: {path!r} holds a single array (.npy), not "
                "the .npz archive that Optimizer.save writes"
            ) from None
        self.load_state_dict(state)


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
    ``eps``. ``alpha`` is the rate a schedule sets.

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

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def __call__(self, params) -> None:
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        total = 0.0
        for param in params:
            g = param.grad.data
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

    Subclasses implement ``rate(step) -> float``.

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

    def __init__(self, optimizer: Optimizer, base_lr: float | None = None):
        self.optimizer = optimizer
        name = getattr(optimizer, "rate_name", "lr")
        if base_lr is None:
            base_lr = getattr(optimizer, name)
        self.base_lr = float(base_lr)
        self.last_step = 0
        self._apply()

    def rate(self, step: int) -> float:
        raise NotImplementedError(f"{type(self).__name__}.rate is not implemented")

    @property
    def lr(self) -> float:
        """The rate for the current step."""
        return float(self.rate(self.last_step))

    def step(self) -> None:
        """Advance one step and set the optimizer's rate."""
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        setattr(self.optimizer, getattr(self.optimizer, "rate_name", "lr"), self.lr)

    def state_dict(self) -> dict:
        """``{"last_step": ..., "base_lr": ...}``, to save with the optimizer."""
        return {"last_step": self.last_step, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position (and set the optimizer's rate for it)."""
        self.last_step = int(state["last_step"])
        self.base_lr = float(state["base_lr"])
        self._apply()


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

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 base_lr: float | None = None):
        if step_size < 1:
            raise ValueError(f"StepDecay: step_size must be at least 1, got {step_size}")
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

    def __init__(self, optimizer: Optimizer, t_max: int, eta_min: float = 0.0,
                 base_lr: float | None = None):
        if t_max < 1:
            raise ValueError(f"CosineAnnealing: t_max must be at least 1, got {t_max}")
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

    def __init__(self, optimizer: Optimizer, warmup_steps: int,
                 after: LRScheduler | None = None, base_lr: float | None = None):
        if warmup_steps < 1:
            raise ValueError(
                f"LinearWarmup: warmup_steps must be at least 1, got {warmup_steps}"
            )
        if after is not None and after.optimizer is not optimizer:
            raise ValueError(
                "LinearWarmup: the schedule given as `after` drives another optimizer; "
                "make both schedules on the same optimizer"
            )
        self.warmup_steps = warmup_steps
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

    def load_state_dict(self, state: dict) -> None:
        if self.after is not None and "after" in state:
            self.after.base_lr = float(state["after"]["base_lr"])
        super().load_state_dict(state)
