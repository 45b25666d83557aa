import os
import stat

import numpy as np
import pytest

from zerograd.utils.io import atomic_savez


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
