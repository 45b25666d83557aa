"""Layers: objects that own Parameters and compute with zerograd functions.

A :class:`Layer` registers every :class:`~zerograd.Parameter` and every sub-Layer
assigned to one of its attributes, in assignment order, so ``params()`` walks a whole
model. Layers whose input size is left as None create their weights on the first call,
from the shape of the input. Weights are drawn from this module's NumPy Generator;
:func:`seed` makes them reproducible.

Example:
    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> L.seed(0)
    >>> layer = L.Linear(3)
    >>> y = layer(np.ones((2, 4), dtype=np.float32))
    >>> y.shape, layer.W.shape, y.dtype
    ((2, 3), (4, 3), dtype('float32'))
    >>> [p.name for p in layer.params()]
    ['W', 'b']
"""

from zerograd.layers.attention import MultiHeadAttention, TransformerBlock
from zerograd.layers.base import Layer
from zerograd.layers.conv import Conv2d, Deconv2d
from zerograd.layers.dropout import Dropout
from zerograd.layers.linear import EmbedID, Linear
from zerograd.layers.normalization import BatchNorm, LayerNorm
from zerograd.layers.recurrent import GRU, LSTM, RNN
from zerograd.random import seed_weights as seed

__all__ = [
    "seed",
    "Layer",
    "Linear",
    "Conv2d",
    "Deconv2d",
    "RNN",
    "LSTM",
    "GRU",
    "EmbedID",
    "BatchNorm",
    "LayerNorm",
    "Dropout",
    "MultiHeadAttention",
    "TransformerBlock",
]
