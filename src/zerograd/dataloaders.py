"""Mini-batch iterators over a dataset (DeZero's ``dezero.dataloaders``).

``DataLoader`` yields shuffled ``(x, t)`` batches for one epoch, then resets itself
so that the next ``for`` loop runs the next epoch. ``SeqDataLoader`` yields batches
for truncated backpropagation through time: row ``i`` of successive batches walks
through its own contiguous stretch of the sequence.

What a dataset item is: a tuple ``(x, t)`` is a labelled sample, and anything else (an
array, a list, a number, or a tuple ``(x,)``) is one unlabelled sample, batched with
``t = None``. A list counts as data, not as a pair, so that ``[0.5, 1.0]`` is one sample
of two features. A dataset may also be a bare array: each row is an unlabelled sample.

When the dataset keeps whole arrays (a :class:`zerograd.datasets.Dataset` with ndarray
``data``/``label``, or an array) and its transforms can act on a whole batch (those of
:mod:`zerograd.transforms`, or none), a batch is one slice of those arrays instead of
a Python loop over samples.

A loader's position can be saved and restored (``state_dict()`` /
``load_state_dict()``), so that a resumed run takes the same batches; the generators of
its dataset's random transforms (``RandomHorizontalFlip``) are saved with it, so they
draw the same too.

Example:
    >>> from zerograd.datasets import Spiral
    >>> loader = DataLoader(Spiral(), batch_size=100, seed=0)
    >>> [x.shape for x, t in loader]
    [(100, 2), (100, 2), (100, 2)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from zerograd import _checks, cuda
from zerograd.datasets import Dataset
from zerograd.random import book_mode
from zerograd.transforms import is_stateful

__all__ = ["DataLoader", "SeqDataLoader"]


def _require_gpu(where: str) -> None:
    if not cuda.gpu_enable:
        raise RuntimeError(
            f"{where}: no usable CUDA device (CuPy missing, no GPU, or ZEROGRAD_CPU_ONLY "
            "set); keep gpu=False, or install CuPy on a machine with an NVIDIA GPU"
        )


def _batchable(transform: Any) -> bool:
    return transform is None or bool(getattr(transform, "batchable", False))


def _stack(values: list, what: str, index) -> np.ndarray:
    try:
        batch = np.stack([np.asarray(v) for v in values])
    except ValueError as e:
        shapes = sorted({np.shape(v) for v in values})
        raise ValueError(
            f"DataLoader: the samples' {what} in a batch have different shapes {shapes} "
            f"(dataset indices {list(index)[:8]}...); make every sample the same shape "
            "with a transform, or use batch_size=1"
        ) from e
    if batch.dtype.kind not in "biufc":
        raise TypeError(
            f"DataLoader: the samples' {what} are not numbers ({type(values[0]).__name__} "
            f"items, dtype {batch.dtype}; dataset indices {list(index)[:8]}...); a "
            "transform must turn each sample into an array of numbers"
        )
    return batch


def _split(item: Any, i: int) -> tuple:
    """``(x, t)`` of one dataset item: a tuple ``(x, t)`` is labelled; ``(x,)`` and
    anything that is not a tuple is one unlabelled sample (``t`` None)."""
    if not isinstance(item, tuple):
        return item, None
    if len(item) == 2:
        return item
    if len(item) == 1:
        return item[0], None
    raise ValueError(
        f"DataLoader: dataset[{i}] is a tuple of {len(item)} items; expected (x, t), or "
        "(x,) or a bare sample (an array) for unlabelled data"
    )


def _random_transforms(dataset: Any) -> dict:
    """The transforms of ``dataset`` that keep a state (random ones), by attribute name;
    a dataset wrapped in another (a shard's ``dataset``) is searched too."""
    found = {}
    prefix, seen = "", set()
    while dataset is not None and not isinstance(dataset, np.ndarray) \
            and id(dataset) not in seen:
        seen.add(id(dataset))
        for name in ("transform", "target_transform"):
            transform = getattr(dataset, name, None)
            if is_stateful(transform):
                found[prefix + name] = transform
        dataset, prefix = getattr(dataset, "dataset", None), prefix + "dataset."
    return found


def _check_dataset(owner: str, dataset: Any) -> int:
    """The dataset's length, or a clear error when it is not a usable dataset."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(
            f"{owner}: dataset must support len() and integer indexing (a zerograd "
            f"Dataset, a list of (x, t) tuples, or an array), got {type(dataset).__name__}"
        )
    size = len(dataset)
    if size == 0:
        raise ValueError(
            f"{owner}: the dataset ({type(dataset).__name__}) is empty, so an epoch would "
            "have no batches; check how it was built (a split, a limit, a filter)"
        )
    return size


class DataLoader:
    """Iterate over a dataset in mini-batches.

    Args:
        dataset: a non-empty :class:`~zerograd.datasets.Dataset`, an array (one
            unlabelled sample per row), or any object with ``__len__`` and an int
            ``__getitem__`` returning ``(x, t)`` tuples or bare unlabelled samples.
        batch_size: samples per batch (a positive int); the last batch of an epoch may
            be smaller.
        shuffle: True or False: draw a new random order at the start of every epoch.
        gpu: True or False: return CuPy arrays (on the current GPU) instead of NumPy
            arrays.
        seed: seed of the shuffling: None (fresh entropy), a non-negative int, or a
            ``numpy.random.Generator``. NumPy's global random state is never used.

    Raises:
        TypeError: for an argument of the wrong kind (a batch size that is not an int,
            a ``shuffle`` that is not a bool), naming the argument and the value.
        ValueError: for one of the right kind out of range (a batch size of 0, a
            negative seed) or an empty dataset.
        RuntimeError: for ``gpu=True`` without a usable CUDA device.

    Iterating yields ``(x, t)`` arrays with the batch along the first axis (``t`` is
    None when the dataset has no labels). After the last batch the loader resets, so
    ``for x, t in loader`` runs one epoch each time; breaking out of a loop leaves the
    rest of the epoch for the next one (call ``reset()`` to start over).

    Example:
        >>> from zerograd.datasets import Spiral
        >>> loader = DataLoader(Spiral(), batch_size=128, shuffle=False)
        >>> len(loader), [len(t) for x, t in loader]
        (3, [128, 128, 44])
    """

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool = True,
                 gpu: bool = False, seed: Any = None):
        owner = type(self).__name__
        data_size = _check_dataset(owner, dataset)
        batch_size = _checks.size(owner, "batch_size", batch_size,
                                  hint="for example batch_size=32")
        shuffle = _checks.flag(owner, "shuffle", shuffle)
        gpu = _checks.flag(owner, "gpu", gpu)
        if gpu:
            _require_gpu(f"{owner}(gpu=True)")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.gpu = gpu
        self.rng = _checks.generator(owner, seed)
        self.data_size = data_size
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.reset()

    def reset(self) -> None:
        """Start a new epoch (a new random order when shuffling)."""
        self.iteration = 0
        if self.shuffle and book_mode():  # the original's draw (docs/book.md)
            self.index = np.random.permutation(self.data_size)
        elif self.shuffle:
            self.index = self.rng.permutation(self.data_size)
        else:
            self.index = np.arange(self.data_size)

    def state_dict(self) -> dict:
        """Where the loader stands, for checkpoints (see :meth:`load_state_dict`).

        Returns:
            A new dict: ``'iteration'``, the number of batches already taken in this
            epoch (an int); ``'index'``, the epoch's order of dataset indices (an int64
            array); ``'rng'``, the state of the shuffling generator (the dict of
            ``numpy.random.Generator.bit_generator.state``, whose ints can exceed 64
            bits: store it as text, e.g. JSON, not as array entries); and, when the
            dataset's transforms draw random numbers (``RandomHorizontalFlip``), their
            states under ``'transforms'`` (by attribute: ``"transform"``,
            ``"target_transform"``, ``"dataset.transform"`` for a dataset wrapped in
            another, as a shard). The dataset and the batch size are not part of it.

        Example:
            >>> from zerograd.datasets import Spiral
            >>> a = DataLoader(Spiral(), batch_size=100, seed=0)
            >>> _ = next(a)
            >>> b = DataLoader(Spiral(), batch_size=100, seed=1)
            >>> b.load_state_dict(a.state_dict())
            >>> bool((next(a)[0] == next(b)[0]).all())
            True
        """
        state = {
            "iteration": self.iteration,
            "index": self.index.copy(),
            "rng": self.rng.bit_generator.state,
        }
        transforms = _random_transforms(self.dataset)
        if transforms:
            state["transforms"] = {name: t.state_dict() for name, t in transforms.items()}
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` returned, on a loader over the same dataset
        (with the same kinds of transforms) and the same batch size: the rest of the
        epoch, every later epoch's shuffle, and the draws of the dataset's random
        transforms are then the ones the saved loader would have given.

        The whole state is checked before anything changes. ``index`` may come back
        as a list (e.g. from JSON) and ``iteration`` as a 0-d integer array. The
        generator's state is copied into this loader's generator, which keeps its
        kind (and stays shared, if a ``numpy.random.Generator`` was given as seed).

        Raises:
            TypeError: when ``state`` is not a mapping.
            ValueError: when the state does not fit this loader (other keys, another
                dataset size or batch size, an order that is not a permutation, a
                generator state of another kind, the states of other transforms);
                nothing changes then.
        """
        self.apply_state_dict(self.check_state_dict(state))

    def check_state_dict(self, state: Any) -> tuple:
        """The first half of :meth:`load_state_dict`: check ``state`` against this
        loader and its dataset's transforms, changing nothing; return the plan for
        :meth:`apply_state_dict`."""
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: expected the dict of state_dict(), got "
                            f"{type(state).__name__}")
        transforms = _random_transforms(self.dataset)
        keys = {"iteration", "index", "rng"}
        if set(state) - {"transforms"} != keys:
            raise ValueError(
                f"{where}: expected the keys {sorted(keys)}, got {sorted(map(str, state))} "
                "(and 'transforms' for a dataset with random transforms); pass what "
                "DataLoader.state_dict() returned"
            )
        iteration = np.asarray(state["iteration"])
        if iteration.ndim != 0 or iteration.dtype.kind not in "iu":
            raise ValueError(f"{where}: 'iteration' must be an int, got "
                             f"{state['iteration']!r}")
        iteration = int(iteration)
        try:
            index = np.asarray(state["index"])
        except (TypeError, ValueError) as e:  # a ragged list
            raise ValueError(f"{where}: 'index' must be a list of dataset indices ({e})") \
                from e
        if index.shape != (self.data_size,) or not 0 <= iteration <= self.max_iter:
            raise ValueError(
                f"{where}: the state is for {index.size} samples at batch {iteration}; this "
                f"loader has {self.data_size} samples and {self.max_iter} batches per "
                "epoch (another dataset or batch size?)"
            )
        expected = np.arange(self.data_size)
        if index.dtype.kind not in "iu" or not np.array_equal(np.sort(index), expected):
            raise ValueError(f"{where}: 'index' is not an order of the {self.data_size} "
                             "samples (each index once); the state is damaged")
        if not self.shuffle and not np.array_equal(index, expected):
            raise ValueError(f"{where}: 'index' is shuffled but this loader does not shuffle "
                             "(the state was saved from a loader with shuffle=True?)")
        # Try the generator's state on a scratch generator of the same kind first.
        kind = type(self.rng.bit_generator)
        try:
            kind().state = state["rng"]
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"{where}: 'rng' is not the state of a {kind.__name__} "
                             f"generator, as this loader's is ({e})") from e
        saved = state.get("transforms", {})
        if not isinstance(saved, Mapping) or set(saved) != set(transforms):
            got = sorted(saved) if isinstance(saved, Mapping) else type(saved).__name__
            mine = {name: type(t).__name__ for name, t in transforms.items()}
            raise ValueError(
                f"{where}: the state holds the states of the dataset's random transforms "
                f"{got}, this loader's dataset has {mine or 'none'}; make the dataset "
                "with the same transforms as the saved run")
        plans = []
        for name, transform in transforms.items():
            try:
                plans.append((transform, transform.check_state_dict(saved[name])))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{where}: the dataset's {name}: {e}") from None
        return iteration, index.astype(np.int64), state["rng"], plans

    def apply_state_dict(self, plan: tuple) -> None:
        """The second half of :meth:`load_state_dict` (it cannot fail)."""
        iteration, index, rng_state, transforms = plan
        self.rng.bit_generator.state = rng_state
        self.iteration, self.index = iteration, index.copy()
        for transform, part in transforms:
            transform.apply_state_dict(part)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.max_iter

    def __iter__(self):
        return self

    def __next__(self):
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        start = self.iteration * self.batch_size
        x, t = self._batch(self.index[start:start + self.batch_size])
        self.iteration += 1
        return x, t

    def next(self):
        """The next batch (DeZero's spelling of ``next(loader)``)."""
        return self.__next__()

    def to_cpu(self) -> None:
        """Return NumPy batches from now on."""
        self.gpu = False

    def to_gpu(self) -> None:
        """Return CuPy batches from now on.

        Raises:
            RuntimeError: when no CUDA device is usable.
        """
        _require_gpu(f"{type(self).__name__}.to_gpu")
        self.gpu = True

    def _batch(self, index: np.ndarray):
        x, t = self._slice_arrays(index)
        if x is None:
            x, t = self._gather_samples(index)
        if self.gpu:
            x = cuda.as_cupy(x)
            t = None if t is None else cuda.as_cupy(t)
        return x, t

    def _slice_arrays(self, index: np.ndarray):
        """The batch as slices of the dataset's whole arrays, or ``(None, None)`` when
        the dataset needs its per-sample ``__getitem__``."""
        ds = self.dataset
        if isinstance(ds, np.ndarray):
            return ds[index], None  # each row is one unlabelled sample
        if not isinstance(ds, Dataset) or type(ds).__getitem__ is not Dataset.__getitem__:
            return None, None
        data, label = ds.data, ds.label
        if not isinstance(data, np.ndarray):
            return None, None
        if label is not None and not isinstance(label, np.ndarray):
            return None, None
        if not (_batchable(ds.transform) and _batchable(ds.target_transform)):
            return None, None
        x = data[index]
        if ds.transform is not None:
            x = ds.transform.apply_batch(x)
        t = None if label is None else label[index]
        if t is not None and ds.target_transform is not None:
            t = ds.target_transform.apply_batch(t)
        return x, t

    def _gather_samples(self, index: np.ndarray):
        samples = [_split(self.dataset[int(i)], int(i)) for i in index]
        x = _stack([s[0] for s in samples], "x", index)
        ts = [s[1] for s in samples]
        if all(v is None for v in ts):
            return x, None
        if any(v is None for v in ts):
            raise ValueError(
                "DataLoader: some samples in a batch have a label and some have none "
                f"(dataset indices {list(index)[:8]}...); a dataset must label all its "
                "samples, as (x, t) tuples, or none"
            )
        return x, _stack(ts, "t", index)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_size={self.batch_size}, "
            f"{self.data_size} samples, {self.max_iter} batches per epoch)"
        )


class SeqDataLoader(DataLoader):
    """Batches for truncated backpropagation through time over one long sequence.

    The sequence of ``N`` samples is cut into ``batch_size`` contiguous stretches of
    ``jump = N // batch_size`` steps; batch ``k`` takes step ``k`` of every stretch,
    rows in stretch order: indices ``[k, jump + k, 2 * jump + k, ...]``. An epoch has
    ``jump`` batches, so each sample is visited once and no stretch runs into the next
    (DeZero's ran one batch further, revisiting the first step of each next stretch).

    Args:
        dataset: a dataset whose order is the time order.
        batch_size: the number of stretches walked in parallel (at most the length of
            the sequence).
        gpu: True or False: return CuPy arrays instead of NumPy arrays.

    Its ``state_dict()``/``load_state_dict()`` are DataLoader's: they save and restore
    the position in the epoch (the order is always the time order).

    Example:
        >>> from zerograd.datasets import SinCurve
        >>> loader = SeqDataLoader(SinCurve(), batch_size=3)
        >>> len(loader), loader.batch_index(1)
        (333, array([  1, 334, 667]))
    """

    def __init__(self, dataset: Any, batch_size: int, gpu: bool = False):
        super().__init__(dataset, batch_size, shuffle=False, gpu=gpu)
        self.jump = self.data_size // self.batch_size
        if self.jump == 0:
            raise ValueError(
                f"SeqDataLoader: batch_size={self.batch_size} is larger than the sequence "
                f"({self.data_size} samples); use a batch_size of at most {self.data_size}"
            )
        if not book_mode():  # book mode keeps the original's ceil(N / B) batches
            self.max_iter = self.jump

    def batch_index(self, iteration: int) -> np.ndarray:
        """The dataset indices of the batch number ``iteration`` of an epoch."""
        # Only the original's extra batches (book mode) wrap around the sequence.
        return (np.arange(self.batch_size) * self.jump + iteration) % self.data_size

    def __next__(self):
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        x, t = self._batch(self.batch_index(self.iteration))
        self.iteration += 1
        return x, t
