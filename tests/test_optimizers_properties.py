"""Properties of the optimizers' checks, over many values (Hypothesis): which
hyperparameters are accepted, and that a saved state loads back exactly."""

import math

import numpy as np
import pytest

from zerograd import Parameter
from zerograd import optimizers as O

pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MAKERS = {
    "SGD": lambda: O.SGD(lr=0.01),
    "MomentumSGD": lambda: O.MomentumSGD(lr=0.01),
    "AdaGrad": lambda: O.AdaGrad(lr=0.05),
    "AdaDelta": lambda: O.AdaDelta(),
    "Adam": lambda: O.Adam(alpha=0.01),
    "AdamW": lambda: O.AdamW(alpha=0.01),
}


def _params():
    return [Parameter(np.array([-1.2, 1.0])), Parameter(np.array([[0.5, -1.5], [2.0, 0.25]]))]


def _step(optimizer, params):
    for p in params:
        p.cleargrad()
    (params[0] ** 4).sum().backward()
    ((params[1] - 3.0) ** 2).sum().backward()
    optimizer.update()


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_rate_is_accepted_exactly_when_finite_and_non_negative(value):
    ok = math.isfinite(value) and value >= 0
    try:
        optimizer = O.SGD(lr=value)
    except ValueError as e:
        assert not ok and "SGD: lr must be" in str(e)
    else:
        assert ok and optimizer.lr == value


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_beta_is_accepted_exactly_in_zero_to_one(value):
    ok = 0 <= value < 1
    try:
        O.Adam(beta1=value)
        O.MomentumSGD(momentum=value)
    except ValueError:
        assert not ok
    else:
        assert ok


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(list(MAKERS)),
    st.integers(0, 4),
)
def test_state_dict_round_trips_exactly(name, steps):
    make = MAKERS[name]
    params = _params()
    optimizer = make().setup(params)
    for _ in range(steps):
        _step(optimizer, params)
    state = optimizer.state_dict()
    other = make().setup([Parameter(p.data.copy()) for p in params])
    other.load_state_dict(state)
    restored = other.state_dict()
    assert set(state) == set(restored)
    for key in state:
        np.testing.assert_array_equal(state[key], restored[key], err_msg=key)
