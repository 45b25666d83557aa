# Step 13: backward through a function of two inputs, z = x^2 + y^2.
import numpy as np
from dezero import Variable
from dezero.functions import add, square

x = Variable(np.array(2.0))
y = Variable(np.array(3.0))
z = add(square(x), square(y))
z.backward()
print(z.data)
print(x.grad.data)
print(y.grad.data)
