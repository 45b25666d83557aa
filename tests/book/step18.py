# Step 18: backward keeps only the leaves' gradients unless asked; no_grad switches
# graph building off.
import numpy as np
from dezero import Variable, no_grad, using_config
from dezero.functions import add, square

x0 = Variable(np.array(1.0))
x1 = Variable(np.array(1.0))
t = add(x0, x1)
y = add(x0, t)
y.backward()
print(y.grad, t.grad)
print(x0.grad.data, x1.grad.data)

with using_config("enable_backprop", False):
    x = Variable(np.array(2.0))
    y = square(x)
    assert y.creator is None

with no_grad():
    x = Variable(np.array(2.0))
    y = square(x)
    assert y.creator is None
