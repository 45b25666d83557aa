"""Tests for the normalisation layers: BatchNorm and LayerNorm."""

import math
import re

import numpy as np
import pytest

import zerograd.layers as L
from zerograd import test_mode
from zerograd.cuda import as_numpy


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


def _snapshot(layer):
    return {k: as_numpy(v).copy() for k, v in layer.state_dict().items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---- LayerNorm ----------------------------------------------------------------------------
def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32)
    ln = L.LayerNorm()
    y = ln(x)
    assert ln.gamma.shape == (5,)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (5,), eps=1e-5).numpy()
    np.testing.assert_allclose(y.data, expected, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"size": 0}, ValueError, "LayerNorm: size (the length of the last axis) must be a "
                              "positive integer or None (taken from the first input), got 0"),
    ({"size": 2.0}, TypeError, "LayerNorm: size"),
    ({"eps": 0}, ValueError, "LayerNorm: eps must be a positive finite number, got 0"),
    ({"eps": -1e-5}, ValueError, "LayerNorm: eps must be a positive finite number"),
    ({"eps": math.inf}, ValueError, "LayerNorm: eps"),
    ({"eps": math.nan}, ValueError, "LayerNorm: eps"),
    ({"eps": "1e-5"}, TypeError, "LayerNorm: eps must be a positive finite number, got "
                                 "'1e-5' (str)"),
    ({"dtype": np.int64}, ValueError, "LayerNorm: dtype"),
    ({"eps": 1e-50}, ValueError, "LayerNorm: eps=1e-50 is 0 in float32; give at least 1.4e-45"),
    ({"eps": 1e-8, "dtype": np.float16}, ValueError, "LayerNorm: eps=1e-08 is 0 in float16"),
    ({"dtype": "no such type"}, TypeError, "LayerNorm: dtype"),
])
def test_layer_norm_refuses_bad_arguments_when_made(kwargs, error, message):
    with pytest.raises(error) as info:
        L.LayerNorm(**kwargs)
    assert message in str(info.value)


# ---- BatchNorm ------------------------------------------------------------------------------
def test_batch_norm_running_stats_are_buffers(rng):
    bn = L.BatchNorm()
    x = (rng.standard_normal((8, 3, 2, 2)) * 3 + 1).astype(np.float32)
    y = bn(x)
    assert y.shape == x.shape and bn.avg_mean.shape == (3,)
    assert list(bn.state_dict()) == ["gamma", "beta", "avg_mean", "avg_var"]
    assert [p.name for p in bn.params()] == ["gamma", "beta"]
    np.testing.assert_allclose(bn.avg_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    with test_mode():
        before = bn.avg_mean.copy()
        y_test = bn(x)
        np.testing.assert_array_equal(bn.avg_mean, before)
    expected = (x - bn.avg_mean[:, None, None]) / np.sqrt(bn.avg_var[:, None, None] + 2e-5)
    np.testing.assert_allclose(y_test.data, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_stats_survive_save_and_load(tmp_path, rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    bn = L.BatchNorm()
    for _ in range(3):
        bn(x + 2)
    bn.save_weights(tmp_path / "bn.npz")
    fresh = L.BatchNorm()
    fresh.load_weights(tmp_path / "bn.npz")
    _assert_same(_snapshot(bn), _snapshot(fresh))
    with test_mode():
        np.testing.assert_array_equal(bn(x).data, fresh(x).data)


@pytest.mark.parametrize("shape, per_channel", [((0, 3), 0), ((1, 3), 1), ((0, 3, 4, 4), 0),
                                                 ((1, 3, 1, 1), 1)])
def test_batch_norm_refuses_a_batch_without_statistics_and_changes_nothing(
        tmp_path, rng, shape, per_channel):
    # issue 13, item 2: a batch of 0 made the running averages NaN for good (and saved
    # them); a batch of 1 silently gave zeros
    bn = L.BatchNorm()
    good = rng.standard_normal((5,) + shape[1:]).astype(np.float32)
    bn(good)
    before = _snapshot(bn)
    message = (f"BatchNorm: training needs at least 2 values per channel for the batch "
               f"statistics, got an input of shape {shape} ({per_channel} per channel)")
    with pytest.raises(ValueError) as info:
        bn(np.ones(shape, dtype=np.float32))
    assert message in str(info.value) and "test_mode()" in str(info.value)
    _assert_same(before, _snapshot(bn))
    bn.save_weights(tmp_path / "bn.npz")
    fresh = L.BatchNorm()
    fresh.load_weights(tmp_path / "bn.npz")
    _assert_same(before, _snapshot(fresh))
    assert all(np.isfinite(v).all() for v in _snapshot(fresh).values())
    with test_mode():  # evaluating one sample is fine: it uses the running averages
        y = bn(np.ones(shape, dtype=np.float32))
    assert y.shape == shape and np.isfinite(y.data).all()


def test_batch_norm_refuses_a_first_batch_of_one_before_making_any_state():
    bn = L.BatchNorm()
    with pytest.raises(ValueError, match="BatchNorm: training needs at least 2 values"):
        bn(np.ones((1, 4), dtype=np.float32))
    assert bn.gamma.data is None and bn.avg_mean is None and repr(bn).startswith(
        "BatchNorm(size=None")
    with pytest.raises(ValueError, match=r"BatchNorm: expected an input of shape \(N, C\)"):
        bn(np.ones(4, dtype=np.float32))


def test_batch_norm_trains_on_one_image_with_several_pixels(rng):
    # as PyTorch: the statistics are over the batch and the pixels of each channel
    bn = L.BatchNorm()
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    y = bn(x)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"decay": 1.5}, ValueError, "BatchNorm: decay must be a number in [0, 1], got 1.5; "
                                 "the weight of the old running average"),
    ({"decay": -0.1}, ValueError, "BatchNorm: decay must be a number in [0, 1]"),
    ({"decay": math.nan}, ValueError, "BatchNorm: decay"),
    ({"decay": None}, TypeError, "BatchNorm: decay must be a number in [0, 1], got None"),
    ({"eps": 0.0}, ValueError, "BatchNorm: eps must be a positive finite number, got 0.0"),
    ({"eps": -2e-5}, ValueError, "BatchNorm: eps"),
    ({"eps": math.inf}, ValueError, "BatchNorm: eps"),
    ({"eps": [2e-5]}, TypeError, "BatchNorm: eps"),
])
def test_batch_norm_refuses_bad_arguments_when_made(kwargs, error, message):
    with pytest.raises(error) as info:
        L.BatchNorm(**kwargs)
    assert message in str(info.value)


def test_batch_norm_refuses_an_eps_that_is_zero_in_the_inputs_dtype():
    bn = L.BatchNorm(eps=1e-10)
    with pytest.raises(ValueError, match="BatchNorm: eps=1e-10 is 0 in float16"):
        bn(np.ones((4, 2), dtype=np.float16))
    assert bn.gamma.data is None
    assert bn(np.ones((4, 2), dtype=np.float32)).shape == (4, 2)


def test_a_feature_of_one_value_normalises_to_zero_not_nan():
    # the variance of one value is 0: 0 / sqrt(eps) needs an eps that is not 0
    y = L.LayerNorm(1, eps=1e-44)(np.array([[3.0], [-2.0]], dtype=np.float32))
    np.testing.assert_array_equal(y.data, 0)


@pytest.mark.parametrize("decay", [0, 1, 0.0, 1.0, np.float32(0.5)])
def test_batch_norm_takes_decays_at_both_ends(decay, rng):
    bn = L.BatchNorm(decay=decay)
    bn(rng.standard_normal((4, 2)).astype(np.float32))
    assert np.isfinite(bn.avg_mean).all() and type(bn.decay) is float


def test_repr_shows_size_decay_and_eps():
    bn = L.BatchNorm(decay=0.95)
    assert repr(bn) == "BatchNorm(size=None, decay=0.95, eps=2e-05)"
    bn(np.zeros((2, 6), dtype=np.float32))
    assert repr(bn) == "BatchNorm(size=6, decay=0.95, eps=2e-05)"
    assert repr(L.LayerNorm(32, eps=1e-6)) == "LayerNorm(size=32, eps=1e-06)"
    assert repr(L.LayerNorm(dtype=np.float64)) == "LayerNorm(size=None, eps=1e-05, dtype=float64)"


# ---- loading into a layer that has not seen an input yet ----------------------------------
def _bn_state(size=3, dtype=np.float32):
    return {"gamma": np.ones(size, dtype), "beta": np.zeros(size, dtype),
            "avg_mean": np.zeros(size, dtype), "avg_var": np.ones(size, dtype)}


@pytest.mark.parametrize("change, message", [
    (lambda s: dict(s, beta=np.zeros(5, np.float32)),
     "'beta': size 5 on axis 0, but 'gamma' has 3 there"),
    (lambda s: dict(s, avg_var=np.ones((3, 1), np.float32)),
     "'avg_var': shape (3, 1) given, the layer expects (?,)"),
    (lambda s: dict(s, avg_mean=np.array(["a", "b", "c"])),
     "'avg_mean': dtype <U1 given, the layer expects a floating-point dtype"),
    (lambda s: dict(s, avg_var=np.ones(3, np.int8)),
     "'avg_var': dtype int8 given, the layer expects a floating-point dtype"),
    (lambda s: dict(s, gamma=np.ones(3, np.int64)),
     "'gamma': dtype int64 given, the layer expects a floating-point dtype"),
])
def test_an_unbuilt_batch_norm_loads_only_float_vectors_of_one_size(change, message):
    # (it used to accept any arrays: wrong sizes, strings, int8)
    bn = L.BatchNorm()
    with pytest.raises(ValueError, match=re.escape(message)):
        bn.load_state_dict(change(_bn_state()))
    assert bn.gamma.data is None and bn.avg_mean is None  # nothing was loaded


def test_an_unbuilt_batch_norm_loads_a_good_state_and_runs(rng):
    source = L.BatchNorm()
    source(rng.standard_normal((8, 3)).astype(np.float32))
    bn = L.BatchNorm()
    bn.load_state_dict(source.state_dict())
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with test_mode():
        np.testing.assert_array_equal(bn(x).data, source(x).data)
    assert bn.size == 3


def test_a_built_batch_norm_checks_the_common_size_against_its_own():
    bn = L.BatchNorm()
    bn(np.ones((4, 3), np.float32) * np.arange(4, dtype=np.float32)[:, None])
    message = "'gamma': shape (5,) given, the layer has (3,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        bn.load_state_dict(_bn_state(5))


@pytest.mark.parametrize("state, message", [
    ({"gamma": np.ones(3, np.float32), "beta": np.zeros(4, np.float32)},
     "'beta': size 4 on axis 0, but 'gamma' has 3 there"),
    ({"gamma": np.ones((3, 2), np.float32), "beta": np.zeros(3, np.float32)},
     "'gamma': shape (3, 2) given, the layer expects (?,)"),
    ({"gamma": np.ones(3, np.float64), "beta": np.zeros(3, np.float64)},
     "'gamma': dtype float64 given, the layer has float32"),
    ({"gamma": np.array(["x"]), "beta": np.zeros(1, np.float32)},
     "'gamma': dtype <U1 given, the layer expects a floating-point dtype"),
])
def test_an_unbuilt_layer_norm_checks_what_it_loads(state, message):
    ln = L.LayerNorm()
    with pytest.raises(ValueError, match=re.escape(message)):
        ln.load_state_dict(state)
    assert ln.gamma.data is None
