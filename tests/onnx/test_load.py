"""zerograd.onnx.load: models written by PyTorch's own exporter give PyTorch's outputs;
single operators give ONNX Runtime's outputs and correct gradients; errors name the
operator and the node."""

import warnings

import numpy as np
import pytest

import zerograd
from zerograd.testing import check_backward, check_double_backward

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from zerograd.onnx import OnnxImportError, load  # noqa: E402
from zerograd.onnx.load_ops import HANDLERS  # noqa: E402

TOL = {"rtol": 1e-5, "atol": 1e-5}
RNG = np.random.default_rng(0)


def _x(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _run(model, *xs):
    with zerograd.test_mode():
        y = model(*xs)
    return [v.data for v in (y if isinstance(y, tuple) else (y,))]


# =========================================================================================
# PyTorch's exports
# =========================================================================================
def _torch_models():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            return self.fc(torch.flatten(x, 1))

    class Recurrent(nn.Module):
        def __init__(self, cls, **kwargs):
            super().__init__()
            self.rnn = cls(3, 5, batch_first=True, **kwargs)
            self.fc = nn.Linear(10 if kwargs.get("bidirectional") else 5, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    cnn = CNN()
    with torch.no_grad():  # running statistics and a scale that are not the defaults
        cnn.bn.running_mean.uniform_(-1, 1)
        cnn.bn.running_var.uniform_(0.5, 2)
        cnn.bn.weight.uniform_(0.5, 2)
    return {
        "mlp": (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), (4,)),
        "cnn": (cnn, (1, 8, 8)),
        "lstm": (Recurrent(nn.LSTM), (6, 3)),
        "lstm_two_layers": (Recurrent(nn.LSTM, num_layers=2), (6, 3)),
        "bidirectional_lstm": (Recurrent(nn.LSTM, bidirectional=True), (6, 3)),
        "gru": (Recurrent(nn.GRU), (6, 3)),
        "rnn": (Recurrent(nn.RNN), (6, 3)),
    }


def _torch_export(torch, model, x, path, dynamo):
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript")
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(model, (x,), str(path), input_names=["x"], dynamo=True,
                              dynamic_shapes=({0: batch},), verbose=False)
        else:
            # The TorchScript exporter; without constant folding it keeps
            # BatchNormalization as a node (instead of folding it into the convolution).
            torch.onnx.export(model, (x,), str(path), input_names=["x"], dynamo=False,
                              dynamic_axes={"x": {0: "batch"}}, do_constant_folding=False)


TORCH_CASES = ["mlp", "cnn", "lstm", "lstm_two_layers", "bidirectional_lstm", "gru", "rnn"]


def _exporters():
    """Both of PyTorch's exporters; the newer (torch.export + onnxscript) takes 10 to 20
    seconds a model, so only the LSTM (whose graph has the most shape arithmetic) runs in
    the fast suite."""
    for name in TORCH_CASES:
        yield pytest.param(name, False, id=f"{name}-torchscript")
        marks = () if name == "lstm" else (pytest.mark.slow,)
        yield pytest.param(name, True, id=f"{name}-dynamo", marks=marks)


@pytest.mark.parametrize("name, dynamo", list(_exporters()))
def test_pytorch_exports_give_pytorchs_outputs(tmp_path, name, dynamo):
    torch = pytest.importorskip("torch")
    model, shape = _torch_models()[name]
    path = tmp_path / f"{name}.onnx"
    _torch_export(torch, model, torch.randn(2, *shape), path, dynamo)
    loaded = load(path)
    for n in (2, 5):
        x = torch.randn(n, *shape)
        with torch.no_grad():
            want = model(x).numpy()
        (got,) = _run(loaded, x.numpy())
        np.testing.assert_allclose(got, want, **TOL)


def test_pytorch_cnn_names_parameters_and_buffers(tmp_path):
    torch = pytest.importorskip("torch")
    model, shape = _torch_models()["cnn"]
    path = tmp_path / "cnn.onnx"
    _torch_export(torch, model, torch.randn(2, *shape), path, dynamo=False)
    loaded = load(path)
    state = loaded.state_dict()
    assert set(state) >= {"fc.weight", "fc.bias", "bn.weight", "bn.running_mean"}
    params = {name for name, _, _ in loaded._entries()
              if isinstance(getattr(_, name.split(".")[-1], None), zerograd.Parameter)}
    assert "bn.running_mean" not in params and "bn.running_var" not in params
    np.testing.assert_array_equal(state["bn.running_var"], model.bn.running_var.numpy())


def test_pytorch_model_fine_tunes_with_the_same_gradients(tmp_path):
    """The loaded LSTM's gradients are PyTorch's (through the unrolled ONNX LSTM)."""
    torch = pytest.importorskip("torch")
    model, shape = _torch_models()["lstm"]
    path = tmp_path / "lstm.onnx"
    _torch_export(torch, model, torch.randn(2, *shape), path, dynamo=False)
    loaded = load(path)
    x = torch.randn(3, *shape)
    model.zero_grad()
    model(x).square().sum().backward()
    with zerograd.test_mode():
        loss = (loaded(x.numpy()) ** 2).sum()
    loaded.cleargrads()
    loss.backward()
    fc = loaded.fc
    np.testing.assert_allclose(fc.weight.grad.data, model.fc.weight.grad.numpy(), **TOL)
    np.testing.assert_allclose(fc.bias.grad.data, model.fc.bias.grad.numpy(), **TOL)
    # The LSTM's weights arrive under the exporter's names; compare the whole set.
    grads = sorted(float(np.abs(p.grad.data).sum()) for p in loaded.params())
    want = [model.rnn.weight_ih_l0, model.rnn.weight_hh_l0, model.fc.weight, model.fc.bias]
    want = [float(p.grad.abs().sum()) for p in want]
    bias = float(model.rnn.bias_ih_l0.grad.abs().sum())
    assert all(any(abs(g - w) <= 1e-4 * max(1, w) for g in grads) for w in want + [bias])


# =========================================================================================
# Single operators, against ONNX Runtime
# =========================================================================================
def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _info(name, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, None)


def _against_runtime(proto, feeds: dict, n_outputs=1):
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    got = _run(load(proto), *feeds.values())
    assert len(got) >= n_outputs
    for g, w in zip(got[:n_outputs], want[:n_outputs]):
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, **TOL)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


SINGLE = {
    "flatten": ([helper.make_node("Flatten", ["x"], ["y"], axis=2)], (2, 3, 4, 5), 17),
    "squeeze_attr": ([helper.make_node("Squeeze", ["x"], ["y"], axes=[1])], (2, 1, 4), 11),
    "unsqueeze_attr": ([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, 3])], (2, 4), 11),
    "softmax_opset11": ([helper.make_node("Softmax", ["x"], ["y"], axis=1)], (2, 3, 4), 11),
    "log_softmax_opset11": ([helper.make_node("LogSoftmax", ["x"], ["y"])], (2, 3, 4), 11),
    "clip_attr": ([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.3)], (3, 4), 10),
    "global_average_pool": ([helper.make_node("GlobalAveragePool", ["x"], ["y"])],
                            (2, 3, 4, 5), 17),
    "global_max_pool": ([helper.make_node("GlobalMaxPool", ["x"], ["y"])], (2, 3, 4, 5), 17),
    "average_pool_without_pad_count": (
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          strides=[2, 2], count_include_pad=0)], (2, 3, 7, 7), 17),
    "max_pool_same": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3],
                                        auto_pad="SAME_UPPER")], (1, 2, 5, 5), 17),
    "gelu_op": ([helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")], (3, 4), 20),
    "erf": ([helper.make_node("Erf", ["x"], ["y"])], (3, 4), 17),
    "reduce_mean_attr": ([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)],
                         (2, 3, 4), 17),
    "reduce_sum_all": ([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], (2, 3), 17),
    "split_num_outputs": ([helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1,
                                            num_outputs=3)], (2, 7), 18),
    "reciprocal_sum": ([helper.make_node("Reciprocal", ["x"], ["r"]),
                        helper.make_node("Sum", ["x", "r", "x"], ["y"])], (3, 4), 17),
    "dropout_identity": ([helper.make_node("Dropout", ["x"], ["d"]),
                          helper.make_node("Identity", ["d"], ["y"])], (3, 4), 17),
    "layer_norm_two_axes": (
        [helper.make_node("Shape", ["x"], ["s"], start=1),
         helper.make_node("ConstantOfShape", ["s"], ["scale"],
                          value=numpy_helper.from_array(np.array([1.5], np.float32))),
         helper.make_node("LayerNormalization", ["x", "scale"], ["y"], axis=1)],
        (2, 3, 4), 17),
    "comparisons_and_where": (
        [helper.make_node("Constant", [], ["zero"], value_float=0.0),
         helper.make_node("Greater", ["x", "zero"], ["g"]),
         helper.make_node("Less", ["x", "zero"], ["l"]),
         helper.make_node("Or", ["g", "l"], ["nonzero"]),
         helper.make_node("Not", ["g"], ["ng"]),
         helper.make_node("And", ["ng", "nonzero"], ["negative"]),
         helper.make_node("Equal", ["x", "x"], ["same"]),
         helper.make_node("And", ["negative", "same"], ["neg"]),
         helper.make_node("Neg", ["x"], ["minus"]),
         helper.make_node("Where", ["neg", "minus", "x"], ["y"])], (3, 4), 17),
    "shape_arithmetic": (
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Size", ["x"], ["n"]),
         helper.make_node("Constant", [], ["two"], value_int=2),
         helper.make_node("Div", ["n", "two"], ["half"]),
         helper.make_node("Unsqueeze", ["half", "zero_axis"], ["half1"]),
         helper.make_node("Constant", [], ["neg1"], value_ints=[-1]),
         helper.make_node("Concat", ["half1", "neg1"], ["shape"], axis=0),
         helper.make_node("Reshape", ["x", "shape"], ["r"]),
         helper.make_node("Cast", ["r"], ["y"], to=TensorProto.DOUBLE)], (2, 3, 4), 17),
    "range_tile_expand": (
        [helper.make_node("Constant", [], ["start"], value=_init("start", np.float32(0))),
         helper.make_node("Constant", [], ["limit"], value=_init("limit", np.float32(4))),
         helper.make_node("Constant", [], ["delta"], value=_init("delta", np.float32(1))),
         helper.make_node("Range", ["start", "limit", "delta"], ["ramp"]),
         helper.make_node("Mul", ["x", "ramp"], ["m"]),
         helper.make_node("Tile", ["m", "reps"], ["t"]),
         helper.make_node("Constant", [], ["big"], value_ints=[2, 1, 2, 8]),
         helper.make_node("Expand", ["t", "big"], ["y"])], (1, 2, 4), 17),
    "gather_negative_and_slice": (
        [helper.make_node("Constant", [], ["idx"], value_ints=[-1, 0]),
         helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),
         helper.make_node("Constant", [], ["st"], value_ints=[3]),
         helper.make_node("Constant", [], ["en"], value_ints=[-100]),
         helper.make_node("Constant", [], ["ax"], value_ints=[2]),
         helper.make_node("Constant", [], ["sp"], value_ints=[-2]),
         helper.make_node("Slice", ["g", "st", "en", "ax", "sp"], ["y"])], (2, 3, 5), 17),
    "conv_transpose_output_shape": (
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1],
                          output_shape=[8, 8])], (1, 2, 4, 4), 17),
    "conv_grouped": (
        [helper.make_node("Conv", ["x", "wg", "bg"], ["y"], group=2, pads=[1, 1, 1, 1])],
        (2, 4, 5, 5), 17),
    "conv_depthwise": (
        [helper.make_node("Conv", ["x", "wd"], ["y"], group=4, strides=[2, 2])],
        (2, 4, 5, 5), 17),
    "conv_transpose_grouped": (
        [helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["y"], group=2, strides=[2, 2])],
        (2, 4, 3, 3), 17),
    "gemm_transposed_scaled": (
        [helper.make_node("Gemm", ["x", "w2", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)],
        (3, 2), 17),
}

EXTRA_INITS = {
    "shape_arithmetic": [_init("zero_axis", np.array([0], np.int64))],
    "range_tile_expand": [_init("reps", np.array([1, 1, 2], np.int64))],
    "conv_transpose_output_shape": [_init("w", _x(2, 3, 3, 3))],
    "gemm_transposed_scaled": [_init("w2", _x(3, 4)), _init("c", _x(1, 4))],
    "conv_grouped": [_init("wg", _x(6, 2, 3, 3)), _init("bg", _x(6))],
    "conv_depthwise": [_init("wd", _x(8, 1, 3, 3))],
    "conv_transpose_grouped": [_init("wt", _x(4, 3, 3, 3)), _init("bt", _x(6))],
}


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_operators(name):
    nodes, shape, opset = SINGLE[name]
    outputs = [o for n in nodes[-1:] for o in n.output]
    out_infos = [_info(o, TensorProto.DOUBLE if name == "shape_arithmetic" else
                       TensorProto.FLOAT) for o in outputs]
    proto = _model(nodes, [_info("x")], out_infos, EXTRA_INITS.get(name, ()), opset=opset)
    _against_runtime(proto, {"x": _x(*shape)}, n_outputs=len(outputs))


# ---- the recurrent operators: gradients against central differences ---------------------------
def _recurrent_graph(op, gates, direction, extra_attrs=None, dtype=np.float64):
    D = 2 if direction == "bidirectional" else 1
    H = 3
    inputs = ["X", "W", "R", "B"]
    node = helper.make_node(op, inputs, ["Y", "Y_h"], hidden_size=H, direction=direction,
                            **(extra_attrs or {}))
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    proto = _model([node], [_info(n, elem) for n in inputs], [_info("Y", elem),
                                                               _info("Y_h", elem)])
    T, N, I = 4, 2, 2
    args = (_x(T, N, I, dtype=dtype) * 0.5, _x(D, gates * H, I, dtype=dtype) * 0.5,
            _x(D, gates * H, H, dtype=dtype) * 0.5, _x(D, 2 * gates * H, dtype=dtype) * 0.5)
    return proto, args


RECURRENT = [("LSTM", 4, {}), ("GRU", 3, {}), ("GRU", 3, {"linear_before_reset": 1}),
             ("RNN", 1, {})]


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op, gates, attrs", RECURRENT, ids=["lstm", "gru", "gru_lbr", "rnn"])
def test_recurrent_operators(op, gates, attrs, direction):
    # Values against ONNX Runtime (float32: its recurrent kernels have no float64) ...
    proto, args = _recurrent_graph(op, gates, direction, attrs, dtype=np.float32)
    _against_runtime(proto, dict(zip("XWRB", args)), n_outputs=2)
    # ... and gradients against central differences in float64, to every input.
    proto, args = _recurrent_graph(op, gates, direction, attrs)
    model = load(proto)
    check_backward(lambda *xs: model(*xs)[0], *args)
    if direction == "forward":
        check_double_backward(lambda *xs: model(*xs)[1], *args)


def test_lstm_with_initial_state_peepholes_and_batch_first():
    from onnx.reference import ReferenceEvaluator

    H, N, T, I = 3, 2, 4, 2
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "", "h0", "c0", "P"], ["Y", "Y_h", "Y_c"],
                            hidden_size=H, layout=1)
    names = ["X", "W", "R", "B", "h0", "c0", "P"]
    proto = _model([node], [_info(n) for n in names],
                   [_info("Y"), _info("Y_h"), _info("Y_c")])
    feeds = dict(zip(names, [_x(N, T, I), _x(1, 4 * H, I), _x(1, 4 * H, H), _x(1, 8 * H),
                             _x(N, 1, H), _x(N, 1, H), _x(1, 3 * H)]))
    # (ONNX Runtime has no batch-first layout: the reference evaluator is the oracle.)
    want = ReferenceEvaluator(proto).run(None, feeds)
    got = _run(load(proto), *feeds.values())
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL)


def test_grouped_convolution_gradients():
    """Grouped Conv and ConvTranspose run as one convolution per group (split, concat):
    gradients to the input and the weights against central differences."""
    elem = TensorProto.DOUBLE
    for op, w_shape, b_shape, x_shape in (("Conv", (6, 2, 3, 3), (6,), (1, 4, 4, 4)),
                                         ("ConvTranspose", (4, 3, 2, 2), (6,), (1, 4, 3, 3))):
        node = helper.make_node(op, ["x", "w", "b"], ["y"], group=2, strides=[2, 2])
        proto = _model([node], [_info(n, elem) for n in "xwb"], [_info("y", elem)])
        model = load(proto)
        check_backward(model, _x(*x_shape, dtype=np.float64), _x(*w_shape, dtype=np.float64),
                       _x(*b_shape, dtype=np.float64))


def test_erf_gradient():
    proto = _model([helper.make_node("Erf", ["x"], ["y"])], [_info("x", TensorProto.DOUBLE)],
                   [_info("y", TensorProto.DOUBLE)])
    model = load(proto)
    check_backward(model, _x(3, 4, dtype=np.float64))
    check_double_backward(model, _x(3, 4, dtype=np.float64))


# =========================================================================================
# Errors
# =========================================================================================
def test_unknown_operator_names_it_and_its_node():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="first"),
             helper.make_node("Hardmax", ["r"], ["y"], name="the_hardmax")]
    proto = _model(nodes, [_info("x")], [_info("y")])
    with pytest.raises(OnnxImportError, match="'Hardmax' at node 'the_hardmax'"):
        load(proto)


def test_other_domains_are_refused():
    node = helper.make_node("FusedGemm", ["x", "x"], ["y"], domain="com.microsoft", name="n")
    graph = helper.make_graph([node], "g", [_info("x")], [_info("y")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(OnnxImportError, match="FusedGemm' \\(domain 'com.microsoft'\\)"):
        load(proto)


def test_unsupported_attribute_names_the_node():
    node = helper.make_node("Conv", ["x", "w"], ["y"], dilations=[2, 2], name="dilated")
    proto = _model([node], [_info("x")], [_info("y")], [_init("w", _x(4, 2, 3, 3))])
    model = load(proto)
    with pytest.raises(OnnxImportError, match="node 'dilated' \\(Conv\\): dilations"):
        _run(model, _x(1, 2, 5, 5))
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=3, name="grouped")
    proto = _model([node], [_info("x")], [_info("y")], [_init("w", _x(4, 1, 3, 3))])
    with pytest.raises(OnnxImportError, match="node 'grouped' \\(Conv\\): group=3 does not"):
        _run(load(proto), _x(1, 2, 5, 5))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffnot a model")
    with pytest.raises(OnnxImportError, match="cannot read"):
        load(bad)
    with pytest.raises(TypeError, match="expected a path"):
        load(42)


def test_wrong_number_of_inputs():
    proto = _model([helper.make_node("Relu", ["x"], ["y"])], [_info("x")], [_info("y")])
    with pytest.raises(ValueError, match="takes 1 input"):
        load(proto)(_x(2), _x(2))


def test_every_handled_operator_is_tested():
    """A meta-test: each operator in the table appears in a test graph of this file, an
    export of test_export.py or a PyTorch export above."""
    tested = {n.op_type for nodes, _, _ in SINGLE.values() for n in nodes}
    tested |= {"LSTM", "GRU", "RNN", "Erf", "Relu"}
    exported = {"Add", "Sub", "Mul", "Div", "Pow", "Neg", "Exp", "Log", "Sin", "Cos", "Tanh",
                "Sqrt", "Sigmoid", "LeakyRelu", "Softplus", "Softmax", "LogSoftmax", "Clip",
                "Where", "Reshape", "Transpose", "Expand", "Concat", "Split", "Slice",
                "Gather", "Squeeze", "Unsqueeze", "ReduceSum", "ReduceMax", "ReduceMin",
                "MatMul", "Gemm", "Conv", "ConvTranspose", "MaxPool", "AveragePool",
                "LayerNormalization", "Constant", "Identity", "Shape", "Cast"}
    from_pytorch = {"BatchNormalization", "ConstantOfShape", "Flatten"}
    missing = set(HANDLERS) - tested - exported - from_pytorch
    assert missing == set()
