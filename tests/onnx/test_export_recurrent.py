"""Recurrent layers through ONNX.

A layer called on a whole sequence is one Function (``LSTMSequence``, ``GRUSequence``,
``RNNSequence``) and exports as ONE node of ONNX's own LSTM, GRU or RNN operator, with its
weights as initializers in ONNX's layout; called step by step, it is a chain of cells
(``F.lstm``, ``F.gru``, ``tanh``) unrolled over the traced steps. Every export passes the
checks of conftest.py: the checker, ONNX Runtime and the reference evaluator at two batch
sizes within 1e-5, and the round trip through ``load`` with the same outputs and
gradients.
"""

import warnings

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter
from zerograd.models import Model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import numpy_helper  # noqa: E402
from zerograd.onnx import export, load  # noqa: E402

RNG = np.random.default_rng(0)
H = 5
KINDS = ["LSTM", "GRU", "RNN"]

# The gate blocks of ONNX's W, R and B in terms of zerograd's (PyTorch's) blocks, from
# the ONNX operator specification: LSTM i, o, f, c from i, f, g, o; GRU z, r, h from
# r, z, n; RNN one block.
ONNX_BLOCKS = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _onnx_blocks(kind, a):
    """``a``'s blocks along axis 0 in ONNX's gate order."""
    blocks = np.split(a, len(ONNX_BLOCKS[kind]), axis=0)
    return np.concatenate([blocks[k] for k in ONNX_BLOCKS[kind]], axis=0)


def _onnx_layout(kind, W_x, W_h, b_x, b_h):
    """ONNX's W, R, B from zerograd's ``(in, G)`` matrices and biases (b_h None: the
    LSTM's and the RNN's one bias, counted once)."""
    W = _onnx_blocks(kind, W_x.T)[None]
    R = _onnx_blocks(kind, W_h.T)[None]
    b_h = np.zeros_like(b_x) if b_h is None else b_h
    B = np.concatenate([_onnx_blocks(kind, b_x), _onnx_blocks(kind, b_h)])[None]
    return W, R, B


def _as_onnx_grads(kind, prefix):
    """``param_grads`` for check_export: the layer's weight gradients as the gradients
    of ONNX's W, R and B (both halves of B get the gradient of a bias that feeds both
    products)."""

    def convert(grads):
        out = {k: g for k, g in grads.items()
               if not k.startswith((prefix + "x2h.", prefix + "h2h."))}
        b_x = grads[prefix + "x2h.b"]
        b_h = grads.get(prefix + "h2h.b", b_x)
        W, R, B = _onnx_layout(kind, grads[prefix + "x2h.W"], grads[prefix + "h2h.W"], b_x,
                               b_h)
        out.update({prefix + "W": W, prefix + "R": R, prefix + "B": B})
        return out

    return convert


def _nodes(proto, op=None):
    return [n for n in proto.graph.node if op is None or n.op_type == op]


def _initializers(proto):
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


class _Sequence(Model):
    """A recurrent layer on a whole sequence, and a Linear head on its last step."""

    def __init__(self, kind, batch_first=False):
        super().__init__()
        self.rnn = getattr(L, kind)(H, batch_first=batch_first)
        self.fc = L.Linear(2)

    def forward(self, x):
        self.rnn.reset_state()
        y = self.rnn(x)
        return y, self.fc(y[:, -1] if self.rnn.batch_first else y[-1])


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_sequence_is_one_onnx_node(check_export, kind, batch_first):
    L.seed(0)
    model = _Sequence(kind, batch_first)
    T, N, I = 4, 3, 2
    shape, other = ((N, T, I), (N + 2, T, I)) if batch_first else ((T, N, I), (T, N + 2, I))
    loaded = check_export(model, _x(*shape), _x(*other), batch_axis=0 if batch_first else 1,
                          param_grads=_as_onnx_grads(kind, "rnn."))
    proto = check_export.proto
    # One node of ONNX's own operator, nothing unrolled.
    (node,) = _nodes(proto, kind)
    assert not _nodes(proto, "Sigmoid") and not _nodes(proto, "Tanh")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["hidden_size"] == H
    assert attrs.get("linear_before_reset", 0) == (kind == "GRU")  # PyTorch's GRU
    assert attrs.get("direction", b"forward") == b"forward"
    # The weights are initializers in ONNX's layout, named after the layer.
    inits = _initializers(proto)
    assert list(node.input[1:4]) == ["rnn.W", "rnn.R", "rnn.B"]
    assert set(inits) == {"rnn.W", "rnn.R", "rnn.B", "fc.W", "fc.b"}
    rnn = model.rnn
    want = _onnx_layout(kind, rnn.x2h.W.data, rnn.h2h.W.data, rnn.x2h.b.data,
                        rnn.h2h.b.data if kind == "GRU" else None)
    for name, w in zip(("rnn.W", "rnn.R", "rnn.B"), want):
        np.testing.assert_array_equal(inits[name], w, err_msg=name)
    # A new sequence starts from zeros: no initial state is written.
    assert len(node.input) <= 5 or not any(node.input[5:])
    # The batch is free, the sequence length is the traced one.
    (inp,) = proto.graph.input
    assert _dims(inp) == (["batch", T, I] if batch_first else [T, "batch", I])
    # The loaded model holds ONNX's weights under the same names.
    assert set(loaded.state_dict()) == set(inits)


class _Carried(Model):
    """A layer that continues from the state it carried into the export (each call
    starts from the same state, so the checks can call it again)."""

    def __init__(self, layer):
        super().__init__()
        self.rnn = layer

    def forward(self, x):
        state = (self.rnn.h, getattr(self.rnn, "c", None))
        y = self.rnn(x)
        self.rnn.h = state[0]
        if state[1] is not None:
            self.rnn.c = state[1]
        return y


@pytest.mark.parametrize("kind", KINDS)
def test_a_carried_state_is_the_initial_state(check_export, kind):
    L.seed(0)
    layer = getattr(L, kind)(H)
    with zerograd.no_grad():
        layer(_x(3, 2, 4))  # the state after a first chunk of the sequence
    check_export(_Carried(layer), _x(4, 2, 4), dynamic_batch=False,
                 param_grads=_as_onnx_grads(kind, "rnn."))
    (node,) = _nodes(check_export.proto, kind)
    n_states = 2 if kind == "LSTM" else 1
    assert len(node.input) == 5 + n_states and all(node.input[5:])


@pytest.mark.parametrize("kind", KINDS)
def test_last_states_are_outputs(check_export, kind):
    """Y, Y_h (and Y_c) of the node are the layer's output and its state ``h`` (``c``)."""
    L.seed(0)

    class States(Model):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(L, kind)(H)

        def forward(self, x):
            self.rnn.reset_state()
            y = self.rnn(x)
            return (y, self.rnn.h, self.rnn.c) if kind == "LSTM" else (y, self.rnn.h)

    model = States()
    check_export(model, _x(4, 3, 2), _x(4, 1, 2), batch_axis=1,
                 param_grads=_as_onnx_grads(kind, "rnn."))
    proto = check_export.proto
    (node,) = _nodes(proto, kind)
    # Each graph output is one of the node's outputs without ONNX's direction axis.
    producers = {o: n for n in proto.graph.node for o in n.output}
    for out, expected in zip(proto.graph.output, node.output):
        n = producers[out.name]
        while n.op_type == "Identity":
            n = producers[n.input[0]]
        assert n.op_type == "Squeeze" and n.input[0] == expected


W_X, W_H, B_X, B_H = _x(2, 4 * H), _x(H, 4 * H), _x(4 * H), _x(4 * H)


def _sequence_function(kind, computed=False):
    """F.lstm_sequence / gru_sequence / rnn_sequence on module-level Parameters (or on
    values computed from them), with the initial state as model inputs."""
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind] * H
    W_x, W_h = Parameter(W_X[:, :G]), Parameter(W_H[:, :G])
    b_x, b_h = Parameter(B_X[:G]), Parameter(B_H[:G])

    def weights():
        return (W_x * 1.0, W_h * 0.5, b_x + 1.0, b_h) if computed else (W_x, W_h, b_x, b_h)

    if kind == "LSTM":
        def model(x, h0, c0):
            wx, wh, bx, _ = weights()
            return F.lstm_sequence(x, h0, c0, wx, wh, bx)
    elif kind == "GRU":
        def model(x, h0):
            wx, wh, bx, bh = weights()
            return F.gru_sequence(x, h0, wx, wh, bx, bh)
    else:
        def model(x, h0):
            wx, wh, bx, _ = weights()
            return F.rnn_sequence(x, h0, wx, wh, bx)
    return model


@pytest.mark.parametrize("computed", [False, True], ids=["parameters", "computed_weights"])
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_functions_with_given_states(check_export, kind, computed):
    """The functions themselves, with the initial state as graph inputs (each input's
    batch axis given) and weights that are Parameters or computed in the graph."""
    n_states = 2 if kind == "LSTM" else 1
    xs = (_x(4, 3, 2),) + tuple(_x(3, H) for _ in range(n_states))
    other = (_x(4, 5, 2),) + tuple(_x(5, H) for _ in range(n_states))
    check_export(_sequence_function(kind, computed), xs, other,
                 batch_axis=(1,) + (0,) * n_states)
    proto = check_export.proto
    (node,) = _nodes(proto, kind)
    assert all(node.input[5:5 + n_states])
    inits = _initializers(proto)
    if computed:  # W, R and B made by the graph from the zerograd layout
        assert not ({node.input[1], node.input[2], node.input[3]} & set(inits))
    else:  # initializers in ONNX's layout
        G = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind] * H
        assert [inits[name].shape for name in node.input[1:4]] == [(1, G, 2), (1, G, H),
                                                                     (1, 2 * G)]


def test_one_layer_on_two_sequences_shares_its_weights(check_export):
    L.seed(0)

    class Twice(Model):
        def __init__(self):
            super().__init__()
            self.rnn = L.LSTM(H)

        def forward(self, x):
            self.rnn.reset_state()
            y1 = self.rnn(x)
            self.rnn.reset_state()
            return y1 + self.rnn(x * 2.0)

    check_export(Twice(), _x(4, 3, 2), _x(4, 2, 2), batch_axis=1,
                 param_grads=_as_onnx_grads("LSTM", "rnn."))
    proto = check_export.proto
    assert len(_nodes(proto, "LSTM")) == 2
    assert set(_initializers(proto)) == {"rnn.W", "rnn.R", "rnn.B"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_sequence_then_steps(check_export, kind):
    """A sequence call, then steps that continue from its state: one node, then cells."""
    L.seed(0)

    class Continue(Model):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(L, kind)(H)

        def forward(self, x):
            self.rnn.reset_state()
            self.rnn(x[:3])
            for t in range(3, x.shape[0]):
                h = self.rnn(x[t])
            return h

    # (the weights feed both the node and the cells: only input gradients compared)
    check_export(Continue(), _x(5, 3, 2), _x(5, 4, 2), batch_axis=1,
                 param_grads=lambda grads: {})
    proto = check_export.proto
    assert len(_nodes(proto, kind)) == 1
    assert len(_nodes(proto, "Tanh")) >= 2  # the two steps, unrolled


def test_batch_axis_errors(tmp_path):
    layer = L.RNN(3)
    x = _x(4, 2, 3)
    with pytest.raises(ValueError, match="batch_axis must be an int or one int per input"):
        export(layer, x, tmp_path / "m.onnx", batch_axis=(1, 0))
    with pytest.raises(ValueError, match="batch_axis 3 is out of range"):
        export(layer, x, tmp_path / "m.onnx", batch_axis=3)
    with pytest.raises(ValueError, match="batch_axis must be an int"):
        export(layer, x, tmp_path / "m.onnx", batch_axis=True)


@pytest.mark.parametrize("kind", KINDS)
def test_a_loaded_pytorch_model_exports_again(check_export, tmp_path, kind):
    """PyTorch's LSTM/GRU/RNN file, loaded (its recurrent node runs as zerograd's
    sequence Function on weights taken from ONNX's W, R, B), exports again as one node
    of the same operator."""
    torch = pytest.importorskip("torch")

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(3, H, batch_first=True)
            self.fc = torch.nn.Linear(H, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    net = Net().eval()
    path = tmp_path / "torch.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, 4, 3),), str(path), input_names=["x"],
                          dynamo=False, dynamic_axes={"x": {0: "batch"}})
    loaded = load(path)
    x = _x(2, 4, 3)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    with zerograd.test_mode():
        np.testing.assert_allclose(loaded(x).data, want, rtol=1e-5, atol=1e-5)
    check_export(loaded, x, _x(5, 4, 3))
    assert len(_nodes(check_export.proto, kind)) == 1
