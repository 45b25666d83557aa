"""Tests for the fully connected and embedding layers: Linear, EmbedID."""

import re

import numpy as np
import pytest

import zerograd.layers as L
from zerograd.cuda import as_numpy


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_infers_input_size_and_keeps_dtype(xp, dtype):
    layer = L.Linear(3, dtype=dtype)
    assert layer.W.data is None
    if xp is not np:
        layer.to_gpu()
    x = xp.asarray(np.ones((2, 5, 4), dtype=dtype))
    y = layer(x)
    assert layer.W.shape == (4, 3) and layer.in_size == 4
    assert y.shape == (2, 5, 3) and y.dtype == dtype
    assert abs(float(as_numpy(layer.W.data).std()) - 0.5) < 0.3  # scale sqrt(1/4)
    y.sum().backward()
    assert layer.W.grad.dtype == dtype and layer.b.grad.shape == (3,)
    assert L.Linear(3, nobias=True, in_size=2).b is None


def test_linear_wrong_input_size_raises():
    layer = L.Linear(3, in_size=4)
    with pytest.raises(ValueError, match="linear"):
        layer(np.ones((2, 5), dtype=np.float32))


def test_linear_takes_numpy_integers_and_dtype_names():
    layer = L.Linear(np.int64(3), dtype="float64", in_size=np.int32(2))
    assert (layer.out_size, layer.in_size) == (3, 2) and type(layer.out_size) is int
    assert layer.W.dtype == np.float64 and layer.b.dtype == np.float64


@pytest.mark.parametrize("kwargs, error, message", [
    # issue 13, item 9: "negative dimensions are not allowed", a bare ZeroDivisionError
    ({"out_size": -3}, ValueError,
     "Linear: out_size (the number of output features) must be a positive integer, got -3"),
    ({"out_size": 2, "in_size": 0}, ValueError,
     "Linear: in_size (the number of input features) must be a positive integer or None "
     "(taken from the first input), got 0"),
    ({"out_size": 0}, ValueError, "Linear: out_size"),
    ({"out_size": 2.0}, TypeError, "Linear: out_size (the number of output features) must "
                                   "be a positive integer, got 2.0 (float)"),
    ({"out_size": True}, TypeError, "Linear: out_size"),
    ({"out_size": "10"}, TypeError, "got '10' (str)"),
    ({"out_size": None}, TypeError, "Linear: out_size"),
    ({"out_size": 2, "in_size": -1}, ValueError, "Linear: in_size"),
    ({"out_size": 2, "nobias": "no"}, TypeError, "Linear: nobias must be True or False"),
    ({"out_size": 2, "dtype": np.int32}, ValueError,
     "Linear: dtype must be a floating-point dtype such as np.float32"),
    ({"out_size": 2, "dtype": None}, TypeError, "Linear: dtype"),
    ({"out_size": 2, "dtype": "float"}, None, None),  # NumPy's name of float64: fine
])
def test_linear_refuses_bad_arguments_when_made(kwargs, error, message):
    if error is None:
        L.Linear(**kwargs)
        return
    with pytest.raises(error) as info:
        L.Linear(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("args, message", [
    ((0, 3), "EmbedID: in_size (the number of ids) must be a positive integer, got 0"),
    ((10, -1), "EmbedID: out_size"),
    ((10, 3.5), "EmbedID: out_size"),
])
def test_embed_id_refuses_bad_sizes(args, message):
    with pytest.raises((TypeError, ValueError)) as info:
        L.EmbedID(*args)
    assert message in str(info.value)
    with pytest.raises(ValueError, match="EmbedID: dtype"):
        L.EmbedID(10, 3, dtype=np.int64)


def test_embed_id(xp):
    embed = L.EmbedID(7, 3)
    if xp is not np:
        embed.to_gpu()
    ids = xp.asarray(np.array([[0, 6], [6, 2]]))
    y = embed(ids)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(as_numpy(y.data[0, 1]), as_numpy(embed.W.data[6]))


def test_repr_shows_sizes_then_what_differs_from_the_defaults():
    layer = L.Linear(10)
    assert repr(layer) == "Linear(in_size=None, out_size=10)"
    layer(np.zeros((1, 4), dtype=np.float32))
    assert repr(layer) == "Linear(in_size=4, out_size=10)"
    assert repr(L.Linear(3, nobias=True, dtype=np.float64, in_size=2)) == \
        "Linear(in_size=2, out_size=3, nobias=True, dtype=float64)"
    assert repr(L.Linear(3, in_size=2).astype(np.float16)) == \
        "Linear(in_size=2, out_size=3, dtype=float16)"
    assert repr(L.EmbedID(100, 8)) == "EmbedID(in_size=100, out_size=8)"


@pytest.mark.parametrize("shape", [(2, 0), ()])
def test_a_lazy_linear_refuses_an_input_without_features(shape):
    # issue 13 sweep: an input of 0 features made in_size 0, then a ZeroDivisionError
    layer = L.Linear(3)
    with pytest.raises(ValueError, match=r"Linear: cannot take in_size from an input of "
                                         rf"shape {re.escape(str(shape))}"):
        layer(np.zeros(shape, dtype=np.float32))
    assert layer.W.data is None and layer.in_size is None
