# Step 54: dropout drops while training and passes everything through at test time.
import dezero.functions as F
import numpy as np
from dezero import test_mode

x = np.ones(5)
print(x)

# while training: each element is dropped (0) or scaled up (1 / (1 - 0.5) = 2)
y = F.dropout(x)
print(y)

# at test time: nothing changes
with test_mode():
    y = F.dropout(x)
    print(y)

# on average the scaling keeps the expected value
y = F.dropout(np.ones(10000), dropout_ratio=0.2)
print(y.shape, round(float(y.data.mean()), 1))
