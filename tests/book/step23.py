# Step 23: the code becomes the package dezero; y = (x + 3)^2.
# (The book's scripts from here on first put the book's folder on sys.path; the alias
# makes that unnecessary.)
import numpy as np
from dezero import Variable

x = Variable(np.array(1.0))
y = (x + 3) ** 2
y.backward()

print(y)
print(x.grad)
