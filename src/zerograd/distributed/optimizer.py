"""Keeping the model copies of every rank identical: :func:`broadcast_params` once, then
:class:`DistributedOptimizer`, which averages the gradients before each update (and,
after a resume that rank 0 alone loaded, sends its optimizer state with
:meth:`DistributedOptimizer.broadcast_state`).

Arrays travel packed: every gradient (and every buffer) of one dtype on one device is
copied into one contiguous array, which goes through a single ``Allreduce`` (or
``Bcast``) of MPI's buffer interface (no pickling, not one message per parameter).
Before that, a 16-byte ``Allreduce`` checks that every rank packs the same layout, so
that ranks holding different parameters get an error instead of a hang or garbage.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.core import Variable
from zerograd.distributed.communicator import Communicator, init
from zerograd.layers import Layer

__all__ = ["DistributedOptimizer", "broadcast_params"]


# =========================================================================================
# What is packed where
# =========================================================================================
class _Entry:
    """One array to send: a parameter (its data or its gradient) or a buffer."""

    __slots__ = ("key", "array", "param")

    def __init__(self, key: tuple, array, param=None):
        self.key = key  # ("param", index, shape, dtype, device) or ("buffer", name, ...)
        self.array = array
        self.param = param


def _entries(target) -> list[_Entry]:
    """Every parameter that has data and every buffer that has an array, in the order
    of ``target.params()`` and ``target.state_dict()`` (the same on every rank)."""
    entries = []
    data_ids = set()
    for i, param in enumerate(target.params()):
        if param.data is not None:
            data_ids.add(id(param.data))
            entries.append(_Entry(("param", i, *_describe(param.data)), param.data, param))
    if isinstance(target, Layer):
        for name, array in target.state_dict().items():
            if id(array) not in data_ids:  # a buffer, not a parameter's data
                entries.append(_Entry(("buffer", name, *_describe(array)), array))
    return entries


def _describe(array) -> tuple:
    return tuple(array.shape), np.dtype(array.dtype).str, cuda.get_array_module(array).__name__


def _wire_dtype(dtype) -> np.dtype:
    """The dtype an array travels in: its own, except that floats narrower than 32 bits
    are summed in float32 (a sum of float16 gradients over many ranks overflows), and
    their gradients come back in float32."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


class _Group:
    """The entries that travel in one contiguous buffer (one device, one dtype)."""

    def __init__(self, xp, dtype):
        self.xp, self.dtype = xp, dtype
        self.entries: list[_Entry] = []
        self.offsets: list[int] = []
        self.size = 0

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self.offsets.append(self.size)
        self.size += entry.array.size

    def slices(self):
        for entry, offset in zip(self.entries, self.offsets):
            yield entry, slice(offset, offset + entry.array.size)


def _groups(entries: list[_Entry]) -> list[_Group]:
    groups: dict[tuple, _Group] = {}
    for entry in entries:
        xp = cuda.get_array_module(entry.array)
        dtype = _wire_dtype(entry.array.dtype)
        key = (xp.__name__, dtype.str)
        if key not in groups:
            groups[key] = _Group(xp, dtype)
        groups[key].add(entry)
    return [groups[key] for key in sorted(groups)]


def _signature(keys: list[tuple]) -> int:
    """A 63-bit digest of the layout, the same in every process (unlike hash())."""
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _agree(comm: Communicator, keys: list[tuple], what: str) -> None:
    """Check that every rank packs the layout ``keys``; raise on every rank if not.

    One Allreduce of two int64 with MAX over ``(s, -s)`` gives the largest and the
    smallest signature at once: they are equal exactly when every rank has the same.
    """
    signature = _signature(keys)
    both = np.array([signature, -signature], dtype=np.int64)
    comm._allreduce_buffer(both, "max")
    if both[0] == -both[1]:
        return
    # Every rank is here together: gathering the descriptions is safe.
    layouts = comm.mpi_comm.allgather(keys)
    rank = next(r for r, keys_r in enumerate(layouts) if keys_r != layouts[0])
    mine, first = layouts[rank], layouts[0]
    diff = next((f"rank 0 has {a} where rank {rank} has {b}"
                 for a, b in zip(first, mine) if a != b),
                f"rank 0 has {len(first)} arrays, rank {rank} has {len(mine)}")
    raise RuntimeError(
        f"{what}: the ranks hold different parameters or buffers ({diff}); every rank "
        "must build the same model, and a layer that takes its size from its first input "
        "must have been called on every rank"
    )


# =========================================================================================
# Broadcast
# =========================================================================================
def broadcast_params(target, comm: Communicator | None = None, root: int = 0) -> None:
    """Overwrite the parameters and buffers (batch-norm statistics) of ``target`` on
    every rank with those of rank ``root``, in place.

    Every rank must call it. Do it once the model exists, before training, so that
    every rank starts from the same weights whatever its seed (a
    :class:`DistributedOptimizer` does it for you when it gets its target). A layer that
    creates its weights on its first call has none yet: those are broadcast when they
    first appear at an update (or run one forward pass on every rank first).

    Args:
        target: a Layer/Model, or anything with ``params()`` (a list of Parameters).
        comm: the communicator (default: :func:`init`'s).
        root: the rank whose values everyone takes.

    Raises:
        RuntimeError: when the ranks' models differ in their parameters.

    Example:
        >>> import zerograd.layers as L
        >>> broadcast_params(L.Linear(3, in_size=2))   # a world of one: nothing moves
    """
    comm = init() if comm is None else comm
    if not hasattr(target, "params"):
        raise TypeError(
            f"broadcast_params: expected a Layer/Model (with params()), got "
            f"{type(target).__name__}"
        )
    if comm.size > 1:
        entries = _entries(target)
        _agree(comm, [e.key for e in entries], "broadcast_params")
        _broadcast(entries, comm, root)


def _broadcast(entries: list[_Entry], comm: Communicator, root: int) -> None:
    """Send the arrays of ``entries`` (a layout every rank agreed on) from ``root``."""
    for group in _groups(entries):
        buf = group.xp.empty(group.size, dtype=group.dtype)
        if comm.rank == root:
            for entry, where in group.slices():
                buf[where] = entry.array.ravel()
        comm._bcast_buffer(buf, root)
        if comm.rank != root:
            for entry, where in group.slices():
                entry.array[...] = buf[where].reshape(entry.array.shape)


# =========================================================================================
# DistributedOptimizer
# =========================================================================================
class DistributedOptimizer:
    """Wrap a zerograd optimizer for data-parallel training: each :meth:`update`
    averages every gradient over the ranks, then runs the wrapped optimizer's update
    (its hooks and its learning-rate schedule included) on every rank.

    Every rank computes its gradients on its own part of the global batch; after the
    average each holds the gradient of the whole batch, so every rank takes the same
    step and the model copies stay identical, as in one process training on the whole
    batch.

    - **Start**: when the wrapped optimizer has (or gets, through :meth:`setup`) its
      target, the parameters and buffers of rank 0 are broadcast to every rank.
      Parameters created later (layers sized by their first input) are broadcast at the
      first update that sees them; the gradients of that step were computed at each
      rank's own initial values, so seed every rank alike (``comm.seed(n)``) or run a
      forward pass before wrapping when the first step must be exact.
    - **Missing gradients**: a parameter without a gradient on some ranks (a branch not
      taken there) counts as a zero gradient on those ranks and is averaged over all of
      them; it gets a gradient wherever any rank had one, and stays without one only
      when no rank had one. A presence count travels in the same Allreduce, so this
      never hangs or desynchronises the ranks.
    - **Buffers** (batch-norm running mean and variance): averaged over the ranks at
      every update, in the same Allreduce as the gradients, so every rank evaluates and
      saves the same statistics. The running mean is then exactly the running mean of
      the global batch means; the running variance is the average of the ranks' batch
      variances (it leaves out the spread of the ranks' means, a small difference).
      Statistics created by the first forward pass are averaged too, not replaced by
      rank 0's; with ``weight``, buffers are weighted like gradients. Buffers that are
      not floats (counters) are left alone after the start.
    - **Weights of ranks**: by default every rank counts the same, which is exact when
      the ranks' batches have the same size (what :func:`scatter_dataset` gives). When
      they differ, pass ``update(weight=len(batch))``: the average is then weighted by
      batch size, i.e. the gradient of the mean loss over the global batch.

    Everything else (``lr``/``alpha``, ``hooks``, ``add_hook``, ``state_dict``,
    ``save``/``load``, ``t``, ...) reads and writes the wrapped optimizer, so schedules
    and checkpoints work on the wrapper as on the optimizer (a checkpoint saved
    through the wrapper loads into the plain optimizer, and the other way round). Save
    from rank 0 only; every rank holds the same state. To resume, let every rank load
    the checkpoint, or rank 0 alone and then call :meth:`broadcast_state`.

    With float16 parameters and a :class:`~zerograd.amp.LossScaler`, give the scaler
    this wrapper (``scaler.step(optimizer)``): it averages the scaled gradients over the
    ranks before checking them for overflow, so that every rank skips the same steps.

    Args:
        optimizer: a zerograd optimizer (SGD, Adam, ...), set up or not.
        comm: the communicator (default: :func:`init`'s).

    Example:
        >>> import numpy as np
        >>> from zerograd import optimizers, Parameter
        >>> w = Parameter(np.array([1.0, 2.0]))
        >>> optimizer = DistributedOptimizer(optimizers.SGD(lr=0.5).setup([w]))
        >>> (w * w).sum().backward()
        >>> optimizer.update()   # a world of one: the plain update
        >>> w.data
        array([0., 0.])
    """

    _own = ("optimizer", "comm", "_synced")

    def __init__(self, optimizer, comm: Communicator | None = None):
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already distributed")
        if not (hasattr(optimizer, "update") and hasattr(optimizer, "setup")):
            raise TypeError(
                f"DistributedOptimizer: expected a zerograd optimizer (with setup() and "
                f"update()), got {type(optimizer).__name__}"
            )
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "comm", init() if comm is None else comm)
        object.__setattr__(self, "_synced", set())  # keys of the arrays broadcast so far
        if getattr(optimizer, "target", None) is not None:
            self._broadcast_new()

    def setup(self, target) -> DistributedOptimizer:
        """Set the wrapped optimizer's target and broadcast rank 0's parameters and
        buffers; returns the wrapper."""
        self.optimizer.setup(target)
        self._synced.clear()
        self._broadcast_new()
        return self

    def update(self, weight: float | None = None) -> None:
        """Average the gradients (and float buffers) over the ranks, then update.

        Args:
            weight: this rank's weight in the average, e.g. its batch size when the
                ranks' batches differ (None: every rank counts the same).
        """
        self.allreduce_grads(weight)
        self.optimizer.update()

    def allreduce_grads(self, weight: float | None = None) -> None:
        """The first half of :meth:`update`: replace every gradient (and float buffer)
        by its average over the ranks, without updating. For loops that accumulate
        gradients over several batches and update once."""
        try:
            w = 1.0 if weight is None else float(weight)
        except (TypeError, ValueError):
            w = math.nan
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(
                f"DistributedOptimizer.update: weight must be a finite number >= 0, got "
                f"{weight!r}"
            )
        if self.comm.size == 1:
            return
        entries = _entries(self._target())
        _agree(self.comm, [e.key for e in entries], "DistributedOptimizer.update")
        new = [e for e in entries if e.key not in self._synced]
        if new:
            # Parameters created since the last update start from rank 0's values. A
            # new float buffer (batch-norm statistics made on the first call) already
            # holds this step's statistics: it is averaged below, not overwritten.
            sent = [e for e in new if e.param is not None or e.array.dtype.kind != "f"]
            if sent:
                _broadcast(sent, self.comm, 0)
            self._synced.update(e.key for e in new)
        floats = [e for e in entries if e.array.dtype.kind == "f"]
        groups = _groups(floats)
        if not groups:
            return
        control = groups[-1]  # its buffer also carries the total weight
        bufs = [self._pack(group, w, group is control) for group in groups]
        for buf in bufs:
            self.comm._allreduce_buffer(buf, "sum")
        total = float(bufs[-1][-1])
        if total <= 0:
            raise ValueError(
                "DistributedOptimizer.update: the ranks' weights add up to 0; give at "
                "least one rank a positive weight"
            )
        for group, buf in zip(groups, bufs):
            self._unpack(group, buf, total)

    def broadcast_state(self, root: int = 0) -> None:
        """Give every rank rank ``root``'s parameters, buffers and optimizer state.

        What :func:`broadcast_params` sends, and the wrapped optimizer's whole state:
        its update count, hyperparameters, per-parameter state (momentum, Adam's
        moments and step counts) and the float32 master weights of float16
        parameters. Every rank must call it. Use it after rank ``root`` alone restored
        a run (``load_checkpoint`` on rank 0 only): broadcasting the parameters alone
        would leave the ranks' optimizer states different, and their models would
        drift apart from the first update. (Restoring the checkpoint on every rank
        needs no broadcast.)

        Raises:
            RuntimeError: when the ranks' models differ.
            ValueError: on every rank, when rank ``root``'s state does not fit some
                rank's optimizer; no rank's optimizer has changed then.

        Example:
            >>> import numpy as np
            >>> from zerograd import optimizers, Parameter
            >>> w = Parameter(np.array([1.0, 2.0]))
            >>> DistributedOptimizer(optimizers.Adam().setup([w])).broadcast_state()
        """
        if self.comm.size == 1:
            return
        target = self._target()
        broadcast_params(target, self.comm, root)
        self._synced.update(e.key for e in _entries(target))
        mine = self.optimizer.state_dict() if self.comm.rank == root else None
        # The names, shapes and dtypes go first (a small object), then the arrays,
        # packed as the parameters are.
        layout = self.comm.bcast(
            None if mine is None else [(k, v.shape, v.dtype.str) for k, v in mine.items()],
            root)
        state = mine if mine is not None else {
            key: np.empty(shape, dtype=dtype) for key, shape, dtype in layout}
        _broadcast([_Entry(("state", key), state[key]) for key, _, _ in layout],
                   self.comm, root)
        plan, error = None, None
        if self.comm.rank != root:
            try:
                plan = self.optimizer.check_state_dict(state)
            except (TypeError, ValueError) as e:
                error = f"on rank {self.comm.rank}: {e}"
        errors = [e for e in self.comm.mpi_comm.allgather(error) if e is not None]
        if errors:  # every rank raises, none has changed
            raise ValueError(f"DistributedOptimizer.broadcast_state: {errors[0]}")
        if plan is not None:
            self.optimizer.apply_state_dict(plan)

    # ---- internals -------------------------------------------------------------------------
    def _target(self):
        target = getattr(self.optimizer, "target", None)
        if target is None:
            raise RuntimeError(
                "DistributedOptimizer: no target to optimize; call optimizer.setup(model) "
                "first"
            )
        return target

    def _broadcast_new(self) -> None:
        """Broadcast, from rank 0, every array not broadcast before."""
        if self.comm.size == 1:
            return
        entries = _entries(self._target())
        _agree(self.comm, [e.key for e in entries], "DistributedOptimizer")
        # The ranks agree on the layout and on what was sent before, so on `new` too.
        new = [e for e in entries if e.key not in self._synced]
        if new:
            _broadcast(new, self.comm, 0)
        self._synced.update(e.key for e in entries)

    @staticmethod
    def _pack(group: _Group, w: float, control: bool):
        """One buffer: w * each gradient (zeros where there is none) and w * each
        buffer, then one presence flag per parameter, then (control group) w."""
        params = sum(e.param is not None for e in group.entries)
        extra = params + (1 if control else 0)
        buf = group.xp.empty(group.size + extra, dtype=group.dtype)
        flags = np.zeros(extra, dtype=group.dtype)
        k = 0
        for entry, where in group.slices():
            if entry.param is None:
                buf[where] = entry.array.ravel()
                continue
            grad = entry.param.grad
            if grad is None:
                buf[where] = 0
            else:
                buf[where] = grad.data.ravel()
                flags[k] = 1
            k += 1
        if w != 1.0:
            buf[:group.size] *= w
        if control:
            flags[-1] = w
        buf[group.size:] = flags if group.xp is np else group.xp.asarray(flags)
        return buf

    @staticmethod
    def _unpack(group: _Group, buf, total: float) -> None:
        """Divide the sums by the total weight and hand them back. The gradients become
        views of this step's buffer (a new one each step, so no earlier gradient
        changes), in the dtype they were summed in: the gradients of float16
        parameters stay float32, the precision their master weights and a loss
        scaler's unscaling need (a 1e-8 gradient is 0 in float16). Buffers are written
        in place (layers hold them), in their own dtype."""
        data = buf[:group.size]
        data /= total
        counts = cuda.as_numpy(buf[group.size:])
        k = 0
        for entry, where in group.slices():
            value = data[where].reshape(entry.array.shape)
            if entry.param is None:
                entry.array[...] = value  # (cast into the buffer's dtype)
                continue
            if counts[k] > 0:
                entry.param.grad = Variable(value)
            k += 1

    # ---- everything else is the wrapped optimizer's ----------------------------------------
    @property
    def __wrapped__(self):
        """The wrapped optimizer: what checkpoints record and schedules check rates
        against (a DistributedOptimizer and its optimizer are interchangeable there)."""
        return self.optimizer

    def __getattr__(self, name: str) -> Any:
        if name in DistributedOptimizer._own:  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in DistributedOptimizer._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({type(self.optimizer).__name__}, {self.comm!r})"
