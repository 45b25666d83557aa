"""Book mode: every random draw is the original DeZero's, from NumPy's global generator,
in its order and by its formulas (each expected value below is the original's formula
written out with NumPy)."""

import math

import numpy as np
import pytest

import zerograd.layers as L
import zerograd.random
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import SinCurve, Spiral, get_spiral
from zerograd.models import MLP


@pytest.fixture(autouse=True)
def book_mode():
    zerograd.random.set_book_mode(True)
    yield
    zerograd.random.set_book_mode(False)


def _scaled(shape, scale, dtype=np.float32):
    """The original's initial weights as NumPy 1 computed them (the book's NumPy)."""
    return np.random.randn(*shape).astype(dtype) * np.dtype(dtype).type(scale)


def test_linear_draws_at_construction_or_at_the_first_call():
    np.random.seed(0)
    eager = L.Linear(3, in_size=4)
    lazy = L.Linear(2)
    lazy(np.ones((1, 5)))
    np.random.seed(0)
    np.testing.assert_array_equal(eager.W.data, _scaled((4, 3), math.sqrt(1 / 4)))
    np.testing.assert_array_equal(lazy.W.data, _scaled((5, 2), math.sqrt(1 / 5)))
    assert not eager.b.data.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolution_weights(dtype):
    np.random.seed(1)
    conv = L.Conv2d(4, 3, dtype=dtype, in_channels=2)
    deconv = L.Deconv2d(5, (2, 3), dtype=dtype)
    deconv(np.ones((1, 3, 4, 4), dtype=dtype))
    np.random.seed(1)
    np.testing.assert_array_equal(conv.W.data, _scaled((4, 2, 3, 3), math.sqrt(1 / 18), dtype))
    np.testing.assert_array_equal(deconv.W.data,
                                  _scaled((3, 5, 2, 3), math.sqrt(1 / 18), dtype))


def test_embed_id_draws_standard_normals():
    np.random.seed(2)
    W = L.EmbedID(6, 3).W.data
    np.random.seed(2)
    # The original keeps them in float64; zerograd's EmbedID is float32 by default.
    np.testing.assert_array_equal(W, np.random.randn(6, 3).astype(W.dtype))


def test_mlp_draws_layer_by_layer_on_the_first_call():
    np.random.seed(0)
    model = MLP((10, 3))
    model(np.ones((1, 2)))
    np.random.seed(0)
    np.testing.assert_array_equal(model.l0.W.data, _scaled((2, 10), math.sqrt(1 / 2)))
    np.testing.assert_array_equal(model.l1.W.data, _scaled((10, 3), math.sqrt(1 / 10)))


def test_dataloader_shuffles_with_the_global_generator():
    dataset = Spiral()
    np.random.seed(4)
    loader = DataLoader(dataset, batch_size=100)
    first = [t.copy() for _, t in loader]  # the order drawn in __init__
    second = [t.copy() for _, t in loader]  # drawn at the end of the first epoch
    np.random.seed(4)
    order1 = np.random.permutation(300)
    order2 = np.random.permutation(300)
    np.testing.assert_array_equal(np.concatenate(first), dataset.label[order1])
    np.testing.assert_array_equal(np.concatenate(second), dataset.label[order2])


def test_dataloader_without_shuffle_draws_nothing():
    np.random.seed(5)
    DataLoader(Spiral(), batch_size=30, shuffle=False)
    state = np.random.get_state()
    np.random.seed(5)
    Spiral()  # get_spiral reseeds, as the original's does
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])


def test_seq_dataloader_runs_the_originals_batches():
    dataset = SinCurve()
    n, b = len(dataset), 30
    loader = SeqDataLoader(dataset, batch_size=b)
    batches = [x.copy() for x, _ in loader]
    jump = n // b
    assert len(loader) == len(batches) == math.ceil(n / b)  # 34, not 33
    for i, x in enumerate(batches):
        index = [(k * jump + i) % n for k in range(b)]
        np.testing.assert_array_equal(x, dataset.data[index])


def test_get_spiral_reseeds_the_global_generator():
    # The book's later draws (step 48's shuffles) start from this state.
    np.random.seed(99)
    x, t = get_spiral(train=True)
    after = np.random.rand(3)
    np.random.seed(1984)
    np.random.randn(300)  # the 300 angle noises
    np.random.permutation(300)
    np.testing.assert_array_equal(np.random.rand(3), after)
    # and the data are the original's: point i of arm j at radius i/100
    np.random.seed(1984)
    noise = np.random.randn(3, 100) * 0.2
    order = np.random.permutation(300)
    j, i = np.divmod(order, 100)
    theta = j * 4.0 + 4.0 * i / 100 + noise[j, i]
    expected = np.stack([i / 100 * np.sin(theta), i / 100 * np.cos(theta)], 1)
    np.testing.assert_array_equal(x, expected.astype(np.float32))
    np.testing.assert_array_equal(t, j)


def test_get_spiral_test_split_uses_seed_2020():
    get_spiral(train=False)
    after = np.random.rand()
    np.random.seed(2020)
    np.random.randn(300)
    np.random.permutation(300)
    assert np.random.rand() == after


@pytest.mark.parametrize("train", [True, False])
def test_sin_curve_draws_its_noise_for_both_splits(train):
    np.random.seed(6)
    ds = SinCurve(train=train)
    after = np.random.rand()
    np.random.seed(6)
    noise = np.random.uniform(-0.05, 0.05, size=1000)
    x = np.linspace(0, 2 * np.pi, 1000)
    y = np.sin(x) + noise if train else np.cos(x)
    assert np.random.rand() == after  # the test split draws (and drops) the noise too
    assert ds.data.dtype == ds.label.dtype == np.float64  # the original's dtype
    np.testing.assert_array_equal(ds.data[:, 0], y[:-1])
    np.testing.assert_array_equal(ds.label[:, 0], y[1:])


def test_outside_book_mode_datasets_and_loaders_leave_numpy_alone():
    zerograd.random.set_book_mode(False)
    np.random.seed(8)
    before = np.random.get_state()[1].copy()
    loader = DataLoader(Spiral(), batch_size=100, seed=0)
    list(loader)
    SinCurve()
    seq = SeqDataLoader(SinCurve(), batch_size=30)
    assert len(seq) == 33  # zerograd's own: each sample once
    np.testing.assert_array_equal(np.random.get_state()[1], before)
