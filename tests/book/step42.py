# Step 42: linear regression on a toy data set, by gradient descent.
import dezero.functions as F
import matplotlib.pyplot as plt
import numpy as np
from dezero import Variable

np.random.seed(0)
x = np.random.rand(100, 1)
y = 5 + 2 * x + np.random.rand(100, 1)
x, y = Variable(x), Variable(y)

W = Variable(np.zeros((1, 1)))
b = Variable(np.zeros(1))


def predict(x):
    return F.matmul(x, W) + b


def mean_squared_error(x0, x1):
    diff = x0 - x1
    return F.sum(diff ** 2) / len(diff)


lr = 0.1
iters = 100

for _ in range(iters):
    y_pred = predict(x)
    loss = mean_squared_error(y, y_pred)

    W.cleargrad()
    b.cleargrad()
    loss.backward()

    W.data -= lr * W.grad.data
    b.data -= lr * b.grad.data
    print(W, b, loss)

plt.scatter(x.data, y.data, s=10)
plt.xlabel("x")
plt.ylabel("y")
y_pred = predict(x)
plt.plot(x.data, y_pred.data, color="r")
plt.show()
