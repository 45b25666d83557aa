"""Datasets: the book's toy data, the bundled MNIST subset, and the downloaded datasets'
parsers on tiny synthetic files in the real formats, served from 127.0.0.1."""

import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

from zerograd.datasets import (
    CIFAR10,
    CIFAR100,
    MNIST,
    Dataset,
    ImageNet,
    MNISTSubset,
    Shakespear,
    SinCurve,
    Spiral,
    get_spiral,
    load_mnist_subset,
)
from zerograd.utils.download import DownloadError

# --- a local HTTP server ------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve ``tmp_path/www`` on 127.0.0.1, with ZEROGRAD_HOME set to an empty dir.
    Yields (root, base_url)."""
    monkeypatch.setenv("ZEROGRAD_HOME", str(tmp_path / "cache"))
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


# --- imports -------------------------------------------------------------------------


def test_import_pulls_in_no_optional_dependency():
    code = (
        "import sys, zerograd.datasets, zerograd.dataloaders, zerograd.transforms\n"
        "bad = [m for m in ('matplotlib', 'PIL', 'tqdm', 'cupy') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- Dataset -------------------------------------------------------------------------


class _Toy(Dataset):
    def prepare(self):
        self.data = np.arange(10.0).reshape(5, 2)
        self.label = np.arange(5)


def test_dataset_getitem_and_transforms():
    ds = _Toy(transform=lambda x: x * 2, target_transform=lambda t: t + 100)
    assert len(ds) == 5
    x, t = ds[np.int64(1)]
    np.testing.assert_array_equal(x, [4.0, 6.0])
    assert t == 101
    x, t = ds[-1]
    assert t == 104
    assert "_Toy(train=True, 5 samples)" == repr(ds)


def test_dataset_without_labels():
    ds = _Toy()
    ds.label = None
    x, t = ds[0]
    assert t is None


@pytest.mark.parametrize("index", [slice(0, 2), 1.0, True, [0, 1]])
def test_dataset_index_must_be_int(index):
    with pytest.raises(TypeError, match="expected an int index"):
        _Toy()[index]


@pytest.mark.parametrize("index", [5, -6, 100])
def test_dataset_index_out_of_range(index):
    with pytest.raises(IndexError, match=rf"_Toy\[{index}\]: index out of range for 5 samples"):
        _Toy()[index]


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Spiral(train="test"), TypeError,
         r"Spiral: train must be True \(the training split\) or False \(the test split\), "
         r"got 'test' \(str\)"),
        (lambda: Spiral(train=None), TypeError, "Spiral: train must be True"),
        (lambda: Spiral(train=0), TypeError, "Spiral: train must be True"),
        (lambda: MNISTSubset(train="False"), TypeError, "MNISTSubset: train must be True"),
        (lambda: SinCurve(train=1), TypeError, "SinCurve: train must be True"),
        (lambda: Spiral(transform="flatten"), TypeError,
         r"Spiral: transform must be None or a callable .*got 'flatten' \(str\)"),
        (lambda: MNISTSubset(target_transform=3), TypeError,
         "MNISTSubset: target_transform must be None or a callable"),
        (lambda: SinCurve(seed=-3), ValueError, r"SinCurve: seed must be None, a non-negative"),
        (lambda: SinCurve(seed=0.5), TypeError, "SinCurve: seed must be"),
        (lambda: load_mnist_subset(train="test"), TypeError,
         "load_mnist_subset: train must be True, False or None, got 'test'"),
        (lambda: CIFAR100(label_type="medium"), ValueError,
         r"CIFAR100: label_type must be 'fine' \(100 classes\) or 'coarse'"),
    ],
)
def test_bad_dataset_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_numpy_bools_are_train_flags():
    assert Spiral(train=np.bool_(False)).train is False
    assert len(load_mnist_subset(train=np.bool_(False))[0]) == 1000


def test_dataset_base_is_empty():
    ds = Dataset()
    with pytest.raises(RuntimeError, match="prepare"):
        len(ds)
    with pytest.raises(RuntimeError, match="prepare"):
        ds[0]


# --- toy data --------------------------------------------------------------------------


def test_spiral_reproduces_the_book():
    x, t = get_spiral(train=True)
    assert x.shape == (300, 2) and x.dtype == np.float32
    assert t.shape == (300,) and t.dtype == np.int64
    # The values the book prints for DeZero's get_spiral (step 48).
    np.testing.assert_allclose(x[10], [-0.12995958, -0.00324155], rtol=1e-6)
    assert t[10] == 1
    np.testing.assert_allclose(x[110, 0], 0.3282343, rtol=1e-6)
    assert t[110] == 0
    np.testing.assert_array_equal(np.bincount(t), [100, 100, 100])
    assert np.abs(x).max() <= 1.0


def test_spiral_leaves_global_rng_alone():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    get_spiral(train=True)
    Spiral(train=False)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_spiral_splits_differ_and_repeat():
    x_train, _ = get_spiral(True)
    x_test, _ = get_spiral(False)
    assert not np.allclose(x_train, x_test)
    np.testing.assert_array_equal(Spiral(train=True).data, x_train)


def test_sin_curve():
    train, test = SinCurve(train=True), SinCurve(train=False)
    assert train.data.shape == train.label.shape == (999, 1)
    assert train.data.dtype == np.float32
    np.testing.assert_array_equal(train.data[1:], train.label[:-1])  # t[i] = x[i + 1]
    grid = np.linspace(0, 2 * np.pi, 1000)
    assert np.abs(train.data[:, 0] - np.sin(grid[:-1])).max() <= 0.05 + 1e-6
    np.testing.assert_allclose(test.data[:, 0], np.cos(grid[:-1]), atol=1e-6)
    np.testing.assert_array_equal(SinCurve().data, train.data)  # same noise each time
    assert not np.array_equal(SinCurve(seed=1).data, train.data)


# --- the bundled MNIST subset -------------------------------------------------------------


def test_mnist_subset_arrays():
    x, t = load_mnist_subset()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.uint8
    assert t.shape == (5000,) and t.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(t[:4000]), [400] * 10)
    np.testing.assert_array_equal(np.bincount(t[4000:]), [100] * 10)
    np.testing.assert_array_equal(t[:20], list(range(10)) * 2)
    assert x.max() == 255 and x.min() == 0
    x_train, t_train = load_mnist_subset(train=True)
    x_test, t_test = load_mnist_subset(train=False)
    np.testing.assert_array_equal(x_train, x[:4000])
    np.testing.assert_array_equal(t_test, t[4000:])
    # No image is in both splits.
    train_rows = {row.tobytes() for row in x_train.reshape(4000, -1)}
    assert not any(row.tobytes() in train_rows for row in x_test.reshape(1000, -1))


def test_mnist_subset_dataset():
    train_set, test_set = MNISTSubset(train=True), MNISTSubset(train=False)
    assert len(train_set) == 4000 and len(test_set) == 1000
    x, t = train_set[3]
    assert x.shape == (784,) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert t == 3
    raw = MNISTSubset(train=False, transform=None)
    x, _ = raw[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.uint8
    assert MNISTSubset.labels() == {i: str(i) for i in range(10)}


def test_mnist_show(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    MNISTSubset(train=False).show(row=2, col=3)
    assert shown == [True]
    plt.close("all")


# --- MNIST from a local mirror -------------------------------------------------------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _write_mnist(root, rng):
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3),
    }
    for name, a in arrays.items():
        (root / name).write_bytes(_idx(a))
    return arrays, {name: _sha(root / name) for name in arrays}


def test_mnist_download_and_parse(server, monkeypatch, rng):
    root, base = server
    arrays, digests = _write_mnist(root, rng)
    # The first mirror is down: MNIST must go on to the next one.
    monkeypatch.setattr(MNIST, "mirrors", [_closed_port_url(), base + "/"])
    monkeypatch.setattr(MNIST, "files", digests)
    train = MNIST(train=True, transform=None)
    assert train.data.shape == (6, 1, 28, 28) and train.data.dtype == np.uint8
    np.testing.assert_array_equal(train.data[:, 0], arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(train.label, arrays["train-labels-idx1-ubyte.gz"])
    assert train.label.dtype == np.int64
    test = MNIST(train=False)
    x, t = test[2]
    assert x.shape == (784,) and x.dtype == np.float32
    np.testing.assert_allclose(x * 255, arrays["t10k-images-idx3-ubyte.gz"][2].reshape(-1))
    assert sorted(os.listdir(os.environ["ZEROGRAD_HOME"])) == sorted(digests)


def test_mnist_checksum_mismatch(server, monkeypatch, rng):
    root, base = server
    _, digests = _write_mnist(root, rng)
    digests["train-images-idx3-ubyte.gz"] = "f" * 64
    monkeypatch.setattr(MNIST, "mirrors", [base + "/"])
    monkeypatch.setattr(MNIST, "files", digests)
    with pytest.raises(DownloadError, match="expected f{64}"):
        MNIST(train=True)


def test_mnist_offline_does_not_fall_back(server, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", [_closed_port_url()])
    with pytest.raises(DownloadError) as e:
        MNIST(train=False)
    message = str(e.value)
    cached = os.path.join(os.environ["ZEROGRAD_HOME"], "t10k-images-idx3-ubyte.gz")
    assert cached in message and "MNISTSubset" in message


def test_mnist_corrupt_cached_file_offline(server, monkeypatch):
    # Issue 13, item 4: the file is there, so "put it at PATH" would not be true.
    home = os.environ["ZEROGRAD_HOME"]
    os.makedirs(home)
    cached = os.path.join(home, "t10k-images-idx3-ubyte.gz")
    with open(cached, "wb") as f:
        f.write(b"half a download")
    monkeypatch.setattr(MNIST, "mirrors", [_closed_port_url(), _closed_port_url()])
    with pytest.raises(DownloadError) as e:
        MNIST(train=False)
    message = str(e.value)
    assert f"MNIST: {cached} is in the cache but has the wrong SHA-256" in message
    assert MNIST.files["t10k-images-idx3-ubyte.gz"] in message
    assert hashlib.sha256(b"half a download").hexdigest() in message
    assert f"Delete {cached}" in message and "put it at" not in message
    assert message.count("Connection refused") == 2  # both mirrors tried


def test_cache_dir_problem_is_not_blamed_on_the_mirrors(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("")
    with pytest.raises(DownloadError, match="exists but is not a directory") as e:
        MNIST(train=False)
    assert "tried" not in str(e.value)


def test_mnist_corrupt_idx(server, monkeypatch):
    root, base = server
    bad = gzip.compress(bytes([0, 0, 0x08, 1]) + np.asarray([5], ">u4").tobytes() + b"abc")
    for name in MNIST.files:
        (root / name).write_bytes(bad)
    monkeypatch.setattr(MNIST, "mirrors", [base + "/"])
    monkeypatch.setattr(MNIST, "files", dict.fromkeys(MNIST.files))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        MNIST(train=True)


# --- CIFAR from a local mirror -------------------------------------------------------------


def _tar_gz(path, members: dict):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar10_binary_archive(server, monkeypatch, rng):
    root, base = server
    images = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    records = np.concatenate([labels[:, None], images.reshape(12, -1)], axis=1)
    members = {f"cifar-10-batches-bin/data_batch_{i + 1}.bin": records[2 * i:2 * i + 2].tobytes()
               for i in range(5)}
    members["cifar-10-batches-bin/test_batch.bin"] = records[10:].tobytes()
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\n"
    _tar_gz(root / "cifar-10-binary.tar.gz", members)
    monkeypatch.setattr(CIFAR10, "url", base + "/cifar-10-binary.tar.gz")
    monkeypatch.setattr(CIFAR10, "sha256", _sha(root / "cifar-10-binary.tar.gz"))

    train = CIFAR10(train=True, transform=None)
    assert train.data.shape == (10, 3, 32, 32) and train.data.dtype == np.uint8
    np.testing.assert_array_equal(train.data, images[:10])  # red plane first
    np.testing.assert_array_equal(train.label, labels[:10])
    test = CIFAR10(train=False)
    x, t = test[1]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x, images[11] / 127.5 - 1.0, atol=1e-6)
    assert t == labels[11]


def test_cifar_wrong_archive(server, monkeypatch):
    root, base = server
    _tar_gz(root / "c.tar.gz", {"cifar-10-batches-py/data_batch_1": b"pickle"})
    monkeypatch.setattr(CIFAR10, "url", base + "/c.tar.gz")
    monkeypatch.setattr(CIFAR10, "sha256", None)
    with pytest.raises(ValueError, match="not the binary version"):
        CIFAR10(train=False)


def test_cifar100_binary_archive(server, monkeypatch, rng):
    root, base = server
    images = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    coarse = rng.integers(0, 20, 5, dtype=np.uint8)
    fine = rng.integers(0, 100, 5, dtype=np.uint8)
    records = np.concatenate([coarse[:, None], fine[:, None], images.reshape(5, -1)], axis=1)
    _tar_gz(root / "cifar-100-binary.tar.gz", {
        "cifar-100-binary/train.bin": records[:3].tobytes(),
        "cifar-100-binary/test.bin": records[3:].tobytes(),
    })
    monkeypatch.setattr(CIFAR100, "url", base + "/cifar-100-binary.tar.gz")
    monkeypatch.setattr(CIFAR100, "sha256", _sha(root / "cifar-100-binary.tar.gz"))
    train = CIFAR100(train=True, transform=None)
    np.testing.assert_array_equal(train.data, images[:3])
    np.testing.assert_array_equal(train.label, fine[:3])
    test = CIFAR100(train=False, label_type="coarse", transform=None)
    np.testing.assert_array_equal(test.label, coarse[3:])
    with pytest.raises(ValueError, match="label_type"):
        CIFAR100(label_type="medium")


def test_cifar_labels():
    assert list(CIFAR10.labels().values())[:2] == ["airplane", "automobile"]
    fine, coarse = CIFAR100.labels("fine"), CIFAR100.labels("coarse")
    assert len(fine) == 100 and len(set(fine.values())) == 100
    assert list(fine.values()) == sorted(fine.values())
    assert len(coarse) == 20 and coarse[0] == "aquatic_mammals"


# --- text and ImageNet -------------------------------------------------------------------


def test_shakespear(server, monkeypatch):
    root, base = server
    text = "First Citizen:\nBefore we proceed\n"
    (root / "input.txt").write_text(text, encoding="utf-8")
    monkeypatch.setattr(Shakespear, "url", base + "/input.txt")
    monkeypatch.setattr(Shakespear, "sha256", _sha(root / "input.txt"))
    ds = Shakespear()
    assert list(ds.char_to_id)[:5] == ["F", "i", "r", "s", "t"]
    assert ds.char_to_id["F"] == 0 and ds.id_to_char[1] == "i"
    assert len(ds) == len(text) - 1 and ds.data.dtype == np.int64
    assert "".join(ds.id_to_char[int(i)] for i in ds.data) == text[:-1]
    np.testing.assert_array_equal(ds.data[1:], ds.label[:-1])
    assert os.path.exists(os.path.join(os.environ["ZEROGRAD_HOME"], "shakespear.txt"))


def test_imagenet_labels():
    labels = ImageNet.labels()
    assert len(labels) == 1000 and sorted(labels) == list(range(1000))
    assert labels[0] == "tench, Tinca tinca"
    assert labels[1] == "goldfish, Carassius auratus"
    assert labels[207] == "golden retriever"
    assert labels[999] == "toilet tissue, toilet paper, bathroom tissue"
    with pytest.raises(NotImplementedError, match="ImageNet.labels"):
        ImageNet()
