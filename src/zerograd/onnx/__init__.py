"""ONNX export and import: run zerograd models anywhere, train ONNX models in zerograd.

- :func:`export` writes a zerograd model (a Layer, or any function of Variables) as an
  ONNX file, tracing one forward pass.
- :func:`load` reads an ONNX file (from zerograd, PyTorch or elsewhere) as a zerograd
  :class:`~zerograd.models.Model` whose forward runs zerograd's Functions: it can be
  evaluated, differentiated and trained.

Both need the ``onnx`` package (``pip install 'zerograd[onnx]'``); it is imported only
when they are called, never by ``import zerograd``.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> from zerograd.models import MLP
    >>> L.seed(0)
    >>> model = MLP((16, 3))
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    >>> _ = export(model, x, path)
    >>> loaded = load(path)
    >>> bool(np.allclose(loaded(x).data, model(x).data, atol=1e-6))
    True
"""

from zerograd.onnx.export import ExportError, export, max_opset
from zerograd.onnx.export_ops import register_converter
from zerograd.onnx.load import OnnxImportError, OnnxModel, load

__all__ = [
    "export",
    "load",
    "OnnxModel",
    "ExportError",
    "OnnxImportError",
    "register_converter",
    "max_opset",
]
