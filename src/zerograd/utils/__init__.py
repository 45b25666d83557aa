"""Utilities: shapes and axes, graph drawing, gradient checks, downloads.

The names here are DeZero's ``dezero.utils``; each lives in a module of its own.
"""

from zerograd.utils.download import DownloadError, cache_dir, get_file  # noqa: F401
from zerograd.utils.gradcheck import (  # noqa: F401
    array_allclose,
    array_equal,
    gradient_check,
    numerical_grad,
)
from zerograd.utils.graph import (  # noqa: F401
    DotGraph,
    GraphvizNotFoundWarning,
    get_dot_graph,
    plot_dot_graph,
)
from zerograd.utils.io import atomic_savez  # noqa: F401
from zerograd.utils.shape import (  # noqa: F401
    get_conv_outsize,
    get_deconv_outsize,
    logsumexp,
    normalize_axis,
    pair,
    reduced_shape,
    sum_to,
)
