"""Splitting a dataset over the ranks: :func:`scatter_dataset`.

Every rank loads the dataset itself (the bundled MNIST digits, a file on a shared
disk); ``scatter_dataset`` agrees on one order of the samples (rank 0 draws it) and
keeps this rank's slice of it. Only the order travels, never the samples.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from zerograd.datasets import Dataset
from zerograd.distributed.communicator import Communicator, init

__all__ = ["DatasetShard", "scatter_dataset"]

_REMAINDERS = ("pad", "drop", "keep")


class DatasetShard:
    """The samples ``indices`` of ``dataset``, as a dataset of their own.

    What :func:`scatter_dataset` returns for a dataset that is not held as whole
    arrays (any object with ``__len__`` and an int ``__getitem__``).

    Example:
        >>> shard = DatasetShard([10, 11, 12, 13], [3, 0])
        >>> len(shard), shard[0], shard[1]
        (2, 13, 10)
    """

    def __init__(self, dataset: Any, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"DatasetShard[index]: expected an int index, got {type(index).__name__}"
            )
        if not -len(self) <= index < len(self):
            raise IndexError(f"DatasetShard: index {index} out of range for {len(self)} "
                             "samples")
        return self.dataset[int(self.indices[index])]

    def __repr__(self) -> str:
        return f"DatasetShard({len(self)} of {len(self.dataset)} samples)"


def scatter_dataset(dataset: Any, comm: Communicator | None = None, shuffle: bool = True,
                    seed: Any = None, remainder: str = "pad"):
    """This rank's share of ``dataset``: one slice of an order of its samples that every
    rank agrees on.

    Each rank passes the same dataset (it loads it itself). Rank 0 draws the order (a
    random permutation when ``shuffle``, from ``seed``; else the dataset's own order)
    and sends it to the others, so the shards never overlap, whatever each rank's
    NumPy.

    When the number of samples ``N`` does not divide by the number of ranks:

    - ``"pad"`` (default, as ChainerMN): every rank gets ``ceil(N / size)`` samples,
      the last shards completed with the first samples of the order again, so no
      sample is left out and every rank takes the same number of steps per epoch (a
      few samples count twice per epoch).
    - ``"drop"``: every rank gets ``N // size`` samples; the last ``N % size`` of the
      order are left out of this split (a shuffled split leaves out others each time).
    - ``"keep"``: shard sizes differ by at most one; for evaluation, where each rank
      runs over its shard and :meth:`Communicator.average` adds sums and counts. Do not
      train on it with a plain ``DataLoader`` loop: the ranks would take different
      numbers of steps, and the one with fewer would leave the others waiting.

    A world of one gets ``dataset`` itself, unchanged, so that a script runs as it did
    without ``mpiexec``.

    The shard of a :class:`~zerograd.datasets.Dataset` held as whole arrays (``data``
    and ``label``, the usual case) is a copy of it with those arrays sliced, so a
    ``DataLoader`` still takes whole-array batches from it; any other dataset gives a
    :class:`DatasetShard` that indexes into it.

    Args:
        dataset: a Dataset, or any object with ``__len__`` and an int ``__getitem__``.
        comm: the communicator (default: :func:`init`'s).
        shuffle: split a random permutation (default) rather than the stored order,
            which may be sorted (by class, by time).
        seed: seed of that permutation (an int, or None for fresh entropy on rank 0).
        remainder: ``"pad"``, ``"drop"`` or ``"keep"``, as above.

    Raises:
        ValueError: on an unknown ``remainder``, an empty dataset, too few samples for
            ``"drop"``, or datasets of different lengths on different ranks.

    Example:
        >>> from zerograd.datasets import Spiral
        >>> train = scatter_dataset(Spiral(), seed=0)   # a world of one: all 300 samples
        >>> len(train)
        300
    """
    comm = init() if comm is None else comm
    if remainder not in _REMAINDERS:
        raise ValueError(
            f"scatter_dataset: remainder must be one of {_REMAINDERS}, got {remainder!r}"
        )
    n = len(dataset)
    if comm.size == 1:
        if n == 0:
            raise ValueError("scatter_dataset: the dataset is empty")
        return dataset
    # Every rank must split the same number of samples.
    extremes = np.array([n, -n], dtype=np.int64)
    comm._allreduce_buffer(extremes, "max")
    if extremes[0] != -extremes[1]:
        raise ValueError(
            f"scatter_dataset: the ranks passed datasets of different lengths (from "
            f"{-extremes[1]} to {extremes[0]} samples; this rank {n}); every rank must "
            "load the same dataset"
        )
    if n == 0:
        raise ValueError("scatter_dataset: the dataset is empty")
    if remainder == "drop" and n < comm.size:
        raise ValueError(
            f"scatter_dataset: {n} samples cannot give each of {comm.size} ranks one "
            "with remainder='drop'; use remainder='pad'"
        )
    order = np.empty(n, dtype=np.int64)
    if comm.rank == 0:
        order[:] = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    comm._bcast_buffer(order, 0)
    return _subset(dataset, _shard(order, comm.rank, comm.size, remainder))


def _shard(order: np.ndarray, rank: int, size: int, remainder: str) -> np.ndarray:
    n = len(order)
    if remainder == "keep":
        return np.array_split(order, size)[rank]
    if remainder == "pad":
        per = -(-n // size)
        order = np.resize(order, per * size)  # repeats the order from its start
    else:
        per = n // size
    return order[rank * per:(rank + 1) * per]


def _subset(dataset: Any, indices: np.ndarray):
    whole_arrays = (
        isinstance(dataset, Dataset)
        and type(dataset).__getitem__ is Dataset.__getitem__
        and type(dataset).__len__ is Dataset.__len__
        and isinstance(dataset.data, np.ndarray)
        and (dataset.label is None or isinstance(dataset.label, np.ndarray))
    )
    if not whole_arrays:
        return DatasetShard(dataset, indices)
    shard = copy.copy(dataset)  # keeps its class, transforms and other attributes
    shard.data = dataset.data[indices]
    if dataset.label is not None:
        shard.label = dataset.label[indices]
    return shard
