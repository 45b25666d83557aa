"""The book's sine-wave LSTM (step 60): mini-batches of 30 stretches of the wave.

An LSTM layer (hidden 100) and a linear output, trained with truncated
backpropagation through time (30 steps, then ``loss.unchain_backward()``) on batches
from ``SeqDataLoader``, which walks 30 stretches of the wave side by side. The book
calls the LSTM once per step; here 30 consecutive batches are stacked into one
``(30, batch, 1)`` chunk and the LSTM runs the whole chunk in one call (its sequence
path: the same numbers, several times faster). Prints the mean loss per epoch, then
predicts a cosine wave and saves prediction vs truth as ``<out>/sin_lstm.png``.

    python examples/sin_lstm.py [--epochs 100] [--gpu] [--out out]
"""

import numpy as np
from common import Timer, limit, parser, pyplot, save_figure, setup, to_device

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda, optimizers
from zerograd.dataloaders import SeqDataLoader
from zerograd.datasets import SinCurve
from zerograd.models import Model


class BetterRNN(Model):
    def __init__(self, hidden_size: int, out_size: int):
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self) -> None:
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))  # (T, N, 1) -> (T, N, 100) -> (T, N, 1)


def chunks(loader, length: int):
    """The loader's batches, ``length`` consecutive ones at a time stacked into
    ``(steps, batch, 1)`` arrays (the last chunk of an epoch may be shorter)."""
    xs, ts = [], []
    for x, t in loader:
        xs.append(x)
        ts.append(t)
        if len(xs) == length:
            xp = cuda.get_array_module(x)
            yield xp.stack(xs), xp.stack(ts)
            xs, ts = [], []
    if xs:
        xp = cuda.get_array_module(xs[0])
        yield xp.stack(xs), xp.stack(ts)


def train(model, loader, args) -> float:
    """Truncated BPTT over the batched wave; returns the last epoch's mean loss."""
    optimizer = optimizers.Adam().setup(model)
    timer = Timer()
    for epoch in range(1, args.epochs + 1):
        model.reset_state()
        count, sum_loss = 0, 0.0
        for xs, ts in chunks(loader, args.bptt_length):
            y = model(xs)  # the whole chunk in one call; the state carries on
            # The book sums each step's mean squared error over the chunk: that is the
            # mean over the chunk times its number of steps.
            loss = F.mean_squared_error(y, ts) * len(xs)
            model.cleargrads()
            loss.backward()
            loss.unchain_backward()  # truncate: the next chunk starts a new graph
            optimizer.update()
            count += len(xs)
            sum_loss += float(loss.data)
        print(f"epoch {epoch}  loss {sum_loss / count:.6f}  ({timer():.1f}s)")
    return sum_loss / count


def predict_cos(model, args):
    """Feed a cosine wave (as one sequence) and collect the predicted next values."""
    xs = np.cos(np.linspace(0, 4 * np.pi, 1000)).astype(np.float32)
    model.reset_state()
    with zerograd.no_grad():
        y = model(to_device(xs.reshape(-1, 1, 1), args.gpu))  # 1000 steps, batch 1
    return xs, cuda.as_numpy(y.data).reshape(-1)


def plot(xs, predictions, args) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(np.arange(len(xs)), xs, label="y = cos(x)")
    ax.plot(np.arange(len(xs)), predictions, label="predicted")
    ax.set(xlabel="step", ylabel="y")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, args, "sin_lstm.png")


def main(argv=None) -> None:
    p = parser("The book's sine-wave LSTM with SeqDataLoader (step 60).", 100)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=30)
    p.add_argument("--bptt-length", type=int, default=30)
    args = p.parse_args(argv)
    setup(args)

    train_set = limit(SinCurve(train=True), args.limit)
    loader = SeqDataLoader(train_set, args.batch_size, gpu=args.gpu)
    model = BetterRNN(args.hidden, 1)
    if args.gpu:
        model.to_gpu()
    timer = Timer()
    loss = train(model, loader, args)
    xs, predictions = predict_cos(model, args)
    error = float(np.mean((predictions[:-1] - xs[1:]) ** 2))
    print(f"result: loss {loss:.6f}  cos next-value MSE {error:.6f}  ({timer():.1f}s)")
    plot(xs, predictions, args)


if __name__ == "__main__":
    main()
