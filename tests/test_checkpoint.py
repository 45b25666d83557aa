"""Checkpoints: exact resume, transactional loads, the file format (no pickle)."""

import json
import zipfile

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import optimizers
from zerograd import random as zrandom
from zerograd.checkpoint import HEADER, checkpoint_info, load_checkpoint, save_checkpoint
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.models import MLP, Model


class Net(Model):
    """An MLP with dropout: its masks make the random state part of the run."""

    def __init__(self, hidden=32):
        super().__init__()
        self.l1 = L.Linear(hidden)
        self.drop = L.Dropout(0.3)
        self.l2 = L.Linear(10)

    def forward(self, x):
        return self.l2(self.drop(F.relu(self.l1(x))))


def _dataset(n=600):
    ds = MNISTSubset(train=True)
    ds.data, ds.label = ds.data[:n], ds.label[:n]
    return ds


class Run:
    """Everything a training run is made of, built from scratch (as a new process
    would), with seeds that differ between runs unless given."""

    def __init__(self, seed=0, hidden=32, loader_seed=1):
        zerograd.seed(seed)
        self.model = Net(hidden)
        self.loader = DataLoader(_dataset(), 50, shuffle=True, seed=loader_seed)
        self.optimizer = optimizers.Adam(alpha=3e-3).setup(self.model)
        self.schedule = optimizers.CosineAnnealing(self.optimizer, t_max=4, eta_min=1e-4)
        self.model(np.zeros((1, 784), dtype=np.float32))  # create the lazy weights
        self.iteration = 0

    def train(self, epochs, stop_after=None):
        """Train ``epochs`` epochs (or stop after ``stop_after`` batches)."""
        for _ in range(epochs):
            for x, t in self.loader:
                loss = F.softmax_cross_entropy(self.model(x), t)
                self.model.cleargrads()
                loss.backward()
                self.optimizer.update()
                self.iteration += 1
                if stop_after is not None and self.iteration == stop_after:
                    return
            self.schedule.step()

    def save(self, path, epoch, **values):
        save_checkpoint(path, self.model, self.optimizer, schedule=self.schedule,
                        loaders={"train": self.loader}, epoch=epoch,
                        iteration=self.iteration, **values)

    def load(self, path, **kwargs):
        info = load_checkpoint(path, self.model, self.optimizer, schedule=self.schedule,
                               loaders={"train": self.loader}, **kwargs)
        self.iteration = info["iteration"]
        return info

    def weights(self):
        return {k: v.copy() for k, v in self.model.state_dict().items()}

    def snapshot(self):
        """Everything a load could change."""
        return {
            "weights": self.weights(),
            "optimizer": {k: np.array(v) for k, v in self.optimizer.state_dict().items()},
            "schedule": self.schedule.state_dict(),
            "loader": self.loader.state_dict(),
            "random": json.dumps(zrandom.get_state()),
            "rate": getattr(self.optimizer, self.optimizer.rate_name),
        }


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_same(a[key], b[key])
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def straight():
    """Four epochs without a break: the weights to reproduce."""
    run = Run()
    run.train(4)
    return run.weights()


def test_two_epochs_then_resume_for_two_is_bit_identical(tmp_path, straight):
    first = Run()
    first.train(2)
    first.save(tmp_path / "ckpt.npz", epoch=2)
    del first
    second = Run(seed=123, loader_seed=99)  # fresh objects, other seeds: the file rules
    info = second.load(tmp_path / "ckpt.npz")
    assert info == {"epoch": 2, "iteration": 24}
    second.train(2)
    _assert_same(straight, second.weights())


def test_resume_from_the_middle_of_an_epoch_is_bit_identical(tmp_path, straight):
    first = Run()
    first.train(4, stop_after=12 + 7)  # 12 batches an epoch: 7 into the second epoch
    first.save(tmp_path / "ckpt.npz", epoch=1)
    second = Run(seed=5, loader_seed=5)
    second.load(tmp_path / "ckpt.npz")
    # finish the interrupted epoch, then the remaining two
    for x, t in second.loader:
        loss = F.softmax_cross_entropy(second.model(x), t)
        second.model.cleargrads()
        loss.backward()
        second.optimizer.update()
    second.schedule.step()
    second.train(2)
    _assert_same(straight, second.weights())


def test_without_the_random_state_the_resume_differs(tmp_path, straight):
    # the control for the tests above: the dropout masks matter
    first = Run()
    first.train(2)
    first.save(tmp_path / "ckpt.npz", epoch=2)
    second = Run(seed=123)
    second.load(tmp_path / "ckpt.npz", restore_random=False)
    second.train(2)
    assert not all(np.array_equal(straight[k], v) for k, v in second.weights().items())


def test_user_values_round_trip_as_json(tmp_path):
    run = Run()
    values = {
        "history": {"loss": [2.3, 1.1, float("nan")], "acc": [0.1, 0.5]},
        "best": float("inf"),
        "name": "run-1",
        "done": False,
        "note": None,
        "pair": (1, 2),
        "count": np.int64(7),
        "score": np.float32(0.5),
    }
    run.save(tmp_path / "ckpt.npz", epoch=0, **values)
    info = load_checkpoint(tmp_path / "ckpt.npz", Run().model)
    assert info["history"]["loss"][:2] == [2.3, 1.1] and np.isnan(info["history"]["loss"][2])
    assert info["best"] == float("inf") and info["name"] == "run-1" and info["done"] is False
    assert info["note"] is None and info["pair"] == [1, 2]
    assert info["count"] == 7 and type(info["count"]) is int and info["score"] == 0.5


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros(3), "is an array"),
        (object(), "does not store"),
        ({1: "a"}, "keys must be strings"),
        ([1, {2, 3}], r"value 'bad'\[1\] is a set"),
    ],
)
def test_values_that_are_not_json_are_refused_and_nothing_is_written(tmp_path, value, message):
    run = Run()
    with pytest.raises(TypeError, match=message):
        run.save(tmp_path / "ckpt.npz", epoch=0, bad=value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("count", [-1, 1.5, True, "3"])
def test_epoch_and_iteration_must_be_counts(tmp_path, count):
    with pytest.raises(ValueError, match="epoch must be an int"):
        save_checkpoint(tmp_path / "c.npz", L.Linear(2, in_size=2), epoch=count)


def test_checkpoint_info_reads_the_header(tmp_path):
    run = Run()
    run.train(1)
    run.save(tmp_path / "ckpt.npz", epoch=1, lr=0.1)
    info = checkpoint_info(tmp_path / "ckpt.npz")
    assert info["epoch"] == 1 and info["iteration"] == 12 and info["values"] == {"lr": 0.1}
    assert info["model"] == "Net" and info["optimizer"] == "Adam"
    assert info["schedule"] == "CosineAnnealing" and info["loaders"] == ["train"]
    assert info["zerograd"] == zerograd.__version__


def test_the_file_is_an_archive_of_plain_arrays_and_a_json_header(tmp_path):
    run = Run()
    run.train(1)
    run.save(tmp_path / "ckpt.npz", epoch=1)
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:  # no pickle inside
        names = set(f.files)
        header = json.loads(f[HEADER].tobytes())
        assert all(f[name].dtype != object for name in names)
    assert {"model/l1.W", "model/l2.b", "optimizer/t", "optimizer/param/0/m"} <= names
    assert header["format"] == "zerograd.checkpoint" and header["version"] == 1
    index = header["loaders"]["train"]["state"]["index"]["$array"]
    assert index in names


# ---- a bad file changes nothing --------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    run = Run()
    run.train(1)
    path = tmp_path / "ckpt.npz"
    run.save(path, epoch=1)
    return path


def _target():
    run = Run(seed=7, loader_seed=7)
    run.train(1, stop_after=3)
    return run


def _rewrite_header(path, change):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays[HEADER].tobytes())
    change(header)
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def _damage(path, how):
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) * 3 // 4])
    elif how == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif how == "flipped":  # a byte changed inside the compressed-or-not data
        raw = bytearray(data)
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif how == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif how == "weights only":
        L.Linear(2, in_size=2).save_weights(path)
    elif how == "pickle":
        np.savez(path, **{HEADER: np.array([{"evil": 1}], dtype=object)})
    elif how == "bad json":
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        arrays[HEADER] = np.frombuffer(b"{not json", dtype=np.uint8)
        np.savez(path, **arrays)
    elif how == "newer version":
        _rewrite_header(path, lambda h: h.update(version=99))
    elif how == "missing tree array":
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if not k.startswith("tree/")}
        np.savez(path, **arrays)


@pytest.mark.parametrize(
    "how, message",
    [
        ("empty", "cannot read"),
        ("truncated", "cannot read"),
        ("garbage", "cannot read"),
        ("npy", "single array"),
        ("weights only", "not a zerograd checkpoint"),
        ("pickle", "cannot read"),
        ("bad json", "damaged header"),
        ("newer version", "newer than this zerograd reads"),
        ("missing tree array", "is missing"),
    ],
)
def test_a_damaged_file_raises_and_changes_nothing(saved, how, message):
    _damage(saved, how)
    target = _target()
    before = target.snapshot()
    with pytest.raises(ValueError, match=message):
        target.load(saved)
    _assert_same(before, target.snapshot())


def test_a_flipped_byte_is_caught_by_the_archive_checks_or_the_state_checks(saved):
    _damage(saved, "flipped")
    target = _target()
    before = target.snapshot()
    try:
        target.load(saved)
    except ValueError:
        _assert_same(before, target.snapshot())
    else:  # the byte fell in data that still decodes: the load is then complete
        assert target.iteration == 12


def test_a_missing_file():
    with pytest.raises(FileNotFoundError):
        load_checkpoint("/nonexistent/ckpt.npz", L.Linear(2))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda run: setattr(run, "model", Net(hidden=16)) or run.model(
            np.zeros((1, 784), np.float32)), r"(?s)the model.*shape \(784, 32\) given"),
        (lambda run: setattr(run, "optimizer", optimizers.SGD().setup(run.model)),
         "the state of a Adam, not of a SGD"),
        (lambda run: setattr(run, "schedule", optimizers.StepDecay(run.optimizer, 2)),
         "of a CosineAnnealing, not a StepDecay"),
        (lambda run: setattr(run, "loader", DataLoader(_dataset(500), 50, seed=3)),
         "(?s)loader 'train'.*600 samples"),
        (lambda run: setattr(run, "loader", DataLoader(_dataset(), 64, seed=3)),
         "(?s)loader 'train'.*batch size 50, this loader has 64"),
    ],
    ids=["model", "optimizer", "schedule", "loader size", "batch size"],
)
def test_a_mismatched_run_is_refused_and_nothing_changes(saved, make, message):
    target = _target()
    make(target)
    before = target.snapshot()
    with pytest.raises(ValueError, match=message):
        target.load(saved)
    _assert_same(before, target.snapshot())


def test_parts_asked_for_must_be_in_the_file(tmp_path):
    model = L.Linear(2, in_size=2)
    save_checkpoint(tmp_path / "c.npz", model)
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(tmp_path / "c.npz", model, optimizers.SGD().setup(model))
    with pytest.raises(ValueError, match="no schedule state"):
        load_checkpoint(tmp_path / "c.npz", model, schedule=optimizers.StepDecay(
            optimizers.SGD(), 2))
    loader = DataLoader(_dataset(100), 10)
    with pytest.raises(ValueError, match="no loader named '0'"):
        load_checkpoint(tmp_path / "c.npz", model, loaders=[loader])
    with pytest.raises(ValueError, match="no extra named 'scaler'"):
        load_checkpoint(tmp_path / "c.npz", model, extras={"scaler": _Counter()})
    with pytest.raises(TypeError, match="loaders must be"):
        load_checkpoint(tmp_path / "c.npz", model, loaders=loader)


class _Counter:
    """A minimal extra: a count and an array, checked on load."""

    def __init__(self, n=0):
        self.n = n
        self.table = np.arange(3) * n

    def state_dict(self):
        return {"n": self.n, "table": self.table, "pair": (self.n, "x")}

    def load_state_dict(self, state):
        if state["n"] < 0:
            raise ValueError("_Counter: n must be >= 0")
        self.n, self.table = state["n"], np.array(state["table"])
        assert state["pair"] == (self.n, "x")  # tuples come back as tuples


def test_extras_round_trip_with_their_arrays(tmp_path):
    model = L.Linear(2, in_size=2)
    save_checkpoint(tmp_path / "c.npz", model, extras={"a": _Counter(4), "$b": _Counter(2)})
    a, b = _Counter(), _Counter()
    load_checkpoint(tmp_path / "c.npz", model, extras={"a": a, "$b": b})
    assert a.n == 4 and list(a.table) == [0, 4, 8] and b.n == 2


def test_a_failing_extra_undoes_the_extras_and_the_random_state(tmp_path):
    model = L.Linear(2, in_size=2)
    zerograd.seed(1)
    save_checkpoint(tmp_path / "c.npz", model, extras={"a": _Counter(4), "b": _Counter(-1)})
    zerograd.seed(2)
    random_before = json.dumps(zrandom.get_state())
    a, b = _Counter(1), _Counter(1)
    weights = model.W.data.copy()
    model.W.data[...] = 0
    with pytest.raises(ValueError, match="(?s)extra 'b'.*n must be >= 0"):
        load_checkpoint(tmp_path / "c.npz", model, extras={"a": a, "b": b})
    assert a.n == 1 and b.n == 1 and list(a.table) == [0, 1, 2]
    assert json.dumps(zrandom.get_state()) == random_before
    assert (model.W.data == 0).all() and not (weights == 0).all()


def test_a_damaged_random_state_is_refused_and_undone(saved):
    _rewrite_header(saved, lambda h: h["random"]["weights"].update(bit_generator="Nope"))
    target = _target()
    before = target.snapshot()
    with pytest.raises(ValueError, match="random generators"):
        target.load(saved)
    _assert_same(before, target.snapshot())


def test_the_save_is_atomic(tmp_path, monkeypatch):
    run = Run()
    path = tmp_path / "ckpt.npz"
    run.save(path, epoch=0)
    good = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        run.save(path, epoch=1)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]
    assert zipfile.is_zipfile(path)


def test_float16_model_and_master_weights_resume_exactly(tmp_path):
    def make(seed):
        zerograd.seed(seed)
        model = MLP((16, 10), activation=F.relu).astype(np.float16)
        model(np.zeros((1, 784), np.float16))
        return model, optimizers.Adam(alpha=1e-3).setup(model)

    def train(model, optimizer, loader, steps):
        for _ in range(steps):
            x, t = next(loader)
            loss = F.softmax_cross_entropy(model(x.astype(np.float16)), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()

    model, optimizer = make(0)
    loader = DataLoader(_dataset(200), 20, seed=0)
    train(model, optimizer, loader, 8)
    expected = {k: v.copy() for k, v in model.state_dict().items()}

    model, optimizer = make(0)
    loader = DataLoader(_dataset(200), 20, seed=0)
    train(model, optimizer, loader, 4)
    save_checkpoint(tmp_path / "c.npz", model, optimizer, loaders=[loader])
    model, optimizer = make(9)
    loader = DataLoader(_dataset(200), 20, seed=9)
    load_checkpoint(tmp_path / "c.npz", model, optimizer, loaders=[loader])
    train(model, optimizer, loader, 4)
    for key, value in model.state_dict().items():
        assert value.dtype == np.float16
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


# ---- one transaction: every part checked, then every part applied ------------------------
class _HalfLoading(_Counter):
    """An extra with load_state_dict only, which changes itself before it fails."""

    def load_state_dict(self, state):
        self.n = state["n"]
        if state["n"] < 0:
            raise ValueError("_HalfLoading: n must be >= 0")
        self.table = np.array(state["table"])


def test_a_failing_extra_is_itself_restored(tmp_path):
    # (the extras loaded before it were restored, not the failing one, left half-loaded)
    model = L.Linear(2, in_size=2)
    save_checkpoint(tmp_path / "c.npz", model, extras={"a": _Counter(4), "b": _Counter(-1)})
    a, b = _Counter(1), _HalfLoading(1)
    with pytest.raises(ValueError, match="(?s)extra 'b'.*n must be >= 0"):
        load_checkpoint(tmp_path / "c.npz", model, extras={"a": a, "b": b})
    assert (a.n, b.n) == (1, 1)


def test_an_extra_with_the_protocol_is_checked_before_anything_changes(tmp_path):
    from zerograd.amp import LossScaler
    from zerograd.early_stopping import EarlyStopping

    model = L.Linear(2, in_size=2)
    stopper = EarlyStopping(patience=5)
    stopper.step(0.5, model)
    save_checkpoint(tmp_path / "c.npz", model, extras={"stop": stopper,
                                                       "scaler": LossScaler(scale=8.0)})
    _rewrite_header(tmp_path / "c.npz", lambda h: h["extras"]["stop"].update(best="x"))
    fresh, target = EarlyStopping(patience=2), L.Linear(2, in_size=2)
    scaler, weights = LossScaler(scale=2.0), target.W.data.copy()
    with pytest.raises(ValueError, match="(?s)extra 'stop'.*best must be a number"):
        load_checkpoint(tmp_path / "c.npz", target,
                        extras={"stop": fresh, "scaler": scaler})
    assert fresh.patience == 2 and fresh.best is None and scaler.scale == 2.0
    assert (target.W.data == weights).all()


def test_a_schedule_state_giving_an_invalid_rate_changes_nothing(tmp_path):
    # (each value was valid; the rate they give failed only after the model was written)
    model = L.Linear(2, in_size=2)
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    schedule = optimizers.StepDecay(optimizer, 1, gamma=0.5)
    save_checkpoint(tmp_path / "c.npz", model, optimizer, schedule=schedule)
    _rewrite_header(tmp_path / "c.npz", lambda h: h["schedule"].update(
        base_lr=1e308, gamma=10.0, last_step=5))
    target = L.Linear(2, in_size=2)
    weights = target.W.data.copy()
    target_optimizer = optimizers.SGD(lr=0.7).setup(target)
    target_schedule = optimizers.StepDecay(target_optimizer, 1, gamma=0.5)
    with pytest.raises(ValueError, match="(?s)the schedule.*step 5 gives the rate inf"):
        load_checkpoint(tmp_path / "c.npz", target, target_optimizer,
                        schedule=target_schedule)
    assert (target.W.data == weights).all() and target_optimizer.lr == 0.7
    assert target_schedule.last_step == 0


def test_a_distributed_optimizer_and_its_optimizer_load_each_others_checkpoints(tmp_path):
    # (the wrapper was recorded as a "DistributedOptimizer", which an Adam refused)
    from zerograd.distributed import DistributedOptimizer

    def make(seed, wrap):
        zerograd.seed(seed)
        model = L.Linear(3, in_size=4)
        adam = optimizers.Adam(alpha=0.01).setup(model)
        return model, DistributedOptimizer(adam) if wrap else adam

    for save_wrapped in (True, False):
        model, optimizer = make(0, save_wrapped)
        model.W.grad = zerograd.Variable(np.ones((4, 3), np.float32))
        optimizer.update()
        path = tmp_path / f"c{save_wrapped}.npz"
        save_checkpoint(path, model, optimizer)
        assert checkpoint_info(path)["optimizer"] == "Adam"
        target, target_optimizer = make(1, not save_wrapped)
        load_checkpoint(path, target, target_optimizer)
        assert target_optimizer.t == 1
        for key, value in optimizer.state_dict().items():
            np.testing.assert_array_equal(target_optimizer.state_dict()[key], value)


def test_a_deeply_nested_header_is_a_value_error(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, **{HEADER: np.frombuffer(b"[" * 100_000, dtype=np.uint8)})
    with pytest.raises(ValueError, match="damaged header .*nests too deeply"):
        load_checkpoint(path, L.Linear(2, in_size=2))
    with pytest.raises(ValueError, match="nests too deeply"):
        checkpoint_info(path)


def test_checkpoint_info_reads_only_the_header(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, L.Linear(2, in_size=2), epoch=3, note={"$x": 1})
    # damage every entry but the header: the info is still there, the load is refused
    with zipfile.ZipFile(path) as f:
        entries = {info.filename: f.read(info) for info in f.infolist()}
    with zipfile.ZipFile(path, "w") as f:
        for name, data in entries.items():
            f.writestr(name, data if name == HEADER + ".npy" else b"damaged")
    info = checkpoint_info(path)
    assert info["epoch"] == 3 and info["values"] == {"note": {"$x": 1}}
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(path, L.Linear(2, in_size=2))


def test_a_random_transform_resumes_exactly_through_a_checkpoint(tmp_path):
    from zerograd.transforms import Compose, RandomHorizontalFlip, ToFloat

    def loader(seed):
        dataset = _dataset(40)
        dataset.data = dataset.data.reshape(40, 1, 28, 28)
        dataset.transform = Compose([ToFloat(), RandomHorizontalFlip(seed=seed)])
        return DataLoader(dataset, 8, seed=seed)

    model = L.Linear(2, in_size=2)
    source = loader(0)
    next(source)
    save_checkpoint(tmp_path / "c.npz", model, loaders=[source])
    expected = [x for x, _ in source]
    resumed = loader(5)
    load_checkpoint(tmp_path / "c.npz", model, loaders=[resumed])
    got = [x for x, _ in resumed]
    assert len(got) == len(expected) == 4
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
