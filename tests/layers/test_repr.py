"""``repr(model)`` reads like PyTorch's: each layer with its key sizes, nested."""

import numpy as np

import zerograd.functions as F
import zerograd.layers as L
from zerograd.models import MLP, Model, TransformerLM


def test_repr_of_an_mlp():
    model = MLP((100, 10), activation=F.relu)
    assert repr(model) == (
        "MLP(\n"
        "  activation=relu\n"
        "  (l0): Linear(in_size=None, out_size=100)\n"
        "  (l1): Linear(in_size=None, out_size=10)\n"
        ")"
    )
    model(np.zeros((1, 784), dtype=np.float32))  # the sizes are known after a call
    assert "(l0): Linear(in_size=784, out_size=100)" in repr(model)
    assert "(l1): Linear(in_size=100, out_size=10)" in repr(model)


class CNN(Model):
    def __init__(self, channels=16):
        super().__init__()
        self.conv1 = L.Conv2d(channels, kernel_size=3, pad=1)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(2 * channels, kernel_size=(3, 3), stride=2, nobias=True)
        self.drop = L.Dropout(0.25)
        self.fc = L.Linear(10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.drop(F.relu(self.conv2(x)))
        return self.fc(x.reshape(len(x), -1))


def test_repr_of_a_cnn():
    model = CNN()
    model(np.zeros((2, 1, 28, 28), dtype=np.float32))
    assert repr(model) == (
        "CNN(\n"
        "  (conv1): Conv2d(in_channels=1, out_channels=16, kernel_size=3, stride=1, pad=1)\n"
        "  (bn1): BatchNorm(size=16, decay=0.9, eps=2e-05)\n"
        "  (conv2): Conv2d(in_channels=16, out_channels=32, kernel_size=(3, 3), stride=2, "
        "pad=0, nobias=True)\n"
        "  (drop): Dropout(dropout_ratio=0.25)\n"
        "  (fc): Linear(in_size=5408, out_size=10)\n"
        ")"
    )


def test_repr_of_a_transformer_language_model():
    model = TransformerLM(50, 16, 2, 2, max_len=8)
    text = repr(model)
    block = (
        "TransformerBlock(\n"
        "    embed_dim=16, num_heads=2, hidden_size=64, causal=True\n"
        "    (ln1): LayerNorm(size=16, eps=1e-05)\n"
        "    (attn): MultiHeadAttention(\n"
        "      embed_dim=16, num_heads=2, causal=True\n"
        "      (qkv): Linear(in_size=16, out_size=48)\n"
        "      (out): Linear(in_size=16, out_size=16)\n"
        "    )\n"
        "    (ln2): LayerNorm(size=16, eps=1e-05)\n"
        "    (fc1): Linear(in_size=16, out_size=64)\n"
        "    (fc2): Linear(in_size=64, out_size=16)\n"
        "  )"
    )
    assert text == (
        "TransformerLM(\n"
        "  vocab_size=50, max_len=8\n"
        "  (token): EmbedID(in_size=50, out_size=16)\n"
        "  (position): EmbedID(in_size=8, out_size=16)\n"
        f"  (block0): {block}\n"
        f"  (block1): {block}\n"
        "  (ln): LayerNorm(size=16, eps=1e-05)\n"
        "  (head): Linear(in_size=16, out_size=50)\n"
        ")"
    )
