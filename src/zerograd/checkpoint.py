"""Checkpoints: one file from which a training run resumes exactly.

:func:`save_checkpoint` writes, atomically, into one archive of named arrays (an
``.npz`` file, through :func:`zerograd.utils.io.save_arrays`):

- the model's Parameters and buffers (``model/<name>``);
- the optimizer's state, hyperparameters included (``optimizer/<key>``, as
  :meth:`Optimizer.state_dict`), and its learning-rate schedule's position and settings;
- zerograd's random generators (initial weights, dropout masks: see
  :func:`zerograd.random.get_state`);
- each data loader's position in its epoch, its order, its shuffling generator and
  the generators of its dataset's random transforms;
- the state of any other object with ``state_dict()``/``load_state_dict()`` (a loss
  scaler, early stopping), given as ``extras``;
- the epoch and iteration, and any values of your own.

Everything that is not a model or optimizer array is kept in one JSON document,
stored as the bytes of the array ``__checkpoint__``; arrays inside those states (a
loader's order, the best weights of early stopping) are stored as arrays
``tree/<n>`` and referenced from the JSON as ``{"$array": "tree/<n>"}`` (tuples as
``{"$tuple": [...]}``). Nothing is ever pickled, and loading never unpickles.

Your own values (``**values``) must be JSON: numbers (NaN and infinities included),
strings, booleans, None, and lists and dicts of them with string keys (NumPy scalars
are turned into Python numbers); they come back as JSON gives them (tuples as lists).

:func:`load_checkpoint` reads the whole file and checks every part against the
objects it is given (names, shapes and dtypes of the weights, the optimizer's kind and
state, the schedule's kind and the rate it gives, each loader's dataset size, batch
count and transforms, the extras' states) before it changes any of them: a damaged,
truncated or mismatched file raises a ``ValueError`` that says what does not match,
and leaves everything as it was.

One protocol makes this a transaction. Every object a checkpoint restores (``Layer``,
``Optimizer``, the schedules, ``LossScaler``, ``EarlyStopping``, ``DataLoader``, the
random transforms) loads in two steps: ``plan = obj.check_state_dict(state)`` checks
everything and changes nothing (a ``ValueError`` otherwise), and
``obj.apply_state_dict(plan)`` cannot fail; ``load_state_dict(state)`` is the two in
turn. :func:`load_checkpoint` checks every part, then applies them all. An object of
your own may implement the two methods to take part; one that has only
``load_state_dict`` is loaded after every check passed and is restored from its
former ``state_dict()`` if it raises (see :func:`load_checkpoint`).

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> from zerograd import optimizers
    >>> model = L.Linear(2, in_size=3)
    >>> optimizer = optimizers.Adam().setup(model)
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
    >>> save_checkpoint(path, model, optimizer, epoch=3, best_accuracy=0.91)
    >>> fresh = L.Linear(2, in_size=3)
    >>> info = load_checkpoint(path, fresh, optimizers.Adam().setup(fresh))
    >>> info["epoch"], info["best_accuracy"], bool((fresh.W.data == model.W.data).all())
    (3, 0.91, True)
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd import random as zrandom
from zerograd.core import Parameter
from zerograd.optimizers import _unwrapped
from zerograd.utils.io import read_arrays, save_arrays

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_info"]

FORMAT = "zerograd.checkpoint"
VERSION = 1
HEADER = "__checkpoint__"


# =========================================================================================
# Saving
# =========================================================================================
def save_checkpoint(path: str | os.PathLike, model, optimizer=None, *, schedule=None,
                    loaders: Mapping | Sequence | None = None,
                    extras: Mapping[str, Any] | None = None,
                    epoch: int = 0, iteration: int = 0, **values) -> None:
    """Write everything needed to resume training to ``path``, atomically.

    Args:
        path: the file to write (exactly this name; ``.npz``).
        model: the Layer or Model being trained.
        optimizer: its optimizer (state, hyperparameters, float16 master weights).
        schedule: the learning-rate schedule driving the optimizer.
        loaders: the data loaders, as a dict ``{name: loader}`` or a list.
        extras: other objects with ``state_dict()``/``load_state_dict()``, by name
            (e.g. ``{"scaler": scaler, "early_stopping": stopper}``).
        epoch: the number of finished epochs.
        iteration: the number of finished updates.
        values: your own JSON values (see the module's docstring).

    Raises:
        TypeError: when a value cannot be stored (not JSON; no pickle is used).
        ValueError: when ``epoch`` or ``iteration`` is not an int >= 0.
        OSError: when the file cannot be written (an older file is left intact).
    """
    for name, count in (("epoch", epoch), ("iteration", iteration)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"save_checkpoint: {name} must be an int >= 0, got {count!r}")
    arrays: dict[str, np.ndarray] = {}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "zerograd": _version(),
        "epoch": int(epoch),
        "iteration": int(iteration),
        "values": {key: _encode(value, None, f"value {key!r}") for key, value in values.items()},
        "model": {"type": type(model).__name__},
        "optimizer": None,
        "schedule": None,
        "loaders": {},
        "extras": {},
        "random": _encode(zrandom.get_state(), arrays, "the random state"),
    }
    for key, array in model.state_dict().items():
        arrays[f"model/{key}"] = cuda.as_numpy(array)
    if optimizer is not None:
        # the optimizer a DistributedOptimizer wraps: both load each other's checkpoints
        header["optimizer"] = {"type": type(_unwrapped(optimizer)).__name__}
        for key, array in optimizer.state_dict().items():
            arrays[f"optimizer/{key}"] = np.asarray(array)
    if schedule is not None:
        header["schedule"] = _encode(schedule.state_dict(), arrays, "the schedule's state")
    for name, loader in _named(loaders, "loaders").items():
        header["loaders"][name] = {
            "batch_size": getattr(loader, "batch_size", None),
            "state": _encode(loader.state_dict(), arrays, f"loader {name!r}"),
        }
    for name, obj in _named(extras, "extras").items():
        header["extras"][name] = _encode(obj.state_dict(), arrays, f"extra {name!r}")
    text = json.dumps(header, allow_nan=True)
    arrays[HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    save_arrays(path, arrays)


def _version() -> str:
    import zerograd

    return zerograd.__version__


def _named(objects, what: str) -> dict:
    """``{name: object}`` from a mapping, a sequence (names "0", "1", ...) or None."""
    if objects is None:
        return {}
    if isinstance(objects, Mapping):
        for name in objects:
            if not isinstance(name, str):
                raise TypeError(f"checkpoint: the names of {what} must be strings, got "
                                f"{name!r}")
        return dict(objects)
    if isinstance(objects, (list, tuple)):
        return {str(i): obj for i, obj in enumerate(objects)}
    raise TypeError(
        f"checkpoint: {what} must be a dict of name -> object or a list, got "
        f"{type(objects).__name__}"
    )


def _encode(obj: Any, arrays: dict | None, where: str) -> Any:
    """``obj`` as JSON, its arrays moved into ``arrays`` (None: arrays not allowed)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()
    if isinstance(obj, np.ndarray) or cuda.is_cupy_array(obj):
        if arrays is None:
            raise TypeError(
                f"save_checkpoint: {where} is an array; your own values must be JSON "
                "(numbers, strings, lists, dicts): use .tolist(), or keep arrays in the "
                "model as buffers"
            )
        name = f"tree/{len(arrays)}"  # arrays only grows: a new name each time
        arrays[name] = np.array(cuda.as_numpy(obj))
        return {"$array": name}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) and arrays is not None else items
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"save_checkpoint: {where} has the key {key!r} ({type(key).__name__}); "
                    "keys must be strings"
                )
            out[key] = _encode(value, arrays, f"{where}[{key!r}]")
        return {"$dict": out} if any(k.startswith("$") for k in out) else out
    raise TypeError(
        f"save_checkpoint: {where} is a {type(obj).__name__}, which a checkpoint does not "
        "store (it never pickles); use numbers, strings, lists and dicts"
    )


def _decode(obj: Any, arrays: Mapping) -> Any:
    """The inverse of :func:`_encode`."""
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {"$array"}:
        name = obj["$array"]
        if not isinstance(name, str) or name not in arrays:
            raise ValueError(f"the array {name!r} it refers to is missing")
        return np.array(arrays[name])
    if set(obj) == {"$tuple"}:
        return tuple(_decode(v, arrays) for v in obj["$tuple"])
    if set(obj) == {"$dict"}:
        obj = obj["$dict"]
    return {key: _decode(value, arrays) for key, value in obj.items()}


# =========================================================================================
# Loading
# =========================================================================================
def _read(path: str | os.PathLike, header_only: bool = False) -> tuple[dict, dict]:
    """The header and the arrays of the checkpoint at ``path`` (only the header, with
    ``header_only``: the rest of the file is not read)."""
    path = os.fspath(path)
    arrays = read_arrays(path, "load_checkpoint",
                         "it is not a checkpoint written by save_checkpoint",
                         names=[HEADER] if header_only else None)
    raw = arrays.pop(HEADER, None)
    if raw is None:
        raise ValueError(
            f"load_checkpoint: {path!r} is an archive of arrays but not a zerograd "
            "checkpoint (no header); weights saved by save_weights load with "
            "model.load_weights"
        )
    try:
        header = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"load_checkpoint: {path!r} has a damaged header ({e})") from None
    except RecursionError:
        raise ValueError(f"load_checkpoint: {path!r} has a damaged header (it nests too "
                         "deeply to be read)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"load_checkpoint: {path!r} is not a zerograd checkpoint")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(
            f"load_checkpoint: {path!r} has format version {version!r}, newer than this "
            f"zerograd reads ({VERSION}); it was written by zerograd "
            f"{header.get('zerograd', '?')}: upgrade zerograd"
        )
    for key, kind in (("epoch", int), ("iteration", int), ("values", dict), ("model", dict),
                      ("loaders", dict), ("extras", dict)):
        if not isinstance(header.get(key), kind) or (kind is int and header[key] < 0):
            raise ValueError(f"load_checkpoint: {path!r} has a damaged header ({key!r})")
    return header, arrays


def checkpoint_info(path: str | os.PathLike) -> dict:
    """What the checkpoint at ``path`` holds, without loading it into anything.

    Only the header is read (not the weights), so this is quick for any size of model.

    Returns:
        ``{"epoch", "iteration", "values", "model", "optimizer", "schedule",
        "loaders", "extras", "zerograd"}``: the counts, your values, the class names of
        the model, optimizer and schedule (None when absent), the names of the
        loaders and extras, and the version of zerograd that wrote it.

    Raises:
        ValueError: when the file is damaged or not a checkpoint.
    """
    header, _ = _read(path, header_only=True)
    schedule = header.get("schedule")
    try:
        values = _decode(header["values"], {})
    except (ValueError, RecursionError) as e:
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} has a damaged header "
                         f"(values: {e})") from None
    return {
        "epoch": header["epoch"],
        "iteration": header["iteration"],
        "values": values,
        "model": header["model"].get("type"),
        "optimizer": (header.get("optimizer") or {}).get("type"),
        "schedule": schedule.get("type") if isinstance(schedule, dict) else None,
        "loaders": list(header["loaders"]),
        "extras": list(header["extras"]),
        "zerograd": header.get("zerograd"),
    }


def load_checkpoint(path: str | os.PathLike, model, optimizer=None, *, schedule=None,
                    loaders: Mapping | Sequence | None = None,
                    extras: Mapping[str, Any] | None = None,
                    restore_random: bool = True) -> dict:
    """Restore a run saved by :func:`save_checkpoint` into freshly made objects.

    Make the model, optimizer (``setup`` done), schedule, loaders and extras as the
    saved run made them, then call this. Each object you pass must have its part in
    the file; parts you do not pass are left out (``load_checkpoint(path, model)``
    restores only the weights, and the random state unless ``restore_random=False``).

    Loading is one transaction: every part is checked first (each object's
    ``check_state_dict``), and only when all fit is each applied
    (``apply_state_dict``, which cannot fail). An extra (or a loader) that has only
    ``load_state_dict`` (an object of your own) is loaded after every check passed and
    before anything else changes; if it raises, those loaded so far, itself included,
    are given back the ``state_dict()`` they had, and the random state is restored.

    Args:
        path: the checkpoint file.
        model: receives the weights (names, shapes and dtypes must match).
        optimizer: receives its state (the same kind of optimizer; a
            ``DistributedOptimizer`` counts as the optimizer it wraps).
        schedule: receives its position and settings (the same kind of schedule).
        loaders: the loaders, named as when saving (a dict, or a list in order).
        extras: the other objects, named as when saving.
        restore_random: restore zerograd's random generators (weights, dropout).

    Returns:
        ``{"epoch": ..., "iteration": ..., **values}``.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is damaged or does not fit the objects; it says what
            does not match, and nothing has changed.
    """
    header, arrays = _read(path)
    where = f"load_checkpoint: {os.fspath(path)!r}"

    def fail(part: str, error: Exception) -> ValueError:
        return ValueError(f"{where} does not fit {part}; nothing was loaded:\n{error}")

    plans = []  # (apply_state_dict, plan): applied once every part is checked

    # ---- check every part, changing nothing ---------------------------------------------
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    try:
        model_plan = model.check_state_dict(model_state)
    except ValueError as e:
        saved = header["model"].get("type")
        note = "" if saved == type(model).__name__ else f" (it was saved from a {saved})"
        raise fail(f"the model{note}", e) from None
    plans.append((model.apply_state_dict, model_plan))
    planned = {}
    for layer, name, value, _current in model_plan:
        obj = layer.__dict__[name]
        if isinstance(obj, Parameter):
            planned[id(obj)] = value

    if optimizer is not None:
        inner = _unwrapped(optimizer)
        saved = header.get("optimizer")
        if not isinstance(saved, dict):
            raise ValueError(f"{where} holds no optimizer state; call it without optimizer=")
        if saved.get("type") != type(inner).__name__:
            raise ValueError(
                f"{where} holds the state of a {saved.get('type')}, not of a "
                f"{type(inner).__name__}; make the same optimizer as the saved run"
            )
        state = {k[len("optimizer/"):]: v for k, v in arrays.items()
                 if k.startswith("optimizer/")}
        try:
            plan = inner.check_state_dict(state, data_of=lambda p: planned.get(id(p), p.data))
        except ValueError as e:
            raise fail("the optimizer", e) from None
        plans.append((inner.apply_state_dict, plan))

    if schedule is not None:  # after the optimizer's: the schedule sets its rate last
        if header.get("schedule") is None:
            raise ValueError(f"{where} holds no schedule state; call it without schedule=")
        try:
            plans.append((schedule.apply_state_dict,
                          schedule.check_state_dict(_decode(header["schedule"], arrays))))
        except (TypeError, ValueError, RecursionError) as e:
            raise fail("the schedule", e) from None

    fallback = []  # objects with load_state_dict only: loaded first, undone on failure
    for name, loader in _named(loaders, "loaders").items():
        if name not in header["loaders"]:
            raise ValueError(
                f"{where} holds no loader named {name!r} (it has {list(header['loaders'])})"
            )
        try:
            saved = header["loaders"][name]
            batch_size = getattr(loader, "batch_size", None)
            if saved["batch_size"] != batch_size:
                raise ValueError(
                    f"{type(loader).__name__}: the state is for batch size "
                    f"{saved['batch_size']}, this loader has {batch_size}"
                )
            state = _decode(saved["state"], arrays)
            if _has_protocol(loader):
                plans.append((loader.apply_state_dict, loader.check_state_dict(state)))
            else:
                fallback.append((f"loader {name!r}", loader, state))
        except (KeyError, TypeError, ValueError, RecursionError) as e:
            raise fail(f"loader {name!r}", e) from None

    for name, obj in _named(extras, "extras").items():
        if name not in header["extras"]:
            raise ValueError(
                f"{where} holds no extra named {name!r} (it has {list(header['extras'])})"
            )
        try:
            state = _decode(header["extras"][name], arrays)
            if _has_protocol(obj):
                plans.append((obj.apply_state_dict, obj.check_state_dict(state)))
            else:
                fallback.append((f"extra {name!r}", obj, state))
        except (TypeError, ValueError, RecursionError) as e:
            raise fail(f"extra {name!r}", e) from None

    try:
        random_state = _decode(header["random"], arrays) if restore_random else None
        values = _decode(header["values"], arrays)
    except (KeyError, ValueError, RecursionError) as e:
        raise fail("the random state", e) from None

    # ---- apply: first what can still fail (undone on failure), then every plan ----------
    old_random = zrandom.get_state()
    loaded = []
    try:
        if random_state is not None:
            try:
                zrandom.set_state(random_state)
            except Exception as e:
                raise fail("zerograd's random generators", e) from None
        for part, obj, state in fallback:
            loaded.append((obj, copy.deepcopy(obj.state_dict())))  # before: it may half-load
            try:
                obj.load_state_dict(state)
            except Exception as e:
                raise fail(part, e) from None
    except BaseException:
        for obj, before in reversed(loaded):
            with contextlib.suppress(Exception):  # as far as its load_state_dict can
                obj.load_state_dict(before)
        zrandom.set_state(old_random)
        raise
    for apply, plan in plans:
        apply(plan)
    return {"epoch": header["epoch"], "iteration": header["iteration"], **values}


def _has_protocol(obj: Any) -> bool:
    """Whether ``obj`` loads in two steps: ``check_state_dict`` then ``apply_state_dict``."""
    return (callable(getattr(obj, "check_state_dict", None))
            and callable(getattr(obj, "apply_state_dict", None)))
