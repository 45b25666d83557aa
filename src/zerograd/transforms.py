"""Transforms applied to each sample of a dataset (DeZero's ``dezero.transforms``).

Array transforms (``Normalize``, ``Flatten``, ``AsType``, ``ToFloat``, ``ToInt``, and a
``Compose`` of them) work on one sample and also, through ``apply_batch``, on a whole
stacked batch at once, which lets ``DataLoader`` skip its per-sample loop. Image
transforms (``Convert``, ``Resize``, ``CenterCrop``, ``ToArray``, ``ToPIL``) work on
Pillow images; Pillow is imported only when one of them runs.

Example:
    >>> import numpy as np
    >>> f = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])
    >>> y = f(np.full((1, 2, 2), 255, dtype=np.uint8))
    >>> y, y.dtype
    (array([1., 1., 1., 1.], dtype=float32), dtype('float32'))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zerograd import _checks

__all__ = [
    "is_stateful",
    "Transform",
    "Compose",
    "Normalize",
    "Flatten",
    "AsType",
    "ToFloat",
    "ToInt",
    "Convert",
    "Resize",
    "CenterCrop",
    "ToArray",
    "ToPIL",
    "RandomHorizontalFlip",
]


def _refuse(owner: str, arg: str, value: Any, expected: str, hint: str = "",
            kind: type = ValueError) -> Exception:
    """The error for a bad constructor argument: who, which argument, what was given
    (``kind``: TypeError for a value of the wrong kind, ValueError for one out of range)."""
    got = f"{value!r} ({type(value).__name__})"
    return kind(f"{owner}: {arg} must be {expected}, got {got}" + (f"; {hint}" if hint
                                                                  else ""))


def _check_size(owner: str, size: Any) -> tuple[int, int]:
    """A positive int, or a pair of them: ``(width, height)``."""
    if _checks.is_int(size):
        size = (size, size)
    expected = "a positive int or a (width, height) pair of them"
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(map(_checks.is_int, size))):
        raise _refuse(owner, "size", size, expected, kind=TypeError)
    if min(size) < 1:
        raise _refuse(owner, "size", size, expected)
    return int(size[0]), int(size[1])


def _pil_image():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "image transforms need Pillow: pip install pillow (or zerograd[viz])"
        ) from e
    return Image


def is_stateful(transform: Any) -> bool:
    """Whether ``transform`` keeps a state that a checkpoint must restore (a random
    generator): it has ``state_dict``, ``check_state_dict`` and ``apply_state_dict``
    (and, for a ``Compose``, one of its transforms keeps a state).

    Example:
        >>> is_stateful(RandomHorizontalFlip()), is_stateful(Compose([Flatten()]))
        (True, False)
    """
    return getattr(transform, "stateful", True) and all(
        callable(getattr(transform, name, None))
        for name in ("state_dict", "check_state_dict", "apply_state_dict"))


class Transform:
    """Base class: ``__call__(x)`` transforms one sample.

    A transform that can also act on a stacked batch (samples along a new first axis)
    sets ``batchable = True`` and implements ``apply_batch(xs)``, which must equal
    stacking ``self(x)`` over the samples.

    A transform that draws random numbers keeps its generator's state for exact
    resumes: it implements ``state_dict()``, ``check_state_dict(state)`` (check,
    change nothing, return a plan) and ``apply_state_dict(plan)`` (which cannot fail);
    ``load_state_dict`` is both. A :class:`~zerograd.dataloaders.DataLoader` saves and
    restores the state of such transforms of its dataset with its own (see
    :func:`is_stateful`).
    """

    batchable = False

    def __call__(self, x):
        raise NotImplementedError

    def apply_batch(self, xs):
        """Transform a stacked batch; only for transforms with ``batchable = True``."""
        raise NotImplementedError(f"{type(self).__name__} cannot transform a whole batch")

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict()`` returned (for transforms that keep a state)."""
        self.apply_state_dict(self.check_state_dict(state))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(Transform):
    """Apply several transforms in order.

    Args:
        transforms: callables, each taking and returning a sample.

    Example:
        >>> Compose([Flatten(), AsType(np.int8)])(np.ones((2, 2)))
        array([1, 1, 1, 1], dtype=int8)
    """

    def __init__(self, transforms: Sequence[Callable] = ()):
        if callable(transforms) or isinstance(transforms, (str, bytes)) \
                or not hasattr(transforms, "__iter__"):
            raise _refuse("Compose", "transforms", transforms, "a list of transforms",
                          "wrap a single one in a list: Compose([t])", kind=TypeError)
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise _refuse("Compose", f"transforms[{i}]", t, "callable (a transform)",
                              kind=TypeError)

    @property
    def batchable(self) -> bool:  # type: ignore[override]
        return all(getattr(t, "batchable", False) for t in self.transforms)

    @property
    def stateful(self) -> bool:
        """Whether one of the transforms keeps a state (see :func:`is_stateful`)."""
        return any(is_stateful(t) for t in self.transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def apply_batch(self, xs):
        for t in self.transforms:
            xs = t.apply_batch(xs)
        return xs

    # The state of the transforms that keep one, by position (as strings, for JSON).
    def state_dict(self) -> dict:
        """``{position: state}`` of the transforms that keep a state (random ones).

        Example:
            >>> Compose([Flatten(), RandomHorizontalFlip(seed=0)]).state_dict().keys()
            dict_keys(['1'])
        """
        return {str(i): t.state_dict() for i, t in enumerate(self.transforms)
                if is_stateful(t)}

    def check_state_dict(self, state: Mapping) -> list:
        """Check ``state`` against each transform that keeps one; return the plan."""
        expected = {str(i): t for i, t in enumerate(self.transforms) if is_stateful(t)}
        if not isinstance(state, Mapping) or set(state) != set(expected):
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            names = ", ".join(type(t).__name__ for t in expected.values()) or "none"
            raise ValueError(
                f"Compose.load_state_dict: expected the states of the transforms at "
                f"{sorted(expected)} ({names}), got {got}; make the same transforms as "
                "the saved run")
        return [(t, t.check_state_dict(state[key])) for key, t in expected.items()]

    def apply_state_dict(self, plan: list) -> None:
        for transform, part in plan:
            transform.apply_state_dict(part)

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class Normalize(Transform):
    """``(x - mean) / std``, with a scalar or a per-channel mean and std.

    A per-channel ``mean``/``std`` (a sequence) applies along the sample's first axis
    (channels of a ``(C, H, W)`` image). Floating inputs keep their dtype; integer
    inputs become float32 (run ``ToFloat()`` first to choose otherwise).

    Args:
        mean: a finite number or one per channel.
        std: a positive finite number or one per channel.

    Raises:
        ValueError: at construction, for a std that is not positive (``Normalize(0, 0)``
            would make every value NaN or infinite), values that are not finite real
            numbers, or per-channel mean and std of different lengths; when called, for
            a std that rounds to 0 (or a mean that overflows) in the input's dtype.

    Example:
        >>> Normalize(mean=[1.0, 2.0], std=2.0)(np.ones((2, 1), dtype=np.float32))
        array([[ 0. ],
               [-0.5]], dtype=float32)
    """

    batchable = True

    def __init__(self, mean: Any = 0, std: Any = 1):
        self._set(mean, std)

    # Properties, so that a mean or std assigned later is checked as at construction.
    mean = property(lambda self: self._mean, lambda self, value: self._set(value, self._std),
                    doc="The mean: a number or one per channel, as given.")
    std = property(lambda self: self._std, lambda self, value: self._set(self._mean, value),
                   doc="The standard deviation: a number or one per channel, as given.")

    def _set(self, mean: Any, std: Any) -> None:
        m = self._check("mean", mean, "finite real numbers")
        s = self._check("std", std, "positive finite real numbers")
        if min(s) <= 0:
            raise _refuse("Normalize", "std", std, "positive (a standard deviation)",
                          "a std of 0 divides by zero")
        if len(m) > 1 and len(s) > 1 and len(m) != len(s):
            raise ValueError(
                f"Normalize: mean has {len(m)} per-channel values and std {len(s)}; give "
                "both the same number of channels (or a single number for either)"
            )
        self._mean, self._std = mean, std
        # (dtype, sample ndim, channels) -> mean and std cast and shaped for such samples.
        self._cast: dict = {}

    @staticmethod
    def _check(arg: str, value: Any, what: str) -> list[float]:
        """``value`` as a list of one number or one per channel."""
        expected = f"a number or a sequence of {what}, one per channel"
        if _checks.is_real(value) and math.isfinite(value):  # the common case, quickly
            return [float(value)]
        try:
            a = np.asarray(value)
        except (ValueError, TypeError):  # a ragged sequence
            raise _refuse("Normalize", arg, value, expected) from None
        # One value per channel: a number, a flat sequence, or a (C, 1, ..., 1) array.
        per_channel = a.ndim <= 1 or all(n == 1 for n in a.shape[1:])
        if a.dtype.kind not in "iuf":
            raise _refuse("Normalize", arg, value, expected, kind=TypeError)
        if a.size == 0 or not per_channel:
            raise _refuse("Normalize", arg, value, expected)
        values = a.astype(np.float64).reshape(-1).tolist()
        if not all(math.isfinite(v) for v in values):
            raise _refuse("Normalize", arg, value, expected)
        return values

    @staticmethod
    def _as_float(x):
        x = np.asarray(x)
        return x if x.dtype.kind == "f" else x.astype(np.float32)

    @staticmethod
    def _channelwise(value, x, axis: int):
        # NumPy scalars and 0-d arrays are cast too: they would promote float32 otherwise.
        value = np.asarray(value, dtype=x.dtype).reshape(-1)
        if value.size == 1:
            return value[0]
        if x.ndim <= axis or x.shape[axis] != value.size:
            raise ValueError(
                f"Normalize: {value.size} per-channel values for a sample of shape "
                f"{x.shape[axis:]}; the sample's first axis must have {value.size} channels"
            )
        shape = [1] * (x.ndim - axis)
        shape[0] = value.size
        return value.reshape(shape)

    def _prepare(self, x, axis: int):
        """Mean and std cast to ``x``'s dtype and shaped for its channels, checked."""
        with np.errstate(over="ignore", under="ignore"):
            mean = self._channelwise(self._mean, x, axis)
            std = self._channelwise(self._std, x, axis)
        if not (np.all(std != 0) and np.all(np.isfinite(std)) and np.all(np.isfinite(mean))):
            raise ValueError(
                f"Normalize: mean={self._mean!r}, std={self._std!r} do not fit in {x.dtype} "
                "(the input's dtype): std rounds to 0 or a value overflows; cast the input "
                "to a wider float first (ToFloat(np.float32))"
            )
        return mean, std

    def _apply(self, x, axis: int):
        x = self._as_float(x)
        # Prepared once per kind of input: a per-sample loop calls this thousands of times.
        key = (x.dtype, x.ndim - axis, x.shape[axis] if x.ndim > axis else 0)
        prepared = self._cast.get(key)
        if prepared is None:
            prepared = self._cast[key] = self._prepare(x, axis)
        mean, std = prepared
        return (x - mean) / std

    def __call__(self, x):
        return self._apply(x, 0)

    def apply_batch(self, xs):
        return self._apply(xs, 1)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean!r}, std={self.std!r})"


class Flatten(Transform):
    """Flatten a sample to one dimension.

    Example:
        >>> Flatten()(np.zeros((1, 2, 3))).shape
        (6,)
    """

    batchable = True

    def __call__(self, x):
        return np.asarray(x).reshape(-1)

    def apply_batch(self, xs):
        # Not reshape(n, -1): NumPy cannot infer the -1 of an empty batch.
        return xs.reshape(len(xs), math.prod(xs.shape[1:]))


class AsType(Transform):
    """Cast a sample to ``dtype`` (no copy when it already has it).

    Example:
        >>> AsType(np.float64)(np.array([1, 2])).dtype
        dtype('float64')
    """

    batchable = True
    _kinds, _expected = "biufc", "a NumPy numeric or bool dtype (such as np.float32)"

    def __init__(self, dtype: Any = np.float32):
        self.dtype = _checks.dtype(type(self).__name__, "dtype", dtype, self._kinds,
                                   self._expected)

    def __call__(self, x):
        return np.asarray(x).astype(self.dtype, copy=False)

    def apply_batch(self, xs):
        return xs.astype(self.dtype, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dtype.name})"


class ToFloat(AsType):
    """Cast to a floating dtype, float32 by default.

    Example:
        >>> ToFloat()(np.array([1], dtype=np.uint8)).dtype
        dtype('float32')
    """

    _kinds, _expected = "f", "a floating dtype (np.float16, np.float32 or np.float64)"

    def __init__(self, dtype: Any = np.float32):
        super().__init__(dtype)


class ToInt(AsType):
    """Cast to an integer dtype, int64 by default (DeZero's ``np.int``).

    Example:
        >>> ToInt()(np.array([1.7])).dtype
        dtype('int64')
    """

    _kinds, _expected = "iu", "an integer dtype (such as np.int64 or np.uint8)"

    def __init__(self, dtype: Any = np.int64):
        super().__init__(dtype)


class Convert(Transform):
    """Convert a Pillow image to another mode (``'RGB'``, ``'L'``...; ``'BGR'`` swaps
    the red and blue channels of an RGB image).

    Example:
        >>> from PIL import Image
        >>> Convert("L")(Image.new("RGB", (4, 3))).mode
        'L'
    """

    def __init__(self, mode: str = "RGB"):
        expected = "a Pillow image mode such as 'RGB' or 'L', or 'BGR'"
        if not isinstance(mode, str):
            raise _refuse("Convert", "mode", mode, expected, kind=TypeError)
        if not mode:
            raise _refuse("Convert", "mode", mode, expected)
        self.mode = mode

    def __call__(self, img):
        Image = _pil_image()
        if self.mode == "BGR":
            r, g, b = img.convert("RGB").split()
            return Image.merge("RGB", (b, g, r))
        try:
            return img.convert(self.mode)
        except ValueError as e:  # Pillow's "conversion from X to Y not supported"
            raise ValueError(f"Convert: cannot convert a {img.mode} image to mode "
                             f"{self.mode!r} ({e})") from e

    def __repr__(self) -> str:
        return f"Convert({self.mode!r})"


class Resize(Transform):
    """Resize a Pillow image.

    Args:
        size: an int for a square, or ``(width, height)`` as Pillow orders it.
        mode: the resampling filter (a ``PIL.Image.Resampling`` value, 0 to 5);
            bilinear when None.

    Example:
        >>> from PIL import Image
        >>> Resize((8, 4))(Image.new("RGB", (2, 2))).size
        (8, 4)
    """

    def __init__(self, size: Any, mode: Any = None):
        self.size = _check_size("Resize", size)
        expected, hint = ("None or a PIL.Image.Resampling value",
                          "for example PIL.Image.Resampling.NEAREST")
        if mode is not None and not _checks.is_int(mode):
            raise _refuse("Resize", "mode", mode, expected, hint, kind=TypeError)
        if mode is not None and not 0 <= mode <= 5:
            raise _refuse("Resize", "mode", mode, expected, hint)
        self.mode = mode

    def __call__(self, img):
        Image = _pil_image()
        mode = Image.Resampling.BILINEAR if self.mode is None else self.mode
        return img.resize(self.size, mode)

    def __repr__(self) -> str:
        return f"Resize({self.size!r})"


class CenterCrop(Transform):
    """Crop the centre of a Pillow image.

    Args:
        size: an int for a square, or ``(width, height)``.

    Example:
        >>> from PIL import Image
        >>> CenterCrop(2)(Image.new("RGB", (5, 4))).size
        (2, 2)
    """

    def __init__(self, size: Any):
        self.size = _check_size("CenterCrop", size)

    def __call__(self, img):
        W, H = img.size
        OW, OH = self.size
        if OW > W or OH > H:
            raise ValueError(
                f"CenterCrop: crop size (width, height)={self.size} is larger than the "
                f"image, size={img.size}; resize first (Resize) or crop smaller"
            )
        left = (W - OW) // 2
        top = (H - OH) // 2
        return img.crop((left, top, left + OW, top + OH))

    def __repr__(self) -> str:
        return f"CenterCrop({self.size!r})"


class ToArray(Transform):
    """A Pillow image to a ``(C, H, W)`` array of ``dtype`` (arrays pass unchanged).

    A single-channel image gives ``C = 1``.

    Example:
        >>> from PIL import Image
        >>> ToArray()(Image.new("RGB", (4, 3))).shape
        (3, 3, 4)
        >>> ToArray()(Image.new("L", (4, 3))).shape
        (1, 3, 4)
    """

    def __init__(self, dtype: Any = np.float32):
        self.dtype = _checks.dtype("ToArray", "dtype", dtype, "biuf",
                                   "a NumPy numeric dtype (such as np.float32 or np.uint8)")

    def __call__(self, img):
        if isinstance(img, np.ndarray):
            return img
        Image = _pil_image()
        if not isinstance(img, Image.Image):
            raise TypeError(
                f"ToArray: expected a PIL.Image.Image or numpy.ndarray, got "
                f"{type(img).__name__}; open images with PIL.Image.open(path)"
            )
        x = np.asarray(img)
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        return x.astype(self.dtype)

    def __repr__(self) -> str:
        return f"ToArray({self.dtype.name})"


class ToPIL(Transform):
    """A ``(C, H, W)`` array (C = 1, 3 or 4) or an ``(H, W)`` array to a Pillow image.

    Non-uint8 values are rounded and clipped to [0, 255].

    Example:
        >>> ToPIL()(np.zeros((3, 2, 5), dtype=np.uint8)).size
        (5, 2)
    """

    def __call__(self, x):
        Image = _pil_image()
        x = np.asarray(x)
        if x.ndim == 3:
            if x.shape[0] not in (1, 3, 4):
                raise ValueError(
                    f"ToPIL: expected a (C, H, W) array with C in (1, 3, 4), got shape "
                    f"{x.shape}; transpose an (H, W, C) array with x.transpose(2, 0, 1)"
                )
            x = x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
        elif x.ndim != 2:
            raise ValueError(f"ToPIL: expected a 2-D or 3-D array, got shape {x.shape}")
        if x.dtype != np.uint8:
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(x))


class RandomHorizontalFlip(Transform):
    """Flip left-right with probability ``p``: a Pillow image, or an array along its
    last axis (width of a ``(C, H, W)`` image).

    Args:
        p: the probability of a flip.
        seed: seed of this transform's own random generator (None: fresh entropy), or
            a ``numpy.random.Generator``.

    Example:
        >>> RandomHorizontalFlip(p=1.0)(np.array([[1, 2, 3]]))
        array([[3, 2, 1]])
    """

    def __init__(self, p: float = 0.5, seed: int | None = None):
        self.p = _checks.real("RandomHorizontalFlip", "p", p, "closed_fraction",
                              "the probability of a flip")
        self.rng = _checks.generator("RandomHorizontalFlip", seed)

    def __call__(self, x):
        if self.rng.random() >= self.p:
            return x
        if isinstance(x, np.ndarray):
            return x[..., ::-1].copy()
        Image = _pil_image()
        return x.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    def state_dict(self) -> dict:
        """The state of the generator (``{"rng": ...}``), for exact resumes.

        Example:
            >>> a, b = RandomHorizontalFlip(seed=0), RandomHorizontalFlip(seed=1)
            >>> b.load_state_dict(a.state_dict())
            >>> [a(np.arange(2))[0] for _ in range(6)] == [b(np.arange(2))[0] for _ in range(6)]
            True
        """
        return {"rng": self.rng.bit_generator.state}

    def check_state_dict(self, state: Mapping) -> dict:
        """Check ``state`` (the generator's, of this generator's kind); the plan."""
        where = "RandomHorizontalFlip.load_state_dict"
        if not isinstance(state, Mapping) or set(state) != {"rng"}:
            raise ValueError(f"{where}: expected {{'rng': <a generator's state>}}, got "
                             f"{state!r:.80}")
        kind = type(self.rng.bit_generator)
        try:
            kind().state = state["rng"]  # on a scratch generator first
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"{where}: 'rng' is not the state of a {kind.__name__} "
                             f"generator, as this transform's is ({e})") from None
        return state["rng"]

    def apply_state_dict(self, plan: dict) -> None:
        self.rng.bit_generator.state = plan

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"
