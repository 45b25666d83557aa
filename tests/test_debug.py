"""Anomaly detection and backward traces."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Config, Function, Variable
from zerograd.debug import BackwardTrace, detect_anomaly, saved_memory, trace_backward

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0) and friends


# ---- detect_anomaly --------------------------------------------------------------------------
def test_forward_log_of_zero(xp):
    x = Variable(xp.asarray([1.0, 0.0, 2.0]))
    with detect_anomaly():
        assert Config.detect_anomaly
        with pytest.raises(FloatingPointError, match=r"^Log\.forward produced Inf in output 0 "
                           r"of shape \(3,\) \(input shapes: \(3,\)\)"):
            F.log(x)
    assert not Config.detect_anomaly
    F.log(x)  # unchecked outside the block


def test_forward_nan_names_the_first_function(xp):
    x = Variable(xp.asarray([-1.0, 4.0]))
    with detect_anomaly(), pytest.raises(FloatingPointError, match=r"^Sqrt\.forward produced NaN"):
        F.exp(F.sqrt(x) * 2.0)


class _Root(Function):
    """sqrt, with a backward written with Functions (so that a Div runs inside it)."""

    saves = ("outputs",)

    def forward(self, x):
        return x**0.5

    def backward(self, gy):
        y = self.outputs[0]()
        return gy / (y * 2.0)  # d/dx sqrt(x) = 1 / (2 sqrt(x)): Inf at 0


@pytest.mark.parametrize("create_graph", [False, True])
def test_nan_inside_a_backward_names_that_backward(xp, create_graph):
    x = Variable(xp.asarray([0.0, 1.0]))
    with detect_anomaly():
        y = F.sum(_Root()(x) * 3.0)  # forward is finite: sqrt(0) = 0
        with pytest.raises(FloatingPointError) as info:
            y.backward(create_graph=create_graph)
    message = str(info.value)
    assert message.startswith(
        "_Root.backward produced NaN or Inf (input shapes: (2,); output-gradient shapes: (2,))"
    ), message
    assert "inside it, Div.forward produced Inf" in message


@pytest.mark.parametrize("create_graph", [False, True])
def test_backward_sqrt_of_zero(xp, create_graph):
    x = Variable(xp.asarray([0.0, 1.0]))
    with detect_anomaly():
        y = F.sum(F.sqrt(x) * 3.0)  # forward is finite: sqrt(0) = 0
        with pytest.raises(FloatingPointError, match=r"^Sqrt\.backward produced .*\(2,\)"):
            y.backward(create_graph=create_graph)


class _BadGrad(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        out = gy.data.copy()
        out[...] = np.nan
        return out  # an array straight from backward: checked by the engine


def test_backward_gradient_checked_by_engine(xp):
    x = Variable(xp.ones((2, 3)))
    with detect_anomaly():
        y = F.sum(_BadGrad()(x))
        with pytest.raises(
            FloatingPointError,
            match=r"^_BadGrad\.backward produced NaN in gradient for input 0 of shape \(2, 3\)",
        ):
            y.backward()


def test_detect_anomaly_as_decorator_and_switch_off():
    @detect_anomaly()
    def run():
        return F.log(np.array([0.0]))

    with pytest.raises(FloatingPointError, match="Log.forward"):
        run()
    with detect_anomaly(), detect_anomaly(False):
        assert np.isneginf(F.log(np.array([0.0])).data[0])


def test_finite_values_pass_unchanged():
    x = Variable(np.array([1.0, 2.0]))
    with detect_anomaly():
        y = F.sum(F.log(x) * F.sqrt(x))
        y.backward()
    np.testing.assert_allclose(x.grad.data, np.sqrt(x.data) / x.data + np.log(x.data) / (
        2 * np.sqrt(x.data)))


# ---- trace_backward ---------------------------------------------------------------------------
def test_trace_of_step_nine():
    x = Variable(np.array(0.5))
    y = F.square(F.exp(F.square(x)))
    with trace_backward() as trace:
        y.backward()
    assert x.grad.data == 3.297442541400256  # tracing changes nothing
    assert trace.functions == ["Square", "Exp", "Square"]
    assert [r.generation for r in trace] == [2, 1, 0]
    assert [r.step for r in trace] == [1, 2, 3]
    first = trace.records[0]
    assert first.input_shapes == ((),)
    assert first.output_grads == ("1",)
    assert first.input_grads == ("2.568",)
    assert trace.records[2].input_grads == ("3.297",)
    lines = str(trace).splitlines()
    assert lines[0].split()[:3] == ["step", "function", "generation"]
    assert lines[1].split() == ["1", "Square", "2", "()", "1", "2.568", "8", "B"]
    assert [r.saved_bytes for r in trace] == [8, 8, 8]  # x, exp's output, the first square's x
    assert len(lines) == 4
    assert repr(trace) == "<BackwardTrace: 3 function(s)>"


def test_trace_summaries_and_missing_gradients(xp):
    x = Variable(xp.asarray(np.arange(12.0).reshape(3, 4)))
    c = xp.ones((3, 4))  # an array: wrapped without requiring a gradient
    with trace_backward() as trace:
        F.sum(x * c).backward()
    mul = trace.records[1]
    assert mul.function == "Mul"
    assert mul.input_shapes == ((3, 4), (3, 4))
    assert mul.output_grads == ("(3, 4) mean 1, max|.| 1",)
    assert mul.input_grads == ("(3, 4) mean 1, max|.| 1", "-")
    assert "-" in trace.table().splitlines()[2].split()


def test_trace_is_scoped_and_nests():
    x = Variable(np.array([1.0, 2.0]))
    with trace_backward() as outer:
        with trace_backward() as inner:
            F.sum(F.exp(x)).backward()
        F.sum(x).backward()
    assert inner.functions == ["Sum", "Exp"]
    assert outer.functions == ["Sum", "Exp", "Sum"]
    F.sum(x).backward()
    assert len(outer) == 3
    assert Config.backward_tracer is None


def test_trace_with_create_graph_records_second_pass():
    x = Variable(np.array(2.0))
    y = x**3
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    with trace_backward() as trace:
        gx.backward()
    assert len(trace) > 0
    assert float(x.grad.data) == 12.0
    assert isinstance(trace, BackwardTrace)


# ---- in-place edits of saved arrays --------------------------------------------------------
def test_in_place_edit_between_forward_and_backward_is_detected_under_anomaly():
    x = Variable(np.array([1.0, 2.0]), name="x")
    with detect_anomaly():
        y = F.sin(x).sum()
        x.data[0] = 5.0  # sin saved x: its gradient would be cos(5) instead of cos(1)
        with pytest.raises(RuntimeError) as info:
            y.backward()
    message = str(info.value)
    assert message.startswith("Sin.backward: input 0 of Sin, a Variable 'x' of shape (2,)")
    assert "modified in place" in message and x.grad is None


def test_replaced_data_and_edited_outputs_are_detected_under_anomaly():
    x = Variable(np.array([1.0, 2.0]))
    with detect_anomaly():
        h = x * 1.0
        y = (h * h).sum()
        h.data = np.zeros(2)  # replaced, not edited
        with pytest.raises(RuntimeError, match=r"Mul\.backward: input 0 .*\(unnamed\).*replaced"):
            y.backward()
        t = F.tanh(x)  # keeps its output
        y = (t * 3.0).sum()
        t.data *= 2.0
        with pytest.raises(RuntimeError, match=r"Tanh\.backward: output 0 .*modified in place"):
            y.backward()


def test_in_place_edits_are_not_checked_outside_anomaly_detection():
    # Without detect_anomaly the check costs nothing: no fingerprint is taken.
    x = Variable(np.array([1.0, 2.0]))
    y = F.sin(x).sum()
    assert getattr(y.creator, "_checks", None) is None
    x.data[0] = 0.0
    y.backward()  # silently uses the edited array, as PyTorch would without its counter
    np.testing.assert_allclose(x.grad.data, np.cos([0.0, 2.0]))


# ---- saved_memory ------------------------------------------------------------------------------
def test_saved_memory_counts_what_each_function_keeps():
    class BookMatMul(Function):  # declares nothing: keeps x, W and its output, as DeZero
        def forward(self, x, W):
            return x @ W

        def backward(self, gy):
            x, W = self.inputs
            return gy @ W.T, x.T @ gy

    x = Variable(np.ones((10, 10)))
    W = Variable(np.ones((10, 10)))
    h = BookMatMul()(x, W)
    y = F.sum(F.exp(h * 2.0))  # Exp keeps its output; MulConstant nothing
    report = saved_memory(y)
    assert report.n_functions == 4 and len(report) == 4
    by = {r.function: r for r in report}
    assert [w for w, *_ in by["BookMatMul"].saved] == ["input 0", "input 1", "output 0"]
    assert by["MulConstant"].saved == () and by["MulConstant"].nbytes == 0
    assert by["Exp"].saved == (("output 0", (10, 10), "float64", 800),)
    assert report.nbytes == sum(r.nbytes for r in report)
    assert report.by_function()["BookMatMul"] == (1, 2400)
    assert [w for w, *_ in saved_memory(F.matmul(x, W)).records[0].saved] == [
        "input 0", "input 1"]  # zerograd's own MatMul declares its inputs only
    assert "total" in str(report) and repr(report).startswith("<SavedMemory: 4 function(s)")


def test_saved_memory_counts_a_shared_array_once():
    x = Variable(np.ones(100))
    report = saved_memory(x * x)  # Mul keeps x twice: one array
    assert report.nbytes == 800
    assert [w for w, *_ in report.records[0].saved] == ["input 0", "input 1"]
    assert saved_memory([x * 2.0, F.sin(x)]).nbytes == 800  # several outputs at once
    assert saved_memory(x).n_functions == 0  # a leaf has no graph


def test_saved_memory_sees_named_arrays():
    class Masked(Function):
        saves = ("mask",)

        def forward(self, x):
            self.mask = x > 0
            return x * self.mask

        def backward(self, gy):
            return gy * self.mask

    x = Variable(np.array([-1.0, 2.0, 3.0]))
    report = saved_memory(Masked()(x))
    assert report.records[0].saved == (("mask", (3,), "bool", 3),)
    assert report.nbytes == 3


def test_trace_reports_saved_bytes():
    x = Variable(np.ones(4))
    with trace_backward() as trace:
        F.sum(F.sin(x) * 2.0).backward()
    assert trace.functions == ["Sum", "MulConstant", "Sin"]
    saved = {r.function: r.saved_bytes for r in trace}
    assert saved["MulConstant"] == 0 and saved["Sin"] == 32
    assert trace.table().splitlines()[0].split()[-1] == "saved"
