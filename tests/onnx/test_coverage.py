"""What zerograd.onnx.export covers, checked against the package itself.

- Every forward Function class of zerograd (``zerograd.core``, ``zerograd.functions``,
  ``zerograd.layers``) has a converter, or is listed below, with the reason, as
  deliberately not exported; gradient Functions never appear in an exported graph.
- Every Function that a forward pass of the model zoo records has a converter.
- Every row of the functions' op table (tests/functions/op_db.py: each public function
  of ``zerograd.functions`` with its sample inputs) exports and passes the checks of
  conftest.py: ONNX Runtime, the reference evaluator, and the round trip through
  ``load`` with the same outputs and gradients.
"""

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pytest

import zerograd
import zerograd.functions
import zerograd.layers
import zerograd.layers as L
from zerograd.core import Function, graph_functions
from zerograd.models import MLP, VGG16, ResNet50, SqueezeNet, TransformerLM

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from zerograd.onnx.export_ops import converters  # noqa: E402

# Forward Functions deliberately without a converter: what a model computes only while
# it trains. (Test mode, which export traces in, never records them.)
NOT_EXPORTED = {
    # Losses: training objectives; an exported model ends at its predictions. The
    # book's composed versions (mean_squared_error_simple, ...) do export.
    "MeanSquaredError": "loss",
    "SoftmaxCrossEntropy": "loss",
    "SigmoidCrossEntropy": "loss",
    "BinaryCrossEntropy": "loss",
    # Training mode: batch statistics and a running-statistics update, and a random
    # mask. In test mode batch_norm is an affine map of exported Functions and dropout
    # records nothing.
    "BatchNorm": "training-mode batch normalization",
    "Dropout": "training-mode dropout",
}

# Gradient Functions (a backward calls them, through zerograd.functions.gradient.apply):
# named ...Grad..., and these, which are gradients of gradients or engine plumbing.
GRADIENT_FUNCTIONS = {"_ParameterSum", "Pooling2DWithIndexes", "_GradOf"}

# Shared bases that are never called themselves.
BASES = {"_ConstantOperand", "_Extremum", "_Normalization", "_SequenceFunction"}


def _modules():
    yield zerograd.core
    for package in (zerograd.functions, zerograd.layers):
        yield package
        for info in pkgutil.iter_modules(package.__path__):
            yield importlib.import_module(f"{package.__name__}.{info.name}")


def _function_classes() -> dict:
    """``{qualified name: class}`` of every Function subclass defined in the package's
    computing modules."""
    found = {}
    for module in _modules():
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function
                    and obj.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = obj
    return found


def _is_gradient(cls) -> bool:
    return "Grad" in cls.__name__ or cls.__name__ in GRADIENT_FUNCTIONS


def _forward_classes() -> dict:
    return {name: cls for name, cls in _function_classes().items()
            if not _is_gradient(cls) and cls.__name__ not in BASES}


def test_every_forward_function_has_a_converter():
    table = converters()
    missing = sorted(name for name, cls in _forward_classes().items()
                     if cls not in table and cls.__name__ not in NOT_EXPORTED)
    assert not missing, (
        f"no ONNX converter for {missing}: add a row to zerograd/onnx/export_ops.py's "
        "TABLE (or, for a Function no exported model can record, add it to NOT_EXPORTED "
        "here with the reason)"
    )


def test_the_lists_name_real_classes_and_no_converted_one():
    names = {cls.__name__ for cls in _function_classes().values()}
    assert set(NOT_EXPORTED) | GRADIENT_FUNCTIONS | BASES <= names
    converted = {cls.__name__ for cls in converters()}
    assert not (set(NOT_EXPORTED) | BASES) & converted
    assert not any(_is_gradient(cls) for cls in converters())
    # The enumeration sees the recurrent Functions and a layer's own Function.
    assert {"LSTMSequence", "GRUCell", "SubConstant", "Erf"} <= names


# ---- the zoo ------------------------------------------------------------------------------------
def _recurrent(kind, batch_first, steps):
    def run():
        layer = getattr(L, kind)(4, batch_first=batch_first)
        x = np.ones((3, 2, 5), dtype=np.float32)
        if steps:
            return [layer(x[0]), layer(x[1])]
        return [layer(x)]

    return run


def _zoo_forward(name):
    """One forward pass (test mode, recorded) of a zoo model; returns its outputs."""
    rng = np.random.default_rng(0)
    if name == "MLP":
        return [MLP((8, 3))(np.ones((2, 5), np.float32))]
    if name == "ResNet50":
        return [ResNet50()(rng.standard_normal((1, 3, 32, 32)).astype(np.float32))]
    if name == "VGG16":
        return [VGG16()(rng.standard_normal((1, 3, 224, 224)).astype(np.float32))]
    if name == "SqueezeNet":
        return [SqueezeNet()(rng.standard_normal((1, 3, 32, 32)).astype(np.float32))]
    if name == "TransformerLM":
        lm = TransformerLM(vocab_size=13, embed_dim=8, num_heads=2, num_layers=2, max_len=6)
        return [lm(rng.integers(0, 13, (2, 6)))]
    kind, how = name.split("-")
    return _recurrent(kind, how == "batch_first", how == "steps")()


ZOO = ["MLP", "ResNet50", "SqueezeNet", "TransformerLM",
       pytest.param("VGG16", marks=pytest.mark.slow)]
ZOO += [f"{kind}-{how}" for kind in ("RNN", "LSTM", "GRU")
        for how in ("time_major", "batch_first", "steps")]


@pytest.mark.parametrize("name", ZOO)
def test_the_zoo_records_only_exportable_functions(name):
    L.seed(0)
    with zerograd.test_mode():
        outputs = _zoo_forward(name)
    table = converters()
    recorded = {type(f) for f in graph_functions(outputs)}
    assert recorded, name
    missing = sorted(cls.__name__ for cls in recorded if cls not in table)
    assert not missing, f"{name} records {missing}, which have no ONNX converter"


# ---- every public function, from the functions' op table ------------------------------------
def _load_op_db():
    """tests/functions/op_db.py, by path (the tests are not a package)."""
    name = "zerograd_tests_op_db"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "functions" / "op_db.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


op_db = _load_op_db()

# Rows of the table that do not export, and why.
NOT_IN_A_GRAPH = {
    "mean_squared_error": "a loss (see NOT_EXPORTED)",
    "softmax_cross_entropy": "a loss",
    "sigmoid_cross_entropy": "a loss",
    "binary_cross_entropy": "a loss",
    "batch_norm[train]": "training mode (see NOT_EXPORTED)",
    "accuracy": "computed on arrays, no Function: an export would be a constant",
    # picks one class per row with two index arrays (x[arange(N), t]): ONNX would
    # need GatherND; export handles one index array per indexing
    "softmax_cross_entropy_simple": "two index arrays",
}
SEVERAL_INDEX_ARRAYS = "(array([0, 1, 1]), array([2, 2, 0]))"


def _op_db_params():
    for row in op_db.OPS:
        if row.name in NOT_IN_A_GRAPH:
            continue
        for case in row.cases:
            if any(0 in shape for shape in case.shapes):
                continue  # empty arrays: not every runtime takes them
            if SEVERAL_INDEX_ARRAYS in str(case.kwargs.get("index")):
                continue
            yield pytest.param(row, case, id=f"{row.name}-{case}")


@pytest.mark.parametrize("row, case", list(_op_db_params()))
def test_every_public_function_exports(check_export, row, case):
    rng = np.random.default_rng(0)
    inputs = row.make_inputs(rng, case, np.float32)
    inputs = [np.asarray(a) for a in inputs]

    def model(*xs):
        return row.call(*xs, **case.kwargs)

    check_export(model, tuple(inputs), dynamic_batch=False)


def test_the_op_table_rows_left_out_exist():
    names = {row.name for row in op_db.OPS}
    assert set(NOT_IN_A_GRAPH) <= names
