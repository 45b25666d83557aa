# Step 9: functions as Python functions; backward seeds the gradient with ones; and a
# Variable only takes arrays: the last line fails on purpose, as in the book.
import numpy as np
from dezero import Variable
from dezero.functions import exp, square

x = Variable(np.array(0.5))
y = square(exp(square(x)))
y.backward()
print(x.grad.data)

x = Variable(np.array(1.0))  # an array: fine
x = Variable(None)  # nothing yet: fine
x = Variable(1.0)  # a Python float: TypeError
