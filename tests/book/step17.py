# Step 17: memory: outputs are held weakly, so each big graph is freed when the loop
# drops it (the book prints nothing; check the weak link and that the graph goes).
import weakref

import numpy as np
from dezero import Variable
from dezero.functions import square

for _ in range(10):
    x = Variable(np.random.randn(10000))
    y = square(square(square(x)))
    creator = weakref.ref(y.creator)
    del y
    assert creator() is None, "the graph outlived its output"
