"""Shared fixtures: the array module (NumPy always, CuPy where a GPU exists) and dtypes.

Every test that computes on arrays takes ``xp`` and builds its inputs with it, so the
same test runs on the GPU without a copy of the file.
"""

import numpy as np
import pytest

from zerograd import cuda


def _array_modules():
    yield pytest.param(np, id="numpy")
    if cuda.gpu_enable:
        import cupy

        yield pytest.param(cupy, id="cupy", marks=pytest.mark.gpu)
    else:
        yield pytest.param(
            None,
            id="cupy",
            marks=pytest.mark.skip(reason="no usable CUDA device (CuPy missing or no GPU)"),
        )


@pytest.fixture(params=list(_array_modules()))
def xp(request):
    """numpy, or cupy on a machine with a usable GPU."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
