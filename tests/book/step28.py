# Step 28: gradient descent on the Rosenbrock function, on the book's first core
# (dezero.core_simple, whose gradients are arrays), as the book's script chooses.
import dezero
import numpy as np
from dezero import Variable

if not dezero.is_simple_core:
    from dezero.core_simple import Variable, setup_variable

    setup_variable()


def rosenbrock(x0, x1):
    return 100 * (x1 - x0 ** 2) ** 2 + (x0 - 1) ** 2


x0 = Variable(np.array(0.0))
x1 = Variable(np.array(2.0))
lr = 0.001
iters = 1000

for _ in range(iters):
    print(x0, x1)

    y = rosenbrock(x0, x1)

    x0.cleargrad()
    x1.cleargrad()
    y.backward()

    x0.data -= lr * x0.grad
    x1.data -= lr * x1.grad
