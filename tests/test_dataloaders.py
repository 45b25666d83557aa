"""DataLoader and SeqDataLoader: batching, shuffling, epochs, the whole-array fast path,
the jumping offsets of truncated BPTT, what a dataset item is, bad arguments, saving and
restoring the position, and properties over random sizes (Hypothesis)."""

import json

import numpy as np
import pytest

try:
    import hypothesis
    import hypothesis.strategies as st
except ImportError:  # a dev dependency: the rest of the file runs without it
    hypothesis = None

from zerograd import cuda
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import Dataset, MNISTSubset, Spiral
from zerograd.transforms import Compose, Flatten, Normalize, RandomHorizontalFlip, ToFloat


class _Range(Dataset):
    """x = i as a (2,) float32 row, t = 10 * i."""

    def __init__(self, n=10, **kwargs):
        self.n = n
        super().__init__(**kwargs)

    def prepare(self):
        self.data = np.repeat(np.arange(self.n, dtype=np.float32)[:, None], 2, axis=1)
        self.label = np.arange(self.n) * 10


class _PerSample(_Range):
    """The same samples through an overridden __getitem__ (no fast path)."""

    def __getitem__(self, index):
        return self.data[index], self.label[index]


@pytest.mark.parametrize("cls", [_Range, _PerSample])
def test_batches_in_order(cls):
    loader = DataLoader(cls(10), batch_size=4, shuffle=False)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    x = np.concatenate([x for x, _ in batches])
    t = np.concatenate([t for _, t in batches])
    np.testing.assert_array_equal(x[:, 0], np.arange(10))
    np.testing.assert_array_equal(t, np.arange(10) * 10)
    assert x.dtype == np.float32 and x.shape == (10, 2)


def test_shuffle_covers_each_sample_once_per_epoch():
    loader = DataLoader(_Range(23), batch_size=5, seed=0)
    epochs = [np.concatenate([t for _, t in loader]) for _ in range(3)]
    for t in epochs:
        np.testing.assert_array_equal(np.sort(t), np.arange(23) * 10)
    assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch
    assert not np.array_equal(epochs[0], np.arange(23) * 10)


def test_shuffle_seed_is_reproducible_and_global_rng_untouched():
    np.random.seed(7)
    expected = np.random.random(2)
    np.random.seed(7)
    a = [t for _, t in DataLoader(_Range(30), batch_size=7, seed=42)]
    b = [t for _, t in DataLoader(_Range(30), batch_size=7, seed=42)]
    for ta, tb in zip(a, b):
        np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(np.random.random(2), expected)


def test_epochs_reset_and_partial_epochs():
    loader = DataLoader(_Range(6), batch_size=2, shuffle=False)
    assert len(list(loader)) == 3
    assert len(list(loader)) == 3  # the next for loop is the next epoch
    next(loader)
    _, t = loader.next()
    assert list(t) == [20, 30]
    assert len(list(loader)) == 1  # the rest of the epoch
    next(loader)
    loader.reset()
    _, t = next(loader)
    assert list(t) == [0, 10]


def test_fast_path_matches_per_sample_path():
    dataset = MNISTSubset(train=False)
    fast = DataLoader(dataset, batch_size=64, seed=1)
    x, t = next(fast)
    samples = [dataset[int(i)] for i in fast.index[:64]]
    np.testing.assert_array_equal(x, np.stack([s[0] for s in samples]))
    np.testing.assert_array_equal(t, [s[1] for s in samples])
    assert x.shape == (64, 784) and x.dtype == np.float32 and t.dtype == np.int64

    # A transform that cannot batch sends the loader through __getitem__ per sample.
    slow_set = MNISTSubset(train=False, transform=lambda img: Compose(
        [Flatten(), ToFloat(), Normalize(0.0, 255.0)])(img))
    slow = DataLoader(slow_set, batch_size=64, seed=1)
    xs, ts = next(slow)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ts, t)


def test_fast_path_slices_whole_arrays(monkeypatch):
    def per_sample(self, index):
        raise AssertionError("the per-sample loop ran")

    monkeypatch.setattr(DataLoader, "_gather_samples", per_sample)
    dataset = Spiral()
    x, t = next(DataLoader(dataset, batch_size=3, shuffle=False))
    np.testing.assert_array_equal(x, dataset.data[:3])
    with pytest.raises(AssertionError, match="per-sample"):
        next(DataLoader(_PerSample(), batch_size=3))


def test_any_indexable_dataset_and_unlabelled_data():
    pairs = [(np.full(3, i), i) for i in range(5)]
    x, t = next(DataLoader(pairs, batch_size=5, shuffle=False))
    assert x.shape == (5, 3) and list(t) == [0, 1, 2, 3, 4]

    unlabelled = _Range(4)
    unlabelled.label = None
    x, t = next(DataLoader(unlabelled, batch_size=4))
    assert x.shape == (4, 2) and t is None
    x, t = next(DataLoader([(np.zeros(2), None)] * 3, batch_size=3))
    assert t is None


def test_ragged_samples_error():
    ragged = [(np.zeros(2), 0), (np.zeros(3), 1)]
    with pytest.raises(ValueError, match="different shapes"):
        next(DataLoader(ragged, batch_size=2, shuffle=False))
    mixed = [(np.zeros(2), 0), (np.zeros(2), None)]
    with pytest.raises(ValueError, match="label"):
        next(DataLoader(mixed, batch_size=2))


@pytest.mark.parametrize("batch_size, error", [
    (0, ValueError), (-1, ValueError),
    (2.5, TypeError), (True, TypeError), (None, TypeError), ("4", TypeError),
    (np.float64(4), TypeError),
])
def test_bad_batch_size(batch_size, error):
    # the wrong kind is a TypeError, a size out of range a ValueError, as in the layers
    with pytest.raises(error, match=r"DataLoader: batch_size must be a positive integer, "
                                    r"got .*; for example batch_size=32"):
        DataLoader(_Range(), batch_size=batch_size)
    with pytest.raises(error, match="SeqDataLoader: batch_size must be a positive integer"):
        SeqDataLoader(_Range(), batch_size=batch_size)


def test_loaders_and_layers_refuse_a_bad_size_alike():
    import zerograd.layers as L

    for make in (lambda v: DataLoader(_Range(), batch_size=v), lambda v: L.Linear(v)):
        with pytest.raises(TypeError, match="must be a positive integer, got '3' \\(str\\)"):
            make("3")
        with pytest.raises(ValueError, match="must be a positive integer, got 0"):
            make(0)


class _Empty(Dataset):
    def prepare(self):
        self.data = np.zeros((0, 2))
        self.label = np.zeros(0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"shuffle": "no"}, TypeError, r"DataLoader: shuffle must be True or False, got 'no'"),
        ({"shuffle": 1}, TypeError, "shuffle must be True or False, got 1 \\(int\\)"),
        ({"shuffle": None}, TypeError, "shuffle must be True or False"),
        ({"gpu": "cuda"}, TypeError, r"DataLoader: gpu must be True or False, got 'cuda'"),
        ({"gpu": 0}, TypeError, "gpu must be True or False"),
        ({"seed": -1}, ValueError, r"DataLoader: seed must be None, a non-negative int or a "
                                   r"numpy.random.Generator, got -1 \(int\); for example"),
        ({"seed": 0.5}, TypeError, "DataLoader: seed must be"),
        ({"seed": "42"}, TypeError, "DataLoader: seed must be"),
        ({"seed": True}, TypeError, "DataLoader: seed must be"),
        ({"seed": np.random.RandomState(0)}, TypeError, "DataLoader: seed must be"),
        ({"dataset": 3}, TypeError, r"DataLoader: dataset must support len\(\) and integer "
                                    r"indexing .*got int"),
        ({"dataset": {1, 2}}, TypeError, "got set"),
        ({"dataset": []}, ValueError, r"DataLoader: the dataset \(list\) is empty"),
        ({"dataset": _Empty()}, ValueError, r"the dataset \(_Empty\) is empty"),
        ({"dataset": Dataset()}, RuntimeError, "Dataset: no data; prepare"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    args = {"dataset": _Range(), "batch_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        DataLoader(**args)


def test_good_arguments_still_work():
    shared = np.random.default_rng(0)
    loader = DataLoader(_Range(), np.int64(3), shuffle=np.bool_(False), gpu=np.bool_(False),
                        seed=shared)
    assert loader.rng is shared and loader.batch_size == 3 and loader.gpu is False
    DataLoader(_Range(), 3, seed=np.random.SeedSequence(5))
    DataLoader(_Range(), 3, seed=2**70)
    with pytest.raises(TypeError, match="SeqDataLoader: gpu must be True or False"):
        SeqDataLoader(_Range(), 2, gpu="yes")


@pytest.mark.skipif(cuda.gpu_enable, reason="checks the error raised without a GPU")
def test_gpu_without_device():
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        DataLoader(_Range(), batch_size=2, gpu=True)
    loader = DataLoader(_Range(), batch_size=2)
    with pytest.raises(RuntimeError, match="to_gpu"):
        loader.to_gpu()
    loader.to_cpu()
    assert not loader.gpu


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.gpu_enable, reason="no usable CUDA device")
def test_gpu_batches():
    import cupy

    loader = DataLoader(MNISTSubset(train=False), batch_size=32)
    loader.to_gpu()
    x, t = next(loader)
    assert isinstance(x, cupy.ndarray) and isinstance(t, cupy.ndarray)
    assert x.shape == (32, 784) and x.dtype == np.float32
    loader.to_cpu()
    x, _ = next(loader)
    assert isinstance(x, np.ndarray)
    x, _ = next(SeqDataLoader(_Range(10), batch_size=2, gpu=True))
    assert isinstance(x, cupy.ndarray)


# --- SeqDataLoader ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", [_Range, _PerSample])
def test_seq_loader_jumping_offsets(cls):
    loader = SeqDataLoader(cls(10), batch_size=3)
    assert loader.jump == 3 and len(loader) == 3
    batches = list(loader)
    assert [list(x[:, 0]) for x, _ in batches] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert [list(t) for _, t in batches] == [[0, 30, 60], [10, 40, 70], [20, 50, 80]]
    assert [list(x[:, 0]) for x, _ in loader][0] == [0, 3, 6]  # the next epoch restarts


def test_seq_loader_visits_each_step_once():
    loader = SeqDataLoader(_Range(999), batch_size=30)
    seen = np.concatenate([t for _, t in loader]) // 10
    assert len(loader) == 33 and len(seen) == 990 and len(set(seen.tolist())) == 990


def test_seq_loader_batch_too_large():
    with pytest.raises(ValueError, match="larger than the sequence"):
        SeqDataLoader(_Range(3), batch_size=4)


# --- what a dataset item is (issue 13, item 12) ---------------------------------------------


def test_a_bare_array_dataset_is_unlabelled_rows(monkeypatch):
    data = np.arange(20).reshape(10, 2)  # items are 2-element arrays, not (x, t) pairs
    loader = DataLoader(data, batch_size=4, shuffle=False)
    x, t = next(loader)
    np.testing.assert_array_equal(x, data[:4])
    assert t is None

    def per_sample(self, index):
        raise AssertionError("the per-sample loop ran")

    monkeypatch.setattr(DataLoader, "_gather_samples", per_sample)
    x, _ = next(DataLoader(data, batch_size=10, seed=0))
    np.testing.assert_array_equal(np.sort(x[:, 0]), data[:, 0])  # sliced, whole rows


@pytest.mark.parametrize(
    "dataset",
    [
        [np.array([2 * i, 2 * i + 1]) for i in range(10)],  # a list of 2-element arrays
        [[2 * i, 2 * i + 1] for i in range(10)],  # a list of lists: features, not pairs
        [(np.array([2 * i, 2 * i + 1]),) for i in range(10)],  # (x,) tuples
    ],
    ids=["arrays", "lists", "one-tuples"],
)
def test_bare_samples_per_sample_path(dataset):
    x, t = next(DataLoader(dataset, batch_size=10, shuffle=False))
    np.testing.assert_array_equal(x, np.arange(20).reshape(10, 2))
    assert t is None


class _Bare(_Range):
    """A Dataset whose __getitem__ returns the bare sample."""

    def __getitem__(self, index):
        return self.data[index]


def test_bare_samples_from_a_dataset_subclass():
    x, t = next(DataLoader(_Bare(6), batch_size=6, shuffle=False))
    assert x.shape == (6, 2) and t is None
    x, t = next(SeqDataLoader(_Bare(6), batch_size=2))
    np.testing.assert_array_equal(x[:, 0], [0, 3])
    assert t is None


def test_pairs_are_tuples_of_two():
    pairs = [(np.full(2, i), np.int64(i)) for i in range(4)]
    x, t = next(DataLoader(pairs, batch_size=4, shuffle=False))
    assert x.shape == (4, 2) and list(t) == [0, 1, 2, 3]


def test_item_rule_errors():
    triples = [(np.zeros(2), 0, 1.0)] * 3
    with pytest.raises(ValueError, match=r"dataset\[0\] is a tuple of 3 items; expected "
                                         r"\(x, t\)"):
        next(DataLoader(triples, batch_size=3, shuffle=False))
    mixed = [(np.zeros(2), 0), np.zeros(2)]
    with pytest.raises(ValueError, match="some samples in a batch have a label and some"):
        next(DataLoader(mixed, batch_size=2))
    dicts = [{"x": 1}] * 3
    with pytest.raises(TypeError, match=r"the samples' x are not numbers \(dict items"):
        next(DataLoader(dicts, batch_size=3))


# --- saving and restoring the position (checkpoints) -----------------------------------------


def _take(loader, n):
    return [(x.copy(), None if t is None else t.copy()) for _, (x, t) in zip(range(n), loader)]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for (xa, ta), (xb, tb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ta, tb)


@pytest.mark.parametrize("through_json", [False, True])
@pytest.mark.parametrize("cls", [_Range, _PerSample])
def test_resume_mid_epoch_gives_the_same_batches(cls, through_json):
    straight = DataLoader(cls(23), batch_size=5, seed=3)
    _take(straight, 2)
    state = straight.state_dict()
    if through_json:  # how a checkpoint may store it: lists and (big) ints
        state = json.loads(json.dumps({**state, "index": state["index"].tolist()}))
    rest_of_epoch = list(straight)  # 3 more batches
    next_epoch = list(straight)

    resumed = DataLoader(cls(23), batch_size=5, seed=99)
    _take(resumed, 1)  # wherever it stood does not matter
    resumed.load_state_dict(state)
    _assert_same_batches(list(resumed), rest_of_epoch)
    _assert_same_batches(list(resumed), next_epoch)  # the same next shuffle


def test_state_is_a_copy():
    loader = DataLoader(_Range(8), batch_size=3, seed=0)
    state = loader.state_dict()
    state["index"][:] = 0
    assert sorted(loader.index.tolist()) == list(range(8))
    other = DataLoader(_Range(8), batch_size=3, seed=1)
    state = loader.state_dict()
    other.load_state_dict(state)
    state["index"][:] = 0
    assert sorted(other.index.tolist()) == list(range(8))


def test_resume_at_an_epochs_end_and_a_shared_generator():
    shared = np.random.default_rng(4)
    loader = DataLoader(_Range(6), batch_size=3, seed=shared)
    _take(loader, 2)  # the last batch of the epoch: StopIteration is next
    state = loader.state_dict()
    following = [list(loader), list(loader)]
    resumed = DataLoader(_Range(6), batch_size=3, seed=shared)
    resumed.load_state_dict(state)
    assert resumed.rng is shared  # restored in place
    assert list(resumed) == []
    _assert_same_batches(list(resumed), following[1])


def test_seq_loader_resume():
    loader = SeqDataLoader(_Range(20), batch_size=3)
    _take(loader, 4)
    state = loader.state_dict()
    rest = list(loader)
    resumed = SeqDataLoader(_Range(20), batch_size=3)
    resumed.load_state_dict(state)
    _assert_same_batches(list(resumed), rest)
    with pytest.raises(ValueError, match="SeqDataLoader.load_state_dict: the state is for 20 "
                                         "samples at batch 4; this loader has 20 samples and 2"):
        SeqDataLoader(_Range(20), batch_size=8).load_state_dict(state)


def _bad_states(good):
    index = good["index"]
    rng = good["rng"]
    other_rng = np.random.Generator(np.random.MT19937(0)).bit_generator.state
    return [
        ([1, 2], TypeError, "expected the dict of state_dict"),
        ({}, ValueError, r"expected the keys \['index', 'iteration', 'rng'\], got \[\]"),
        ({**good, "extra": 1}, ValueError, "expected the keys"),
        ({**good, "iteration": 1.5}, ValueError, "'iteration' must be an int, got 1.5"),
        ({**good, "iteration": True}, ValueError, "'iteration' must be an int"),
        ({**good, "iteration": -1}, ValueError, "at batch -1"),
        ({**good, "iteration": 4}, ValueError, "at batch 4; this loader has 10 samples and 3"),
        ({**good, "index": index[:-1]}, ValueError, "the state is for 9 samples"),
        ({**good, "index": index.reshape(2, 5)}, ValueError, "the state is for 10 samples"),
        ({**good, "index": np.zeros(10, int)}, ValueError, "is not an order of the 10 samples"),
        ({**good, "index": index + 1}, ValueError, "is not an order"),
        ({**good, "index": index.astype(float)}, ValueError, "is not an order"),
        ({**good, "index": [[1], [2, 3]]}, ValueError, "'index' must be a list"),
        ({**good, "rng": None}, ValueError, "'rng' is not the state of a PCG64 generator"),
        ({**good, "rng": {**rng, "state": {}}}, ValueError, "'rng' is not the state"),
        ({**good, "rng": other_rng}, ValueError, "'rng' is not the state of a PCG64"),
    ]


class _Images(Dataset):
    """Twelve 1x2x3 "images" held as whole arrays (so batches are sliced)."""

    def prepare(self):
        self.data = np.arange(12 * 6, dtype=np.float32).reshape(12, 1, 2, 3)
        self.label = np.arange(12)


def _flipping(seed, per_sample=False):
    flip = RandomHorizontalFlip(seed=seed)
    dataset = (_PerSampleImages if per_sample else _Images)(
        transform=Compose([ToFloat(), flip]))
    return dataset, flip


class _PerSampleImages(_Images):
    def __getitem__(self, i):
        return self.transform(self.data[i]), self.label[i]


@pytest.mark.parametrize("through_json", [False, True])
def test_resume_with_a_random_transform_gives_the_same_batches(through_json):
    # (the transform's generator was not saved: a resumed run flipped other images)
    dataset, flip = _flipping(seed=5, per_sample=True)
    straight = DataLoader(dataset, batch_size=4, seed=3)
    _take(straight, 1)
    state = straight.state_dict()
    assert set(state["transforms"]) == {"transform"}
    if through_json:
        state = json.loads(json.dumps({**state, "index": state["index"].tolist()}))
    rest = [list(straight), list(straight)]

    dataset, flip = _flipping(seed=77, per_sample=True)
    resumed = DataLoader(dataset, batch_size=4, seed=99)
    resumed.load_state_dict(state)
    _assert_same_batches(list(resumed), rest[0])
    _assert_same_batches(list(resumed), rest[1])


def test_a_shards_random_transform_is_found_and_saved():
    from zerograd.distributed import DatasetShard

    dataset, _ = _flipping(seed=1, per_sample=True)
    loader = DataLoader(DatasetShard(dataset, [3, 1, 2]), batch_size=2, seed=0)
    assert set(loader.state_dict()["transforms"]) == {"dataset.transform"}
    assert "transforms" not in DataLoader(_Range(5), batch_size=2).state_dict()


def test_a_state_for_other_transforms_is_refused_and_changes_nothing():
    source = DataLoader(_flipping(seed=1)[0], batch_size=4, seed=1)
    next(source)
    plain = DataLoader(_Images(transform=ToFloat()), batch_size=4, seed=2)
    with pytest.raises(ValueError, match=r"holds the states of the dataset's random "
                                         r"transforms \['transform'\], this loader's "
                                         "dataset has none"):
        plain.load_state_dict(source.state_dict())
    dataset, flip = _flipping(seed=2)
    loader = DataLoader(dataset, batch_size=4, seed=2)
    flip_before = flip.state_dict()
    with pytest.raises(ValueError, match="has {'transform': 'Compose'}"):
        loader.load_state_dict(DataLoader(_Images(), batch_size=4, seed=1).state_dict())
    bad = source.state_dict()
    bad["transforms"]["transform"]["1"]["rng"] = {"bit_generator": "MT19937"}
    before = loader.state_dict()
    with pytest.raises(ValueError, match="the dataset's transform: RandomHorizontalFlip"):
        loader.load_state_dict(bad)
    assert flip.state_dict() == flip_before and loader.state_dict()["rng"] == before["rng"]


def test_a_bad_state_changes_nothing():
    source = DataLoader(_Range(10), batch_size=4, seed=1)
    next(source)
    loader = DataLoader(_Range(10), batch_size=4, seed=2)
    next(loader)
    before = loader.state_dict()
    for state, error, match in _bad_states(source.state_dict()):
        with pytest.raises(error, match=match):
            loader.load_state_dict(state)
        after = loader.state_dict()
        assert after["iteration"] == before["iteration"] and after["rng"] == before["rng"]
        np.testing.assert_array_equal(after["index"], before["index"])
    unshuffled = DataLoader(_Range(10), batch_size=4, shuffle=False)
    with pytest.raises(ValueError, match="'index' is shuffled but this loader does not"):
        unshuffled.load_state_dict(source.state_dict())


# --- properties over random sizes (Hypothesis) -------------------------------------------------

if hypothesis is not None:
    _settings = hypothesis.settings(derandomize=True, max_examples=60, deadline=None,
                                    database=None)

    def _dataset(kind, n):
        if kind == "array":
            return np.arange(n, dtype=np.float32)[:, None] * np.ones(2, np.float32)
        if kind == "list":
            return [(np.full(2, i, np.float32), np.int64(10 * i)) for i in range(n)]
        return (_Range if kind == "fast" else _PerSample)(n)

    @_settings
    @hypothesis.given(
        n=st.integers(1, 60), batch_size=st.integers(1, 70), shuffle=st.booleans(),
        kind=st.sampled_from(["fast", "per-sample", "array", "list"]),
        seed=st.integers(0, 2**32),
    )
    def test_every_sample_once_per_epoch(n, batch_size, shuffle, kind, seed):
        loader = DataLoader(_dataset(kind, n), batch_size, shuffle=shuffle, seed=seed)
        batches_per_epoch = -(-n // batch_size)
        assert len(loader) == batches_per_epoch
        for _ in range(2):
            batches = list(loader)
            sizes = [len(x) for x, _ in batches]
            assert len(batches) == batches_per_epoch
            assert sizes[:-1] == [batch_size] * (batches_per_epoch - 1)
            assert sizes[-1] == n - batch_size * (batches_per_epoch - 1)  # the last batch
            x = np.concatenate([x for x, _ in batches])
            assert x.shape == (n, 2) and x.dtype == np.float32
            np.testing.assert_array_equal(np.sort(x[:, 0]), np.arange(n))
            if kind == "array":
                assert all(t is None for _, t in batches)
            else:
                t = np.concatenate([t for _, t in batches])
                np.testing.assert_array_equal(t, x[:, 0].astype(np.int64) * 10)  # x, t agree
            if not shuffle:
                np.testing.assert_array_equal(x[:, 0], np.arange(n))

    @_settings
    @hypothesis.given(
        n=st.integers(1, 40), batch_size=st.integers(1, 45), stop=st.integers(0, 50),
        kind=st.sampled_from(["fast", "per-sample"]), seed=st.integers(0, 2**32),
    )
    def test_resume_anywhere(n, batch_size, stop, kind, seed):
        straight = DataLoader(_dataset(kind, n), batch_size, seed=seed)
        stop = stop % (len(straight) + 1)
        _take(straight, stop)
        state = straight.state_dict()
        expected = [list(straight), list(straight)]
        resumed = DataLoader(_dataset(kind, n), batch_size, seed=seed + 1)
        resumed.load_state_dict(state)
        _assert_same_batches(list(resumed), expected[0])
        _assert_same_batches(list(resumed), expected[1])

    @_settings
    @hypothesis.given(n=st.integers(1, 80), batch_size=st.integers(1, 80))
    def test_seq_loader_offsets(n, batch_size):
        hypothesis.assume(batch_size <= n)
        loader = SeqDataLoader(_Range(n), batch_size)
        jump = n // batch_size
        rows = np.stack([t // 10 for _, t in loader])  # (jump, batch_size) of indices
        assert rows.shape == (jump, batch_size)
        np.testing.assert_array_equal(rows, np.arange(jump)[:, None]
                                      + jump * np.arange(batch_size)[None, :])
        assert len(np.unique(rows)) == rows.size  # each step at most once per epoch
