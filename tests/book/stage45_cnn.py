# Steps 55-57: the size of a convolution's output, im2col, conv2d and pooling.
import dezero.functions as F
import dezero.layers as L
import numpy as np
from dezero import Variable
from dezero.utils import get_conv_outsize

H, W = 4, 4  # input
KH, KW = 3, 3  # kernel
SH, SW = 1, 1  # stride
PH, PW = 1, 1  # padding
OH = get_conv_outsize(H, KH, SH, PH)
OW = get_conv_outsize(W, KW, SW, PW)
print(OH, OW)

x1 = np.random.rand(1, 3, 7, 7)
col1 = F.im2col(x1, kernel_size=5, stride=1, pad=0, to_matrix=True)
print(col1.shape)

x2 = np.random.rand(10, 3, 7, 7)
col2 = F.im2col(x2, kernel_size=(5, 5), stride=(1, 1), pad=(0, 0), to_matrix=True)
print(col2.shape)

N, C, H, W = 1, 5, 15, 15
OC, (KH, KW) = 8, (3, 3)
x = Variable(np.random.randn(N, C, H, W))
W = np.random.randn(OC, C, KH, KW)
y = F.conv2d_simple(x, W, b=None, stride=1, pad=1)
y.backward()
print(y.shape)
print(x.grad.shape)

# the fast conv2d gives the same result as the teaching version
y2 = F.conv2d(x, W, b=None, stride=1, pad=1)
print(np.allclose(y.data, y2.data))

x = Variable(np.random.randn(2, 3, 8, 8))
y = F.pooling(x, kernel_size=2, stride=2)
y.backward()
print(y.shape, x.grad.shape)

conv = L.Conv2d(16, kernel_size=3, stride=1, pad=1)
y = conv(np.random.randn(2, 3, 8, 8).astype(np.float32))
print(y.shape, conv.W.shape)
