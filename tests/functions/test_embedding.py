"""Tests for zerograd.functions.embedding: embed_id.

The forward, first and second derivatives and PyTorch comparison run from ``op_db.py``;
this file keeps repeated ids, inputs as lists and Variables, and errors.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.cuda import as_numpy


def test_embed_id_repeated_ids_accumulate(xp):
    W = Variable(xp.zeros((3, 2), dtype=np.float32))
    ids = Variable(xp.asarray([[2, 0], [2, 2]]))
    y = F.embed_id(ids, W)
    y.backward()
    np.testing.assert_array_equal(as_numpy(W.grad.data), [[1, 1], [0, 0], [3, 3]])
    assert W.grad.dtype == np.float32


def test_embed_id_accepts_lists():
    W = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(F.embed_id([1, 1], W).data, [[2, 3], [2, 3]])


def test_embed_id_errors():
    W = np.zeros((3, 2))
    with pytest.raises(TypeError, match="embed_id: ids must be integers, got dtype float64"):
        F.embed_id(np.array([0.0, 1.0]), W)
    with pytest.raises(IndexError, match=r"embed_id: ids must lie in \[0, 3\)"):
        F.embed_id(np.array([0, 3]), W)
    with pytest.raises(IndexError, match=r"from -1 to 1"):
        F.embed_id(np.array([-1, 1]), W)
