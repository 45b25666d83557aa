# Step 27: sin as a Function of its own, then sin as its Taylor series (a long graph).
import math

import numpy as np
from dezero import Function, Variable
from dezero.utils import plot_dot_graph


class Sin(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * np.cos(x)


def sin(x):
    return Sin()(x)


x = Variable(np.array(np.pi / 4))
y = sin(x)
y.backward()
print("--- original sin ---")
print(y.data)
print(x.grad)


def my_sin(x, threshold=0.0001):
    y = 0
    for i in range(100000):
        term = (-1) ** i / math.factorial(2 * i + 1) * x ** (2 * i + 1)
        y = y + term
        if abs(term.data) < threshold:
            break
    return y


x = Variable(np.array(np.pi / 4))
y = my_sin(x)
y.backward()
print("--- approximate sin ---")
print(y.data)
print(x.grad)

x.name = "x"
y.name = "y"
plot_dot_graph(y, verbose=False, to_file="my_sin.png")
