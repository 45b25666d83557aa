# Step 16: a graph with a branch, processed in order of generation.
import numpy as np
from dezero import Variable
from dezero.functions import add, square

x = Variable(np.array(2.0))
a = square(x)
y = add(square(a), square(a))
y.backward()
print(y.data)
print(x.grad.data)
