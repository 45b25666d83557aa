"""Tests for the convolution layers: Conv2d and Deconv2d."""

import numpy as np
import pytest

import zerograd.layers as L


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


def test_conv_layers_infer_channels(xp):
    x = xp.asarray(np.ones((2, 3, 6, 6), dtype=np.float32))
    conv = L.Conv2d(4, kernel_size=3, stride=1, pad=1)
    deconv = L.Deconv2d(5, kernel_size=(2, 2), stride=2, nobias=True)
    if xp is not np:
        conv.to_gpu()
    y = conv(x)
    assert conv.W.shape == (4, 3, 3, 3) and y.shape == (2, 4, 6, 6)
    z = deconv(y)
    assert deconv.W.shape == (4, 5, 2, 2) and deconv.b is None and z.shape == (2, 5, 12, 12)
    assert z.dtype == np.float32


@pytest.mark.parametrize("cls", [L.Conv2d, L.Deconv2d])
@pytest.mark.parametrize("kwargs, error, message", [
    ({"out_channels": 0, "kernel_size": 3}, ValueError,
     "out_channels (the number of output channels) must be a positive integer, got 0"),
    ({"out_channels": 4, "kernel_size": 0}, ValueError,
     "kernel_size must be a positive integer or a pair of them (height, width), got 0"),
    ({"out_channels": 4, "kernel_size": (3, -1)}, ValueError, "kernel_size must be"),
    ({"out_channels": 4, "kernel_size": (3, 3, 3)}, TypeError,
     "kernel_size must be a positive integer or a pair of them (height, width), got "
     "(3, 3, 3) (tuple)"),
    ({"out_channels": 4, "kernel_size": 2.5}, TypeError, "kernel_size must be"),
    ({"out_channels": 4, "kernel_size": 3, "stride": 0}, ValueError,
     "stride must be a positive integer or a pair of them"),
    ({"out_channels": 4, "kernel_size": 3, "pad": -1}, ValueError,
     "pad must be an integer >= 0 or a pair of them (height, width), got -1"),
    ({"out_channels": 4, "kernel_size": 3, "pad": "same"}, TypeError, "pad must be"),
    ({"out_channels": 4, "kernel_size": 3, "in_channels": 0}, ValueError, "in_channels"),
    ({"out_channels": 4, "kernel_size": 3, "nobias": 1}, TypeError, "nobias must be True"),
    ({"out_channels": 4, "kernel_size": 3, "dtype": bool}, ValueError, "dtype must be"),
])
def test_bad_arguments_are_refused_when_made(cls, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert str(info.value).startswith(f"{cls.__name__}: ")
    assert message in str(info.value)


def test_pairs_and_numpy_integers_are_taken():
    conv = L.Conv2d(np.int64(2), kernel_size=[2, 3], stride=(1, np.int32(2)), pad=(0, 1))
    assert conv.kernel_size == (2, 3) and conv.stride == (1, 2) and conv.pad == (0, 1)
    y = conv(np.ones((1, 1, 5, 5), dtype=np.float32))
    assert y.shape == (1, 2, 4, 3)


def test_repr_shows_channels_kernel_stride_and_pad():
    conv = L.Conv2d(16, kernel_size=3, pad=1)
    assert repr(conv) == ("Conv2d(in_channels=None, out_channels=16, kernel_size=3, "
                          "stride=1, pad=1)")
    conv(np.zeros((1, 3, 4, 4), dtype=np.float32))
    assert repr(conv).startswith("Conv2d(in_channels=3, out_channels=16")
    deconv = L.Deconv2d(1, (2, 3), stride=2, nobias=True, dtype=np.float64, in_channels=4)
    assert repr(deconv) == ("Deconv2d(in_channels=4, out_channels=1, kernel_size=(2, 3), "
                            "stride=2, pad=0, nobias=True, dtype=float64)")


@pytest.mark.parametrize("cls", [L.Conv2d, L.Deconv2d])
@pytest.mark.parametrize("shape", [(2, 0, 4, 4), (4, 4)])
def test_a_lazy_convolution_refuses_an_input_without_channels(cls, shape):
    layer = cls(3, kernel_size=2)
    with pytest.raises(ValueError, match=f"{cls.__name__}: cannot take in_channels from an "
                                         "input of shape"):
        layer(np.zeros(shape, dtype=np.float32))
    assert layer.W.data is None and layer.in_channels is None
