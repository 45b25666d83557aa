"""What every ONNX export must pass: the checker, ONNX Runtime and the reference
evaluator on two batch sizes, and a round trip through ``load`` with the same outputs and
the same gradients."""

import numpy as np
import pytest

import zerograd
from zerograd import Variable

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _forward(model, xs):
    with zerograd.test_mode(), zerograd.no_grad():
        y = model(*[Variable(x) for x in xs])
    ys = y if isinstance(y, (tuple, list)) else (y,)
    return [v.data for v in ys]


def _grads(model, xs, rs):
    """Gradients of sum(y * r) with respect to the float inputs and the Parameters."""
    inputs = [Variable(x) for x in xs]
    with zerograd.test_mode():
        y = model(*inputs)
    ys = y if isinstance(y, (tuple, list)) else (y,)
    total = None
    for v, r in zip(ys, rs):
        term = (v * r).sum()
        total = term if total is None else total + term
    if hasattr(model, "cleargrads"):
        model.cleargrads()
    total.backward()
    return [None if x.dtype.kind != "f" or v.grad is None else v.grad.data
            for x, v in zip(xs, inputs)]


class ExportCheck:
    """``check(model, xs, other_xs)``: export and verify; returns the loaded model.

    ``param_grads`` maps the model's ``{state_dict name: gradient}`` to the gradients
    the loaded model's Parameters must have, ``{name: gradient}`` (by default the same:
    Parameters keep their names and layout through ONNX; a recurrent layer's weights
    come back as ONNX's W, R and B).
    """

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.count = 0
        self.proto = None  # the last file written

    def __call__(self, model, xs, other_xs=None, *, evaluate=True, gradients=True,
                 opset=17, param_grads=None, **kwargs):
        onnx = pytest.importorskip("onnx")
        reference = pytest.importorskip("onnx.reference")
        pytest.importorskip("onnxruntime")
        import zerograd.onnx as zonnx

        xs = xs if isinstance(xs, tuple) else (xs,)
        self.count += 1
        path = self.tmp_path / f"model{self.count}.onnx"
        proto = self.proto = zonnx.export(model, xs, path, opset=opset, **kwargs)
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        names = [i.name for i in proto.graph.input]
        session = _session(path)
        evaluator = reference.ReferenceEvaluator(proto) if evaluate else None
        loaded = zonnx.load(path)
        batches = [xs]
        if other_xs is not None:
            batches.append(other_xs if isinstance(other_xs, tuple) else (other_xs,))
        for batch in batches:
            want = _forward(model, batch)
            feed = dict(zip(names, batch))
            for got in (session.run(None, feed),
                        evaluator.run(None, feed) if evaluator else want,
                        _forward(loaded, batch)):
                assert len(got) == len(want)
                for g, w in zip(got, want):
                    assert g.shape == w.shape and g.dtype == w.dtype
                    np.testing.assert_allclose(g, w, **TOL)
        if gradients:
            rng = np.random.default_rng(1)
            rs = [rng.standard_normal(w.shape).astype(w.dtype) for w in _forward(model, xs)]
            gx0 = _grads(model, xs, rs)
            gx1 = _grads(loaded, xs, rs)
            for a, b in zip(gx0, gx1):
                if a is not None:
                    np.testing.assert_allclose(b, a, **TOL)
            if hasattr(model, "state_dict"):
                loaded_params = dict(_named_params(loaded))
                want = {key: p.grad.data for key, p in _named_params(model)
                        if p.grad is not None}
                if param_grads is not None:
                    want = param_grads(want)
                for key, g in want.items():
                    assert key in loaded_params, f"{key} is not in the loaded model"
                    assert loaded_params[key].grad is not None, f"{key} has no gradient"
                    np.testing.assert_allclose(loaded_params[key].grad.data, g,
                                               err_msg=key, **TOL)
        return loaded


def _named_params(layer):
    for key, owner, attr in layer._entries():
        obj = owner.__dict__[attr]
        if isinstance(obj, zerograd.Parameter):
            yield key, obj


@pytest.fixture
def check_export(tmp_path):
    return ExportCheck(tmp_path)
