# Step 4: derivatives by central differences (eps = 1e-4).
import numpy as np
from dezero import Variable
from dezero.functions import Exp, Square


def numerical_diff(f, x, eps=1e-4):
    # x.data - eps is a NumPy scalar; Variable takes arrays (the book's does from step 9)
    lo = f(Variable(np.array(x.data - eps)))
    hi = f(Variable(np.array(x.data + eps)))
    return (hi.data - lo.data) / (2 * eps)


x = Variable(np.array(2.0))
print(numerical_diff(Square(), x))  # d/dx x^2 at 2


def f(x):
    A, B, C = Square(), Exp(), Square()
    return C(B(A(x)))


x = Variable(np.array(0.5))
print(numerical_diff(f, x))
