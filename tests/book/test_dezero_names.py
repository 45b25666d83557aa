"""Every public name of every DeZero module resolves under the alias, with its meaning.

The names below were written down by hand from the original's modules (the book's
repository, ``dezero/*.py``): what each module defines without a leading underscore, and
what it takes from another DeZero module (``dezero.functions`` re-exports the
convolutions of ``functions_conv`` and the arithmetic of ``core``; modules such as
``dezero.layers`` hold ``cuda`` or ``F`` because they import them). Names a module holds
only because it imports NumPy, the standard library or Pillow (``np``, ``os``,
``Image``...) are not DeZero's and are left out, as is ``dezero.core.dezero`` (the
package importing itself). ``dezero.__version__`` is zerograd's version.

Each name is checked for its kind (a class, a function, a module or a plain value) and
for being the very object zerograd has for it; the names zerograd has no use for
itself (:data:`zerograd.compat.BOOK_NAMES`) are checked for what they do in
``tests/test_compat.py``.
"""

from __future__ import annotations

import importlib
import types

import pytest

from zerograd import compat

# kind: C a class, f a function (something called), m a module, v a value.
DEZERO_NAMES = {
    "dezero": {
        "C": "Variable Parameter Function Config Layer Model Dataset DataLoader SeqDataLoader",
        "f": "using_config no_grad test_mode as_array as_variable setup_variable",
        "m": "datasets dataloaders optimizers functions functions_conv layers utils cuda "
             "transforms",
        "v": "is_simple_core",
    },
    "dezero.core": {
        "C": "Config Variable Parameter Function Add Mul Neg Sub Div Pow",
        "f": "using_config no_grad test_mode as_variable as_array add mul neg sub rsub div "
             "rdiv pow setup_variable",
        "v": "array_types",
    },
    "dezero.core_simple": {
        "C": "Config Variable Function Add Mul Neg Sub Div Pow",
        "f": "using_config no_grad as_variable as_array add mul neg sub rsub div rdiv pow "
             "setup_variable",
    },
    "dezero.cuda": {
        "C": "Variable",
        "f": "get_array_module as_numpy as_cupy",
        "v": "gpu_enable",  # and `cupy`, which the original defines only when CuPy imports
    },
    "dezero.dataloaders": {
        "C": "DataLoader SeqDataLoader",
        "m": "cuda",
        "v": "pil_available",
    },
    "dezero.datasets": {
        "C": "Dataset Spiral MNIST CIFAR10 CIFAR100 ImageNet SinCurve Shakespear Compose "
             "Flatten ToFloat Normalize",
        "f": "get_spiral load_cache_npz save_cache_npz get_file",
        "v": "cache_dir",
    },
    "dezero.functions": {
        "C": "Sin Cos Tanh Exp Log Reshape Transpose GetItem GetItemGrad Sum SumTo "
             "BroadcastTo MatMul Linear Sigmoid ReLU Softmax LogSoftmax LeakyReLU "
             "MeanSquaredError SoftmaxCrossEntropy BatchNorm Max Min Clip Function Variable",
        "f": "sin cos tanh exp log reshape transpose get_item expand_dims flatten sum sum_to "
             "broadcast_to average mean matmul linear linear_simple sigmoid_simple sigmoid "
             "relu softmax_simple softmax log_softmax leaky_relu mean_squared_error_simple "
             "mean_squared_error softmax_cross_entropy_simple softmax_cross_entropy "
             "sigmoid_cross_entropy binary_cross_entropy accuracy dropout batch_nrom embed_id "
             "max min clip "
             # re-exported from functions_conv and core
             "conv2d deconv2d conv2d_simple im2col col2im pooling_simple pooling "
             "average_pooling add sub rsub mul div neg pow as_variable as_array",
        "m": "cuda utils",
    },
    "dezero.functions_conv": {
        "C": "Conv2d Deconv2d Conv2DGradW Pooling Pooling2DGrad Pooling2DWithIndexes "
             "AveragePooling Im2col Col2im Function",
        "f": "conv2d_simple pooling_simple conv2d deconv2d pooling average_pooling im2col "
             "col2im im2col_array col2im_array as_variable pair get_conv_outsize "
             "get_deconv_outsize linear broadcast_to",
        "m": "cuda",
    },
    "dezero.layers": {
        "C": "Layer Linear Conv2d Deconv2d RNN LSTM EmbedID BatchNorm Parameter",
        "f": "pair",
        "m": "F cuda",
    },
    "dezero.models": {
        "C": "Model Sequential MLP VGG16 ResNet ResNet152 ResNet101 ResNet50 BuildingBlock "
             "BottleneckA BottleneckB SqueezeNet Layer",
        "m": "F L utils",
    },
    "dezero.optimizers": {
        "C": "Optimizer WeightDecay ClipGrad FreezeParam SGD MomentumSGD AdaGrad AdaDelta "
             "Adam Parameter",
        "m": "cuda",
    },
    "dezero.transforms": {
        "C": "Compose Convert Resize CenterCrop ToArray ToPIL RandomHorizontalFlip Normalize "
             "Flatten AsType ToFloat ToInt",
        "f": "pair",
    },
    "dezero.utils": {
        "C": "Variable",
        "f": "get_dot_graph plot_dot_graph sum_to reshape_sum_backward logsumexp "
             "max_backward_shape gradient_check numerical_grad array_equal array_allclose "
             "show_progress get_file get_deconv_outsize get_conv_outsize pair as_variable",
        "m": "cuda",
        "v": "cache_dir",
    },
}

#: Where zerograd keeps the object a DeZero name stands for, when it is not the name
#: of the same spelling in the corresponding zerograd module (``dezero.X`` ->
#: ``zerograd.X``, ``functions_conv`` -> ``functions``, ``core_simple`` -> ``core``).
ELSEWHERE = {
    **{f"dezero.core.{n}": f"zerograd.config.{n}"
       for n in ("Config", "using_config", "no_grad", "test_mode")},
    **{f"dezero.core_simple.{n}": f"zerograd.config.{n}"
       for n in ("Config", "using_config", "no_grad")},
    **{f"dezero.{m}.Variable": "zerograd.core.Variable" for m in ("cuda", "functions", "utils")},
    **{f"dezero.{m}.{n}": f"zerograd.core.{n}"
       for m in ("functions", "functions_conv", "utils")
       for n in ("Function", "as_variable", "as_array")},
    **{f"dezero.{m}.Parameter": "zerograd.core.Parameter" for m in ("layers", "optimizers")},
    **{f"dezero.{m}.{n}": f"zerograd.utils.shape.{n}"
       for m in ("functions_conv", "layers", "transforms")
       for n in ("pair", "get_conv_outsize", "get_deconv_outsize")},
    "dezero.datasets.get_file": "zerograd.utils.download.get_file",
    "dezero.models.Layer": "zerograd.layers.Layer",
}

#: The names zerograd has no object of its own for: compat provides them.
BOOK_ONLY = {
    f"{module}.{name}" for module, names in compat.BOOK_NAMES.items() for name in names
    if not str(names[name]).startswith(("zerograd.", "dezero"))
}


def _names(kinds=None):
    for module, by_kind in DEZERO_NAMES.items():
        for kind, names in by_kind.items():
            if kinds is None or kind in kinds:
                for name in names.split():
                    yield pytest.param(module, name, kind, id=f"{module}.{name}")


@pytest.fixture(scope="module")
def alias():
    installed = compat.is_installed()
    compat.install()
    yield
    if not installed:
        compat.uninstall()


def _zerograd_object(module: str, name: str):
    full = f"{module}.{name}"
    if full in ELSEWHERE:
        target, _, attr = ELSEWHERE[full].rpartition(".")
        return getattr(importlib.import_module(target), attr)
    target = compat.ALIASES.get(module, "zerograd" + module[len("dezero"):])
    return getattr(importlib.import_module(target), name)


@pytest.mark.parametrize(("module", "name", "kind"), list(_names()))
def test_name_resolves_with_its_meaning(alias, module, name, kind):
    value = getattr(importlib.import_module(module), name)
    exec(f"from {module} import {name}", {})  # the `from` form works too
    if kind == "C":
        assert isinstance(value, type)
    elif kind == "f":
        assert callable(value)  # (zerograd's using_config is a class: called the same)
    elif kind == "m":
        assert isinstance(value, types.ModuleType)
        # a DeZero module the original imported: the alias's module of that name
        assert value.__name__.startswith("dezero")
        return
    else:
        assert not callable(value)
    if f"{module}.{name}" in BOOK_ONLY:
        return  # tests/test_compat.py checks what each does
    assert value is _zerograd_object(module, name)


def test_module_names_give_the_alias_modules(alias):
    import dezero
    import dezero.layers

    assert dezero.functions is importlib.import_module("dezero.functions")
    assert dezero.layers.F is dezero.functions and dezero.models.L is dezero.layers
    assert dezero.functions.cuda is dezero.cuda and dezero.models.utils is dezero.utils


def test_book_only_names_are_few_and_listed():
    assert BOOK_ONLY == {
        "dezero.is_simple_core",
        "dezero.setup_variable",
        "dezero.core.array_types",
        "dezero.core.setup_variable",
        "dezero.core_simple.Variable",
        "dezero.core_simple.setup_variable",
        "dezero.cuda.cupy",
        "dezero.datasets.cache_dir",
        "dezero.datasets.load_cache_npz",
        "dezero.datasets.save_cache_npz",
        "dezero.dataloaders.pil_available",
        "dezero.functions_conv.im2col_array",
        "dezero.functions_conv.col2im_array",
        "dezero.utils.cache_dir",
        "dezero.utils.reshape_sum_backward",
        "dezero.utils.max_backward_shape",
        "dezero.utils.show_progress",
    }
