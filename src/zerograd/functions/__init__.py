"""Differentiable functions, imported by users as ``import zerograd.functions as F``.

Each category lives in a module of its own; this package re-exports them all, as
DeZero's ``dezero.functions`` (and ``dezero.functions_conv``) did:

- ``math``: arithmetic, exp, log, sin, cos, tanh, sqrt, square
- ``array``: reshape, transpose, indexing, broadcasting, reductions, concat, split
- ``linalg``: matmul, linear
- ``activation``: sigmoid, relu, softmax, gelu, ...
- ``loss``: mean squared error, cross entropies, accuracy
- ``dropout``: dropout
- ``conv``: conv2d, deconv2d, pooling, im2col, col2im
- ``normalization``: batch_norm, layer_norm
- ``embedding``: embed_id
"""

from zerograd.functions.activation import *  # noqa: F403
from zerograd.functions.array import *  # noqa: F403
from zerograd.functions.conv import *  # noqa: F403
from zerograd.functions.embedding import *  # noqa: F403
from zerograd.functions.linalg import *  # noqa: F403
from zerograd.functions.loss import *  # noqa: F403
from zerograd.functions.math import *  # noqa: F403
from zerograd.functions.normalization import *  # noqa: F403
from zerograd.functions.regularization import *  # noqa: F403
from zerograd.functions.rnn import *  # noqa: F403
