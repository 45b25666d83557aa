# Step 11: a function of several inputs (the book passes a list; zerograd's functions
# take the inputs as arguments, as the book's own do from step 12 on).
import numpy as np
from dezero import Variable
from dezero.functions import Add

xs = [Variable(np.array(2)), Variable(np.array(3))]
f = Add()
y = f(*xs)
print(y.data)
