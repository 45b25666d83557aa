"""Joining an MPI job: :func:`init` and the :class:`Communicator` it returns.

``init()`` is the first call of a distributed script. Under ``mpiexec`` it starts MPI
(through mpi4py, imported here and nowhere else), finds which ranks share this machine,
gives each rank its share of the machine's cores for BLAS, and installs an exception
hook that ends the whole job when one rank fails. Run without a launcher it returns a
world of one and imports nothing: the same script runs unchanged on a laptop, with or
without mpi4py installed.
"""

from __future__ import annotations

import ctypes
import os
import sys
import traceback
from typing import Any

import numpy as np

from zerograd import cuda, threads

__all__ = ["Communicator", "init", "launched_by_mpi"]

# Variables that MPI launchers set in each process they start: MPICH's hydra and Intel
# MPI (PMI_*), PMIx-based launchers and Slurm's srun with PMIx (PMIX_RANK), Open MPI's
# mpirun (OMPI_*), MVAPICH (MV2_*).
LAUNCHER_VARS = (
    "PMI_RANK",
    "PMI_SIZE",
    "PMIX_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "MV2_COMM_WORLD_SIZE",
)

_OPS = ("sum", "max", "min")

_world: Communicator | None = None


def launched_by_mpi(environ=None) -> str | None:
    """The environment variable that shows this process was started by an MPI launcher
    (``mpiexec``, ``mpirun``, ``srun``), or None.

    Args:
        environ: the mapping to read (``os.environ`` by default).

    Example:
        >>> launched_by_mpi({"PMI_RANK": "0", "PMI_SIZE": "2"})
        'PMI_RANK'
        >>> launched_by_mpi({"HOME": "/root"}) is None
        True
    """
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_VARS:
        if name in environ:
            return name
    return None


class Communicator:
    """The ranks of a job, and the collective operations a training loop needs.

    Made by :func:`init`. In a world of one (no launcher) every operation returns its
    input's value, without MPI.

    Attributes:
        rank: this process's number, 0 to ``size - 1``; rank 0 prints and saves.
        size: the number of ranks.
        local_rank: this process's number among the ranks on the same machine (pick a
            GPU with it: see :meth:`select_gpu`).
        local_size: the number of ranks on this machine.
        mpi_comm: the underlying ``mpi4py.MPI.Comm`` (``COMM_WORLD``), or None in a
            world of one without MPI.
        blas_threads: the BLAS thread count :func:`init` set for this rank, or None
            when it left the count alone.

    Example:
        >>> comm = Communicator()  # a world of one
        >>> comm.rank, comm.size, comm.local_rank, comm.is_root
        (0, 1, 0, True)
        >>> comm.average((6.0, 3.0), count=4)  # per-sample means over every rank
        (1.5, 0.75)
    """

    def __init__(self, mpi_comm: Any = None):
        self.mpi_comm = mpi_comm
        self.blas_threads: int | None = None
        self._cuda_aware: bool | None = None
        if mpi_comm is None:
            self.rank, self.size = 0, 1
            self.local_rank, self.local_size = 0, 1
            self._local_comm = None
            return
        from mpi4py import MPI

        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        # The ranks that share this machine's memory (hence its cores and GPUs).
        self._local_comm = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = self._local_comm.Get_rank()
        self.local_size = self._local_comm.Get_size()

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the one that prints and saves."""
        return self.rank == 0

    def __repr__(self) -> str:
        where = "MPI" if self.mpi_comm is not None else "no MPI"
        return (f"Communicator(rank={self.rank}, size={self.size}, "
                f"local_rank={self.local_rank}, local_size={self.local_size}, {where})")

    # ---- collectives -----------------------------------------------------------------------
    def barrier(self) -> None:
        """Wait until every rank has called ``barrier()``."""
        if self.mpi_comm is not None:
            self.mpi_comm.Barrier()

    def allreduce(self, x, op: str = "sum"):
        """``x`` combined over every rank: ``"sum"`` (default), ``"max"`` or ``"min"``.

        ``x`` is a number or an array of the same shape and dtype on every rank (NumPy,
        or CuPy, which travels through host memory unless MPI is CUDA-aware); the result
        has the same kind (a new array; a Python number for a number).

        Raises:
            ValueError: on an unknown ``op``.
            TypeError: when ``x`` is not a number or an array.

        Example:
            >>> Communicator().allreduce(np.array([1.0, 2.0]))
            array([1., 2.])
        """
        if op not in _OPS:
            raise ValueError(f"Communicator.allreduce: op must be one of {_OPS}, got {op!r}")
        if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
            result = self.allreduce(np.array([x]), op)[0]
            return type(x)(result) if isinstance(x, (int, float)) else result
        if not (isinstance(x, np.ndarray) or cuda.is_cupy_array(x)):
            raise TypeError(
                f"Communicator.allreduce: expected a number or a NumPy/CuPy array, got "
                f"{type(x).__name__}; for a Variable pass its .data"
            )
        out = x.copy()  # C-contiguous, and the caller's array stays as it was
        self._allreduce_buffer(out, op)
        return out

    def average(self, sums, count) -> float | tuple[float, ...]:
        """Per-sample means over every rank: each of ``sums`` (this rank's totals, e.g.
        ``loss * batch_size`` summed over its batches) added up over the ranks, divided
        by the total of ``count`` (this rank's number of samples).

        Exact when ranks saw different numbers of samples (a shorter last batch, an
        uneven split of a test set), unlike averaging each rank's mean. One collective
        for all the values.

        Args:
            sums: a number or a sequence of numbers.
            count: the number of samples behind them on this rank (may be 0).

        Returns:
            A float for a number, a tuple of floats for a sequence.

        Raises:
            ValueError: when no rank counted any sample.

        Example:
            >>> Communicator().average(9.0, count=3)
            3.0
        """
        scalar = np.ndim(sums) == 0
        values = [float(v) for v in (np.ravel(sums) if not scalar else [sums])]
        total = self.allreduce(np.array([*values, float(count)], dtype=np.float64))
        if total[-1] <= 0:
            raise ValueError(
                "Communicator.average: the counts add up to "
                f"{total[-1]:g} over {self.size} rank(s); pass each rank's number of "
                "samples as count"
            )
        means = tuple(float(v) for v in total[:-1] / total[-1])
        return means[0] if scalar else means

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """Rank ``root``'s ``obj`` on every rank (any picklable object: a seed, a
        config, a list of names). Model weights go by :func:`broadcast_params`, which
        sends raw buffers instead.

        Example:
            >>> Communicator().bcast({"seed": 3})
            {'seed': 3}
        """
        if self.mpi_comm is None:
            return obj
        return self.mpi_comm.bcast(obj, root=root)

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now with exit status ``code`` (no clean-up).

        Use it instead of ``sys.exit(code)`` where only some ranks would exit: a rank
        that leaves alone makes the others wait for it forever in their next collective.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        if self.mpi_comm is not None:
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(code)
        os._exit(code)

    # ---- per-rank set-up -------------------------------------------------------------------
    def seed(self, n: int | None) -> None:
        """Seed zerograd on this rank for data-parallel training.

        The initial weights come from ``n`` on every rank, so every rank builds the same
        model, also for layers that create their weights on the first call. Dropout
        masks come from ``n`` and the rank, so each rank drops different units (rank 0
        the same ones as a single process seeded with ``n``). ``n=None`` draws fresh
        entropy on each rank (then only :func:`broadcast_params` makes the weights
        agree). Data loaders take their own ``seed=``.

        Example:
            >>> Communicator().seed(0)   # a world of one: the same as zerograd.seed(0)
        """
        from zerograd import random

        random.seed_weights(n)
        if n is None or self.rank == 0:
            random.seed_dropout(n)
        else:
            state = np.random.SeedSequence([int(n), self.rank]).generate_state(1)
            random.seed_dropout(int(state[0]))

    def select_gpu(self) -> int:
        """Make GPU ``local_rank % (GPUs on this machine)`` CuPy's current device, so
        that the ranks of a machine spread over its GPUs; returns its number.

        Raises:
            RuntimeError: when no CUDA device is usable.
        """
        cupy = cuda._require_cupy("Communicator.select_gpu")
        device = self.local_rank % cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(device).use()
        return device

    @property
    def cuda_aware(self) -> bool:
        """Whether MPI can read and write GPU memory directly (a CUDA-aware build, with
        GPU support on at run time). Asked once, of the MPI library itself
        (``MPIX_Query_cuda_support``, which MPICH and Open MPI export); anything
        uncertain counts as no. ``ZEROGRAD_MPI_CUDA_AWARE=0`` or ``1`` overrides it.
        """
        if self._cuda_aware is None:
            self._cuda_aware = _query_cuda_aware() if self.mpi_comm is not None else False
        return self._cuda_aware

    # ---- buffers (used by the optimizer and the data helpers) -------------------------------
    def _allreduce_buffer(self, buf, op: str = "sum") -> None:
        """Combine the contiguous array ``buf`` over every rank, in place.

        A CuPy array travels through host memory (one copy each way) unless MPI is
        CUDA-aware, in which case MPI reads the device memory itself once the current
        stream has finished writing it.
        """
        if self.mpi_comm is None:
            return
        from mpi4py import MPI

        mpi_op = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        self._on_host_or_device(buf, lambda b: self.mpi_comm.Allreduce(MPI.IN_PLACE, b,
                                                                      op=mpi_op))

    def _bcast_buffer(self, buf, root: int = 0) -> None:
        """Overwrite the contiguous array ``buf`` with rank ``root``'s, in place."""
        if self.mpi_comm is None:
            return
        self._on_host_or_device(buf, lambda b: self.mpi_comm.Bcast(b, root=root))

    def _on_host_or_device(self, buf, communicate) -> None:
        if isinstance(buf, np.ndarray):
            communicate(buf)
            return
        xp = cuda.get_array_module(buf)
        if self.cuda_aware:
            # MPI runs outside CuPy's stream: the kernels that filled buf must be done.
            xp.cuda.get_current_stream().synchronize()
            communicate(buf)
            return
        host = cuda.as_numpy(buf)  # a synchronous copy to host memory
        communicate(host)
        buf.set(host)


def _query_cuda_aware() -> bool:
    override = os.environ.get("ZEROGRAD_MPI_CUDA_AWARE", "").strip()
    if override in ("0", "1"):
        return override == "1"
    for path in threads._loaded_paths():
        if not os.path.basename(path).startswith("libmpi"):
            continue
        try:
            mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 0)
            query = getattr(ctypes.CDLL(path, mode=mode), "MPIX_Query_cuda_support", None)
        except OSError:
            continue
        if query is not None:
            query.restype, query.argtypes = ctypes.c_int, []
            return bool(query())
    return False


# =========================================================================================
# init
# =========================================================================================
def init(use_mpi: bool | None = None, blas_threads: int | None = None,
         abort_on_error: bool = True) -> Communicator:
    """Join the job this process belongs to and return its :class:`Communicator`.

    Call it once, first thing (later calls return the same communicator).

    - Under an MPI launcher (``mpiexec -n 4 python train.py``) it imports mpi4py,
      which starts MPI. Without one it is a world of one and imports nothing, so the
      script runs unchanged where mpi4py is not installed.
    - It installs a ``sys.excepthook`` that prints the traceback, names the rank, and
      aborts the whole job (``MPI_Abort``): an exception on one rank ends every rank
      within a second or so with a non-zero exit status, instead of leaving the others
      waiting in their next collective forever.
    - Ranks that share a machine share its cores: unless the user fixed a thread count
      in the environment (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ...), each
      rank's BLAS gets ``cores // local ranks`` threads (at least 1), so that 4 ranks
      on 8 cores do not start 32 threads.

    Args:
        use_mpi: None (default) uses MPI when a launcher started the process; True
            always (a world of one under no launcher); False never (a world of one).
        blas_threads: BLAS threads for this rank, instead of the default rule (see
            :mod:`zerograd.threads` to change it later).
        abort_on_error: install the exception hook (only with MPI).

    Raises:
        RuntimeError: when MPI is wanted (or a launcher started the process) but mpi4py
            is not installed: each rank would silently train alone.

    Example:
        >>> comm = init()   # no mpiexec here: a world of one
        >>> comm.size
        1
    """
    global _world
    if _world is not None:
        return _world
    launcher = launched_by_mpi()
    if use_mpi is None:
        use_mpi = launcher is not None
    if not use_mpi:
        _world = Communicator()
        if blas_threads is not None:
            threads.set_num_threads(blas_threads)
            _world.blas_threads = blas_threads
        return _world
    try:
        from mpi4py import MPI
    except ImportError as e:
        started = f"this process was started by an MPI launcher (${launcher} is set) " \
            if launcher else ""
        raise RuntimeError(
            f"zerograd.distributed.init: {started}but mpi4py cannot be imported ({e}); "
            "install it with pip install 'zerograd[mpi]' (mpi4py and the mpich wheel), "
            "or run the script without mpiexec"
        ) from e
    comm = Communicator(MPI.COMM_WORLD)
    started = _launcher_size()
    if started is not None and started[1] != comm.size:
        # Each process initialised MPI alone: an mpiexec of another MPI than mpi4py's.
        library = MPI.Get_library_version().splitlines()[0].strip()
        raise RuntimeError(
            f"zerograd.distributed.init: the launcher started {started[1]} processes "
            f"(${started[0]}={started[1]}) but MPI sees a world of {comm.size}: the "
            f"mpiexec used belongs to another MPI than the one mpi4py runs on ({library}); "
            "launch with that MPI's mpiexec"
        )
    if abort_on_error:
        _install_excepthook(comm)
    comm.blas_threads = _set_blas_threads(comm.local_size, blas_threads)
    _world = comm
    return comm


def _launcher_size(environ=None) -> tuple[str, int] | None:
    """(variable, number of processes) as the launcher announced it, if it did."""
    environ = os.environ if environ is None else environ
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = environ.get(name, "")
        if value.isdigit():
            return name, int(value)
    return None


def _set_blas_threads(local_size: int, requested: int | None) -> int | None:
    """Apply ``requested``, or the default share of the cores; None when left alone."""
    if requested is None:
        if threads.env_threads() is not None or local_size <= 1:
            return None  # the user's setting, or nobody to share the cores with
        requested = max(1, threads.available_cores() // local_size)
    threads.set_num_threads(requested)
    return requested


def _install_excepthook(comm: Communicator) -> None:
    previous = sys.excepthook

    def abort_job(kind, value, tb):
        try:
            # The error itself on the first line: mpiexec may end the job before it has
            # passed on the end of a long traceback.
            print(f"zerograd.distributed: uncaught {kind.__name__} on rank {comm.rank} of "
                  f"{comm.size}: {value}; aborting every rank", file=sys.stderr, flush=True)
            previous(kind, value, tb)
        except Exception:
            traceback.print_exception(kind, value, tb)
        finally:
            comm.abort(1)

    sys.excepthook = abort_job
