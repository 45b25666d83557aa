"""Every layer's constructor arguments, over many values (Hypothesis; issue 13's sweep).

Each call either builds a layer that then runs on an input that fits it (output of the
expected shape and dtype, finite), or raises a TypeError or ValueError whose message
starts with the layer's name. Any other exception, or a layer that is built and then
fails on a fitting input, is a defect.

The values mix good ones (small positive sizes, pairs, ratios, float dtypes) with the
wrong kinds and ranges a user can pass: zero and negative sizes, floats, bools, None,
strings, NaN and infinities, integer and object dtypes, tuples of the wrong length.
"""

import contextlib
import math

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ODD = st.sampled_from([None, True, False, "3", 2.5, math.nan, math.inf, -math.inf, [2],
                       (1, 2, 3), object(), np.float32(2.0), np.bool_(True)])
SIZE = st.one_of(st.integers(1, 5), st.integers(-3, 0), st.just(np.int64(3)), ODD)
OPTIONAL_SIZE = st.one_of(st.none(), SIZE)
PAIR_PART = st.one_of(st.integers(-1, 3), st.just(np.int32(2)), ODD)
PAIR = st.one_of(PAIR_PART, st.tuples(PAIR_PART, PAIR_PART), st.lists(PAIR_PART, max_size=3))
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 2),
                   st.sampled_from([1e-300, 1e300, np.float32(0.5), np.float64(2e-5)]), ODD)
FLAG = st.one_of(st.booleans(), st.sampled_from([np.bool_(False), 0, 1, "True"]), ODD)
DTYPE = st.sampled_from([np.float32, np.float64, np.float16, "float32", "float64",
                         np.dtype(np.float32), np.int32, int, bool, object, "int64",
                         "complex64", "no such type", None, 3])
def _float16_dropout_works() -> bool:
    try:
        F.dropout(np.ones(2, dtype=np.float16), 0.5)
    except TypeError:
        return False
    return True


FLOAT16_DROPOUT = _float16_dropout_works()
ACTIVATION = st.sampled_from([None, F.relu, F.gelu, F.tanh, "relu", 0])


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


# Each case: the class, a strategy of its keyword arguments, and a function of the built
# layer and its arguments that returns (input, expected output shape).
def _linear_input(layer, kw):
    in_size = layer.in_size or 3
    return _rand((2, in_size), layer.dtype), (2, layer.out_size)


def _embed_input(layer, kw):
    ids = np.array([[0, layer.in_size - 1, 0]])
    return ids, (1, 3, layer.out_size)


def _conv_input(layer, kw):
    (kh, kw_), (sh, sw), (ph, pw) = (_pair(layer.kernel_size), _pair(layer.stride),
                                     _pair(layer.pad))
    c = layer.in_channels or 2
    if isinstance(layer, L.Deconv2d):
        # the output s*(H-1)+k-2p must have at least one pixel
        h = max(2, 2 + (2 * ph - kh) // sh + 1)
        w = max(2, 2 + (2 * pw - kw_) // sw + 1)
        out = (sh * (h - 1) + kh - 2 * ph, sw * (w - 1) + kw_ - 2 * pw)
    else:
        h, w = kh + 1, kw_ + 1
        out = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw_) // sw + 1)
    return _rand((2, c, h, w), layer.dtype), (2, layer.out_channels) + out


def _batch_norm_input(layer, kw):
    return _rand((4, 3), np.float32), (4, 3)


def _layer_norm_input(layer, kw):
    size = layer.size or 5
    return _rand((2, size), layer.dtype), (2, size)


def _dropout_input(layer, kw):
    return np.ones((2, 10), dtype=np.float32), (2, 10)


def _attention_input(layer, kw):
    return _rand((2, 3, layer.embed_dim), np.dtype(kw.get("dtype", np.float32))), \
        (2, 3, layer.embed_dim)


CASES = {
    "Linear": (L.Linear, st.fixed_dictionaries(
        {"out_size": SIZE},
        optional={"nobias": FLAG, "dtype": DTYPE, "in_size": OPTIONAL_SIZE}), _linear_input),
    "EmbedID": (L.EmbedID, st.fixed_dictionaries(
        {"in_size": SIZE, "out_size": SIZE}, optional={"dtype": DTYPE}), _embed_input),
    "Conv2d": (L.Conv2d, st.fixed_dictionaries(
        {"out_channels": SIZE, "kernel_size": PAIR},
        optional={"stride": PAIR, "pad": PAIR, "nobias": FLAG, "dtype": DTYPE,
                  "in_channels": OPTIONAL_SIZE}), _conv_input),
    "Deconv2d": (L.Deconv2d, st.fixed_dictionaries(
        {"out_channels": SIZE, "kernel_size": PAIR},
        optional={"stride": PAIR, "pad": PAIR, "nobias": FLAG, "dtype": DTYPE,
                  "in_channels": OPTIONAL_SIZE}), _conv_input),
    "BatchNorm": (L.BatchNorm, st.fixed_dictionaries(
        {}, optional={"decay": NUMBER, "eps": NUMBER}), _batch_norm_input),
    "LayerNorm": (L.LayerNorm, st.fixed_dictionaries(
        {}, optional={"size": OPTIONAL_SIZE, "eps": NUMBER, "dtype": DTYPE}),
        _layer_norm_input),
    "Dropout": (L.Dropout, st.fixed_dictionaries(
        {}, optional={"dropout_ratio": NUMBER}), _dropout_input),
    "MultiHeadAttention": (L.MultiHeadAttention, st.fixed_dictionaries(
        {"embed_dim": SIZE, "num_heads": SIZE},
        optional={"causal": FLAG, "dropout_ratio": NUMBER, "nobias": FLAG, "dtype": DTYPE}),
        _attention_input),
    "TransformerBlock": (L.TransformerBlock, st.fixed_dictionaries(
        {"embed_dim": SIZE, "num_heads": SIZE},
        optional={"hidden_size": OPTIONAL_SIZE, "causal": FLAG, "dropout_ratio": NUMBER,
                  "activation": ACTIVATION, "dtype": DTYPE}), _attention_input),
}


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_layer_is_built_and_runs_or_its_arguments_are_refused_by_name(name, data):
    cls, arguments, make_input = CASES[name]
    kwargs = data.draw(arguments, label="kwargs")
    try:
        layer = cls(**kwargs)
    except (TypeError, ValueError) as e:
        assert str(e).startswith(f"{name}: "), f"{name}({kwargs}) raised {e!r}"
        return
    x, shape = make_input(layer, kwargs)
    # Where F.dropout cannot draw float16 masks (test_float16_dropout below), attention
    # layers in float16 run without their dropout.
    skip_dropout = x.dtype == np.float16 and not FLOAT16_DROPOUT
    mode = zerograd.test_mode() if skip_dropout else contextlib.nullcontext()
    with np.errstate(over="ignore"), mode:  # a huge eps overflows to inf in float16: fine
        try:
            y = layer(x)
        except ValueError as e:
            # BatchNorm learns its dtype from its first input: only then can it refuse an
            # eps that is 0 in that dtype
            assert name == "BatchNorm" and str(e).startswith("BatchNorm: eps="), e
            return
    assert y.shape == shape, (kwargs, y.shape, shape)
    assert y.dtype == x.dtype or name == "EmbedID", (kwargs, y.dtype)
    assert np.isfinite(y.data).all(), kwargs
    repr(layer)  # every built layer prints


def test_the_sweep_reaches_both_outcomes():
    """The strategies are not all-bad (nor all-good): each layer gets built and refused."""
    from hypothesis import find

    for cls, arguments, _ in CASES.values():
        def builds(kwargs, cls=cls):
            try:
                cls(**kwargs)
            except (TypeError, ValueError):
                return False
            return True

        find(arguments, builds, settings=settings(max_examples=500, database=None))
        find(arguments, lambda kw, builds=builds: not builds(kw),
             settings=settings(max_examples=500, database=None))


@pytest.mark.xfail(not FLOAT16_DROPOUT, raises=TypeError, strict=True,
                   reason="this zerograd's F.dropout draws its uniforms in float16, which "
                          "NumPy's Generator refuses (fixed on main by 4959566)")
def test_float16_dropout():
    y = L.Dropout(0.5)(np.ones((4, 4), dtype=np.float16))
    assert y.dtype == np.float16
