# Step 47: softmax and cross entropy for classification (the seed comes first here).
import numpy as np

np.random.seed(0)
import dezero.functions as F  # noqa: E402
from dezero import Variable, as_variable  # noqa: E402 (after the seed, as the book)
from dezero.models import MLP  # noqa: E402


def softmax1d(x):
    x = as_variable(x)
    y = F.exp(x)
    return y / F.sum(y)


model = MLP((10, 3))

x = Variable(np.array([[0.2, -0.4]]))
y = model(x)
p = softmax1d(y)
print(y)
print(p)

x = np.array([[0.2, -0.4], [0.3, 0.5], [1.3, -3.2], [2.1, 0.3]])
t = np.array([2, 0, 1, 0])
y = model(x)
p = F.softmax_simple(y)
print(y)
print(p)

loss = F.softmax_cross_entropy_simple(y, t)
loss.backward()
print(loss)
