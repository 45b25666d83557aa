# Step 6: backpropagation by hand, calling each function's backward in reverse order.
import numpy as np
from dezero import Variable
from dezero.functions import Exp, Square

A, B, C = Square(), Exp(), Square()
x = Variable(np.array(0.5))
a = A(x)
b = B(a)
y = C(b)

y.grad = np.array(1.0)
b.grad = C.backward(y.grad)
a.grad = B.backward(b.grad)
x.grad = A.backward(a.grad)
print(x.grad.data)  # zerograd's gradients are Variables; the book's step 6 has arrays
