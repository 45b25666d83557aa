# Step 29: Newton's method with the second derivative written by hand, on the first core.
import dezero
import numpy as np
from dezero import Variable

if not dezero.is_simple_core:
    from dezero.core_simple import Variable, setup_variable

    setup_variable()


def f(x):
    return x ** 4 - 2 * x ** 2


def gx2(x):
    return 12 * x ** 2 - 4


x = Variable(np.array(2.0))
iters = 10

for i in range(iters):
    print(i, x)

    y = f(x)
    x.cleargrad()
    y.backward()

    x.data -= x.grad / gx2(x.data)
