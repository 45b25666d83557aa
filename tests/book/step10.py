# Step 10: unit tests of square (forward, backward, and against central differences).
# The book's script defines the TestCase and prints nothing; run its three checks here.
import io
import unittest

import numpy as np
from dezero import Variable
from dezero.functions import square


def numerical_diff(f, x, eps=1e-4):
    # x.data - eps is a NumPy scalar; Variable takes arrays (the book's does from step 9)
    lo = f(Variable(np.array(x.data - eps)))
    hi = f(Variable(np.array(x.data + eps)))
    return (hi.data - lo.data) / (2 * eps)


class SquareTest(unittest.TestCase):
    def test_forward(self):
        y = square(Variable(np.array(2.0)))
        self.assertEqual(y.data, np.array(4.0))

    def test_backward(self):
        x = Variable(np.array(3.0))
        square(x).backward()
        self.assertEqual(x.grad.data, np.array(6.0))

    def test_gradient_check(self):
        x = Variable(np.random.rand(1))
        square(x).backward()
        self.assertTrue(np.allclose(x.grad.data, numerical_diff(square, x)))


result = unittest.TextTestRunner(stream=io.StringIO()).run(
    unittest.defaultTestLoader.loadTestsFromTestCase(SquareTest))
assert result.wasSuccessful(), result.failures + result.errors
