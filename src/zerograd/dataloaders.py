"""Mini-batch iterators over a dataset (DeZero's ``dezero.dataloaders``).

``DataLoader`` yields shuffled ``(x, t)`` batches for one epoch, then resets itself
so that the next ``for`` loop runs the next epoch. ``SeqDataLoader`` yields batches
for truncated backpropagation through time: row ``i`` of successive batches walks
through its own contiguous stretch of the sequence.

When the dataset keeps whole arrays (a :class:`zerograd.datasets.Dataset` with ndarray
``data``/``label``) and its transforms can act on a whole batch (those of
:mod:`zerograd.transforms`, or none), a batch is one slice of those arrays instead of
a Python loop over samples.

Example:
    >>> from zerograd.datasets import Spiral
    >>> loader = DataLoader(Spiral(), batch_size=100, seed=0)
    >>> [x.shape for x, t in loader]
    [(100, 2), (100, 2), (100, 2)]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.datasets import Dataset
from zerograd.random import book_mode

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
        return np.stack([np.asarray(v) for v in values])
    except ValueError as e:
        shapes = sorted({np.shape(v) for v in values})
        raise ValueError(
            f"DataLoader: the samples' {what} in a batch have different shapes {shapes} "
            f"(dataset indices {list(index)[:8]}...); make every sample the same shape "
            "with a transform, or use batch_size=1"
        ) from e


class DataLoader:
    """Iterate over a dataset in mini-batches.

    Args:
        dataset: a :class:`~zerograd.datasets.Dataset`, or any object with
            ``__len__`` and an int ``__getitem__`` returning ``(x, t)``.
        batch_size: samples per batch; the last batch of an epoch may be smaller.
        shuffle: draw a new random order at the start of every epoch.
        gpu: return CuPy arrays (on the current GPU) instead of NumPy arrays.
        seed: seed (or ``numpy.random.Generator``) of the shuffling; None draws
            fresh entropy. NumPy's global random state is never used.

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
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(
                f"{type(self).__name__}: batch_size must be a positive int, got {batch_size!r}"
            )
        if gpu:
            _require_gpu(f"{type(self).__name__}(gpu=True)")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.gpu = gpu
        self.rng = np.random.default_rng(seed)
        self.data_size = len(dataset)
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
        """Where the loader stands: the position in the epoch, the epoch's order and the
        shuffling generator's state (for checkpoints: see :meth:`load_state_dict`).

        Example:
            >>> from zerograd.datasets import Spiral
            >>> a = DataLoader(Spiral(), batch_size=100, seed=0)
            >>> _ = next(a)
            >>> b = DataLoader(Spiral(), batch_size=100, seed=1)
            >>> b.load_state_dict(a.state_dict())
            >>> bool((next(a)[0] == next(b)[0]).all())
            True
        """
        return {
            "iteration": self.iteration,
            "index": self.index.copy(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (the same dataset and batch size).

        Raises:
            ValueError: when the state does not fit this loader; nothing changes then.
        """
        index = np.asarray(state["index"])
        iteration = int(state["iteration"])
        if index.shape != (self.data_size,) or not 0 <= iteration <= self.max_iter:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state is for {index.size} "
                f"samples at batch {iteration}; this loader has {self.data_size} samples "
                f"and {self.max_iter} batches per epoch (another dataset or batch size?)"
            )
        rng = np.random.Generator(type(self.rng.bit_generator)())
        rng.bit_generator.state = state["rng"]
        self.iteration, self.index, self.rng = iteration, index.copy(), rng

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
        samples = [self.dataset[int(i)] for i in index]
        x = _stack([s[0] for s in samples], "x", index)
        ts = [s[1] for s in samples]
        if all(v is None for v in ts):
            return x, None
        if any(v is None for v in ts):
            raise ValueError(
                "DataLoader: some samples in a batch have a label and some have None; "
                "a dataset must label all its samples or none"
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
        batch_size: the number of stretches walked in parallel.
        gpu: return CuPy arrays instead of NumPy arrays.

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
