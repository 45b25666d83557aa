# Step 7: each output remembers its creator, so y.backward() walks back by itself.
import numpy as np
from dezero import Variable
from dezero.functions import Exp, Square

A, B, C = Square(), Exp(), Square()
x = Variable(np.array(0.5))
a = A(x)
b = B(a)
y = C(b)
assert y.creator is C and y.creator.inputs[0] is b  # the links backward walks

y.grad = np.array(1.0)
y.backward()
print(x.grad.data)
