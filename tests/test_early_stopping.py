"""Early stopping: patience, min/max, min_delta, best weights restored, its state."""

import numpy as np
import pytest

import zerograd.layers as L
from zerograd.early_stopping import EarlyStopping


def _model():
    L.seed(0)
    return L.Linear(2, in_size=3)


def _run(stopper, model, values):
    """Feed ``values``; set the weights to the epoch number each time; return the epoch
    at which it stopped (or None)."""
    for epoch, value in enumerate(values):
        model.W.data[...] = epoch
        if stopper.step(value, model):
            return epoch
    return None


def test_stops_after_patience_epochs_without_improvement_and_restores_the_best():
    model = _model()
    stopper = EarlyStopping(patience=3)
    stopped = _run(stopper, model, [1.0, 0.8, 0.9, 0.85, 0.81, 0.7])
    assert stopped == 4 and stopper.stopped
    assert stopper.best == 0.8 and stopper.best_step == 1
    assert (model.W.data == 1).all()  # the weights of epoch 1


def test_max_mode_and_min_delta():
    model = _model()
    stopper = EarlyStopping(patience=2, mode="max", min_delta=0.05)
    # 0.52 and 0.54 are not 0.05 better than 0.5: they do not count
    assert _run(stopper, model, [0.5, 0.52, 0.54, 0.9]) == 2
    assert stopper.best == 0.5 and (model.W.data == 0).all()


def test_nan_never_improves_and_restore_best_can_be_off():
    model = _model()
    stopper = EarlyStopping(patience=2, restore_best=False)
    assert _run(stopper, model, [float("nan"), 1.0, float("nan"), float("nan")]) == 3
    assert stopper.best == 1.0 and (model.W.data == 3).all()
    stopper.restore(model)
    assert (model.W.data == 1).all()


def test_the_best_weights_are_a_copy():
    model = _model()
    stopper = EarlyStopping(patience=5)
    stopper.step(1.0, model)
    before = model.W.data.copy()
    model.W.data += 1
    np.testing.assert_array_equal(stopper.best_weights["W"], before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patience": 0}, "patience"),
        ({"patience": 2.5}, "patience"),
        ({"patience": 2, "mode": "minimum"}, "mode"),
        ({"patience": 2, "min_delta": -1.0}, "min_delta"),
        ({"patience": 2, "min_delta": float("nan")}, "min_delta"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        EarlyStopping(**kwargs)


def test_state_round_trips_and_a_bad_state_changes_nothing():
    model = _model()
    stopper = EarlyStopping(patience=3, mode="max")
    _run(stopper, model, [0.1, 0.3, 0.2])
    state = stopper.state_dict()
    other = EarlyStopping(patience=1)
    other.load_state_dict(state)
    assert other.state_dict().keys() == state.keys()
    assert (other.patience, other.mode, other.best, other.best_step, other.wait) == (
        3, "max", 0.3, 1, 1)
    np.testing.assert_array_equal(other.best_weights["W"], stopper.best_weights["W"])
    fresh = EarlyStopping(patience=4)
    for bad in [{}, dict(state, wait=-1), dict(state, mode="up"),
                dict(state, best=None), dict(state, best_weights=[1, 2])]:
        with pytest.raises(ValueError, match="EarlyStopping.load_state_dict"):
            fresh.load_state_dict(bad)
        assert fresh.patience == 4 and fresh.best is None


@pytest.mark.parametrize("change", [
    dict(patience=7, best="x"),  # valid patience first, then a best that is no number
    dict(patience=7, best_step=-1),
    dict(patience=7, stopped="yes"),
    dict(patience=7, best_weights={"W": "not an array"}),
    dict(patience=7, extra=1),
])
def test_a_bad_state_is_refused_before_any_of_it_is_applied(change):
    # (patience was assigned, then float("x") raised: a half-loaded stopper)
    model = _model()
    source = EarlyStopping(patience=2)
    _run(source, model, [0.5, 0.4])
    stopper = EarlyStopping(patience=3)
    before = stopper.state_dict()
    with pytest.raises(ValueError, match="EarlyStopping.load_state_dict"):
        stopper.load_state_dict(dict(source.state_dict(), **change))
    assert stopper.state_dict() == before


def test_an_infinite_best_round_trips():
    model = _model()
    stopper = EarlyStopping(patience=2, mode="max")
    _run(stopper, model, [float("inf")])
    other = EarlyStopping(patience=2)
    other.load_state_dict(stopper.state_dict())
    assert other.best == float("inf") and other.mode == "max"
