# Step 1: a Variable is a box that holds an array.
import numpy as np
from dezero import Variable

box = Variable(np.array(1.0))
print(box.data)
box.data = np.array(2.0)  # the contents can be replaced
print(box.data)
