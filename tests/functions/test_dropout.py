"""Tests for dropout (zerograd.functions.regularization), in and out of book mode."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.random
from zerograd import Variable, test_mode
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward


@pytest.fixture(autouse=True)
def _restore_seed():
    yield
    zerograd.random.seed_dropout(None)


@pytest.fixture
def book_mode():
    zerograd.random.set_book_mode(True)
    yield
    zerograd.random.set_book_mode(False)


def _ones(xp, shape, dtype):
    return xp.ones(shape, dtype=dtype)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.8])
def test_drops_the_expected_fraction_and_scales_the_rest(xp, dtype, ratio):
    zerograd.random.seed_dropout(0)
    y = F.dropout(_ones(xp, (100, 100), dtype), ratio)
    data = as_numpy(y.data)
    assert y.dtype == dtype
    kept = data != 0
    assert abs(1 - kept.mean() - ratio) < 0.02
    np.testing.assert_allclose(data[kept], 1 / (1 - ratio), rtol=1e-6)
    assert abs(data.mean() - 1) < 0.05  # inverted dropout keeps the expectation


def test_test_mode_is_the_identity(xp, dtype):
    x = Variable(_ones(xp, (3, 4), dtype))
    with test_mode():
        y = F.dropout(x, 0.5)
    assert y is x


def test_ratio_zero_is_the_identity(xp):
    x = Variable(_ones(xp, (3, 4), np.float32))
    assert F.dropout(x, 0.0) is x


def test_seed_makes_masks_reproducible(xp):
    x = _ones(xp, (50,), np.float32)
    zerograd.random.seed_dropout(123)
    a = as_numpy(F.dropout(x).data)
    b = as_numpy(F.dropout(x).data)
    zerograd.random.seed_dropout(123)
    c = as_numpy(F.dropout(x).data)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)  # the stream moves on between calls


def test_rng_argument(rng):
    x = np.ones(50)
    a = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    b = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    c = F.dropout(x, 0.5, rng=np.random.RandomState(7)).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(c)) <= {0.0, 2.0}


def test_rng_argument_on_the_gpu(xp):
    if xp is np:
        pytest.skip("CuPy generator")
    x = xp.ones(50, dtype=xp.float32)
    a = F.dropout(x, 0.5, rng=xp.random.RandomState(7)).data
    b = F.dropout(x, 0.5, rng=xp.random.RandomState(7)).data
    c = F.dropout(x, 0.5, rng=xp.random.default_rng(7)).data  # CuPy's Generator
    assert a.dtype == c.dtype == np.float32
    np.testing.assert_array_equal(as_numpy(a), as_numpy(b))


def test_gradient_is_the_mask(xp, dtype):
    zerograd.random.seed_dropout(1)
    x = Variable(xp.asarray(np.arange(1.0, 13.0).reshape(3, 4).astype(dtype)))
    y = F.dropout(x, 0.25)
    y.backward()
    assert x.grad.dtype == dtype
    mask = as_numpy(y.data) / as_numpy(x.data)
    np.testing.assert_allclose(as_numpy(x.grad.data), mask, rtol=1e-6)


def test_numerical_first_and_second_order(xp, rng):
    # float64 only: the checks take differences in float64, and a float32 call draws
    # its uniforms in float32, so its mask differs (test_gradient_is_the_mask covers it).
    x = xp.asarray(rng.standard_normal((3, 4)))

    def f(v):  # the same mask on every call
        gen = np.random.default_rng(3) if xp is np else xp.random.RandomState(3)
        return F.dropout(v, 0.4, rng=gen)

    check_backward(f, x)
    check_double_backward(f, x)


def test_integer_input_gets_a_float_mask():
    y = F.dropout(np.ones(10, dtype=np.int64), 0.5, rng=np.random.default_rng(0))
    assert y.dtype.kind == "f"


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match=r"dropout: dropout_ratio must be in \[0, 1\)"):
        F.dropout(np.ones(3), ratio)


def test_the_module_is_not_hidden_by_the_function():
    import zerograd.functions.regularization as module

    assert F.dropout is module.dropout and not hasattr(F, "Dropout")


# ---- book mode: the original DeZero's masks and formula -------------------------------
def test_book_mode_draws_the_original_mask_from_the_global_generator(book_mode, dtype):
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(dtype)
    np.random.seed(0)
    y = F.dropout(x, 0.3)
    np.random.seed(0)
    mask = np.random.rand(4, 5) > 0.3  # the original's draw
    expected = x * mask / np.array(1.0 - 0.3).astype(dtype)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, expected)  # the same rounding too


def test_book_mode_backward_is_mask_over_scale(book_mode):
    x = Variable(np.arange(1.0, 11.0))
    np.random.seed(5)
    y = F.dropout(x, 0.2)
    y.backward()
    np.random.seed(5)
    mask = np.random.rand(10) > 0.2
    np.testing.assert_array_equal(x.grad.data, mask / np.array(0.8))


def test_book_mode_seed_inside_f_fixes_the_mask(book_mode, rng):
    # The book's tests/test_dropout.py checks gradients this way.
    def f(v):
        np.random.seed(0)
        return F.dropout(v, 0.5)

    check_backward(f, rng.standard_normal((3, 4)))


def test_book_mode_keeps_an_explicit_rng(book_mode):
    a = F.dropout(np.ones(20), 0.5, rng=np.random.default_rng(3)).data
    zerograd.random.set_book_mode(False)
    b = F.dropout(np.ones(20), 0.5, rng=np.random.default_rng(3)).data
    np.testing.assert_array_equal(a, b)


def test_outside_book_mode_the_global_generator_is_untouched():
    np.random.seed(11)
    before = np.random.get_state()[1].copy()
    F.dropout(np.ones(100), 0.5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
