"""zerograd: a deep-learning framework from scratch on NumPy (and CuPy).

The system that *Deep Learning from Scratch 3* builds as DeZero, with DeZero's API.

Example:
    >>> import numpy as np
    >>> import zerograd
    >>> from zerograd import Variable
    >>> import zerograd.functions as F
    >>> x = Variable(np.array(0.5))
    >>> y = F.square(F.exp(F.square(x)))
    >>> y.backward()
    >>> x.grad
    variable(3.297442541400256)
    >>> zerograd.grad(F.square(F.exp(F.square(x))), x)   # returned, .grad untouched
    (variable(3.297442541400256),)
"""

__version__ = "0.1.0"

from zerograd.allocator import tune_malloc as _tune_malloc  # noqa: E402

_tune_malloc()  # keep large freed blocks for the next step (see zerograd.allocator)

from zerograd.threads import _start_at_import as _adapt_threads  # noqa: E402

_adapt_threads()  # with ZEROGRAD_ADAPT_THREADS=1: fewer BLAS threads on a busy machine

from zerograd import (  # noqa: E402, F401
    amp,
    checkpoint,
    cuda,
    dataloaders,
    datasets,
    debug,
    distributed,
    early_stopping,
    functional,
    functions,
    layers,
    logs,
    models,
    onnx,
    optimizers,
    progress,
    transforms,
    utils,
)
from zerograd.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from zerograd.config import Config, no_grad, test_mode, using_config  # noqa: E402
from zerograd.core import (  # noqa: E402
    Function,
    Parameter,
    Variable,
    as_array,
    as_variable,
    grad,  # the engine's gradients; zerograd.functional.grad(f) is the transform
)
from zerograd.dataloaders import DataLoader, SeqDataLoader  # noqa: E402
from zerograd.datasets import Dataset  # noqa: E402
from zerograd.layers import Layer  # noqa: E402
from zerograd.models import Model  # noqa: E402
from zerograd.random import seed  # noqa: E402

__all__ = [
    "Variable",
    "Parameter",
    "Function",
    "Config",
    "using_config",
    "no_grad",
    "test_mode",
    "as_array",
    "as_variable",
    "grad",
    "seed",
    "save_checkpoint",
    "load_checkpoint",
    "Layer",
    "Model",
    "Dataset",
    "DataLoader",
    "SeqDataLoader",
    "amp",
    "checkpoint",
    "cuda",
    "dataloaders",
    "datasets",
    "debug",
    "distributed",
    "early_stopping",
    "functional",
    "layers",
    "logs",
    "models",
    "onnx",
    "optimizers",
    "progress",
    "transforms",
    "functions",
    "utils",
    "__version__",
]
