"""A character-level Transformer language model trained on a few Shakespeare sonnets.

The text (``examples/data/sonnets.txt``, public domain; its first line names the
source) becomes one long sequence of character ids. Every window of ``--seq-len``
characters is a training sample whose targets are the same window shifted by one
character; an epoch visits each window once, in random order. (Windows at every
offset matter: a model that only sees windows starting at, say, every 4th character
learns the text by position and falls apart once generation shifts its context.) The model is
``zerograd.models.TransformerLM`` (causal self-attention, GPT-style). Prints the mean
loss (in nats per character) after every epoch with a short generated sample, and a
longer sample at the end.

    python examples/char_transformer.py [--epochs 8] [--gpu] [--prompt "Shall I"]
"""

import os

import numpy as np
from common import Timer, at_least, limit, parser, positive_int, positive_rate, setup

import zerograd.functions as F
from zerograd import optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import Dataset
from zerograd.models import TransformerLM
from zerograd.progress import progress

TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sonnets.txt")


class CharWindows(Dataset):
    """Windows of a text as character ids: ``x`` a window, ``t`` the next characters."""

    def __init__(self, path: str, seq_len: int):
        self.path = path
        self.seq_len = seq_len
        super().__init__(train=True)

    @staticmethod
    def read(path: str) -> str:
        """The text, without its source line."""
        with open(path, encoding="utf-8") as f:
            return "".join(line for line in f if not line.startswith("# Source:"))

    @classmethod
    def length(cls, path: str) -> int:
        return len(cls.read(path))

    def prepare(self) -> None:
        text = self.read(self.path)
        self.chars = sorted(set(text))
        self.char_to_id = {c: i for i, c in enumerate(self.chars)}
        ids = np.array([self.char_to_id[c] for c in text], dtype=np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(ids, self.seq_len + 1)
        self.data = np.ascontiguousarray(windows[:, :-1])
        self.label = np.ascontiguousarray(windows[:, 1:])

    def encode(self, text: str) -> list:
        return [self.char_to_id[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def sample(model, dataset, prompt: str, length: int, rng) -> str:
    ids = model.generate(dataset.encode(prompt), length, temperature=0.8, rng=rng)
    return dataset.decode(ids)


def main(argv=None) -> None:
    p = parser("A character-level Transformer language model on Shakespeare's sonnets.", 8)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seq-len", type=positive_int, default=64)
    p.add_argument("--embed-dim", type=positive_int, default=64)
    p.add_argument("--num-heads", type=positive_int, default=4)
    p.add_argument("--num-layers", type=positive_int, default=2)
    p.add_argument("--lr", type=positive_rate, default=2e-3)
    p.add_argument("--prompt", default="Shall I ")
    p.add_argument("--length", type=at_least(0), default=400,
                   help="characters in the final sample")
    args = p.parse_args(argv)
    if args.embed_dim % args.num_heads:
        p.error(f"--embed-dim {args.embed_dim} is not a multiple of --num-heads "
                f"{args.num_heads}")
    setup(args)
    rng = np.random.default_rng(args.seed)

    text_length = CharWindows.length(TEXT)
    if args.seq_len >= text_length:
        p.error(f"--seq-len {args.seq_len} leaves no window in the text ({text_length} "
                "characters); give a shorter one")
    train_set = limit(CharWindows(TEXT, args.seq_len), args.limit)
    unknown = sorted(set(args.prompt) - set(train_set.chars))
    if not args.prompt or unknown:
        p.error(f"--prompt {args.prompt!r}: give at least one character, all of them from "
                "the text" + (f"; not in it: {''.join(unknown)!r}" if unknown else ""))
    vocab_size = len(train_set.chars)
    loader = DataLoader(train_set, args.batch_size, gpu=args.gpu, seed=args.seed)
    model = TransformerLM(vocab_size, args.embed_dim, args.num_heads, args.num_layers,
                          max_len=args.seq_len)
    if args.gpu:
        model.to_gpu()
    optimizer = optimizers.Adam(alpha=args.lr).setup(model)
    optimizer.add_hook(optimizers.ClipGrad(1.0))
    print(f"{len(train_set)} windows of {args.seq_len} characters, vocabulary of "
          f"{vocab_size}; {sum(p.size for p in model.params())} parameters")

    timer = Timer()
    for epoch in range(1, args.epochs + 1):
        sum_loss = 0.0
        for x, t in progress(loader, desc=f"epoch {epoch}", unit="batch"):
            y = model(x)  # (N, T, vocab_size) logits
            loss = F.softmax_cross_entropy(y.reshape(-1, vocab_size), t.reshape(-1))
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(x)
        text = sample(model, train_set, args.prompt, 60, rng).replace("\n", " / ")
        print(f"epoch {epoch}  loss {sum_loss / len(train_set):.4f}  ({timer():.1f}s)  "
              f"{text!r}")

    print(f"result: loss {sum_loss / len(train_set):.4f}  ({timer():.1f}s)")
    print("sample:")
    print(sample(model, train_set, args.prompt, args.length, rng))


if __name__ == "__main__":
    main()
