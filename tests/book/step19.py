# Step 19: a Variable has a name, a shape, and a printed form.
import numpy as np
from dezero import Variable

x = Variable(np.array([[1, 2, 3], [4, 5, 6]]))
x.name = "x"
print(x.name)
print(x.shape)
print(x)
