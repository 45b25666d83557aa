# Step 59: one RNN step, then a small model backpropagated through two steps.
import dezero.functions as F
import dezero.layers as L
import numpy as np
from dezero import Model

rnn = L.RNN(10)  # hidden size only
x = np.random.rand(1, 1)
h = rnn(x)
print(h.shape)
h = rnn(x)  # the second step uses the hidden state of the first
print(h.shape)


class SimpleRNN(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.RNN(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        h = self.rnn(x)
        y = self.fc(h)
        return y


seq_data = [np.random.randn(1, 1) for _ in range(1000)]
xs = seq_data[0:-1]
ts = seq_data[1:]

model = SimpleRNN(10, 1)

loss, cnt = 0, 0
for x, t in zip(xs, ts):
    y = model(x)
    loss += F.mean_squared_error(y, t)

    cnt += 1
    if cnt == 2:
        model.cleargrads()
        loss.backward()
        break

print(loss.shape)
print(all(p.grad is not None for p in model.params()))

# truncated BPTT: after unchain_backward the graph behind the loss is gone
loss.unchain_backward()
print(loss.creator is None, model.rnn.h.creator is None)
