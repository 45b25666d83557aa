"""zerograd.cuda: the NumPy/CuPy switch, and what `import zerograd` must not import."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zerograd import Variable, cuda
from zerograd.core import Mul
from zerograd.functions import exp, square


def _run(code, **env):
    environment = dict(os.environ, **env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# ---- NumPy ------------------------------------------------------------------------------
def test_get_array_module_on_numpy():
    assert cuda.get_array_module(np.ones(2)) is np
    assert cuda.get_array_module(Variable(np.ones(2))) is np
    assert cuda.get_array_module(1.0) is np


def test_as_numpy():
    a = np.ones(3)
    assert cuda.as_numpy(a) is a
    s = cuda.as_numpy(2.0)
    assert isinstance(s, np.ndarray) and s.shape == () and float(s) == 2.0
    assert isinstance(cuda.as_numpy(np.float32(1.0)), np.ndarray)
    np.testing.assert_array_equal(cuda.as_numpy([1, 2]), [1, 2])


def test_device_name_of_a_numpy_array():
    assert cuda.device_name(np.ones(2)) == "cpu"


def test_to_cpu_on_the_cpu_is_a_no_op():
    x = Variable(np.ones(2))
    data = x.data
    assert x.to_cpu() is x
    assert x.data is data


@pytest.mark.skipif(cuda.gpu_enable, reason="a GPU is usable here")
def test_without_a_gpu_as_cupy_explains():
    with pytest.raises(RuntimeError, match=r"as_cupy.*CUDA.*cupy"):
        cuda.as_cupy(np.ones(2))
    with pytest.raises(RuntimeError, match="CUDA"):
        Variable(np.ones(2)).to_gpu()


# ---- subprocesses: environment and imports ----------------------------------------------
def test_cpu_only_switch_turns_gpu_off():
    out = _run(
        """
        from zerograd import cuda
        print(cuda.gpu_enable)
        """,
        ZEROGRAD_CPU_ONLY="1",
    )
    assert out == "False"


def test_gpu_enable_is_a_bool():
    assert isinstance(cuda.gpu_enable, bool)


def test_unknown_attribute_of_cuda():
    with pytest.raises(AttributeError, match="zerograd.cuda"):
        cuda.gpu_enabled  # noqa: B018 (a typo must not pass silently)


def test_import_zerograd_imports_no_optional_dependency():
    out = _run(
        """
        import sys
        import numpy as np
        import zerograd
        import zerograd.functions as F
        x = zerograd.Variable(np.array(0.5))
        F.square(F.exp(x)).backward()
        heavy = ("cupy", "cupyx", "matplotlib", "PIL", "tqdm", "torch", "IPython")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    assert out == "[]"


# ---- NumPy and CuPy through the xp fixture ---------------------------------------------
def test_get_array_module_and_as_numpy(xp):
    a = xp.arange(3.0)
    assert cuda.get_array_module(a) is xp
    assert cuda.get_array_module(Variable(a)) is xp
    host = cuda.as_numpy(a)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, [0.0, 1.0, 2.0])


def test_backward_stays_on_the_device(xp):
    x = Variable(xp.asarray(0.5))
    y = square(exp(square(x)))
    y.backward()
    assert cuda.get_array_module(x.grad.data) is xp
    assert float(x.grad.data) == pytest.approx(3.297442541400256, rel=1e-15)


@pytest.mark.gpu
def test_variable_round_trip(xp):
    if xp is np:
        pytest.skip("needs CuPy")
    x = Variable(np.arange(3.0))
    (x * x).sum().backward()
    x.to_gpu()
    assert cuda.get_array_module(x.data) is xp
    assert cuda.get_array_module(x.grad.data) is xp
    assert cuda.device_name(x.data).startswith("gpu:")
    x.to_cpu()
    assert isinstance(x.data, np.ndarray) and isinstance(x.grad.data, np.ndarray)
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0, 4.0])
    assert cuda.as_cupy(np.ones(2)).__class__ is xp.ndarray


@pytest.mark.gpu
def test_mixing_devices_is_explained(xp):
    if xp is np:
        pytest.skip("needs CuPy")
    a = Variable(xp.ones(2))
    b = Variable(np.ones(2))
    with pytest.raises(TypeError, match="different devices"):
        Mul()(a, b)
