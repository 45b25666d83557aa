"""The safetensors format written and read with NumPy alone, checked against the
``safetensors`` package in both directions, and against damaged and hostile files."""

import json
import os
import struct

import numpy as np
import pytest

from zerograd.utils.io import load_arrays, load_safetensors, save_arrays, save_safetensors

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.bool_]
SHAPES = [(), (0,), (3, 0), (5,), (2, 3, 4)]


def _sample(dtype, shape, rng):
    if dtype is np.bool_:
        values = rng.random(shape) > 0.5
    elif np.dtype(dtype).kind == "f":
        values = rng.standard_normal(shape)
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return np.asarray(values, dtype=dtype)  # (0-d draws come back as NumPy scalars)


def _arrays(rng):
    arrays = {}
    for dtype in DTYPES:
        for shape in SHAPES:
            arrays[f"{np.dtype(dtype).name}/{'x'.join(map(str, shape)) or 'scalar'}"] = (
                _sample(dtype, shape, rng)
            )
    return arrays


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _write(path, header: dict, data: bytes = b"", length=None):
    text = json.dumps(header).encode()
    n = len(text) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + text + data)


# ---- the reference package, both directions ---------------------------------------------
def test_zerograd_files_load_in_safetensors(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    arrays = _arrays(rng)
    path = tmp_path / "ours.safetensors"
    save_arrays(path, arrays, metadata={"framework": "zerograd", "step": "7"})
    _assert_same(arrays, st.load_file(str(path)))
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"framework": "zerograd", "step": "7"}


def test_safetensors_files_load_in_zerograd(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    arrays = _arrays(rng)
    path = tmp_path / "theirs.safetensors"
    st.save_file(arrays, str(path), metadata={"format": "np"})
    loaded, meta = load_arrays(path, metadata=True)
    _assert_same(arrays, loaded)
    assert meta == {"format": "np"}
    assert all(a.flags.writeable and a.flags.aligned for a in loaded.values())


def test_more_unsigned_and_byte_orders(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {
        "u16": np.arange(5, dtype=np.uint16),
        "u32": np.arange(5, dtype=np.uint32) * 1000,
        "u64": np.arange(5, dtype=np.uint64) << np.uint64(40),
        "big": np.arange(4, dtype=">f4"),  # written little-endian, as the format says
        "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
    }
    path = tmp_path / "a.safetensors"
    save_safetensors(path, arrays)
    theirs = st.load_file(str(path))
    ours = load_safetensors(path)
    for name, a in arrays.items():
        np.testing.assert_array_equal(theirs[name], a)
        np.testing.assert_array_equal(ours[name], a)
        assert ours[name].dtype.isnative


def test_bf16_is_widened_to_float32(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    values = torch.tensor([[1.0, -2.5, 3.140625], [0.0, 1e30, -1e-30]], dtype=torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    save_file({"w": values, "empty": torch.zeros(0, 2, dtype=torch.bfloat16)}, str(path))
    loaded = load_arrays(path)
    assert loaded["w"].dtype == np.float32 and loaded["empty"].shape == (0, 2)
    np.testing.assert_array_equal(loaded["w"], values.float().numpy())  # exact


def test_round_trip_without_the_package(tmp_path, rng):
    arrays = _arrays(rng)
    path = tmp_path / "a.safetensors"
    save_arrays(path, arrays)
    _assert_same(arrays, load_arrays(path))


def test_header_is_padded_and_data_contiguous(tmp_path):
    path = tmp_path / "a.safetensors"
    save_safetensors(path, {"a": np.zeros(3, np.int8), "b": np.ones(2, np.float64)})
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert header["a"] == {"dtype": "I8", "shape": [3], "data_offsets": [0, 3]}
    assert header["b"] == {"dtype": "F64", "shape": [2], "data_offsets": [3, 19]}
    assert len(raw) == 8 + n + 19


# ---- bad input when writing ----------------------------------------------------------------
def test_unsupported_dtype_is_named(tmp_path):
    with pytest.raises(ValueError, match="'c' has dtype complex64"):
        save_safetensors(tmp_path / "a.safetensors", {"c": np.zeros(2, np.complex64)})
    with pytest.raises(ValueError, match="<U1"):
        save_safetensors(tmp_path / "a.safetensors", {"s": np.array(["a"])})
    assert os.listdir(tmp_path) == []


def test_names_must_be_strings_and_not_reserved(tmp_path):
    with pytest.raises(TypeError, match="names must be strings"):
        save_safetensors(tmp_path / "a.safetensors", {1: np.zeros(1)})
    with pytest.raises(ValueError, match="reserved"):
        save_safetensors(tmp_path / "a.safetensors", {"__metadata__": np.zeros(1)})


# ---- damaged and hostile files ----------------------------------------------------------------
def _good(tmp_path):
    path = tmp_path / "good.safetensors"
    save_safetensors(path, {"a": np.arange(6, dtype=np.float32), "b": np.ones(2, np.int64)})
    return path


@pytest.mark.parametrize("cut", [0, 5, 8, 20, -1])
def test_truncated_files(tmp_path, cut):
    raw = _good(tmp_path).read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(raw[:cut] if cut >= 0 else raw[:-1])
    with pytest.raises(ValueError, match="cut.safetensors.*not a valid safetensors file"):
        load_safetensors(path)


BAD_HEADERS = [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, 8, "outside"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, 8, "outside"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8, "needs 12 bytes"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]}}, 8, "overlap"),
    ({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, 1, "F8_E4M3"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, 0, "shape"),
    ({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}}, 0, "shape"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, 4, "data_offsets"),
    ({"a": {"dtype": "F32", "shape": [1]}}, 4, "exactly dtype, shape and data_offsets"),
    ({"a": [1, 2]}, 0, "exactly dtype"),
    ({"__metadata__": {"k": 1}}, 0, "__metadata__ must map strings to strings"),
    ({"__metadata__": ["k"]}, 0, "__metadata__ must map strings to strings"),
    ([1, 2, 3], 0, "not an object"),
]


@pytest.mark.parametrize("header, size, problem", BAD_HEADERS)
def test_hostile_headers(tmp_path, header, size, problem):
    path = tmp_path / "bad.safetensors"
    _write(path, header, b"\0" * size)
    with pytest.raises(ValueError, match="bad.safetensors") as info:
        load_arrays(path)
    assert problem in str(info.value)


def test_huge_header_length_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    _write(path, {}, length=2**62)
    with pytest.raises(ValueError, match="header length 4611686018427387904 exceeds"):
        load_safetensors(path)
    _write(path, {}, length=1000)
    with pytest.raises(ValueError, match="runs past the end"):
        load_safetensors(path)


def test_header_that_is_not_json_or_utf8(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not JSON"):
        load_safetensors(path)
    path.write_bytes(struct.pack("<Q", 3) + b"{a}")
    with pytest.raises(ValueError, match="not JSON"):
        load_safetensors(path)


def test_duplicate_names_are_refused(tmp_path):
    path = tmp_path / "dup.safetensors"
    entry = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    text = f'{{"a": {entry}, "a": {entry}}}'.encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0")
    with pytest.raises(ValueError, match="twice"):
        load_safetensors(path)


def test_bool_bytes_other_than_0_and_1_are_refused(tmp_path):
    path = tmp_path / "b.safetensors"
    _write(path, {"m": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07")
    with pytest.raises(ValueError, match="bool entry 'm'"):
        load_safetensors(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_arrays(tmp_path / "nope.safetensors")
