# Step 41: matrix product and the shapes of its gradients.
import dezero.functions as F
import numpy as np
from dezero import Variable

x = Variable(np.random.randn(2, 3))
w = Variable(np.random.randn(3, 4))
y = F.matmul(x, w)
y.backward()

print(x.grad.shape)
print(w.grad.shape)
