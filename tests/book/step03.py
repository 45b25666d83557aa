# Step 3: functions chained, y = (exp(x^2))^2 at x = 0.5.
import numpy as np
from dezero import Variable
from dezero.functions import Exp, Square

A, B, C = Square(), Exp(), Square()
x = Variable(np.array(0.5))
y = C(B(A(x)))
print(y.data)
