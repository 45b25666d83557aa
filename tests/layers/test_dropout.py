"""Tests for the dropout layer."""

import math

import numpy as np
import pytest

import zerograd.layers as L
from zerograd import test_mode


def test_dropout_layer():
    x = np.ones((200,), dtype=np.float32)
    with test_mode():
        np.testing.assert_array_equal(L.Dropout(0.5)(x).data, x)
    y = L.Dropout(0.5)(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).sum() < 200


def test_a_ratio_of_zero_keeps_everything():
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(L.Dropout(0)(x).data, x)


@pytest.mark.parametrize("ratio, error, message", [
    (1, ValueError, "Dropout: dropout_ratio must be a number in [0, 1), got 1; 1 would drop "
                    "every element"),
    (1.5, ValueError, "Dropout: dropout_ratio must be a number in [0, 1)"),
    (-0.1, ValueError, "Dropout: dropout_ratio"),
    (math.nan, ValueError, "Dropout: dropout_ratio"),
    ("0.5", TypeError, "Dropout: dropout_ratio must be a number in [0, 1), got '0.5' (str)"),
    (None, TypeError, "Dropout: dropout_ratio"),
])
def test_bad_ratios_are_refused_when_made(ratio, error, message):
    with pytest.raises(error) as info:
        L.Dropout(ratio)
    assert message in str(info.value)


def test_repr_shows_the_ratio():
    assert repr(L.Dropout()) == "Dropout(dropout_ratio=0.5)"
    assert repr(L.Dropout(0.1)) == "Dropout(dropout_ratio=0.1)"
