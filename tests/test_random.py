"""zerograd.random: zerograd's own generators, book mode, and the state for checkpoints."""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
import zerograd.random as R
from zerograd.cuda import as_numpy


@pytest.fixture(autouse=True)
def _fresh():
    yield
    R.set_book_mode(False)
    R.seed(None)


@pytest.fixture
def book_mode():
    R.set_book_mode(True)
    yield


def _global_state():
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return key.copy(), pos, has_gauss, cached


def _assert_global_state(before):
    after = _global_state()
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1:] == before[1:]


# ---- outside book mode ------------------------------------------------------------------
def test_seed_makes_weights_and_masks_reproducible():
    def draw():
        return L.Linear(4, in_size=3).W.data, F.dropout(np.ones(50)).data

    zerograd.seed(5)
    w1, m1 = draw()
    zerograd.seed(5)
    w2, m2 = draw()
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(m1, m2)
    zerograd.seed(6)
    assert not np.array_equal(draw()[0], w1)


def test_weights_and_dropout_have_separate_generators():
    R.seed_weights(1)
    a = L.Linear(3, in_size=3).W.data
    R.seed_weights(1)
    F.dropout(np.ones(100))  # a mask drawn in between does not move the weights' stream
    np.testing.assert_array_equal(L.Linear(3, in_size=3).W.data, a)


def test_nothing_touches_numpys_global_generator():
    np.random.seed(123)
    before = _global_state()
    zerograd.seed(0)
    L.Linear(3, in_size=2)
    L.Conv2d(2, 3, in_channels=1)
    L.EmbedID(4, 2)
    F.dropout(np.ones((3, 3)))
    R.get_state()
    _assert_global_state(before)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_normal_dtype_and_scale(dtype):
    R.seed_weights(0)
    w = R.normal((400, 50), 0.5, dtype)
    assert w.dtype == dtype and w.shape == (400, 50)
    assert abs(float(w.astype(np.float64).std()) - 0.5) < 0.02


def test_normal_on_the_device(xp):
    R.seed_weights(0)
    w = R.normal((3, 2), 1.0, np.float32, xp)
    R.seed_weights(0)
    # Drawn on the CPU either way: the same values on NumPy and CuPy.
    np.testing.assert_array_equal(as_numpy(w), R.normal((3, 2), 1.0, np.float32))


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.9])
def test_keep_mask(xp, ratio):
    R.seed_dropout(0)
    keep = as_numpy(R.keep_mask((200, 100), ratio, xp))
    assert keep.dtype == bool and abs(keep.mean() - (1 - ratio)) < 0.01


def test_state_round_trip():
    zerograd.seed(7)
    F.dropout(np.ones(10))  # the dropout generator exists and has moved
    state = R.get_state()
    a = (L.Linear(3, in_size=2).W.data, F.dropout(np.ones(20)).data)
    R.seed(99)
    L.Linear(3, in_size=2)
    R.set_state(state)
    b = (L.Linear(3, in_size=2).W.data, F.dropout(np.ones(20)).data)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert "numpy_global" not in state  # outside book mode NumPy's is not ours to keep


# ---- book mode ---------------------------------------------------------------------------
def test_book_mode_switch():
    assert not R.book_mode()
    R.set_book_mode(True)
    assert R.book_mode()
    R.set_book_mode(0)
    assert R.book_mode() is False


def test_book_mode_normal_is_the_originals_draw(book_mode):
    np.random.seed(0)
    w = R.normal((3, 4), np.sqrt(1 / 3), np.float32)
    np.random.seed(0)
    expected = np.random.randn(3, 4).astype(np.float32)
    # NumPy 1, with which the book was printed, scaled a float32 array by a float64
    # scalar in float32: the scale rounded to float32, the product rounded to float32.
    expected = expected * np.float32(np.sqrt(1 / 3))
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, expected)


def test_book_mode_normal_float64_and_unit_scale(book_mode):
    np.random.seed(1)
    w = R.normal((2, 5), 1.0, np.float64)
    np.random.seed(1)
    np.testing.assert_array_equal(w, np.random.randn(2, 5))


def test_book_mode_seed_leaves_numpys_generator_alone(book_mode):
    np.random.seed(3)
    before = _global_state()
    zerograd.seed(0)  # zerograd's generators only, also in book mode
    _assert_global_state(before)


def test_book_mode_state_includes_numpys_generator(book_mode):
    np.random.seed(11)
    state = R.get_state()
    a = R.normal((5,), 1.0, np.float64)
    np.random.seed(12)
    R.set_state(state)
    np.testing.assert_array_equal(R.normal((5,), 1.0, np.float64), a)


def test_a_float16_model_starts_from_its_float32_twin():
    zerograd.seed(0)
    w32 = L.Linear(3, in_size=4).W.data
    zerograd.seed(0)
    w16 = L.Linear(3, in_size=4, dtype=np.float16).W.data
    assert w16.dtype == np.float16
    np.testing.assert_array_equal(w16, w32.astype(np.float16))


def test_dropout_on_float16_draws_float32_uniforms():
    R.seed_dropout(0)
    y = F.dropout(np.ones(1000, dtype=np.float16), 0.25)
    R.seed_dropout(0)
    keep = R.keep_mask((1000,), 0.25, dtype=np.float32)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.data != 0, keep)
