"""zerograd.onnx.export: every Function a model uses, checked in ONNX Runtime and the
reference evaluator at two batch sizes, and round-tripped through load (outputs and
gradients). The checks themselves are in conftest.py (``check_export``)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter
from zerograd.models import (
    MLP,
    VGG16,
    Model,
    ResNet50,
    Sequential,
    SqueezeNet,
    TransformerLM,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from zerograd.onnx import ExportError, export, load, max_opset  # noqa: E402
from zerograd.onnx.export_ops import TABLE, converters, unresolved  # noqa: E402

RNG = np.random.default_rng(0)


def _x(*shape, low=None):
    x = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(x) + low if low is not None else x


def _p(*shape, low=None):
    return Parameter(_x(*shape, low=low))


W45, B5, POS = _p(4, 5), _p(5), _p(3, 4, 5, low=0.5)
B4, W20_3, B3 = _p(4), _p(20, 3), _p(3)
W_DECONV, B_DECONV = _p(3, 2, 3, 3), _p(2)
COND = RNG.random((4, 5)) > 0.5

# name -> a function of one (N, 3, 4, 5)-free input x of shape (N, 4, 5)
ELEMENTWISE = {
    "add_sub_constants": lambda x: (x + 1.5) - 0.25,
    "mul_div_constants": lambda x: x * 3.0 / 2.0,
    "sub_from_constant": lambda x: 2.0 - x,
    "div_from_constant": lambda x: 1.0 / (x * x + 1.0),
    "int_constants": lambda x: x * 2 + 1,
    "add_mul_parameters": lambda x: x * W45 + B5,
    "sub_div_parameters": lambda x: (x - B5) / POS[0],
    "neg": lambda x: -x,
    "pow_constant": lambda x: x**3,
    "pow_variable": lambda x: POS[0] ** x,
    "exp_log": lambda x: F.log(F.exp(x) + 1.0),
    "sin_cos": lambda x: F.sin(x) * F.cos(x),
    "tanh_sqrt": lambda x: F.tanh(x) + F.sqrt(x * x + 1.0),
    "square": lambda x: F.square(x),
    "sigmoid": F.sigmoid,
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "softplus": F.softplus,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softmax": lambda x: F.softmax(x, axis=-1),
    "softmax_two_axes": lambda x: F.softmax(x, axis=(1, 2)),
    "log_softmax": lambda x: F.log_softmax(x, axis=1),
    "log_softmax_two_axes": lambda x: F.log_softmax(x, axis=(1, 2)),
    "clip": lambda x: F.clip(x, -0.5, 0.5),
    "clip_upper": lambda x: F.clip(x, None, 0.2),
    "where": lambda x: F.where(COND, x, 0.0) + F.where(COND, 1.0, x * 2),
}

SHAPES = {
    "reshape": lambda x: F.reshape(x, (x.shape[0], 2, 10)),
    "flatten": F.flatten,
    "expand_dims": lambda x: F.expand_dims(x, (1, -1)),
    "transpose": lambda x: F.transpose(x, (0, 2, 1)),
    "transpose_default": lambda x: F.transpose(x) * 1.0,
    "T_of_a_parameter": lambda x: F.matmul(x, W45.T),
    "broadcast_to": lambda x: F.broadcast_to(F.sum(x, axis=1, keepdims=True), x.shape),
    "sum_to": lambda x: F.sum_to(x, (1, 4, 1)) + x,
    "sum": lambda x: F.sum(x, axis=2),
    "sum_keepdims": lambda x: F.sum(x, axis=(1, 2), keepdims=True),
    "sum_all": lambda x: F.sum(x * W45),
    "mean": lambda x: F.mean(x, axis=1),
    "max": lambda x: F.max(x, axis=2),
    "min_keepdims": lambda x: F.min(x, axis=1, keepdims=True),
    "max_all": lambda x: F.max(x * 1.0),
    "slices": lambda x: x[:, 1:3, ::2],
    "negative_step": lambda x: x[:, ::-1, -2::-2],
    "int_index": lambda x: x[:, -1] + x[:, 0, 1:2],
    "first_sample": lambda x: x[0] * W45 + F.sum(x),
    "none_and_ellipsis": lambda x: x[..., None, 2:],
    "index_array": lambda x: x[:, np.array([0, 2, 2, 3])],
    "index_array_last_axis": lambda x: x[:, 1, np.array([[4, 0], [1, 1]])],
    "boolean_mask": lambda x: x[:, :, np.array([True, False, True, True, False])],
    "concat": lambda x: F.concat([x, x * 2, W45 + x], axis=1),
    "split": lambda x: F.split(x, [1, 3], axis=2)[2] * F.split(x, 2, axis=1)[1][:, :1, :2],
    "stack": lambda x: F.stack([x, -x], axis=1),
}

LINALG = {
    "matmul": lambda x: F.matmul(x, W45.T),
    "matmul_batched": lambda x: F.matmul(x, F.transpose(x, (0, 2, 1))),
    "linear_3d": lambda x: F.linear(x, W45.T, B4),
    "linear_no_bias": lambda x: F.linear(F.reshape(x, (x.shape[0], 20)), W20_3),
    "linear_2d": lambda x: F.linear(F.reshape(x, (x.shape[0], 20)), W20_3, B3),
    "linear_simple": lambda x: F.linear_simple(x, W45.T, B4),
}

CASES = {**ELEMENTWISE, **SHAPES, **LINALG}


@pytest.mark.parametrize("name", sorted(CASES))
def test_functions(check_export, name):
    check_export(CASES[name], _x(3, 4, 5), _x(6, 4, 5))


def test_fixed_batch(check_export):
    check_export(lambda x: F.reshape(x, (-1,)) * 2.0, _x(3, 4, 5), dynamic_batch=False)


# ---- layers ------------------------------------------------------------------------------
def _seeded(fn):
    L.seed(0)
    return fn()


IMAGE_LAYERS = {
    "conv2d": lambda: L.Conv2d(4, 3, stride=2, pad=1),
    "conv2d_no_bias": lambda: L.Conv2d(4, (3, 1), stride=(1, 2), nobias=True),
    "deconv2d": lambda: L.Deconv2d(2, 3, stride=2, pad=1),
    "deconv2d_outsize": lambda: lambda x: F.deconv2d(x, W_DECONV, B_DECONV, stride=2, pad=1,
                                                   outsize=(12, 12)),
    "pooling": lambda: lambda x: F.pooling(x, 2, 2),
    "pooling_padded": lambda: lambda x: F.pooling(x, 3, stride=2, pad=1),
    "average_pooling": lambda: lambda x: F.average_pooling(x, 3, stride=2, pad=1),
    "batch_norm": lambda: Sequential(L.BatchNorm()),
    "dropout": lambda: Sequential(L.Conv2d(2, 1), L.Dropout(0.5)),
}


def _trained_batch_norm(model, x):
    """Give BatchNorm running statistics that are not the initial ones."""
    with zerograd.no_grad():
        model(x * 3.0 + 1.0)
    return model


@pytest.mark.parametrize("name", sorted(IMAGE_LAYERS))
def test_image_layers(check_export, name):
    model = _seeded(IMAGE_LAYERS[name])
    x = _x(2, 3, 6, 6)
    if name == "batch_norm":
        model = _trained_batch_norm(model, x)
    check_export(model, x, _x(4, 3, 6, 6))


def test_layer_norm_and_embedding(check_export):
    L.seed(0)

    class Net(Model):
        def __init__(self):
            super().__init__()
            self.embed = L.EmbedID(10, 6)
            self.ln = L.LayerNorm(6)

        def forward(self, ids):
            return self.ln(self.embed(ids))

    ids = RNG.integers(0, 10, (3, 4))
    check_export(Net(), ids, RNG.integers(0, 10, (5, 4)))


class _Recurrent(Model):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.fc = L.Linear(2)

    def forward(self, x):
        self.cell.reset_state()
        for t in range(x.shape[1]):
            h = self.cell(x[:, t])
        return self.fc(h)


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_unrolled(check_export, cell):
    L.seed(0)
    model = _Recurrent(getattr(L, cell)(5))
    check_export(model, _x(3, 4, 2), _x(5, 4, 2))


def test_recurrent_state_is_left_as_it_was(tmp_path):
    L.seed(0)
    lstm = L.LSTM(3)
    lstm(_x(2, 2))
    h, c = lstm.h, lstm.c
    export(lstm, _x(2, 2), tmp_path / "a.onnx", dynamic_batch=False)  # h is (2, 3)
    assert lstm.h is h and lstm.c is c


def test_attention_and_transformer_block(check_export):
    L.seed(0)
    block = L.TransformerBlock(8, num_heads=2, causal=True)
    check_export(block, _x(2, 5, 8), _x(3, 5, 8))
    attention = L.MultiHeadAttention(8, num_heads=4)
    check_export(attention, _x(2, 5, 8), _x(1, 5, 8))


# ---- the zoo -------------------------------------------------------------------------------
def test_mlp(check_export):
    model = _seeded(lambda: MLP((16, 8, 3)))
    proto_model = check_export(model, _x(4, 5), _x(9, 5))
    assert list(proto_model.state_dict()) == list(model.state_dict())


def test_transformer_lm(check_export):
    lm = _seeded(lambda: TransformerLM(vocab_size=13, embed_dim=8, num_heads=2, num_layers=2,
                                       max_len=6))
    check_export(lm, RNG.integers(0, 13, (2, 6)), RNG.integers(0, 13, (3, 6)))


def test_mnist_cnn(check_export):
    """The examples' CNN shape: conv, relu, pooling, conv, relu, pooling, linear."""
    L.seed(0)

    class CNN(Model):
        def __init__(self):
            super().__init__()
            self.conv1 = L.Conv2d(4, 3, pad=1)
            self.conv2 = L.Conv2d(8, 3, pad=1)
            self.fc = L.Linear(10)

        def forward(self, x):
            x = F.pooling(F.relu(self.conv1(x)), 2, 2)
            x = F.pooling(F.relu(self.conv2(x)), 2, 2)
            return self.fc(F.reshape(x, (x.shape[0], -1)))

    check_export(CNN(), _x(2, 1, 28, 28), _x(3, 1, 28, 28))


def test_resnet_bottlenecks(check_export):
    """ResNet's blocks (projection and identity shortcuts), fast; ResNet50 itself is slow."""
    from zerograd.models import BottleneckA, BottleneckB

    L.seed(0)
    model = Sequential(BottleneckA(3, 4, 8, stride=2), BottleneckB(8, 4))
    x = _x(2, 3, 8, 8)
    model = _trained_batch_norm(model, x)
    check_export(model, x, _x(3, 3, 8, 8))


@pytest.mark.slow
def test_resnet50_small_input(check_export):
    model = _seeded(ResNet50)
    # (two samples: the last stage is 1x1, and training batch norm needs two values)
    model = _trained_batch_norm(model, _x(2, 3, 32, 32))
    check_export(model, _x(1, 3, 32, 32), _x(2, 3, 32, 32), evaluate=False)


def test_squeezenet(check_export):
    model = _seeded(SqueezeNet)
    check_export(model, _x(1, 3, 32, 32), _x(2, 3, 32, 32))


@pytest.mark.slow
def test_vgg16(check_export):
    model = _seeded(VGG16)
    check_export(model, _x(1, 3, 224, 224), _x(2, 3, 224, 224), evaluate=False,
                 gradients=False)


# ---- options -------------------------------------------------------------------------------
def test_names_and_dynamic_batch_in_the_file(tmp_path):
    model = _seeded(lambda: MLP((4, 2)))
    proto = export(model, _x(3, 5), tmp_path / "m.onnx", input_names=["features"],
                   output_names=["logits"])
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "features" and out.name == "logits"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"
    proto = export(model, _x(3, 5), tmp_path / "m.onnx", dynamic_batch=False)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


@pytest.mark.parametrize("opset", sorted({17, 18, 20, max_opset()}))
def test_opsets(check_export, opset):
    def model(x):
        return F.gelu(F.max(x, axis=1)) + F.mean(F.min(x, axis=2, keepdims=True), axis=1)

    check_export(model, _x(2, 4, 5), _x(3, 4, 5), opset=opset)


def test_mean_of_integers(check_export):
    """The mean of integers is a float64 mean of a cast (``Cast`` in the file)."""
    check_export(lambda ids: F.mean(ids, axis=1), RNG.integers(0, 9, (3, 4)),
                 RNG.integers(0, 9, (5, 4)))
    assert "Cast" in [n.op_type for n in check_export.proto.graph.node]


@pytest.mark.parametrize("opset", sorted({17, max_opset()}))
def test_opsets_of_the_newer_converters(check_export, opset):
    L.seed(0)
    gru = L.GRU(3, batch_first=True)

    def model(x):
        gru.reset_state()
        y = gru(F.reshape(F.im2col(x, 2, to_matrix=False), (x.shape[0], 4, 5 * 5)))
        return F.erf(y) - 0.5

    check_export(model, _x(2, 1, 6, 6), _x(3, 1, 6, 6), opset=opset)


def test_several_inputs_and_outputs(check_export):
    def model(a, b):
        return a + b, a * 2.0, b

    check_export(model, (_x(2, 3), _x(2, 3)), (_x(4, 3), _x(4, 3)))


def test_output_that_is_the_input(check_export):
    check_export(lambda x: (x, x * 1.0, x), _x(2, 3), _x(3, 3))


# ---- errors ----------------------------------------------------------------------------------
class _Unknown(zerograd.Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy * 2


def test_unknown_function_is_named_with_its_place(tmp_path):
    L.seed(0)
    fc = L.Linear(3)
    path = tmp_path / "m.onnx"

    def model(x):
        return F.relu(fc(_Unknown()(F.tanh(x))))

    with pytest.raises(ExportError) as info:
        export(model, _x(2, 4), path)
    message = str(info.value)
    assert "_Unknown" in message and "register_converter" in message
    assert "output 0 (2, 3) <- ReLU (input 0: (2, 3)) <- Linear (input 0: (2, 4))" in message
    assert not path.exists() and os.listdir(tmp_path) == []


def test_registered_converter_is_used(check_export):
    from zerograd.onnx import register_converter
    from zerograd.onnx.export_ops import _extra

    @register_converter(_Unknown)
    def _(b, f):
        b.node("Add", [b.input(0), b.input(0)], b.outputs)

    try:
        check_export(lambda x: _Unknown()(x), _x(2, 3), _x(3, 3), gradients=False)
    finally:
        _extra.pop(_Unknown)


def test_constant_from_the_input_data_is_refused(tmp_path):
    # softmax_simple subtracts x.data.max(): a constant computed from the input.
    with pytest.raises(ExportError, match="computed from the input's data"):
        export(lambda x: F.softmax_simple(x), _x(2, 3), tmp_path / "m.onnx")
    # ... which is fine for one fixed input
    export(lambda x: F.softmax_simple(x), _x(2, 3), tmp_path / "m.onnx", dynamic_batch=False)


def test_control_flow_on_the_batch_size_is_refused(tmp_path):
    def model(x):
        return x * 2.0 if x.shape[0] < 3 else -x

    with pytest.raises(ExportError, match="different Functions for batch sizes 2 and 3"):
        export(model, _x(2, 3), tmp_path / "m.onnx")


def test_bad_arguments(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="opset must be an int from 17"):
        export(F.relu, _x(2, 3), path, opset=11)
    with pytest.raises(ValueError, match="input_names must be 1 distinct"):
        export(F.relu, _x(2, 3), path, input_names=["a", "b"])
    with pytest.raises(TypeError, match="returned a ndarray"):
        export(lambda x: x.data, _x(2, 3), path)
    with pytest.raises(TypeError, match="input 0 is a dict"):
        export(F.relu, {"x": 1}, path)
    with pytest.raises(ExportError, match="0-d"):
        export(F.relu, np.float32(1.0), path)
    assert os.listdir(tmp_path) == []


def test_a_failed_export_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.onnx"
    export(F.relu, _x(2, 3), path)
    before = path.read_bytes()
    with pytest.raises(ExportError):
        export(lambda x: _Unknown()(x), _x(2, 3), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]


# ---- the table and the optional dependency -----------------------------------------------------
def test_every_row_of_the_table_names_a_function_class():
    assert unresolved() == []
    assert len(converters()) == len(TABLE)
    for cls in converters():
        assert issubclass(cls, zerograd.Function), cls


def test_import_zerograd_does_not_import_onnx():
    code = ("import sys, zerograd, zerograd.onnx; import zerograd.models; "
            "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_loaded_export_trains(tmp_path):
    """A loaded export is an ordinary Model: an optimizer step lowers the loss."""
    from zerograd.optimizers import SGD

    model = _seeded(lambda: MLP((8, 1)))
    export(model, _x(4, 3), tmp_path / "m.onnx")
    loaded = load(tmp_path / "m.onnx")
    x, t = _x(16, 3), _x(16, 1)
    optimizer = SGD(lr=0.1).setup(loaded)
    losses = []
    for _ in range(5):
        loss = F.mean_squared_error(loaded(x), t)
        loaded.cleargrads()
        loss.backward()
        optimizer.update()
        losses.append(float(loss.data))
    assert losses[-1] < losses[0]


def test_lazily_sized_layers_keep_what_the_first_call_made(tmp_path):
    model = _seeded(lambda: Sequential(L.Linear(3), L.BatchNorm()))
    export(model, _x(2, 4), tmp_path / "m.onnx")
    assert model.l0.in_size == 4 and model.l0.W.shape == (4, 3)
    assert model.l1.avg_mean.shape == (3,)
