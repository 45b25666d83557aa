"""zerograd.distributed without mpiexec (a world of one), and its parts in one process.

None of these needs MPI. ``TwinRanks`` stands in for a job of two ranks that hold the
same values, which runs the packing of gradients and buffers (on NumPy, and on CuPy
where a GPU exists) without launching anything; real ranks are in test_ranks.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter, Variable, optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import Dataset
from zerograd.distributed import (
    Communicator,
    DatasetShard,
    DistributedOptimizer,
    broadcast_params,
    communicator,
    data,
    init,
    launched_by_mpi,
    scatter_dataset,
)
from zerograd.models import Model
from zerograd.transforms import Normalize


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in communicator.LAUNCHER_VARS}
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=environ)


class Net(Model):
    def __init__(self, dtype=np.float64):
        super().__init__()
        self.l1 = L.Linear(6, in_size=4, dtype=dtype)
        self.bn = L.BatchNorm()
        self.l2 = L.Linear(3, in_size=6, dtype=dtype)

    def forward(self, x):
        return self.l2(F.relu(self.bn(self.l1(x))))


class TwinRanks(Communicator):
    """Rank ``rank`` of two ranks holding the same values: a sum doubles, a max or a
    broadcast changes nothing."""

    def __init__(self, rank=0):
        super().__init__()
        self.rank, self.size = rank, 2
        self.calls = []

    def _allreduce_buffer(self, buf, op="sum"):
        self.calls.append((op, buf.dtype, buf.size))
        if op == "sum":
            buf *= 2

    def _bcast_buffer(self, buf, root=0):
        self.calls.append(("bcast", buf.dtype, buf.size))


@pytest.fixture
def fresh_world(monkeypatch):
    """Let init() start over, and restore its cached world afterwards."""
    monkeypatch.setattr(communicator, "_world", None)


# ---- importing and starting -------------------------------------------------------------
def test_import_zerograd_does_not_import_mpi4py():
    code = ("import sys, zerograd, zerograd.distributed as d; c = d.init(); "
            "print(c.size, 'mpi4py' in sys.modules)")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]


def test_a_launcher_without_mpi4py_is_a_clear_error():
    # sys.modules[name] = None makes ``import name`` fail, as if it were not installed.
    code = ("import sys; sys.modules['mpi4py'] = None; "
            "from zerograd import distributed; distributed.init()")
    result = run_python(code, PMI_RANK="0", PMI_SIZE="2")
    assert result.returncode != 0
    assert "started by an MPI launcher ($PMI_RANK is set)" in result.stderr
    assert "pip install 'zerograd[mpi]'" in result.stderr


def test_an_mpiexec_of_another_mpi_is_a_clear_error():
    # MPICH run outside its launcher, with a launcher's variables set: every process
    # would train alone, as under an mpiexec of another MPI than mpi4py's.
    pytest.importorskip("mpi4py")
    code = "from zerograd import distributed; distributed.init()"
    result = run_python(code, PMI_RANK="0", PMI_SIZE="2")
    assert result.returncode != 0
    assert "the launcher started 2 processes ($PMI_SIZE=2) but MPI sees a world of 1" \
        in result.stderr


def test_without_mpi4py_a_script_runs_as_a_world_of_one():
    code = ("import sys; sys.modules['mpi4py'] = None; "
            "from zerograd import distributed; print(distributed.init().size)")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


@pytest.mark.parametrize("environ, found", [
    ({}, None),
    ({"PMI_RANK": "1", "PMI_SIZE": "4"}, "PMI_RANK"),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, "OMPI_COMM_WORLD_SIZE"),
    ({"PMIX_RANK": "0"}, "PMIX_RANK"),
    ({"SLURM_PROCID": "0"}, None),  # srun without MPI starts independent processes
])
def test_launched_by_mpi(environ, found):
    assert launched_by_mpi(environ) == found


def test_init_is_a_world_of_one_and_returns_the_same_communicator(fresh_world):
    comm = init(use_mpi=False)
    assert (comm.rank, comm.size, comm.local_rank, comm.local_size) == (0, 1, 0, 1)
    assert comm.mpi_comm is None and comm.is_root and comm.blas_threads is None
    assert init() is comm
    assert "rank=0, size=1" in repr(comm)


def test_init_sets_the_blas_threads_asked_for(fresh_world):
    from zerograd import threads

    before = threads.get_num_threads()
    try:
        comm = init(use_mpi=False, blas_threads=1)
        assert comm.blas_threads == 1
        assert threads.get_num_threads() in (1, None)
    finally:
        if before is not None:
            threads.set_num_threads(before)


# ---- the communicator's operations in a world of one -----------------------------------
def test_collectives_of_a_world_of_one_return_the_value():
    comm = Communicator()
    x = np.arange(3.0)
    y = comm.allreduce(x)
    assert y is not x and np.array_equal(y, x)
    assert comm.allreduce(2) == 2 and isinstance(comm.allreduce(2), int)
    assert comm.allreduce(2.5, op="max") == 2.5
    assert comm.average([4.0, 2.0], count=2) == (2.0, 1.0)
    assert comm.bcast(["a", 1]) == ["a", 1]
    comm.barrier()


def test_collective_errors_name_the_operation():
    comm = Communicator()
    with pytest.raises(ValueError, match=r"allreduce: op must be one of .*'mean'"):
        comm.allreduce(1.0, op="mean")
    with pytest.raises(TypeError, match="allreduce: expected a number or a NumPy/CuPy "
                                        "array, got list"):
        comm.allreduce([1.0, 2.0])
    with pytest.raises(ValueError, match="average: the counts add up to 0"):
        comm.average(0.0, count=0)


def test_seed_gives_the_weights_of_zerograd_seed():
    Communicator().seed(3)
    a = L.Linear(4, in_size=3).W.data
    mask_a = F.dropout(np.ones(50)).data
    zerograd.seed(3)
    b = L.Linear(4, in_size=3).W.data
    mask_b = F.dropout(np.ones(50)).data
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mask_a, mask_b)


def test_seed_draws_other_dropout_masks_on_other_ranks():
    twin = TwinRanks(rank=1)
    twin.seed(3)
    w1, mask1 = L.Linear(4, in_size=3).W.data, F.dropout(np.ones(50)).data
    Communicator().seed(3)
    w0, mask0 = L.Linear(4, in_size=3).W.data, F.dropout(np.ones(50)).data
    np.testing.assert_array_equal(w0, w1)
    assert not np.array_equal(mask0, mask1)


def test_host_staging_of_device_arrays(xp):
    comm = Communicator()
    seen = []

    def double(buf):
        seen.append(type(buf))
        buf *= 2

    buf = xp.arange(4, dtype=xp.float32)
    comm._on_host_or_device(buf, double)
    np.testing.assert_array_equal(zerograd.cuda.as_numpy(buf), [0, 2, 4, 6])
    assert seen == [np.ndarray]  # MPI only ever sees host memory (not CUDA-aware)
    if xp is not np:
        comm._cuda_aware = True  # a CUDA-aware MPI takes the device array itself
        comm._on_host_or_device(buf, double)
        assert seen[-1] is type(buf)
        np.testing.assert_array_equal(zerograd.cuda.as_numpy(buf), [0, 4, 8, 12])


def test_cuda_awareness_is_off_without_mpi_and_can_be_forced(monkeypatch):
    assert Communicator().cuda_aware is False
    monkeypatch.setenv("ZEROGRAD_MPI_CUDA_AWARE", "1")
    assert communicator._query_cuda_aware() is True
    monkeypatch.setenv("ZEROGRAD_MPI_CUDA_AWARE", "0")
    assert communicator._query_cuda_aware() is False


# ---- DistributedOptimizer ----------------------------------------------------------------
def train(model, optimizer, steps=4, **update):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.standard_normal((8, 4))
        t = rng.integers(0, 3, 8)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update(**update)


@pytest.mark.parametrize("make", [lambda: optimizers.SGD(0.1),
                                  lambda: optimizers.MomentumSGD(0.1),
                                  lambda: optimizers.Adam(0.01)],
                         ids=["SGD", "MomentumSGD", "Adam"])
def test_a_world_of_one_trains_exactly_as_the_plain_optimizer(make):
    results = []
    for distributed in (False, True):
        zerograd.seed(0)
        model = Net()
        optimizer = make().setup(model)
        if distributed:
            optimizer = DistributedOptimizer(optimizer, Communicator())
        optimizer.add_hook(optimizers.WeightDecay(1e-3))
        schedule = optimizers.StepDecay(optimizer, step_size=1, gamma=0.5)
        train(model, optimizer)
        schedule.step()
        results.append(model.state_dict())
    for key, value in results[0].items():
        np.testing.assert_array_equal(results[1][key], value, err_msg=key)


def test_the_wrapper_passes_everything_else_through(tmp_path):
    zerograd.seed(0)
    model = Net()
    adam = optimizers.Adam(alpha=0.01)
    optimizer = DistributedOptimizer(adam, Communicator()).setup(model)
    assert adam.target is model
    optimizer.alpha = 0.5  # a schedule sets the rate this way
    assert adam.alpha == 0.5 and optimizer.alpha == 0.5
    schedule = optimizers.ExponentialDecay(optimizer, gamma=0.5)
    schedule.step()
    assert adam.alpha == 0.25
    hook = optimizers.ClipGrad(1.0)
    optimizer.add_hook(hook)
    assert adam.hooks == [hook]
    train(model, optimizer, steps=2)
    assert optimizer.t == adam.t == 2
    path = tmp_path / "adam.npz"
    optimizer.save(str(path))
    other = optimizers.Adam().setup(model)
    DistributedOptimizer(other, Communicator()).load(str(path))
    assert other.t == 2 and other.alpha == 0.25
    assert set(optimizer.state_dict()) == set(adam.state_dict())
    assert "DistributedOptimizer(Adam, Communicator(rank=0, size=1" in repr(optimizer)


def test_wrapper_errors():
    with pytest.raises(TypeError, match="expected a zerograd optimizer .* got list"):
        DistributedOptimizer([], Communicator())
    wrapped = DistributedOptimizer(optimizers.SGD(), Communicator())
    with pytest.raises(TypeError, match="already distributed"):
        DistributedOptimizer(wrapped, Communicator())
    with pytest.raises(RuntimeError, match="call optimizer.setup"):
        DistributedOptimizer(optimizers.SGD(), TwinRanks()).update()
    w = Parameter(np.ones(2))
    optimizer = DistributedOptimizer(optimizers.SGD().setup([w]), Communicator())
    for bad in (-1.0, float("nan"), "many"):
        with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
            optimizer.update(weight=bad)
    with pytest.raises(AttributeError):
        optimizer.no_such_attribute


@pytest.mark.parametrize("weight", [None, 3.0])
def test_packing_round_trip_on_twin_ranks(xp, weight):
    # Two ranks with the same gradients: the average is each one's gradient.
    zerograd.seed(0)
    model = Net()
    if xp is not np:
        model.to_gpu()
    x = xp.asarray(np.random.default_rng(0).standard_normal((8, 4)))
    model(x)  # creates the batch-norm parameters and statistics before wrapping
    comm = TwinRanks()
    optimizer = DistributedOptimizer(optimizers.SGD(0.1).setup(model), comm)
    loss = F.softmax_cross_entropy(model(x), xp.asarray(np.arange(8) % 3))
    model.cleargrads()
    loss.backward()
    before = {name: zerograd.cuda.as_numpy(p.grad.data).copy()
              for name, p in zip(["l1.W", "l1.b", "gamma", "beta", "l2.W", "l2.b"],
                                 model.params())}
    stats = zerograd.cuda.as_numpy(model.bn.avg_mean).copy()
    model.l2.b.grad = None  # no gradient on either rank: stays without one
    comm.calls.clear()
    optimizer.allreduce_grads(weight=weight)
    for (name, grad), param in zip(before.items(), model.params()):
        if name == "l2.b":
            assert param.grad is None
            continue
        assert param.grad.data.dtype == param.data.dtype
        np.testing.assert_allclose(zerograd.cuda.as_numpy(param.grad.data), grad,
                                   rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(zerograd.cuda.as_numpy(model.bn.avg_mean), stats, rtol=1e-12)
    # One 16-byte agreement, then a single Allreduce for all arrays of the one dtype:
    # 6 gradients, 2 statistics, 6 presence flags and the total weight.
    sizes = sum(a.size for a in model.state_dict().values())
    assert comm.calls == [("max", np.dtype(np.int64), 2),
                          ("sum", np.dtype(np.float64), sizes + 6 + 1)]


def test_narrow_floats_travel_as_float32():
    w = Parameter(np.array([1.0, 2.0], dtype=np.float16))
    w.grad = Variable(np.array([0.5, 0.25], dtype=np.float16))
    comm = TwinRanks()
    optimizer = DistributedOptimizer(optimizers.SGD(1.0).setup([w]), comm)
    comm.calls.clear()
    optimizer.allreduce_grads()
    assert comm.calls[-1][1] == np.float32
    # the average comes back in float32, as summed (the master weights take float32)
    assert w.grad.data.dtype == np.float32
    np.testing.assert_array_equal(w.grad.data, [0.5, 0.25])


def test_unscaled_float32_gradients_of_float16_parameters_keep_their_precision():
    # (they were cast back to float16, where 1e-8 is 0)
    w = Parameter(np.array([1.0, 2.0], dtype=np.float16))
    w.grad = Variable(np.array([1e-8, 3e-8], dtype=np.float32))
    optimizer = DistributedOptimizer(optimizers.SGD(1.0).setup([w]), TwinRanks())
    optimizer.allreduce_grads()
    assert w.grad.data.dtype == np.float32
    np.testing.assert_allclose(w.grad.data, [1e-8, 3e-8], rtol=1e-6)


def test_a_loss_scaler_averages_the_scaled_gradients_once_before_checking_them():
    from zerograd.amp import LossScaler

    w = Parameter(np.array([1.0, 2.0], dtype=np.float16))
    comm = TwinRanks()
    optimizer = DistributedOptimizer(optimizers.SGD(1.0).setup([w]), comm)
    scaler = LossScaler(scale=2.0**10)
    scaler.backward((w * np.float16(2.0**-20)).sum())  # d/dw = 1e-6 * 1024 in float16
    comm.calls.clear()
    assert scaler.step(optimizer)
    assert [op for op, _, _ in comm.calls] == ["max", "sum"]  # one average, no second
    np.testing.assert_allclose(optimizer.master_of(w).data, [1 - 2.0**-20, 2 - 2.0**-20],
                               rtol=1e-7)
    # unscale() then step(): one average, one division
    scaler.backward((w * np.float16(2.0**-20)).sum())
    comm.calls.clear()
    assert scaler.unscale(optimizer)
    np.testing.assert_allclose(w.grad.data, 2.0**-20, rtol=2e-3)  # float16 products
    assert scaler.step(optimizer)
    assert [op for op, _, _ in comm.calls] == ["max", "sum"]
    np.testing.assert_allclose(optimizer.master_of(w).data, [1 - 2.0**-19, 2 - 2.0**-19],
                               rtol=1e-7)


def test_parameters_are_broadcast_when_the_target_is_set():
    comm = TwinRanks()
    model = Net()  # the batch-norm statistics do not exist yet
    DistributedOptimizer(optimizers.SGD(), comm).setup(model)
    assert comm.calls == [("max", np.dtype(np.int64), 2),
                          ("bcast", np.dtype(np.float64), 4 * 6 + 6 + 6 * 3 + 3)]


def test_broadcast_params():
    broadcast_params(Net(), Communicator())  # a world of one: nothing happens
    with pytest.raises(TypeError, match="broadcast_params: expected a Layer/Model"):
        broadcast_params(42, Communicator())


# ---- scatter_dataset ---------------------------------------------------------------------
class Squares(Dataset):
    def prepare(self):
        self.data = np.arange(10, dtype=np.float32).reshape(10, 1)
        self.label = np.arange(10) ** 2


class Custom(Squares):
    def __getitem__(self, index):
        return self.data[index] + 1, self.label[index]


def test_a_world_of_one_gets_the_dataset_itself():
    dataset = Squares()
    assert scatter_dataset(dataset, Communicator()) is dataset


@pytest.mark.parametrize("n, size", [(10, 3), (11, 2), (12, 4), (5, 5), (3, 4), (1, 3)])
def test_shards(n, size):
    order = np.random.default_rng(0).permutation(n)
    pad = [data._shard(order, r, size, "pad") for r in range(size)]
    assert {len(s) for s in pad} == {-(-n // size)}
    assert set(np.concatenate(pad)) == set(range(n))
    keep = [data._shard(order, r, size, "keep") for r in range(size)]
    np.testing.assert_array_equal(np.concatenate(keep), order)
    assert max(map(len, keep)) - min(map(len, keep)) <= 1
    if n >= size:
        drop = [data._shard(order, r, size, "drop") for r in range(size)]
        assert {len(s) for s in drop} == {n // size}
        np.testing.assert_array_equal(np.concatenate(drop), order[:size * (n // size)])


def test_a_shard_of_whole_arrays_keeps_its_class_and_transforms():
    dataset = Squares(transform=Normalize(0.0, 2.0))
    shard = data._subset(dataset, np.array([7, 2, 5]))
    assert type(shard) is Squares and shard.transform is dataset.transform
    assert len(dataset) == 10  # untouched
    x, t = next(iter(DataLoader(shard, 3, shuffle=False)))
    np.testing.assert_array_equal(x.ravel(), [3.5, 1.0, 2.5])
    np.testing.assert_array_equal(t, [49, 4, 25])


def test_other_datasets_become_dataset_shards():
    shard = data._subset(Custom(), np.array([4, 1]))
    assert isinstance(shard, DatasetShard)
    assert len(shard) == 2 and shard[0][1] == 16 and shard[-1][0][0] == 2.0
    assert repr(shard) == "DatasetShard(2 of 10 samples)"
    with pytest.raises(IndexError, match="index 2 out of range for 2 samples"):
        shard[2]
    with pytest.raises(TypeError, match="expected an int index, got slice"):
        shard[0:1]
    x, t = next(iter(DataLoader(shard, 2, shuffle=False)))
    np.testing.assert_array_equal(t, [16, 1])


def test_scatter_dataset_errors():
    with pytest.raises(ValueError, match="remainder must be one of .* got 'spread'"):
        scatter_dataset(Squares(), Communicator(), remainder="spread")
    with pytest.raises(ValueError, match="the dataset is empty"):
        scatter_dataset([], Communicator())
