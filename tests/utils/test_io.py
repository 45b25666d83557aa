import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zerograd.utils.io import _temp_prefix, atomic_savez, read_arrays


def test_atomic_savez_writes_exactly_the_path(tmp_path):
    path = tmp_path / "weights"  # no .npz suffix is added
    atomic_savez(path, {"a": np.arange(3)})
    with np.load(path) as f:
        assert f["a"].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ["weights"]


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    atomic_savez(path, {"a": np.zeros(2)})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_savez(path, {"a": np.ones(2)})
    with np.load(path) as f:
        assert f["a"].tolist() == [0.0, 0.0]
    assert os.listdir(tmp_path) == ["w.npz"]  # no temporary file left behind


def test_saved_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "w.npz"
    atomic_savez(path, {"a": np.zeros(1)})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask


# ---- save_arrays / load_arrays: the format follows the suffix ----------------------------
from zerograd.utils.io import load_arrays, save_arrays  # noqa: E402


@pytest.mark.parametrize("name", ["w.npz", "w", "w.weights"])
def test_any_suffix_but_safetensors_is_npz(tmp_path, name):
    path = tmp_path / name
    save_arrays(path, {"W": np.arange(4.0).reshape(2, 2), "t": 3})
    with np.load(path) as f:  # a plain .npz that NumPy reads
        assert sorted(f.files) == ["W", "t"]
    arrays = load_arrays(path)
    assert arrays["W"].tolist() == [[0.0, 1.0], [2.0, 3.0]] and int(arrays["t"]) == 3


def test_safetensors_suffix_writes_safetensors(tmp_path):
    path = tmp_path / "w.SafeTensors"  # the suffix is matched without case
    save_arrays(path, {"W": np.ones((2, 3), dtype=np.float32)})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and (8 + n) % 8 == 0
    arrays = load_arrays(path)
    assert arrays["W"].dtype == np.float32 and arrays["W"].shape == (2, 3)


@pytest.mark.parametrize("name", ["m.npz", "m.safetensors"])
def test_metadata_round_trip(tmp_path, name):
    path = tmp_path / name
    save_arrays(path, {"a": np.zeros(2)}, metadata={"epoch": "3", "note": "é"})
    arrays, meta = load_arrays(path, metadata=True)
    assert list(arrays) == ["a"]
    assert meta == {"epoch": "3", "note": "é"}
    assert load_arrays(path).keys() == {"a"}


@pytest.mark.parametrize("name", ["m.npz", "m.safetensors"])
def test_no_metadata_reads_as_empty(tmp_path, name):
    path = tmp_path / name
    save_arrays(path, {"a": np.zeros(2)})
    assert load_arrays(path, metadata=True)[1] == {}


@pytest.mark.parametrize("name", ["m.npz", "m.safetensors"])
@pytest.mark.parametrize("bad", [{"epoch": 3}, {1: "x"}, ["a"]])
def test_metadata_must_be_strings(tmp_path, name, bad):
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        save_arrays(tmp_path / name, {"a": np.zeros(2)}, metadata=bad)
    assert os.listdir(tmp_path) == []


def test_npz_metadata_name_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_arrays(tmp_path / "a.npz", {"__metadata__": np.zeros(1)})


def test_npz_with_a_foreign_metadata_entry_is_an_error(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, __metadata__=np.array("not json"), a=np.zeros(1))
    with pytest.raises(ValueError, match="not a JSON map of strings"):
        load_arrays(path)


def test_a_failed_safetensors_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "w.safetensors"
    save_arrays(path, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="complex128"):  # no such dtype in the format
        save_arrays(path, {"b": np.ones(2), "a": np.zeros(2, dtype=complex)})
    assert load_arrays(path)["a"].tolist() == [0.0, 0.0]
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_an_interrupted_safetensors_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_arrays(path, {"a": np.zeros(2)})
    real_replace = os.replace

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_arrays(path, {"a": np.ones(2)})
    monkeypatch.setattr(os, "replace", real_replace)
    assert load_arrays(path)["a"].tolist() == [0.0, 0.0]
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "w.npz"
    # A child process starts a save and is killed with SIGKILL in the middle of it.
    child = textwrap.dedent(f"""
        import os, signal
        from zerograd.utils.io import atomic_write
        def write(f):
            f.write(b"partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(path)!r}, write)
    """)
    proc = subprocess.run([sys.executable, "-c", child], timeout=60)
    assert proc.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".w.npz.") and left[0].endswith(".tmp")
    # A live writer's temporary file (this process's) is never touched.
    live = tmp_path / f"{_temp_prefix('w.npz')}abcd.tmp"
    live.write_bytes(b"being written")
    save_arrays(path, {"a": np.arange(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["w.npz", live.name])


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_long_valid_file_name_saves(tmp_path, suffix):
    # 255 bytes is a valid name; its temporary file must not be longer than that
    path = tmp_path / ("w" * (255 - len(suffix)) + suffix)
    save_arrays(path, {"a": np.arange(3)})
    assert load_arrays(path)["a"].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == [path.name]
    assert len(_temp_prefix(path.name)) < 80


def test_a_long_names_orphan_is_removed_and_a_live_one_kept(tmp_path):
    name = "c" * 250 + ".npz"
    # Another process on this machine that has ended (its pid is free again)...
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60)
    dead = _temp_prefix(name).replace(f"-{os.getpid()}.", f"-{int(proc.stdout)}.")
    (tmp_path / f"{dead}dead.tmp").write_bytes(b"left by a killed writer")
    live = tmp_path / f"{_temp_prefix(name)}live.tmp"  # ...and this one, alive
    live.write_bytes(b"being written")
    save_arrays(tmp_path / name, {"a": np.zeros(1)})
    assert sorted(os.listdir(tmp_path)) == sorted([name, live.name])


def _deep_json(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_deeply_nested_safetensors_header_is_a_value_error(tmp_path):
    path = tmp_path / "deep.safetensors"
    header = _deep_json()
    header += b" " * (-len(header) % 8)
    path.write_bytes(np.uint64(len(header)).tobytes() + header)
    with pytest.raises(ValueError, match="nests too deeply"):  # not RecursionError
        load_arrays(path)
    with pytest.raises(ValueError, match=r"reader: cannot read .* as a safetensors file "
                                         r"\(the header nests too deeply"):
        read_arrays(path, "reader")


def test_deeply_nested_npz_metadata_is_a_value_error(tmp_path):
    path = tmp_path / "deep.npz"
    np.savez(path, a=np.zeros(1), __metadata__=np.array(_deep_json().decode()))
    with pytest.raises(ValueError, match="not a JSON map of strings"):
        load_arrays(path)


@pytest.mark.parametrize("name, kind", [("w.npz", "an .npz archive"),
                                        ("w.safetensors", "a safetensors file")])
def test_read_arrays_names_the_files_own_format(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(b"junk" * 3)
    with pytest.raises(ValueError, match=rf"^Net.load_weights: cannot read .* as {kind} "
                                         r"\(.*\); the file is empty, truncated, corrupt "
                                         r"or of another format; save it again$"):
        read_arrays(path, "Net.load_weights", "save it again")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(ValueError, match=r"holds a single array \(\.npy\)"):
        read_arrays(tmp_path / "one.npy", "reader")
    with pytest.raises(FileNotFoundError):
        read_arrays(tmp_path / "missing.npz", "reader")


@pytest.mark.parametrize("name", ["w.npz", "w.safetensors"])
def test_load_arrays_reads_only_the_names_asked_for(tmp_path, name):
    path = tmp_path / name
    save_arrays(path, {"a": np.arange(2), "b": np.ones(3)}, metadata={"k": "v"})
    assert list(load_arrays(path, names=["b", "missing"])) == ["b"]
    arrays, meta = load_arrays(path, metadata=True, names=["a"])
    assert list(arrays) == ["a"] and meta == {"k": "v"}


def test_an_npz_entry_that_is_not_an_array_is_refused(tmp_path):
    # NumPy hands back the raw bytes of a zip entry that is not a .npy file
    import zipfile

    path = tmp_path / "w.npz"
    save_arrays(path, {"a": np.arange(3)})
    with zipfile.ZipFile(path, "a") as f:
        f.writestr("b.npy", b"not an array")
    with pytest.raises(ValueError, match="the entry 'b' is not a NumPy array"):
        load_arrays(path)
    assert list(load_arrays(path, names=["a"])) == ["a"]
