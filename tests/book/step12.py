# Step 12: add(x0, x1).
import numpy as np
from dezero import Variable
from dezero.functions import add

x0 = Variable(np.array(2))
x1 = Variable(np.array(3))
y = add(x0, x1)
print(y.data)
