"""DataLoader and SeqDataLoader: batching, shuffling, epochs, the whole-array fast path
and the jumping offsets of truncated BPTT."""

import numpy as np
import pytest

from zerograd import cuda
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import Dataset, MNISTSubset, Spiral
from zerograd.transforms import Compose, Flatten, Normalize, ToFloat


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


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        DataLoader(_Range(), batch_size=batch_size)


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
