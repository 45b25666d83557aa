"""The array helpers the functions' formulas share (zerograd.functions._arrays), and the
size-dependent paths they give the functions: each path must give the same values."""

import math

import numpy as np
import pytest

import zerograd.functions as F
from zerograd.functions import _arrays
from zerograd.functions._arrays import (
    BLOCK_SIZE,
    CLIP_MIN_SIZE,
    IN_PLACE_MIN_SIZE,
    blockwise,
    clamp,
    in_place,
    log1p_of_fraction,
    scale_by,
)


@pytest.mark.parametrize("n", [3, IN_PLACE_MIN_SIZE + 5])
def test_scale_by_and_in_place_are_products_whatever_the_size(n):
    a, b = np.linspace(0.5, 2.0, n), np.linspace(-1.0, 1.0, n)
    expected = a * b
    np.testing.assert_array_equal(scale_by(a.copy(), b), expected)
    np.testing.assert_array_equal(in_place(np.divide, a.copy(), b + 3), a / (b + 3))
    # a stack of gradients (extra leading axes) never goes in place
    stack = np.stack([b, 2 * b])
    got = scale_by(a.copy(), stack)
    assert got.shape == (2, n)
    np.testing.assert_array_equal(got, a * stack)
    # NumPy's dtype rules hold on both sides of the size threshold
    assert scale_by(a.astype(np.float32), b).dtype == np.float64


def test_large_temporaries_are_written_in_place_and_small_ones_are_not():
    big = np.ones(IN_PLACE_MIN_SIZE)
    assert scale_by(big, big) is big
    small = np.ones(3)
    assert scale_by(small, small) is not small


@pytest.mark.parametrize("n", [5, CLIP_MIN_SIZE + 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_clamp_is_minimum_and_maximum(n, dtype):
    x = (np.linspace(-3, 3, n) * 7).astype(dtype)
    x_float = x.astype(np.float64)
    for lower, upper in ((0, None), (None, 2), (-1, 2)):
        got = clamp(x, lower=lower, upper=upper)
        expected = x_float
        if lower is not None:
            expected = np.maximum(expected, lower)
        if upper is not None:
            expected = np.minimum(expected, upper)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, expected.astype(dtype))
    if dtype != np.int64:
        x[0] = np.nan
        assert np.isnan(clamp(x, lower=0.0)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_of_fraction_is_log1p_to_a_few_roundings(dtype):
    u = np.concatenate([np.linspace(0, 1, CLIP_MIN_SIZE + 1), np.logspace(-30, 0, 5000)])
    u = u.astype(dtype)
    got = log1p_of_fraction(u).astype(np.float64)
    assert log1p_of_fraction(u).dtype == dtype
    expected = np.log1p(u.astype(np.float64))
    rel = np.abs(got - expected) / np.maximum(expected, np.finfo(dtype).tiny)
    assert rel.max() <= 3 * np.finfo(dtype).eps


def test_blockwise_gives_the_formula_of_the_whole_array():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, BLOCK_SIZE // 2 + 7))  # several blocks, a partial last one
    y = rng.standard_normal(x.shape)
    got = blockwise(lambda a, b: a * b + np.exp(a), x, y)
    np.testing.assert_array_equal(got, x * y + np.exp(x))
    assert got.shape == x.shape
    # a stack of gradients of another shape goes to the formula whole
    stack = np.stack([y, y])
    np.testing.assert_array_equal(blockwise(lambda a, b: a * b, x, stack), x * stack)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_and_gelu_agree_across_their_size_dependent_paths(dtype, monkeypatch):
    # element by element (math.erf) up to 64 elements, vectorised above, in blocks above
    # BLOCK_SIZE: the same values to about a rounding
    monkeypatch.setattr(_arrays, "BLOCK_SIZE", 1000)  # blocks without a huge array
    x = np.linspace(-7, 7, 2501).astype(dtype)
    tol = 8 * np.finfo(dtype).eps
    erf_blocks = F.erf(x).data
    gelu_blocks = F.gelu(x).data
    expected = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(erf_blocks, expected, rtol=tol, atol=np.finfo(dtype).tiny)
    erf_each = np.concatenate([F.erf(x[k:k + 50]).data for k in range(0, x.size, 50)])
    gelu_each = np.concatenate([F.gelu(x[k:k + 50]).data for k in range(0, x.size, 50)])
    np.testing.assert_allclose(erf_each, erf_blocks, rtol=tol, atol=np.finfo(dtype).tiny)
    # GELU's lower tail, x Phi(x) = x erfc(-x / sqrt 2) / 2, inherits erfc's sensitivity
    # to the rounding of its argument: a relative x^2 eps (docs of functions.math)
    x64 = x.astype(np.float64)
    bound = tol * np.maximum(1, x64 * x64) * np.abs(gelu_blocks) + np.finfo(dtype).tiny
    assert (np.abs(gelu_each - gelu_blocks) <= bound).all()
