"""The rank program of the distributed tests.

Run as ``mpiexec -n P python worker.py OUT MODE [--weighted]``, or without mpiexec for
the one-process reference. Each rank writes what it ends with to ``OUT/rank<r>.npz``
(and its process id to ``OUT/pid.<r>``, so the tests can clean up after a failure).

Modes:
    suite     train small models with SGD, MomentumSGD and Adam (a weight-decay hook
              each), in float32 and float64, over the same global batches; batch norm
              with dropout; lazily-sized layers; gradients missing on some ranks;
              scatter_dataset; the metric helpers; the BLAS-thread default.
    raise     rank 1 raises in the middle of training.
    kill      rank 1 kills itself with SIGKILL in the middle of training.
    mismatch  rank 1 builds a model with one more layer.
    amp       float16 with a LossScaler: an overflow on rank 1 only, tiny gradients,
              training.
    resume    a run saved by rank 0 and resumed the two documented ways (every rank
              loads; rank 0 loads and broadcasts the state), next to the run that went
              straight through.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import distributed, optimizers, threads
from zerograd.datasets import Dataset
from zerograd.models import Model

STEPS = 4
GLOBAL_BATCH = 12  # 6 + 6 on two ranks; 4 + 4 + 4 on three
UNEVEN_BATCH = 10  # 5 + 5 on two ranks; 4 + 3 + 3 on three (weighted update)
DATA = np.random.default_rng(1234)
X = DATA.standard_normal((STEPS * GLOBAL_BATCH, 5))
T = DATA.integers(0, 3, STEPS * GLOBAL_BATCH)


class Net(Model):
    def __init__(self, dtype, in_size=5, extra=False):
        super().__init__()
        self.l1 = L.Linear(8, in_size=in_size, dtype=dtype)
        self.l2 = L.Linear(3, in_size=8, dtype=dtype)
        if extra:
            self.l3 = L.Linear(3, in_size=3, dtype=dtype)

    def forward(self, x):
        return self.l2(F.tanh(self.l1(x)))


class BNNet(Model):
    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(8, in_size=5, dtype=np.float64)
        self.bn = L.BatchNorm()
        self.l2 = L.Linear(3, in_size=8, dtype=np.float64)

    def forward(self, x):
        return self.l2(F.dropout(F.relu(self.bn(self.l1(x))), 0.3))


class Branchy(Model):
    """Head ``b`` is used on one rank only; head ``c`` on none."""

    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(6, in_size=5, dtype=np.float64)
        self.a = L.Linear(3, in_size=6, dtype=np.float64)
        self.b = L.Linear(3, in_size=6, dtype=np.float64)
        self.c = L.Linear(3, in_size=6, dtype=np.float64)

    def forward(self, x, use_b):
        h = F.tanh(self.l1(x))
        y = self.a(h)
        return y + self.b(h) if use_b else y


class Numbers(Dataset):
    def prepare(self):
        self.data = np.arange(11)
        self.label = self.data * 2


def local_batch(comm, step, batch=GLOBAL_BATCH):
    """This rank's part of global batch ``step``: a contiguous split, sizes differing
    by at most one."""
    index = np.arange(step * batch, (step + 1) * batch)
    index = np.array_split(index, comm.size)[comm.rank]
    return X[index], T[index]


def train(comm, results, name, make_optimizer, dtype, weighted, schedule=False):
    zerograd.seed(100 + comm.rank)  # a different start on every rank: the broadcast fixes it
    model = Net(dtype)
    optimizer = distributed.DistributedOptimizer(make_optimizer().setup(model), comm)
    optimizer.add_hook(optimizers.WeightDecay(1e-2))
    decay = optimizers.StepDecay(optimizer, step_size=2, gamma=0.5) if schedule else None
    batch = UNEVEN_BATCH if weighted else GLOBAL_BATCH
    for step in range(STEPS):
        x, t = local_batch(comm, step, batch)
        loss = F.softmax_cross_entropy(model(x.astype(dtype)), t)
        model.cleargrads()
        loss.backward()
        optimizer.update(weight=len(t) if weighted else None)
        if decay is not None:
            decay.step()
    for key, value in model.state_dict().items():
        results[f"{name}/{np.dtype(dtype).name}/{key}"] = value
    results[f"{name}/{np.dtype(dtype).name}/t"] = np.array(optimizer.t)


def train_lazy(comm, results, weighted):
    # Layers sized by their first input, a different seed per rank, and one forward pass
    # before wrapping: the broadcast at wrapping makes every start rank 0's.
    zerograd.seed(200 + comm.rank)
    model = Net(np.float64, in_size=None)
    model(X[:1])
    optimizer = distributed.DistributedOptimizer(optimizers.Adam(0.01).setup(model), comm)
    batch = UNEVEN_BATCH if weighted else GLOBAL_BATCH
    for step in range(STEPS):
        x, t = local_batch(comm, step, batch)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update(weight=len(t) if weighted else None)
    for key, value in model.state_dict().items():
        results[f"lazy/{key}"] = value
    # No forward pass before wrapping: the weights appear at the first update, which
    # broadcasts them. Only agreement between ranks is checked for this one.
    zerograd.seed(300 + comm.rank)
    model = Net(np.float64, in_size=None)
    optimizer = distributed.DistributedOptimizer(optimizers.SGD(0.1).setup(model), comm)
    for step in range(2):
        x, t = local_batch(comm, step)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
    for key, value in model.state_dict().items():
        results[f"lazy_late/{key}"] = value


def train_batchnorm(comm, results, weighted):
    comm.seed(5)  # the same weights everywhere, dropout masks of each rank's own
    results["dropout_mask"] = F.dropout(np.ones(200), 0.5).data
    comm.seed(5)
    model = BNNet()
    optimizer = distributed.DistributedOptimizer(optimizers.MomentumSGD(0.1).setup(model),
                                                 comm)
    batch = UNEVEN_BATCH if weighted else GLOBAL_BATCH
    for step in range(STEPS):
        x, t = local_batch(comm, step, batch)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update(weight=len(t) if weighted else None)
        if step == 0:
            results["bn/step1/avg_mean"] = model.bn.avg_mean.copy()
    for key, value in model.state_dict().items():
        results[f"bn/final/{key}"] = value
    with zerograd.test_mode():
        results["bn/final/output"] = model(X[:4]).data


def missing_gradients(comm, results):
    zerograd.seed(7)
    model = Branchy()
    optimizer = distributed.DistributedOptimizer(optimizers.SGD(0.1).setup(model), comm)
    names = list(model.state_dict())
    user = comm.size - 1  # the only rank that uses head b
    for step in range(3):
        x, t = local_batch(comm, step)
        loss = F.softmax_cross_entropy(model(x, use_b=comm.rank == user), t)
        model.cleargrads()
        loss.backward()
        if step == 0:
            for name, param in zip(names, model.params()):
                local = param.grad
                results[f"missing/local/{name}"] = (
                    np.full(param.shape, np.nan) if local is None else local.data.copy())
            optimizer.allreduce_grads()
            for name, param in zip(names, model.params()):
                avg = param.grad
                results[f"missing/avg/{name}"] = (
                    np.full(param.shape, np.nan) if avg is None else avg.data.copy())
            optimizer.optimizer.update()
        else:
            optimizer.update()
    for key, value in model.state_dict().items():
        results[f"missing/final/{key}"] = value


def helpers(comm, results):
    for remainder in ("pad", "drop", "keep"):
        shard = distributed.scatter_dataset(Numbers(), comm, seed=3, remainder=remainder)
        results[f"scatter/{remainder}/data"] = np.asarray(shard.data)
        results[f"scatter/{remainder}/label"] = np.asarray(shard.label)
    shard = distributed.scatter_dataset(list(range(100, 111)), comm, shuffle=False)
    results["scatter/list"] = np.array([shard[i] for i in range(len(shard))])
    n = comm.rank + 1  # ranks see different numbers of samples
    results["average"] = np.array(comm.average((10.0 * n, float(n)), count=n))
    results["average_scalar"] = np.array(comm.average(3.0 * n, count=n))
    results["allreduce"] = comm.allreduce(np.arange(4.0) * (comm.rank + 1))
    results["allreduce_max"] = np.array(comm.allreduce(comm.rank, op="max"))
    results["bcast"] = np.array(comm.bcast({"value": comm.rank + 42})["value"])


def suite(comm, weighted):
    results = {}
    for dtype in (np.float64, np.float32):
        train(comm, results, "sgd", lambda: optimizers.SGD(lr=0.1), dtype, weighted)
        train(comm, results, "momentum", lambda: optimizers.MomentumSGD(lr=0.1), dtype,
              weighted, schedule=True)
        train(comm, results, "adam", lambda: optimizers.Adam(alpha=0.01), dtype, weighted)
    train_lazy(comm, results, weighted)
    train_batchnorm(comm, results, weighted)
    missing_gradients(comm, results)
    helpers(comm, results)
    results["size"] = np.array(comm.size)
    results["local"] = np.array([comm.local_rank, comm.local_size])
    results["blas_threads"] = np.array(threads.get_num_threads() or -1)
    results["comm_blas_threads"] = np.array(-1 if comm.blas_threads is None
                                            else comm.blas_threads)
    results["cores"] = np.array(threads.available_cores())
    return results


def amp(comm):
    """Mixed precision over the ranks; each rank records what it saw."""
    from zerograd.amp import LossScaler

    results = {}
    # 1. Rank 1 alone overflows: every rank must skip that step (and then take the
    # next together), not rank 0 update while rank 1 skips.
    w = zerograd.Parameter(np.ones(3, dtype=np.float16))
    optimizer = distributed.DistributedOptimizer(optimizers.SGD(0.5).setup([w]), comm)
    scaler = LossScaler(scale=2.0**10)
    took = []
    for step in range(3):
        w.grad = zerograd.Variable(np.full(3, 2.0**10, dtype=np.float16))
        if step == 0 and comm.rank == 1:
            w.grad = zerograd.Variable(np.array([np.inf, 1.0, 1.0], dtype=np.float16))
        took.append(scaler.step(optimizer))
    comm.barrier()
    results["overflow/took"] = np.array(took)
    results["overflow/w"] = w.data.copy()
    results["overflow/scale"] = np.array(scaler.scale)
    # 2. Gradients too small for float16, unscaled in float32, then averaged.
    w = zerograd.Parameter(np.ones(3, dtype=np.float16))
    optimizer = distributed.DistributedOptimizer(optimizers.SGD(1.0).setup([w]), comm)
    w.grad = zerograd.Variable(np.full(3, 1e-8 * (comm.rank + 1), dtype=np.float32))
    optimizer.allreduce_grads()
    results["tiny/grad"] = np.asarray(w.grad.data)
    # 3. A few steps of float16 training with dynamic scaling.
    zerograd.seed(11 + comm.rank)
    model = Net(np.float16)
    optimizer = distributed.DistributedOptimizer(optimizers.Adam(0.01).setup(model), comm)
    scaler = LossScaler()
    for step in range(STEPS):
        x, t = local_batch(comm, step)
        loss = F.softmax_cross_entropy(model(x.astype(np.float16)), t)
        model.cleargrads()
        scaler.backward(loss)
        scaler.step(optimizer)
    for key, value in model.state_dict().items():
        results[f"train/{key}"] = value
    for key, value in optimizer.state_dict().items():
        results[f"train/optimizer/{key}"] = value
    results["train/scale"] = np.array(scaler.scale)
    return results


def resume(comm, out):
    """Train 4 steps straight; and 2 steps, a checkpoint by rank 0, 2 more steps resumed
    the two documented ways. Each rank records its models and optimizer states."""
    from zerograd.checkpoint import load_checkpoint, save_checkpoint

    path = os.path.join(out, "checkpoint.npz")
    results = {}
    cases = {"adam": (np.float64, lambda: optimizers.Adam(0.01)),
             "sgd16": (np.float16, lambda: optimizers.MomentumSGD(0.05))}
    for name, (dtype, make) in cases.items():
        def start(seed, dtype=dtype, make=make):
            zerograd.seed(seed + comm.rank)  # different on every rank
            model = Net(dtype)
            return model, distributed.DistributedOptimizer(make().setup(model), comm)

        def train(model, optimizer, steps, dtype=dtype):
            for step in steps:
                x, t = local_batch(comm, step)
                loss = F.softmax_cross_entropy(model(x.astype(dtype)), t)
                model.cleargrads()
                loss.backward()
                optimizer.update()

        model, optimizer = start(100)
        train(model, optimizer, range(2))
        if comm.rank == 0:
            save_checkpoint(path, model, optimizer)
        comm.barrier()
        train(model, optimizer, range(2, STEPS))
        runs = {"straight": (model, optimizer)}
        # (a) every rank loads the checkpoint
        model, optimizer = start(200)
        load_checkpoint(path, model, optimizer)
        train(model, optimizer, range(2, STEPS))
        runs["every"] = (model, optimizer)
        # (b) rank 0 loads it, then broadcasts parameters and optimizer state
        model, optimizer = start(300)
        if comm.rank == 0:
            load_checkpoint(path, model, optimizer)
        optimizer.broadcast_state()
        train(model, optimizer, range(2, STEPS))
        runs["broadcast"] = (model, optimizer)
        for run, (model, optimizer) in runs.items():
            for key, value in model.state_dict().items():
                results[f"{name}/{run}/model/{key}"] = value
            for key, value in optimizer.state_dict().items():
                results[f"{name}/{run}/optimizer/{key}"] = value
        comm.barrier()
    return results


def faulty(comm, mode):
    zerograd.seed(0)
    model = Net(np.float64, extra=mode == "mismatch" and comm.rank == 1)
    # With "mismatch", the ranks' parameters differ: every rank raises here.
    optimizer = distributed.DistributedOptimizer(optimizers.SGD(0.1).setup(model), comm)
    for step in range(1000):
        if step == 2 and comm.rank == 1:
            print(f"rank 1 fails at step {step}", flush=True)
            if mode == "raise":
                raise ValueError("planted failure on rank 1")
            os.kill(os.getpid(), signal.SIGKILL)
        x, t = local_batch(comm, step % STEPS)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
    return {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("mode", choices=["suite", "raise", "kill", "mismatch", "amp",
                                         "resume"])
    parser.add_argument("--weighted", action="store_true")
    args = parser.parse_args()
    comm = distributed.init()
    with open(os.path.join(args.out, f"pid.{comm.rank}"), "w") as f:
        f.write(str(os.getpid()))
    if args.mode == "suite":
        results = suite(comm, args.weighted)
    elif args.mode == "amp":
        results = amp(comm)
    elif args.mode == "resume":
        results = resume(comm, args.out)
    else:
        results = faulty(comm, args.mode)
    np.savez(os.path.join(args.out, f"rank{comm.rank}.npz"), **results)
    print(f"rank {comm.rank} of {comm.size} done", file=sys.stderr)


if __name__ == "__main__":
    main()
