# Step 36: a gradient used in a new computation: z = (dy/dx)^3 + y, dz/dx at x = 2.
import numpy as np
from dezero import Variable

x = Variable(np.array(2.0))
y = x ** 2
y.backward(create_graph=True)
gx = x.grad
x.cleargrad()

z = gx ** 3 + y
z.backward()
print(x.grad)
