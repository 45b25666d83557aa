# Step 20: operators on Variables (the book attaches them; zerograd's class has them).
import numpy as np
from dezero import Variable

a = Variable(np.array(3.0))
b = Variable(np.array(2.0))
c = Variable(np.array(1.0))
y = a * b + c
y.backward()
print(y)
print(a.grad.data)
print(b.grad.data)
