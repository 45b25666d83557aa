"""Models: Layers with a name, ready-made networks, and the book's pretrained ones.

Example:
    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> from zerograd.models import MLP
    >>> L.seed(0)
    >>> model = MLP((10, 3))
    >>> model(np.zeros((4, 2), dtype=np.float32)).shape
    (4, 3)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda
from zerograd.config import no_grad, test_mode
from zerograd.core import Variable
from zerograd.layers import Layer

__all__ = [
    "Model",
    "Sequential",
    "MLP",
    "VGG16",
    "ResNet",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "BuildingBlock",
    "BottleneckA",
    "BottleneckB",
    "SqueezeNet",
    "TransformerLM",
]


class Model(Layer):
    """A Layer that is a whole network; adds :meth:`plot`.

    Example:
        >>> class Net(Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = L.Linear(2)
        ...     def forward(self, x):
        ...         return F.relu(self.fc(x))
        >>> Net()(np.ones((1, 3), dtype=np.float32)).shape
        (1, 2)
    """

    def plot(self, *inputs, to_file: str = "model.png"):
        """Run the model on ``inputs`` and draw the graph of the computation.

        Calls ``zerograd.utils.plot_dot_graph`` (Graphviz's ``dot`` makes the image;
        without it the ``.dot`` source is written).
        """
        from zerograd.utils.graph import plot_dot_graph

        y = self.forward(*inputs)
        return plot_dot_graph(y, verbose=True, to_file=to_file)


def _pretrained_path(model: str, pretrained: Any, url: str | None) -> str:
    """Where the weights are: a local path as given, or the published file for True."""
    if isinstance(pretrained, (str, os.PathLike)):
        return os.fspath(pretrained)
    if url is None:
        raise ValueError(
            f"{model}: no published weight file is known for this model; pass the path "
            f"of a local .npz file instead, e.g. {model}(pretrained='weights.npz')"
        )
    from zerograd.utils.download import get_file

    return get_file(url)


# =========================================================================================
# Containers
# =========================================================================================
class Sequential(Model):
    """Apply layers (or plain functions such as ``F.relu``) one after the other.

    Layers are registered as ``l0``, ``l1``, ... in the given order (functions get a
    number too, so names match positions).

    Example:
        >>> model = Sequential(L.Linear(4), F.relu, L.Linear(2))
        >>> model(np.ones((3, 5), dtype=np.float32)).shape
        (3, 2)
        >>> list(model.state_dict())
        ['l0.W', 'l0.b', 'l2.W', 'l2.b']
    """

    def __init__(self, *layers: Layer | Callable):
        super().__init__()
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(
                    f"Sequential: item {i} is a {type(layer).__name__}, not a Layer or a "
                    "function; pass layers such as L.Linear(10) or functions like F.relu"
                )
            if isinstance(layer, Layer):
                setattr(self, f"l{i}", layer)
        self.layers = list(layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int):
        return self.layers[i]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __repr__(self) -> str:
        """Every item by its position, plain functions included (``model[i]``).

        Example:
            >>> Sequential(L.Linear(4, in_size=3), F.relu)
            Sequential(
              (0): Linear(in_size=3, out_size=4)
              (1): relu
            )
        """
        lines = []
        for i, item in enumerate(self.layers):
            text = repr(item) if isinstance(item, Layer) else getattr(
                item, "__name__", None) or repr(item)
            lines.append(f"({i}): " + text.replace("\n", "\n  "))
        if not lines:
            return "Sequential()"
        return "Sequential(\n  " + "\n  ".join(lines) + "\n)"


class MLP(Model):
    """A multi-layer perceptron: Linear layers with ``activation`` between them.

    Args:
        fc_output_sizes: output size of each Linear layer (the last is the output).
        activation: applied after every layer but the last.

    Shape:
        ``(N, in) -> (N, fc_output_sizes[-1])``

    Example:
        >>> model = MLP((10, 1))
        >>> model(np.zeros((4, 2), dtype=np.float32)).shape
        (4, 1)
    """

    def __init__(self, fc_output_sizes: Sequence[int], activation: Callable = F.sigmoid):
        super().__init__()
        if len(fc_output_sizes) == 0:
            raise ValueError(
                "MLP: fc_output_sizes is empty; give the output size of each layer, e.g. "
                "MLP((100, 10))"
            )
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            layer = L.Linear(out_size)
            setattr(self, f"l{i}", layer)
            self.layers.append(layer)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


# =========================================================================================
# VGG16
# =========================================================================================
class VGG16(Model):
    """VGG-16 (Simonyan and Zisserman, 2014): 13 convolutions and 3 fully connected layers.

    Args:
        pretrained: False for random weights; True for the ImageNet weights that DeZero
            publishes (downloaded once through ``zerograd.utils.get_file``); or the path
            of a local ``.npz`` with the same names (``conv1_1.W``, ..., ``fc8.b``).

    With pretrained weights the input must be ``224 x 224`` (made by :meth:`preprocess`);
    with random ones any size from 32 up works, the first Linear sizing itself.

    Shape:
        ``(N, 3, H, W) -> (N, 1000)``

    Example:
        >>> model = VGG16()
        >>> len(list(model.params())), model.fc8.out_size
        (32, 1000)
    """

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/vgg16.npz"

    def __init__(self, pretrained: bool | str | os.PathLike = False):
        super().__init__()
        widths = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
        self._convs = []
        for block, (channels, count) in enumerate(widths, start=1):
            names = []
            for j in range(1, count + 1):
                name = f"conv{block}_{j}"
                setattr(self, name, L.Conv2d(channels, kernel_size=3, stride=1, pad=1))
                names.append(name)
            self._convs.append(names)
        self.fc6 = L.Linear(4096)
        self.fc7 = L.Linear(4096)
        self.fc8 = L.Linear(1000)
        if pretrained:
            self.load_weights(_pretrained_path("VGG16", pretrained, self.WEIGHTS_PATH))

    def forward(self, x):
        for names in self._convs:
            for name in names:
                x = F.relu(getattr(self, name)(x))
            x = F.pooling(x, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.dropout(F.relu(self.fc6(x)))
        x = F.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)

    @staticmethod
    def preprocess(image, size: tuple[int, int] | None = (224, 224), dtype=np.float32):
        """Turn an RGB image into VGG16's input: ``(3, H, W)``, BGR, mean subtracted.

        Args:
            image: a PIL image, or an ``(H, W, 3)`` RGB array (values 0 to 255).
            size: ``(width, height)`` to resize to (PIL's order), or None to keep it.
            dtype: dtype of the result.

        Pillow is imported only to resize an array (or to convert a PIL image).

        Example:
            >>> VGG16.preprocess(np.zeros((4, 6, 3)), size=None).shape
            (3, 4, 6)
        """
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"VGG16.preprocess: expected an (H, W, 3) RGB array, got shape "
                    f"{image.shape}; convert greyscale or RGBA images to RGB first"
                )
            if size is not None and tuple(size) != (image.shape[1], image.shape[0]):
                from PIL import Image

                image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
        if not isinstance(image, np.ndarray):  # a PIL image
            image = image.convert("RGB")
            if size is not None:
                image = image.resize(tuple(size))
        x = np.array(image, dtype=dtype)
        x = x[:, :, ::-1]  # RGB -> BGR, the channel order of the original Caffe model
        x -= np.array([103.939, 116.779, 123.68], dtype=dtype)
        return np.ascontiguousarray(x.transpose(2, 0, 1))


# =========================================================================================
# ResNet
# =========================================================================================
class BottleneckA(Layer):
    """A bottleneck that changes the width (and maybe the resolution): 1x1, 3x3 and 1x1
    convolutions, plus a strided 1x1 projection of the shortcut; each convolution is
    followed by batch normalisation.

    Args:
        in_channels: channels of the input (kept for DeZero's signature: the
            convolutions size themselves on the first call).
        mid_channels: channels of the 1x1 and 3x3 convolutions inside.
        out_channels: channels of the output.
        stride: stride of the downsampling.
        downsample_fb: False puts the stride on the first 1x1 convolution (the original
            MSRA ResNet), True on the 3x3 one (Facebook's ResNet).

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``

    Example:
        >>> block = BottleneckA(4, 2, 8, stride=2)
        >>> block(np.ones((1, 4, 6, 6), dtype=np.float32)).shape
        (1, 8, 3, 3)
    """

    def __init__(self, in_channels: int | None, mid_channels: int, out_channels: int,
                 stride: int = 2, downsample_fb: bool = False):
        super().__init__()
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = L.Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(out_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()
        self.conv4 = L.Conv2d(out_channels, 1, stride, 0, nobias=True)
        self.bn4 = L.BatchNorm()

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + self.bn4(self.conv4(x)))


class BottleneckB(Layer):
    """A bottleneck that keeps the shape: 1x1, 3x3 and 1x1 convolutions with batch
    normalisation, and an identity shortcut.

    Args:
        in_channels: channels of the input and of the output.
        mid_channels: channels of the 1x1 and 3x3 convolutions inside.

    Shape:
        ``(N, in_channels, H, W) -> (N, in_channels, H, W)``

    Example:
        >>> BottleneckB(4, 2)(np.ones((1, 4, 3, 3), dtype=np.float32)).shape
        (1, 4, 3, 3)
    """

    def __init__(self, in_channels: int, mid_channels: int):
        super().__init__()
        self.conv1 = L.Conv2d(mid_channels, 1, 1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, 1, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(in_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + x)


class BuildingBlock(Layer):
    """One stage of a ResNet: a :class:`BottleneckA` named ``a``, then ``n_layers - 1``
    :class:`BottleneckB` named ``b1``, ``b2``, ...

    Args:
        n_layers: the number of bottlenecks.
        in_channels: channels of the input (see :class:`BottleneckA`).
        mid_channels: channels inside each bottleneck.
        out_channels: channels of the output.
        stride: stride of the first bottleneck.
        downsample_fb: where the first bottleneck puts its stride (see
            :class:`BottleneckA`).

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``

    Example:
        >>> stage = BuildingBlock(3, 4, 2, 8, stride=1)
        >>> stage(np.ones((1, 4, 3, 3), dtype=np.float32)).shape, stage._names
        ((1, 8, 3, 3), ['a', 'b1', 'b2'])
    """

    def __init__(self, n_layers: int, in_channels: int | None, mid_channels: int,
                 out_channels: int, stride: int, downsample_fb: bool = False):
        super().__init__()
        if n_layers < 1:
            raise ValueError(
                f"BuildingBlock: n_layers must be at least 1, got {n_layers!r}"
            )
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride, downsample_fb)
        self._names = ["a"]
        for i in range(1, n_layers):
            setattr(self, f"b{i}", BottleneckB(out_channels, mid_channels))
            self._names.append(f"b{i}")

    def forward(self, x):
        for name in self._names:
            x = getattr(self, name)(x)
        return x


class ResNet(Model):
    """ResNet (He et al., 2015) with bottleneck blocks and batch normalisation.

    The names follow DeZero's (``conv1``, ``bn1``, ``res2`` ... ``res5``, ``fc6``), so
    weight files converted for DeZero load as they are.

    Args:
        n_layers: 50, 101 or 152.
        pretrained: False for random weights, or the path of a local ``.npz``. (No
            published file is known to us, so True raises an error.)

    Shape:
        ``(N, 3, H, W) -> (N, 1000)``

    Raises:
        ValueError: for another ``n_layers``.

    Example:
        >>> len(list(ResNet(50).params()))
        162
    """

    WEIGHTS_PATH: str | None = None

    _BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

    def __init__(self, n_layers: int = 152, pretrained: bool | str | os.PathLike = False):
        super().__init__()
        if n_layers not in self._BLOCKS:
            raise ValueError(
                f"ResNet: n_layers must be 50, 101 or 152, got {n_layers!r}"
            )
        blocks = self._BLOCKS[n_layers]
        self.conv1 = L.Conv2d(64, 7, 2, 3)
        self.bn1 = L.BatchNorm()
        self.res2 = BuildingBlock(blocks[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(blocks[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(blocks[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(blocks[3], 1024, 512, 2048, 2)
        self.fc6 = L.Linear(1000)
        if pretrained:
            name = f"ResNet{n_layers}"
            self.load_weights(_pretrained_path(name, pretrained, self.WEIGHTS_PATH))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.pooling(x, kernel_size=3, stride=2)
        x = self.res5(self.res4(self.res3(self.res2(x))))
        N, C, H, W = x.shape
        x = F.sum(x, axis=(2, 3)) * (1.0 / (H * W))  # global average pooling
        return self.fc6(x)


class ResNet50(ResNet):
    """ResNet with 50 layers; see :class:`ResNet`.

    Example:
        >>> len(list(ResNet50().params()))
        162
    """

    def __init__(self, pretrained: bool | str | os.PathLike = False):
        super().__init__(50, pretrained)


class ResNet101(ResNet):
    """ResNet with 101 layers; see :class:`ResNet`.

    Example:
        >>> len(list(ResNet101().params()))
        315
    """

    def __init__(self, pretrained: bool | str | os.PathLike = False):
        super().__init__(101, pretrained)


class ResNet152(ResNet):
    """ResNet with 152 layers; see :class:`ResNet`.

    Example:
        >>> len(list(ResNet152().params()))
        468
    """

    def __init__(self, pretrained: bool | str | os.PathLike = False):
        super().__init__(152, pretrained)


# =========================================================================================
# SqueezeNet
# =========================================================================================
class _Fire(Layer):
    """SqueezeNet's fire module: a 1x1 "squeeze" convolution, then 1x1 and 3x3 "expand"
    convolutions side by side, their outputs joined along the channels."""

    def __init__(self, squeeze_channels: int, expand_channels: int):
        super().__init__()
        self.squeeze = L.Conv2d(squeeze_channels, 1)
        self.expand1x1 = L.Conv2d(expand_channels, 1)
        self.expand3x3 = L.Conv2d(expand_channels, 3, pad=1)

    def forward(self, x):
        s = F.relu(self.squeeze(x))
        return F.concat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], axis=1)


class SqueezeNet(Model):
    """SqueezeNet 1.1 (Iandola et al., 2016): AlexNet's accuracy on ImageNet with 50
    times fewer parameters, from fire modules and no fully connected layer.

    (DeZero names ``SqueezeNet`` in its models but leaves it empty; this is the network.)

    Args:
        pretrained: False for random weights, or the path of a local ``.npz`` with the
            names of :meth:`state_dict`. (No published file is known to us, so True
            raises an error.)

    Shape:
        ``(N, 3, H, W) -> (N, 1000)``, ``H, W >= 31``

    Example:
        >>> model = SqueezeNet()
        >>> with test_mode():
        ...     model(np.zeros((1, 3, 32, 32), dtype=np.float32)).shape
        (1, 1000)
        >>> len(list(model.params()))
        52
    """

    WEIGHTS_PATH: str | None = None

    # (squeeze, expand) channels of fire2 ... fire9; max pooling after the first
    # convolution and after fire3 and fire5.
    _FIRES = ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256),
              (64, 256))
    _POOL_AFTER = ("fire3", "fire5")

    def __init__(self, pretrained: bool | str | os.PathLike = False):
        super().__init__()
        self.conv1 = L.Conv2d(64, 3, stride=2)
        self._fires = []
        for i, (squeeze, expand) in enumerate(self._FIRES, start=2):
            setattr(self, f"fire{i}", _Fire(squeeze, expand))
            self._fires.append(f"fire{i}")
        self.conv10 = L.Conv2d(1000, 1)
        if pretrained:
            self.load_weights(_pretrained_path("SqueezeNet", pretrained, self.WEIGHTS_PATH))

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), 3, 2)
        for name in self._fires:
            x = getattr(self, name)(x)
            if name in self._POOL_AFTER:
                x = F.pooling(x, 3, 2)
        x = F.relu(self.conv10(F.dropout(x, 0.5)))
        N, C, H, W = x.shape
        return F.sum(x, axis=(2, 3)) * (1.0 / (H * W))  # global average pooling


# =========================================================================================
# A small Transformer language model
# =========================================================================================
class TransformerLM(Model):
    """A decoder-only (GPT-style) Transformer over token ids, e.g. characters.

    Token and learnt position embeddings, ``num_layers`` causal pre-norm
    :class:`~zerograd.layers.TransformerBlock` s, a final LayerNorm and a Linear head.

    Args:
        vocab_size: number of token ids.
        embed_dim: features per position (a multiple of ``num_heads``).
        num_heads: attention heads per block.
        num_layers: number of blocks.
        max_len: longest sequence (the context window).
        dropout_ratio: dropout in the blocks during training.

    Shape:
        ids ``(N, T) -> `` logits ``(N, T, vocab_size)``, ``T <= max_len``

    Example:
        >>> L.seed(0)
        >>> lm = TransformerLM(vocab_size=5, embed_dim=8, num_heads=2, num_layers=1,
        ...                    max_len=6)
        >>> lm(np.array([[0, 1, 2]])).shape
        (1, 3, 5)
        >>> lm.generate([0, 1], length=3, temperature=0).shape
        (5,)
    """

    def __init__(self, vocab_size: int, embed_dim: int, num_heads: int, num_layers: int,
                 max_len: int, dropout_ratio: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.token = L.EmbedID(vocab_size, embed_dim)
        self.position = L.EmbedID(max_len, embed_dim)
        # Small embeddings (std 0.02) keep the residual stream of a fresh model tame.
        self.token.W.data *= 0.02
        self.position.W.data *= 0.02
        self._blocks = []
        for i in range(num_layers):
            block = L.TransformerBlock(embed_dim, num_heads, causal=True,
                                       dropout_ratio=dropout_ratio)
            setattr(self, f"block{i}", block)
            self._blocks.append(block)
        self.ln = L.LayerNorm(embed_dim)
        self.head = L.Linear(vocab_size, in_size=embed_dim)

    def forward(self, x):
        x = x.data if isinstance(x, Variable) else x
        if x.ndim != 2 or x.shape[1] > self.max_len:
            raise ValueError(
                f"TransformerLM: expected token ids of shape (N, T) with T <= "
                f"max_len={self.max_len}, got shape {tuple(x.shape)}; crop the sequence"
            )
        xp = cuda.get_array_module(x)
        h = self.token(x) + self.position(xp.arange(x.shape[1]))
        for block in self._blocks:
            h = block(h)
        return self.head(self.ln(h))

    def generate(self, start_ids, length: int, temperature: float = 1.0,
                 top_k: int | None = None, rng: np.random.Generator | None = None):
        """Extend ``start_ids`` by ``length`` sampled tokens, one at a time.

        Args:
            start_ids: a sequence of ids ``(T,)``, or a batch ``(N, T)``.
            length: number of tokens to add.
            temperature: softmax temperature; 0 picks the most likely token.
            top_k: sample only among the ``top_k`` most likely tokens.
            rng: the NumPy Generator to sample with (a fresh one by default).

        Returns:
            A NumPy array of ids: the start followed by the new tokens, ``(T + length,)``
            or ``(N, T + length)``.
        """
        rng = np.random.default_rng() if rng is None else rng
        ids = np.array(cuda.as_numpy(start_ids), dtype=np.int64)
        if ids.ndim not in (1, 2) or ids.shape[-1] == 0:
            raise ValueError(
                f"TransformerLM.generate: start_ids must be a non-empty sequence of ids "
                f"(T,) or a batch (N, T), got shape {ids.shape}; start from at least one id"
            )
        if top_k is not None and top_k < 1:
            raise ValueError(
                f"TransformerLM.generate: top_k must be at least 1, got {top_k}; use "
                "None to sample from every token"
            )
        single = ids.ndim == 1
        if single:
            ids = ids[None]
        xp = cuda.get_array_module(self.head.W.data)
        with no_grad(), test_mode():
            for _ in range(length):
                context = xp.asarray(ids[:, -self.max_len:])
                logits = cuda.as_numpy(self.forward(context).data[:, -1])
                ids = np.concatenate([ids, self._pick(logits, temperature, top_k, rng)], 1)
        return ids[0] if single else ids

    @staticmethod
    def _pick(logits, temperature: float, top_k: int | None, rng) -> np.ndarray:
        """Next ids ``(N, 1)`` from last-position logits ``(N, V)``."""
        logits = logits.astype(np.float64)
        if temperature == 0:
            return logits.argmax(axis=1)[:, None]
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[1]:
            kth = np.sort(logits, axis=1)[:, -top_k][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        u = rng.random((p.shape[0], 1))
        choice = (p.cumsum(axis=1) < u).sum(axis=1)
        return np.minimum(choice, p.shape[1] - 1)[:, None]
