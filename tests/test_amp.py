"""Mixed precision: the loss scaler's mechanics, and float16 training that reaches the
float32 accuracy (the long runs are marked slow)."""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter, optimizers
from zerograd.amp import LossScaler
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.models import MLP, Model
from zerograd.transforms import Compose, Normalize, ToFloat

SMALL = np.float16(1e-4)


def _tiny_loss(w):
    """A loss whose gradient with respect to w is 1e-8: 0 in float16 arithmetic."""
    return (w * SMALL * SMALL).sum()


def test_without_scaling_small_float16_gradients_vanish_and_with_it_they_survive():
    w = Parameter(np.ones(3, dtype=np.float16))
    _tiny_loss(w).backward()
    assert (w.grad.data == 0).all()
    w.cleargrad()
    scaler = LossScaler()
    scaler.backward(_tiny_loss(w))
    assert w.grad.dtype == np.float16 and (w.grad.data > 0).all()  # 1e-8 * 2**15
    optimizer = optimizers.SGD(lr=1e4).setup([w])
    assert scaler.step(optimizer)
    np.testing.assert_allclose(optimizer.master_of(w).data, 1 - 1e-4, rtol=1e-3)


def test_unscaled_gradients_are_float32_and_equal_the_true_gradients(rng):
    zerograd.seed(0)
    model = MLP((8, 3), activation=F.tanh)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 1, 2, 0, 1])
    model(x.astype(np.float32))
    reference = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    model.astype(np.float16)
    optimizer = optimizers.SGD(lr=0.0).setup(model)  # a zero rate: the weights stay
    scaler = LossScaler(scale=1024.0)
    scaler.backward(F.softmax_cross_entropy(model(x.astype(np.float16)), t))
    assert scaler.unscale(optimizer)
    model64 = MLP((8, 3), activation=F.tanh).astype(np.float64)
    model64(x)
    model64.load_state_dict(reference)
    F.softmax_cross_entropy(model64(x), t).backward()
    for p, p64 in zip(model.params(), model64.params()):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad.data, p64.grad.data, rtol=2e-2, atol=2e-3)


def _overflowing(scaler, optimizer, w):
    w.grad = Parameter(np.array([np.inf, 1.0], dtype=np.float16))
    return scaler.step(optimizer)


def test_an_overflow_skips_the_step_and_halves_a_dynamic_scale():
    w = Parameter(np.ones(2, dtype=np.float16))
    optimizer = optimizers.Adam().setup([w])
    scaler = LossScaler(scale=1024.0)
    assert not _overflowing(scaler, optimizer, w)
    assert (w.data == 1).all() and optimizer.t == 0 and optimizer._states == {}
    assert scaler.scale == 512.0 and scaler.skipped == 1
    assert np.isinf(w.grad.data[0])  # the gradients are left as they were
    w.grad = Parameter(np.array([np.nan, 1.0], dtype=np.float16))
    assert not scaler.step(optimizer)
    assert scaler.scale == 256.0 and scaler.skipped == 2


def test_a_dynamic_scale_grows_after_growth_interval_good_steps_within_its_bounds():
    w = Parameter(np.ones(2, dtype=np.float32))
    optimizer = optimizers.SGD(lr=0.0).setup([w])
    scaler = LossScaler(scale=4.0, growth_interval=3, max_scale=16.0, min_scale=2.0)
    scales = []
    for _ in range(10):
        w.grad = Parameter(np.ones(2, dtype=np.float32))
        assert scaler.step(optimizer)
        scales.append(scaler.scale)
    assert scales == [4, 4, 8, 8, 8, 16, 16, 16, 16, 16]
    for _ in range(5):
        _overflowing(scaler, optimizer, w)
    assert scaler.scale == 2.0  # not below min_scale


def test_a_static_scale_stays_and_still_skips_overflows():
    w = Parameter(np.ones(2, dtype=np.float16))
    optimizer = optimizers.SGD().setup([w])
    scaler = LossScaler(scale=128.0, dynamic=False, growth_interval=1)
    assert not _overflowing(scaler, optimizer, w)
    w.grad = Parameter(np.ones(2, dtype=np.float16))
    assert scaler.step(optimizer)
    assert scaler.scale == 128.0 and scaler.skipped == 1


def test_a_float16_loss_keeps_the_scale_finite_in_float16():
    w = Parameter(np.ones(2, dtype=np.float16))
    scaler = LossScaler(scale=2.0**20)
    scaler.backward(w.sum())  # the seed of the backward pass is the scale itself
    assert scaler.scale == 2.0**15 and (w.grad.data == 2.0**15).all()
    with pytest.raises(ValueError, match="single value"):
        scaler.backward(w * w)


def test_shared_gradients_are_not_changed_in_place():
    a = Parameter(np.ones(2, dtype=np.float32))
    b = Parameter(np.ones(2, dtype=np.float32))
    scaler = LossScaler(scale=4.0)
    scaler.backward((a + b).sum())  # a and b receive the same gradient array
    optimizer = optimizers.SGD(lr=1.0).setup([a, b])
    scaler.step(optimizer)
    np.testing.assert_array_equal(a.data, [0.0, 0.0])
    np.testing.assert_array_equal(b.data, [0.0, 0.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"growth_factor": 1.0}, "growth_factor"),
        ({"backoff_factor": 1.5}, "backoff_factor"),
        ({"backoff_factor": 0.0}, "backoff_factor"),
        ({"growth_interval": 0}, "growth_interval"),
        ({"scale": 2.0**30}, "outside"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        LossScaler(**kwargs)


def test_state_round_trips_and_a_bad_state_changes_nothing():
    scaler = LossScaler(scale=256.0, growth_interval=7)
    scaler.good_steps, scaler.skipped = 3, 2
    other = LossScaler()
    other.load_state_dict(scaler.state_dict())
    assert other.state_dict() == scaler.state_dict()
    for bad in [{}, dict(scaler.state_dict(), scale=-1.0),
                dict(scaler.state_dict(), good_steps=-2)]:
        with pytest.raises(ValueError, match="LossScaler.load_state_dict"):
            other.load_state_dict(bad)
        assert other.state_dict() == scaler.state_dict()


def test_unscale_then_step_divides_the_gradients_once():
    # (step() divided them a second time: an update 1/scale too small, silently)
    w = Parameter(np.array([1.0], dtype=np.float32))
    optimizer = optimizers.SGD(lr=1.0).setup([w])
    scaler = LossScaler(scale=4.0)
    scaler.backward((w * 1.0).sum())
    assert scaler.unscale(optimizer)
    optimizer.add_hook(optimizers.ClipGrad(10.0))  # e.g. clipping the true gradients
    assert scaler.step(optimizer)
    np.testing.assert_array_equal(w.data, [0.0])
    with pytest.raises(RuntimeError, match="unscaled already since the last backward"):
        scaler.backward((w * 1.0).sum())
        scaler.unscale(optimizer)
        scaler.unscale(optimizer)


def test_an_overflow_found_by_unscale_skips_the_following_step():
    w = Parameter(np.ones(2, dtype=np.float16))
    optimizer = optimizers.SGD().setup([w])
    scaler = LossScaler(scale=8.0)
    with np.errstate(over="ignore"):
        scaler.backward((w * np.float16(1e4)).sum())  # 8e4 overflows float16
    assert not scaler.unscale(optimizer)
    assert not scaler.step(optimizer)
    assert (w.data == 1).all() and scaler.skipped == 1 and scaler.scale == 4.0


def test_a_float16_loss_below_min_scale_is_refused_and_the_state_stays_loadable():
    # (backward lowered the scale to 2**15 under min_scale 2**16: the scaler's own
    # state_dict then failed to load)
    w = Parameter(np.ones(2, dtype=np.float16))
    scaler = LossScaler(scale=2.0**16, min_scale=2.0**16)
    with pytest.raises(ValueError, match=r"float16, which holds scales up to 32768, but "
                                         r"min_scale is 65536; compute the loss in float32"):
        scaler.backward(w.sum())
    assert scaler.scale == 2.0**16 and w.grad is None
    LossScaler().load_state_dict(scaler.state_dict())
    scaler.backward((w * np.ones(2, dtype=np.float32)).sum())  # a float32 loss: fine
    assert scaler.scale == 2.0**16 and (w.grad.data == 2.0**16).all()


def test_step_needs_an_optimizer_with_a_target():
    with pytest.raises(RuntimeError, match="setup"):
        LossScaler().step(optimizers.SGD())


# ---- float16 training reaches the float32 accuracy ---------------------------------------
class CNN(Model):
    """examples/mnist_cnn.py's network, with a width to choose."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = L.Conv2d(channels, kernel_size=3, pad=1)
        self.conv2 = L.Conv2d(2 * channels, kernel_size=3, pad=1)
        self.fc1 = L.Linear(128)
        self.fc2 = L.Linear(10)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), kernel_size=2, stride=2)
        x = F.pooling(F.relu(self.conv2(x)), kernel_size=2, stride=2)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(x)


def train_mnist(kind, dtype, epochs, width, limit=None):
    """Train on the bundled digits (Adam, the same seeds for every dtype); return the
    held-out accuracy and the loss scaler (None in float32)."""
    zerograd.seed(0)
    if kind == "mlp":  # the default transform: flat float32 images in [0, 1]
        train_set, test_set = MNISTSubset(train=True), MNISTSubset(train=False)
        model, batch_size = MLP((width, 10), activation=F.relu), 100
    else:  # (1, 28, 28) images
        image = Compose([ToFloat(), Normalize(0.0, 255.0)])
        train_set = MNISTSubset(train=True, transform=image)
        test_set = MNISTSubset(train=False, transform=image)
        model, batch_size = CNN(width), 32
    if limit is not None:
        train_set.data, train_set.label = train_set.data[:limit], train_set.label[:limit]
    # The weights are drawn in float32 and then cast: both runs start from the same ones.
    model(np.zeros((1, *train_set[0][0].shape), dtype=np.float32))
    model.astype(dtype)
    optimizer = optimizers.Adam().setup(model)
    scaler = LossScaler() if dtype == np.float16 else None
    loader = DataLoader(train_set, batch_size, seed=0)
    for _ in range(epochs):
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x.astype(dtype)), t)
            model.cleargrads()
            if scaler is None:
                loss.backward()
                optimizer.update()
            else:
                scaler.backward(loss)
                scaler.step(optimizer)
    correct = 0.0
    with zerograd.no_grad(), zerograd.test_mode():
        for x, t in DataLoader(test_set, 200, shuffle=False):
            y = model(x.astype(dtype))
            assert y.dtype == dtype
            correct += float(F.accuracy(y, t).data) * len(t)
    return correct / len(test_set), scaler


def test_a_small_float16_mlp_follows_the_float32_run():
    # 30 steps of a small MLP: quick even while NumPy multiplies float16 without BLAS
    accuracy32, _ = train_mnist("mlp", np.float32, epochs=3, width=16, limit=1000)
    accuracy16, scaler = train_mnist("mlp", np.float16, epochs=3, width=16, limit=1000)
    assert accuracy32 > 0.5  # chance is 0.1
    assert abs(accuracy16 - accuracy32) <= 0.01
    assert scaler.skipped == 0


# Full-size runs take many minutes while NumPy multiplies float16 matrices without BLAS;
# these widths keep each run to a minute or two (see docs/training.md for the full ones).
@pytest.mark.slow
@pytest.mark.parametrize("kind, epochs, width", [("mlp", 5, 100), ("cnn", 3, 4)])
def test_float16_training_reaches_the_float32_accuracy_within_one_point(kind, epochs, width):
    accuracy32, _ = train_mnist(kind, np.float32, epochs, width)
    accuracy16, scaler = train_mnist(kind, np.float16, epochs, width)
    assert accuracy32 > 0.9
    assert abs(accuracy16 - accuracy32) <= 0.01, (accuracy16, accuracy32, scaler)
