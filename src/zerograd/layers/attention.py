"""Attention layers: :class:`MultiHeadAttention` and :class:`TransformerBlock`."""

from __future__ import annotations

import math

import numpy as np

import zerograd.functions as F
from zerograd import _checks, cuda
from zerograd.layers.base import Layer
from zerograd.layers.linear import Linear
from zerograd.layers.normalization import LayerNorm

__all__ = ["MultiHeadAttention", "TransformerBlock"]


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product self-attention on batch-first sequences.

    The query, key and value projections are one fused ``E -> 3E`` product (``qkv``,
    columns q, k, v), followed by the output projection ``out``. With
    ``qkv.W = in_proj_weight.T``, ``qkv.b = in_proj_bias``, ``out.W = out_proj.weight.T``
    and ``out.b = out_proj.bias`` it reproduces ``torch.nn.MultiheadAttention(E, heads,
    batch_first=True)`` on ``(x, x, x)``.

    Args:
        embed_dim: features per position ``E``; a multiple of ``num_heads``.
        num_heads: number of heads.
        causal: position ``t`` attends only to positions ``<= t`` (for language models).
        dropout_ratio: dropout on the attention weights in training, in [0, 1).
        nobias: leave out the projection biases.
        dtype: dtype of the parameters.

    Shape:
        ``(N, T, E) -> (N, T, E)``

    Raises:
        TypeError, ValueError: at construction, when a size is not a positive integer,
            ``embed_dim`` is not a multiple of ``num_heads``, ``dropout_ratio`` is not
            in [0, 1), a flag is not a bool or ``dtype`` not a floating-point dtype; at
            a call, when the input is not ``(N, T, embed_dim)``.

    Example:
        >>> attn = MultiHeadAttention(8, num_heads=2, causal=True)
        >>> attn(np.zeros((2, 5, 8), dtype=np.float32)).shape
        (2, 5, 8)
    """

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False,
                 dropout_ratio: float = 0.0, nobias: bool = False, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.embed_dim, self.num_heads = _check_heads(name, embed_dim, num_heads)
        self.causal = _checks.flag(name, "causal", causal)
        self.dropout_ratio = _checks.fraction(name, "dropout_ratio", dropout_ratio)
        self.nobias = _checks.flag(name, "nobias", nobias)
        self.dtype = _checks.float_dtype(name, dtype)
        self.qkv = Linear(3 * self.embed_dim, nobias=self.nobias, dtype=self.dtype,
                          in_size=self.embed_dim)
        self.out = Linear(self.embed_dim, nobias=self.nobias, dtype=self.dtype,
                          in_size=self.embed_dim)

    def extra_repr(self) -> str:
        parts = [f"embed_dim={self.embed_dim}", f"num_heads={self.num_heads}"]
        if self.causal:
            parts.append("causal=True")
        if self.dropout_ratio:
            parts.append(f"dropout_ratio={self.dropout_ratio}")
        if self.nobias:
            parts.append("nobias=True")
        if self.dtype != np.float32:
            parts.append(f"dtype={self.dtype}")
        return ", ".join(parts)

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"MultiHeadAttention: expected x of shape (N, T, {self.embed_dim}), got "
                f"{tuple(x.shape)}; inputs are batch-first"
            )
        N, T, E = x.shape
        H = self.num_heads
        D = E // H
        q, k, v = (
            F.transpose(F.reshape(y, (N, T, H, D)), (0, 2, 1, 3))
            for y in F.split(self.qkv(x), 3, axis=-1)
        )
        scores = F.matmul(q * (1.0 / math.sqrt(D)), F.transpose(k, (0, 1, 3, 2)))
        if self.causal:
            scores = scores + _causal_mask(T, scores.data)
        weights = F.softmax(scores, axis=-1)  # (N, H, T, T)
        if self.dropout_ratio:
            weights = F.dropout(weights, self.dropout_ratio)
        y = F.transpose(F.matmul(weights, v), (0, 2, 1, 3))
        return self.out(F.reshape(y, (N, T, E)))


def _check_heads(layer: str, embed_dim, num_heads) -> tuple[int, int]:
    embed_dim = _checks.size(layer, "embed_dim", embed_dim, "features per position")
    num_heads = _checks.size(layer, "num_heads", num_heads, "attention heads")
    if embed_dim % num_heads != 0:
        raise ValueError(
            f"{layer}: embed_dim={embed_dim} is not a multiple of num_heads={num_heads}; "
            "choose sizes with embed_dim % num_heads == 0"
        )
    return embed_dim, num_heads


def _causal_mask(T: int, like):
    """A (T, T) additive mask: 0 on and below the diagonal, a huge negative above."""
    xp = cuda.get_array_module(like)
    above = xp.triu(xp.ones((T, T), dtype=bool), 1)
    # The most negative finite value rather than -inf: softmax still gives exact zeros
    # and anomaly detection does not see an infinity.
    return xp.where(above, xp.finfo(like.dtype).min, 0).astype(like.dtype)


class TransformerBlock(Layer):
    """A pre-norm Transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``.

    Args:
        embed_dim: features per position ``E``.
        num_heads: attention heads.
        hidden_size: width of the two-layer MLP; ``4 * embed_dim`` by default.
        causal: causal self-attention (for language models).
        dropout_ratio: dropout on the attention weights and on both residual branches,
            in [0, 1).
        activation: the MLP's nonlinearity; ``F.gelu`` by default.
        dtype: dtype of the parameters.

    Shape:
        ``(N, T, E) -> (N, T, E)``

    Raises:
        TypeError, ValueError: as :class:`MultiHeadAttention`, and when ``hidden_size``
            is not a positive integer (or None) or ``activation`` not a function.

    Example:
        >>> block = TransformerBlock(8, num_heads=2, causal=True)
        >>> block(np.zeros((2, 5, 8), dtype=np.float32)).shape
        (2, 5, 8)
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden_size: int | None = None,
                 causal: bool = False, dropout_ratio: float = 0.0, activation=None,
                 dtype=np.float32):
        super().__init__()
        # Checked here, so that a bad value is reported in this layer's name.
        name = type(self).__name__
        embed_dim, num_heads = _check_heads(name, embed_dim, num_heads)
        hidden_size = _checks.size(name, "hidden_size", hidden_size, "width of the MLP",
                                 optional=True)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.hidden_size = 4 * embed_dim if hidden_size is None else hidden_size
        self.causal = _checks.flag(name, "causal", causal)
        self.dropout_ratio = _checks.fraction(name, "dropout_ratio", dropout_ratio)
        self.activation = _checks.function(name, "activation", activation)
        dtype = _checks.float_dtype(name, dtype)
        self.ln1 = LayerNorm(embed_dim, dtype=dtype)
        self.attn = MultiHeadAttention(embed_dim, num_heads, causal=self.causal,
                                       dropout_ratio=self.dropout_ratio, dtype=dtype)
        self.ln2 = LayerNorm(embed_dim, dtype=dtype)
        self.fc1 = Linear(self.hidden_size, dtype=dtype, in_size=embed_dim)
        self.fc2 = Linear(embed_dim, dtype=dtype, in_size=self.hidden_size)

    def extra_repr(self) -> str:
        parts = [f"embed_dim={self.embed_dim}", f"num_heads={self.num_heads}",
                 f"hidden_size={self.hidden_size}"]
        if self.causal:
            parts.append("causal=True")
        if self.dropout_ratio:
            parts.append(f"dropout_ratio={self.dropout_ratio}")
        if self.activation is not None:
            parts.append(f"activation={getattr(self.activation, '__name__', 'custom')}")
        return ", ".join(parts)

    def _drop(self, x):
        return F.dropout(x, self.dropout_ratio) if self.dropout_ratio else x

    def forward(self, x):
        activation = F.gelu if self.activation is None else self.activation
        x = x + self._drop(self.attn(self.ln1(x)))
        return x + self._drop(self.fc2(activation(self.fc1(self.ln2(x)))))
