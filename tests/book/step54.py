# Step 54: dropout in training, and the identity in test mode.
import dezero.functions as F
import numpy as np
from dezero import test_mode

x = np.ones(5)
print(x)

y = F.dropout(x)  # training: a random half dropped, the rest doubled
print(y)

with test_mode():
    y = F.dropout(x)
    print(y)
