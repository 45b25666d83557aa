# Step 14: a variable used twice gets the sum of both gradients; a fresh Variable (or
# cleargrad) starts again from zero.
import numpy as np
from dezero import Variable
from dezero.functions import add

x = Variable(np.array(3.0))
y = add(x, x)
y.backward()
print(x.grad.data)

x = Variable(np.array(3.0))
y = add(add(x, x), x)
y.backward()
print(x.grad.data)
