"""Transforms: array transforms per sample and per batch, and the Pillow image ones; bad
constructor arguments; properties on random inputs against NumPy written out by hand."""

import numpy as np
import pytest

try:
    import hypothesis
    import hypothesis.extra.numpy as hnp
    import hypothesis.strategies as st
except ImportError:  # a dev dependency: the rest of the file runs without it
    hypothesis = None

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
    is_stateful,
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
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: p must be in \[0, 1\], got 1.5"):
        RandomHorizontalFlip(p=1.5)


def test_random_transforms_keep_their_state_for_exact_resumes():
    x = np.arange(6).reshape(1, 2, 3)
    flip = Compose([Flatten(), RandomHorizontalFlip(seed=3)])
    _ = [flip(x) for _ in range(5)]
    state = flip.state_dict()
    assert set(state) == {"1"} and set(state["1"]) == {"rng"}
    after = [flip(x)[0] for _ in range(20)]
    other = Compose([Flatten(), RandomHorizontalFlip(seed=4)])
    other.load_state_dict(state)
    assert [other(x)[0] for _ in range(20)] == after
    assert is_stateful(flip) and not is_stateful(Compose([Flatten()]))
    assert not is_stateful(Flatten())


@pytest.mark.parametrize("state, match", [
    ({}, r"expected the states of the transforms at \['1'\] \(RandomHorizontalFlip\)"),
    ({"1": {}}, r"RandomHorizontalFlip.load_state_dict: expected \{'rng'"),
    ({"1": {"rng": {"bit_generator": "PCG64"}}}, "'rng' is not the state of a PCG64"),
    ({"1": {"rng": np.random.Generator(np.random.MT19937(0)).bit_generator.state}},
     "is not the state of a PCG64"),
])
def test_a_bad_transform_state_changes_nothing(state, match):
    flip = Compose([Flatten(), RandomHorizontalFlip(seed=3)])
    before = flip.state_dict()
    with pytest.raises(ValueError, match=match):
        flip.load_state_dict(state)
    assert flip.state_dict() == before


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


# --- bad constructor arguments (issue 13, item 11 and the sweep) ---------------------------


@pytest.mark.parametrize(
    "error, make, match",
    [
        (ValueError, lambda: Normalize(0, 0),
          r"Normalize: std must be positive .*got 0 .*divides by zero"),
        (ValueError, lambda: Normalize(0.5, [1.0, 0.0, 1.0]), "Normalize: std must be positive"),
        (ValueError, lambda: Normalize(0, -1.0), "Normalize: std must be positive"),
        (ValueError, lambda: Normalize(float("nan"), 1),
          "Normalize: mean must be a number or a sequence"),
        (ValueError, lambda: Normalize(0, float("inf")),
          "Normalize: std must be a number or a sequence"),
        (TypeError, lambda: Normalize("0", 1), "Normalize: mean must be a number"),
        (TypeError, lambda: Normalize(None, 1), "Normalize: mean must be a number"),
        (TypeError, lambda: Normalize(True, 1), "Normalize: mean must be a number"),
        (TypeError, lambda: Normalize(1j, 1), "Normalize: mean must be a number"),
        (ValueError, lambda: Normalize([], 1), "Normalize: mean must be a number"),
        (ValueError, lambda: Normalize([[0, 1], [2, 3]], 1), "Normalize: mean must be a number"),
        (ValueError, lambda: Normalize([0, [1, 2]], 1), "Normalize: mean must be a number"),
        (ValueError, lambda: Normalize([0, 1, 2], [1, 2]),
          "mean has 3 per-channel values and std 2"),
        (TypeError, lambda: AsType("float99"),
          r"AsType: dtype must be a NumPy numeric or bool dtype"),
        (ValueError, lambda: AsType(object), "AsType: dtype must be"),
        (ValueError, lambda: AsType(str), "AsType: dtype must be"),
        (TypeError, lambda: AsType(None), "AsType: dtype must be"),
        (ValueError, lambda: ToFloat(np.int32), r"ToFloat: dtype must be a floating dtype"),
        (ValueError, lambda: ToFloat("int8"), "ToFloat: dtype must be a floating dtype"),
        (ValueError, lambda: ToInt(np.float32), r"ToInt: dtype must be an integer dtype"),
        (ValueError, lambda: ToInt(bool), "ToInt: dtype must be an integer dtype"),
        (TypeError, lambda: ToArray("x"), "ToArray: dtype must be a NumPy numeric dtype"),
        (TypeError, lambda: Compose(Flatten()),
          r"Compose: transforms must be a list .*Compose\(\[t\]\)"),
        (TypeError, lambda: Compose("abc"), "Compose: transforms must be a list"),
        (TypeError, lambda: Compose(3), "Compose: transforms must be a list"),
        (TypeError, lambda: Compose([Flatten(), 3]), r"Compose: transforms\[1\] must be callable"),
        (ValueError, lambda: Convert(""), "Convert: mode must be a Pillow image mode"),
        (TypeError, lambda: Convert(3), "Convert: mode must be a Pillow image mode"),
        (ValueError, lambda: Resize(0),
          r"Resize: size must be a positive int or a \(width, height\) pair"),
        (ValueError, lambda: Resize(-2), "Resize: size must be a positive int"),
        (TypeError, lambda: Resize((2.5, 3)), "Resize: size must be a positive int"),
        (TypeError, lambda: Resize((2, 3, 4)), "Resize: size must be a positive int"),
        (TypeError, lambda: Resize(True), "Resize: size must be a positive int"),
        (ValueError, lambda: Resize(4, mode=9),
          "Resize: mode must be None or a PIL.Image.Resampling"),
        (TypeError, lambda: Resize(4, mode="bilinear"), "Resize: mode must be None"),
        (ValueError, lambda: CenterCrop((0, 3)), "CenterCrop: size must be a positive int"),
        (TypeError, lambda: CenterCrop(None), "CenterCrop: size must be a positive int"),
        (ValueError, lambda: RandomHorizontalFlip(-0.1),
          r"RandomHorizontalFlip: p must be in \[0, 1\], got -0.1 \(the probability of a flip\)"),
        (ValueError, lambda: RandomHorizontalFlip(float("nan")),
          "RandomHorizontalFlip: p must be"),
        (TypeError, lambda: RandomHorizontalFlip("0.5"), "RandomHorizontalFlip: p must be"),
        (TypeError, lambda: RandomHorizontalFlip(True), "RandomHorizontalFlip: p must be"),
        (ValueError, lambda: RandomHorizontalFlip(seed=-1),
          r"RandomHorizontalFlip: seed must be None, a "
                                                r"non-negative int .*got -1 \(int\)"),
        (TypeError, lambda: RandomHorizontalFlip(seed=1.5), "RandomHorizontalFlip: seed must be"),
        (TypeError, lambda: RandomHorizontalFlip(seed=np.random.RandomState(0)),
         "RandomHorizontalFlip: seed must be"),
    ],
)
def test_bad_constructor_arguments_are_refused(error, make, match):
    # a TypeError for a value of the wrong kind, a ValueError for one out of range
    with pytest.raises(error, match=match):
        make()


def test_good_constructor_arguments_still_work():
    assert Normalize(np.float32(2), np.array([1.0, 2.0]).reshape(2, 1, 1)).std.shape == (2, 1, 1)
    Normalize([0, 1], 2)(np.zeros((2, 3)))
    assert ToFloat("float16").dtype == np.float16 and ToInt("uint8").dtype == np.uint8
    assert AsType(bool).dtype == np.bool_ and ToArray(np.uint8).dtype == np.uint8
    assert Resize(np.int64(3)).size == (3, 3) and CenterCrop([4, 5]).size == (4, 5)
    assert Resize(2, mode=0).mode == 0
    assert Compose(t for t in [Flatten()]).batchable
    shared = np.random.default_rng(0)
    assert RandomHorizontalFlip(1, seed=shared).rng is shared
    assert RandomHorizontalFlip(np.float32(0.5), seed=np.random.SeedSequence(1)).p == 0.5


def test_normalize_attributes_set_later_are_checked_too():
    f = Normalize(0.0, 2.0)
    x = np.array([4.0], dtype=np.float32)
    assert f(x)[0] == 2.0
    f.mean = 2.0  # the prepared values follow
    assert f(x)[0] == 1.0 and f.mean == 2.0
    with pytest.raises(ValueError, match="Normalize: std must be positive"):
        f.std = 0
    with pytest.raises(ValueError, match="mean has 3 per-channel values and std 2"):
        Normalize(0, [1.0, 2.0]).mean = [0, 0, 0]
    assert f.std == 2.0 and f(x)[0] == 1.0  # unchanged by the refused assignment


def test_normalize_std_that_vanishes_in_the_inputs_dtype():
    f = Normalize(0.0, 1e-10)
    assert np.isfinite(f(np.ones(2, dtype=np.float32))).all()
    with pytest.raises(ValueError, match=r"Normalize: .*do not fit in float16 .*ToFloat"):
        f(np.ones(2, dtype=np.float16))
    with pytest.raises(ValueError, match="do not fit in float16"):
        Normalize(1e6, 1.0).apply_batch(np.ones((3, 2), dtype=np.float16))


@pytest.mark.parametrize("transform", [Compose([Flatten()]), Normalize(), Flatten(), ToFloat(),
                                       ToInt(), AsType(np.int8), RandomHorizontalFlip(0.5),
                                       Resize(3), CenterCrop(2), ToArray(), ToPIL(), Convert()])
def test_repr_names_the_transform(transform):
    assert repr(transform).startswith(type(transform).__name__ + "(")


def test_convert_to_an_unknown_mode(Image):
    img, _ = _rgb(Image)
    with pytest.raises(ValueError, match="Convert: cannot convert a RGB image to mode 'XYZ'"):
        Convert("XYZ")(img)


# --- properties on random inputs --------------------------------------------------------------

if hypothesis is not None:
    _settings = hypothesis.settings(derandomize=True, max_examples=60, deadline=None,
                                    database=None)
    _floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)
    _stds = st.floats(0.015625, 1e3, allow_nan=False, width=32)

    @st.composite
    def _normalize_cases(draw):
        """(transform, batch, mean as (C,) float64, std as (C,) float64)."""
        dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int32]))
        n = draw(st.integers(1, 4))
        c = draw(st.integers(1, 4))
        rest = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4))
        xs = draw(hnp.arrays(dtype, (n, c, *rest), elements=(
            st.integers(0, 255) if np.dtype(dtype).kind in "iu" else _floats)))
        per_channel_mean, per_channel_std = draw(st.booleans()), draw(st.booleans())
        mean = draw(st.lists(_floats, min_size=c, max_size=c)) if per_channel_mean \
            else draw(_floats)
        std = draw(st.lists(_stds, min_size=c, max_size=c)) if per_channel_std \
            else draw(_stds)
        m = np.broadcast_to(np.asarray(mean, np.float64).reshape(-1), (c,))
        s = np.broadcast_to(np.asarray(std, np.float64).reshape(-1), (c,))
        return Normalize(mean, std), xs, m, s

    @_settings
    @hypothesis.given(_normalize_cases())
    def test_normalize_against_numpy(case):
        f, xs, mean, std = case
        out_dtype = xs.dtype if xs.dtype.kind == "f" else np.dtype(np.float32)
        expected = np.empty(xs.shape)
        for k in range(xs.shape[1]):  # one channel at a time, in float64
            expected[:, k] = (xs[:, k].astype(np.float64) - mean[k]) / std[k]
        got = f.apply_batch(xs)
        assert got.dtype == out_dtype and got.shape == xs.shape
        tol = 1e-5 if out_dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())
        np.testing.assert_array_equal(np.stack([f(x) for x in xs]), got)

    @_settings
    @hypothesis.given(
        hnp.arrays(st.sampled_from([np.uint8, np.int64, np.float32, np.float64]),
                   hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)),
        st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.bool_]),
    )
    def test_flatten_and_astype_against_numpy(xs, dtype):
        n = len(xs)
        flat = xs.reshape(n, -1) if n else np.empty((0, int(np.prod(xs.shape[1:]))), xs.dtype)
        np.testing.assert_array_equal(Flatten().apply_batch(xs), flat, strict=True)
        for x in xs:
            np.testing.assert_array_equal(Flatten()(x), x.ravel())
        with np.errstate(invalid="ignore", over="ignore"):
            got = AsType(dtype).apply_batch(xs)
            np.testing.assert_array_equal(got, xs.astype(dtype))
            f = Compose([Flatten(), AsType(dtype)])
            per_sample = [f(x) for x in xs]
            batch = f.apply_batch(xs)
        assert got.dtype == dtype
        if n:
            np.testing.assert_array_equal(batch, np.stack(per_sample))

    @_settings
    @hypothesis.given(st.floats(0.0, 1.0), st.integers(0, 2**32))
    def test_random_flip_is_a_flip_or_nothing(p, seed):
        x = np.arange(12).reshape(1, 3, 4)
        flip = RandomHorizontalFlip(p, seed=seed)
        for _ in range(5):
            y = flip(x)
            assert np.array_equal(y, x) or np.array_equal(y, x[..., ::-1])
        if p == 0.0:
            assert flip(x) is x
