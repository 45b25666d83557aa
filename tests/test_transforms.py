"""Transforms: array transforms per sample and per batch, and the Pillow image ones."""

import numpy as np
import pytest

from zerograd.transforms import (
    AsType,
    CenterCrop,
    Compose,
    Convert,
    Flatten,
    Normalize,
    RandomHorizontalFlip,
    Resize,
    ToArray,
    ToFloat,
    ToInt,
    ToPIL,
)


def test_compose_runs_in_order():
    f = Compose([lambda x: x + 1, lambda x: x * 10])
    assert f(1) == 20
    assert Compose()(5) == 5
    assert not f.batchable
    assert Compose([Flatten(), ToFloat()]).batchable


def test_flatten():
    assert Flatten()(np.zeros((1, 28, 28))).shape == (784,)
    assert Flatten()(np.float32(3.0)).shape == (1,)


@pytest.mark.parametrize(
    "transform, dtype",
    [(AsType(), np.float32), (AsType(np.float64), np.float64), (ToFloat(), np.float32),
     (ToFloat(np.float16), np.float16), (ToInt(), np.int64), (ToInt(np.int8), np.int8)],
)
def test_astype(transform, dtype):
    y = transform(np.array([1.0, 2.9, 3.0]))
    assert y.dtype == dtype


def test_astype_does_not_copy_when_dtype_matches():
    x = np.zeros(3, dtype=np.float32)
    assert ToFloat()(x) is x


def test_normalize_scalar(dtype):
    x = np.array([0.0, 127.5, 255.0], dtype=dtype)
    y = Normalize(127.5, 127.5)(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, [-1.0, 0.0, 1.0])


def test_normalize_keeps_float32_with_numpy_scalars():
    x = np.ones(3, dtype=np.float32)
    assert Normalize(np.float64(0.5), np.array(2.0))(x).dtype == np.float32


def test_normalize_integers_become_float32():
    y = Normalize(0, 255)(np.array([0, 255], dtype=np.uint8))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0.0, 1.0])


def test_normalize_per_channel(dtype):
    x = np.arange(2 * 2 * 3, dtype=dtype).reshape(2, 2, 3)
    y = Normalize(mean=[1.0, 2.0], std=[2.0, 4.0])(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y[0], (x[0] - 1) / 2)
    np.testing.assert_allclose(y[1], (x[1] - 2) / 4)


def test_normalize_wrong_channel_count():
    with pytest.raises(ValueError, match="Normalize: 3 per-channel values"):
        Normalize(mean=[0.0, 0.0, 0.0])(np.zeros((2, 4, 4)))


@pytest.mark.parametrize(
    "transform, shape",
    [
        (Flatten(), (1, 3, 4)),
        (ToFloat(), (3, 4)),
        (ToInt(), (3,)),
        (Normalize(0.5, 2.0), (2, 3)),
        (Normalize([0.0, 1.0, 2.0], [1.0, 2.0, 4.0]), (3, 2, 2)),
        (Normalize([5.0], [2.0]), (1, 2, 2)),
        (Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)]), (1, 4, 4)),
        (Compose([ToFloat(), Normalize([1.0, 2.0, 3.0], 127.5)]), (3, 2, 2)),
    ],
)
def test_apply_batch_equals_stacked_samples(transform, shape, rng):
    xs = rng.integers(0, 256, size=(5, *shape)).astype(np.uint8)
    expected = np.stack([transform(x) for x in xs])
    got = transform.apply_batch(xs)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_random_horizontal_flip_arrays():
    x = np.arange(6).reshape(1, 2, 3)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    assert RandomHorizontalFlip(p=0.0)(x) is x
    flip, again = RandomHorizontalFlip(seed=3), RandomHorizontalFlip(seed=3)
    firsts = [flip(x)[0, 0, 0] for _ in range(20)]
    assert firsts == [again(x)[0, 0, 0] for _ in range(20)]  # reproducible by seed
    assert set(firsts) == {0, 2}  # flipped sometimes, not always
    with pytest.raises(ValueError, match="p must be in"):
        RandomHorizontalFlip(p=1.5)


# --- image transforms (Pillow) -------------------------------------------------------


@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image")


def _rgb(Image, width=5, height=4):
    x = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)
    return Image.fromarray(x), x


def test_convert(Image):
    img, x = _rgb(Image)
    assert Convert("L")(img).mode == "L"
    bgr = np.asarray(Convert("BGR")(img))
    np.testing.assert_array_equal(bgr, x[..., ::-1])
    assert Convert()(img.convert("L")).mode == "RGB"


def test_resize(Image):
    img, _ = _rgb(Image)
    assert Resize(8)(img).size == (8, 8)
    assert Resize((6, 3))(img).size == (6, 3)
    assert Resize(2, Image.Resampling.NEAREST)(img).size == (2, 2)


def test_center_crop(Image):
    img, x = _rgb(Image, width=5, height=4)
    out = CenterCrop((3, 2))(img)
    assert out.size == (3, 2)
    np.testing.assert_array_equal(np.asarray(out), x[1:3, 1:4])
    with pytest.raises(ValueError, match="CenterCrop"):
        CenterCrop(6)(img)


def test_to_array_and_back(Image):
    img, x = _rgb(Image)
    y = ToArray()(img)
    assert y.shape == (3, 4, 5) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x.transpose(2, 0, 1))
    assert ToArray(np.uint8)(img.convert("L")).shape == (1, 4, 5)
    z = np.zeros((3, 2, 2))
    assert ToArray()(z) is z
    with pytest.raises(TypeError, match="ToArray: expected a PIL.Image.Image"):
        ToArray()([1, 2, 3])
    back = ToPIL()(ToArray(np.uint8)(img))
    np.testing.assert_array_equal(np.asarray(back), x)


def test_to_pil(Image):
    gray = ToPIL()(np.full((1, 2, 3), 7, dtype=np.uint8))
    assert gray.mode == "L" and gray.size == (3, 2)
    clipped = np.asarray(ToPIL()(np.array([[-5.0, 100.4, 300.0]])))
    np.testing.assert_array_equal(clipped, [[0, 100, 255]])
    with pytest.raises(ValueError, match="ToPIL"):
        ToPIL()(np.zeros((2, 4, 4)))


def test_random_horizontal_flip_pil(Image):
    img, x = _rgb(Image)
    np.testing.assert_array_equal(np.asarray(RandomHorizontalFlip(1.0)(img)), x[:, ::-1])


def test_image_pipeline(Image):
    img, _ = _rgb(Image, width=40, height=30)
    f = Compose([Convert("RGB"), Resize(32), CenterCrop(24), ToArray(), Normalize(127.5, 127.5)])
    y = f(img)
    assert y.shape == (3, 24, 24) and y.dtype == np.float32
    assert -1.0 <= y.min() <= y.max() <= 1.0
