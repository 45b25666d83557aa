# Step 8: the same, with a loop instead of recursion (zerograd's backward is a loop).
import numpy as np
from dezero import Variable
from dezero.functions import Exp, Square

A, B, C = Square(), Exp(), Square()
x = Variable(np.array(0.5))
a = A(x)
b = B(a)
y = C(b)

y.grad = np.array(1.0)
y.backward()
print(x.grad.data)
