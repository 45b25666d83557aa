# Step 2: a Function takes a Variable and gives a Variable; Square is the first one.
# (The book defines Variable, Function and Square in the script; zerograd has them.)
import numpy as np
from dezero import Variable
from dezero.functions import Square

x = Variable(np.array(10))
f = Square()
y = f(x)
print(type(y))  # zerograd's class, where the book prints its own __main__.Variable
print(y.data)
