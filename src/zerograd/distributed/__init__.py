"""Data-parallel training over MPI.

Every process (a *rank*) holds a whole copy of the model and trains it on its own part
of the data. Before each update the gradients are averaged over the ranks, so every
copy takes the same step: ``p`` ranks with batches of ``B`` train as one process with
batches of ``p * B``, ``p`` times as fast as long as averaging costs less than
computing. Built on MPI through mpi4py (``pip install 'zerograd[mpi]'``), it runs from
two processes on a laptop to many machines, started by ``mpiexec``::

    mpiexec -n 4 python train.py

A training script, in the order it uses the pieces::

    comm = distributed.init()                    # a world of one without mpiexec
    comm.seed(0)                                 # same weights, own dropout per rank
    train = distributed.scatter_dataset(train_set, comm, seed=0)
    loader = DataLoader(train, batch_size // comm.size)
    optimizer = distributed.DistributedOptimizer(optimizers.Adam().setup(model), comm)
    ...                                          # the usual loop: optimizer.update()
    loss, acc = comm.average((sum_loss, sum_acc), count)
    if comm.rank == 0:
        model.save_weights("model.npz")

``import zerograd`` does not import this package, and this package imports mpi4py only
inside :func:`init`, when a launcher started the process. See ``docs/distributed.md``.

Example:
    >>> from zerograd import distributed
    >>> comm = distributed.init()   # run without mpiexec: a world of one
    >>> comm.rank, comm.size
    (0, 1)
"""

from zerograd.distributed.communicator import Communicator, init, launched_by_mpi
from zerograd.distributed.data import DatasetShard, scatter_dataset
from zerograd.distributed.optimizer import DistributedOptimizer, broadcast_params

__all__ = [
    "Communicator",
    "DatasetShard",
    "DistributedOptimizer",
    "broadcast_params",
    "init",
    "launched_by_mpi",
    "scatter_dataset",
]
