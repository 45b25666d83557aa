"""The book's sine-wave RNN (step 59): predict the next value of a noisy sine wave.

One RNN layer (hidden 100) and a linear output read the wave; truncated
backpropagation through time updates the weights every 30 steps and then cuts the graph
(``loss.unchain_backward()``). The book calls the RNN once per value; here each chunk of
30 values goes in as one ``(30, 1, 1)`` sequence and the RNN runs it in one call (its
sequence path: the same numbers, many times faster). Prints the mean loss per epoch,
then predicts a cosine wave it never saw and saves prediction vs truth as
``<out>/sin_rnn.png``.

    python examples/sin_rnn.py [--epochs 100] [--gpu] [--out out]
"""

import numpy as np
from common import Timer, limit, parser, pyplot, save_figure, setup, to_device

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda, optimizers
from zerograd.datasets import SinCurve
from zerograd.models import Model


class SimpleRNN(Model):
    def __init__(self, hidden_size: int, out_size: int):
        super().__init__()
        self.rnn = L.RNN(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self) -> None:
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))  # (T, 1, 1) -> (T, 1, 100) -> (T, 1, 1)


def train(model, train_set, args) -> float:
    """Truncated BPTT over the wave, 30 values a chunk; returns the last epoch's loss."""
    optimizer = optimizers.Adam().setup(model)
    timer = Timer()
    # The whole wave as one sequence of batch 1: (steps, 1, 1).
    wave = to_device(train_set.data.reshape(-1, 1, 1), args.gpu)
    targets = to_device(train_set.label.reshape(-1, 1, 1), args.gpu)
    for epoch in range(1, args.epochs + 1):
        model.reset_state()
        count, sum_loss = 0, 0.0
        for start in range(0, len(wave), args.bptt_length):
            x = wave[start:start + args.bptt_length]
            t = targets[start:start + args.bptt_length]
            y = model(x)  # the whole chunk in one call; the state carries on
            # The book sums each step's squared error over the chunk: that is the mean
            # over the chunk times its number of steps.
            loss = F.mean_squared_error(y, t) * len(x)
            model.cleargrads()
            loss.backward()
            loss.unchain_backward()  # truncate: the next chunk starts a new graph
            optimizer.update()
            count += len(x)
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


def plot(xs, predictions, args, name: str) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(np.arange(len(xs)), xs, label="y = cos(x)")
    ax.plot(np.arange(len(xs)), predictions, label="predicted")
    ax.set(xlabel="step", ylabel="y")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, args, name)


def main(argv=None) -> None:
    p = parser("The book's sine-wave RNN with truncated BPTT (step 59).", 100)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--bptt-length", type=int, default=30)
    args = p.parse_args(argv)
    setup(args)

    train_set = limit(SinCurve(train=True), args.limit)
    model = SimpleRNN(args.hidden, 1)
    if args.gpu:
        model.to_gpu()
    timer = Timer()
    loss = train(model, train_set, args)
    xs, predictions = predict_cos(model, args)
    error = float(np.mean((predictions[:-1] - xs[1:]) ** 2))
    print(f"result: loss {loss:.6f}  cos next-value MSE {error:.6f}  ({timer():.1f}s)")
    plot(xs, predictions, args, "sin_rnn.png")


if __name__ == "__main__":
    main()
