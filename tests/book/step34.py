# Step 34: sin and its first three derivatives, plotted.
import dezero.functions as F
import matplotlib.pyplot as plt
import numpy as np
from dezero import Variable

x = Variable(np.linspace(-7, 7, 200))
y = F.sin(x)
y.backward(create_graph=True)

logs = [y.data]
for _ in range(3):
    logs.append(x.grad.data)
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)

labels = ["y=sin(x)", "y'", "y''", "y'''"]
for i, v in enumerate(logs):
    plt.plot(x.data, v, label=labels[i])
plt.legend(loc="lower right")
plt.show()
