"""Files of named arrays: ``.npz`` and ``.safetensors``, written atomically.

Every file of named arrays that zerograd writes (weights, optimizer state, checkpoints)
goes through :func:`save_arrays` and comes back through :func:`load_arrays`. The path's
suffix chooses the format: ``.safetensors`` for the safetensors format (read by Hugging
Face, PyTorch, tinygrad and others), anything else for NumPy's ``.npz``. Both are written
to a temporary file that replaces the target only once complete, so a crash mid-save
leaves any older file intact; both are read whole and checked before anything is
returned, so a damaged file raises instead of giving half of its arrays.

The safetensors format is written and read here with NumPy alone: an 8-byte
little-endian header length, a JSON header giving each array's dtype, shape and byte
range (and an optional ``__metadata__`` map of strings), then the raw little-endian
bytes of the arrays, one after the other.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_arrays(path, {"W": np.eye(2, dtype=np.float32)}, metadata={"step": "3"})
    >>> arrays, meta = load_arrays(path, metadata=True)
    >>> arrays["W"].dtype, meta
    (dtype('float32'), {'step': '3'})
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Collection, Mapping

import numpy as np

__all__ = [
    "atomic_write",
    "atomic_savez",
    "NotAnArchiveError",
    "load_npz",
    "save_safetensors",
    "load_safetensors",
    "save_arrays",
    "load_arrays",
    "read_arrays",
]


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def give_default_mode(fd: int) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open``
    would have given it (0666 less the umask), so that it keeps that mode when renamed
    into place."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~_UMASK)


# =========================================================================================
# Atomic writes
# =========================================================================================
# A temporary file's name says which file it replaces and which process writes it, so
# that a later save of the same file can tell the temporary file of a writer that was
# killed (SIGKILL, power loss) from one still being written, and remove only the first:
#
#     .<the name's first 32 characters>.<digest of the name>.<host digest>-<pid>.XXXXXXXX.tmp
#
# Digests (not the name and host themselves) keep it short: a file name that is valid
# (up to 255 bytes) must not become too long for its temporary file.
def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()


_HOST = _digest(socket.gethostname())


def _temp_stem(name: str) -> str:
    """What every temporary file of the file ``name`` starts with."""
    return f".{name[:32]}.{_digest(name)}."


def _temp_prefix(name: str) -> str:
    """The start of the name of a temporary file of ``name`` written by this process."""
    return f"{_temp_stem(name)}{_HOST}-{os.getpid()}."


def _writer_is_dead(writer: str) -> bool:
    host, _, pid = writer.rpartition("-")
    if host != _HOST or not pid.isdigit():
        return False  # another machine's (a shared folder): not ours to judge
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


def _remove_orphans(folder: str, name: str) -> None:
    """Remove temporary files of ``name`` whose writer on this machine has died."""
    start = _temp_stem(name)
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(start) and entry.endswith(".tmp")):
            continue
        writer = entry[len(start):].split(".", 1)[0]
        if _writer_is_dead(writer):
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError:
                pass


def atomic_write(path: str | os.PathLike, write: Callable) -> None:
    """Create or replace ``path`` with what ``write(f)`` writes to a binary file object.

    The bytes go to a temporary file in the same directory, which is flushed to disk and
    then renamed over ``path``; the directory entry is synced too where the platform
    allows it. If ``write`` raises, the temporary file is removed and ``path`` is left
    as it was. A temporary file left by a writer that was killed (its process on this
    machine is gone) is removed by the next write of the same path.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "hello.bin")
        >>> atomic_write(path, lambda f: f.write(b"hello"))
        >>> open(path, "rb").read()
        b'hello'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(os.path.basename(path)), suffix=".tmp",
                               dir=folder)
    _remove_orphans(folder, os.path.basename(path))
    try:
        give_default_mode(fd)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; not possible on Windows)
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_savez(path: str | os.PathLike, arrays: dict) -> None:
    """Write ``arrays`` (name -> NumPy array) to exactly ``path`` as an ``.npz``,
    atomically (see :func:`atomic_write`).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "arrays.npz")
        >>> atomic_savez(path, {"a": np.arange(3)})
        >>> with np.load(path) as f:
        ...     f["a"]
        array([0, 1, 2])
    """
    # A file object: NumPy adds no ".npz" suffix. np.savez is looked up at call time.
    atomic_write(path, lambda f: np.savez(f, **arrays))


# =========================================================================================
# .npz
# =========================================================================================
class NotAnArchiveError(ValueError):
    """The file is a single NumPy array (``.npy``), not an ``.npz`` archive."""


def load_npz(path: str | os.PathLike, names: Collection[str] | None = None) -> dict:
    """Read a whole ``.npz`` archive (or only its entries ``names`` that it has) into a
    dict of arrays (no pickles are loaded).

    Raises:
        NotAnArchiveError: when the file holds a single array (``.npy``).
        OSError, ValueError, zipfile.BadZipFile: when it cannot be read (truncated,
            corrupt, not NumPy's format, or a zip entry that is not an array).
    """
    loaded = np.load(os.fspath(path), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise NotAnArchiveError(f"{os.fspath(path)!r} holds a single array, not an archive")
    with loaded:
        keys = loaded.files if names is None else [k for k in loaded.files if k in names]
        arrays = {key: loaded[key] for key in keys}
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # NumPy gives a member's raw bytes then
            raise ValueError(f"{os.fspath(path)!r}: the entry {key!r} is not a NumPy array "
                             "(.npy) but other data")
    return arrays


# The entry of an .npz that carries save_arrays' metadata (a 0-d string array of JSON).
_NPZ_METADATA = "__metadata__"


# =========================================================================================
# .safetensors
# =========================================================================================
# The format's dtype names and their little-endian NumPy dtypes. BF16 has no NumPy dtype:
# it is read (only) by widening to float32, which is exact.
_SAFETENSORS_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_SAFETENSORS_NAMES = {dtype.newbyteorder("="): name for name, dtype in _SAFETENSORS_DTYPES.items()}
_BF16 = "BF16"
# The largest header the reference implementation accepts; a larger length field is
# damage or an attack (it would make us allocate that much).
_MAX_HEADER = 100_000_000


def _check_metadata(op: str, metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError(
            f"{op}: metadata must map strings to strings, got {metadata!r}; convert "
            "values with str() (or json.dumps) first"
        )
    return dict(metadata)


def _safetensors_dtype_name(name: str, array: np.ndarray) -> str:
    dtype_name = _SAFETENSORS_NAMES.get(array.dtype.newbyteorder("="))
    if dtype_name is None:
        supported = ", ".join(str(d) for d in _SAFETENSORS_NAMES)
        raise ValueError(
            f"save_safetensors: array {name!r} has dtype {array.dtype}, which the "
            f"safetensors format cannot hold; supported: {supported}"
        )
    return dtype_name


def save_safetensors(path: str | os.PathLike, arrays: Mapping, metadata=None) -> None:
    """Write ``arrays`` (name -> array) to ``path`` in the safetensors format, atomically.

    Args:
        path: the file to write (exactly this name).
        arrays: names (strings) to NumPy arrays (or values ``np.asarray`` accepts) of
            dtype bool, (u)int8 to (u)int64, float16, float32 or float64.
        metadata: an optional map of strings to strings, stored in the header.

    Raises:
        TypeError: when a name is not a string or ``metadata`` is not strings.
        ValueError: for an unsupported dtype or the reserved name ``__metadata__``.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "a.safetensors")
        >>> save_safetensors(path, {"x": np.arange(3, dtype=np.int8)})
        >>> load_safetensors(path)
        {'x': array([0, 1, 2], dtype=int8)}
    """
    metadata = _check_metadata("save_safetensors", metadata)
    header: dict = {"__metadata__": metadata} if metadata else {}
    buffers = []
    offset = 0
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise TypeError(
                f"save_safetensors: names must be strings, got {type(name).__name__} {name!r}"
            )
        if name == "__metadata__":
            raise ValueError(
                "save_safetensors: '__metadata__' is reserved by the format for the "
                "metadata map; pass metadata=... instead or rename the array"
            )
        array = np.asarray(value)
        dtype_name = _safetensors_dtype_name(name, array)
        # (not np.ascontiguousarray, which would turn a 0-d array into a 1-d one)
        array = array.astype(_SAFETENSORS_DTYPES[dtype_name], order="C", copy=False)
        header[name] = {
            "dtype": dtype_name,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
        buffers.append(array)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the arrays start 8-byte aligned, as the spec asks

    def write(f):
        f.write(np.uint64(len(text)).astype("<u8").tobytes())
        f.write(text)
        for array in buffers:
            if array.nbytes:
                f.write(array.reshape(-1).view(np.uint8).data)

    atomic_write(path, write)


class _SafetensorsError(ValueError):
    """A file that is not a valid safetensors file; ``problem`` says why."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"load_safetensors: {path!r} is not a valid safetensors file: "
                         f"{problem}; the file may be truncated or corrupt: write it again")
        self.problem = problem


def _header_error(path: str, problem: str) -> ValueError:
    return _SafetensorsError(path, problem)


def _read_safetensors_header(path: str, f, size: int) -> tuple[dict, dict, int]:
    """Parse and check the header: ``(entries, metadata, data start)``, where entries maps
    each name to ``(dtype name, shape, begin, end)`` (offsets from the data start)."""
    raw = f.read(8)
    if len(raw) < 8:
        raise _header_error(path, f"{size} bytes, too short for the 8-byte header length")
    length = int(np.frombuffer(raw, dtype="<u8")[0])
    if length > _MAX_HEADER:
        raise _header_error(path, f"header length {length} exceeds {_MAX_HEADER} bytes")
    if 8 + length > size:
        raise _header_error(path, f"header length {length} runs past the end of the file "
                            f"({size} bytes)")
    text = f.read(length)

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise _header_error(path, "the header names an entry twice")
        return dict(pairs)

    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _header_error(path, f"the header is not JSON ({e})") from None
    except RecursionError:
        raise _header_error(path, "the header nests too deeply to be read") from None
    if not isinstance(header, dict):
        raise _header_error(path, f"the header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _header_error(path, "__metadata__ must map strings to strings")
    data_size = size - 8 - length
    entries = {}
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _header_error(path, f"entry {name!r} must have exactly dtype, shape and "
                                f"data_offsets, got {info!r}")
        dtype_name, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype_name not in _SAFETENSORS_DTYPES and dtype_name != _BF16:
            raise _header_error(path, f"entry {name!r} has dtype {dtype_name!r}, which "
                                "zerograd cannot read (known: "
                                f"{', '.join([*_SAFETENSORS_DTYPES, _BF16])})")
        if not isinstance(shape, list) or not all(
            type(d) is int and d >= 0 for d in shape
        ):
            raise _header_error(path, f"entry {name!r} has shape {shape!r}, not a list of "
                                "sizes >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets)):
            raise _header_error(path, f"entry {name!r} has data_offsets {offsets!r}, not "
                                "[begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise _header_error(path, f"entry {name!r} has data_offsets {offsets} outside "
                                f"the {data_size} bytes of data")
        itemsize = 2 if dtype_name == _BF16 else _SAFETENSORS_DTYPES[dtype_name].itemsize
        expected = int(np.prod(shape, dtype=object)) * itemsize
        if end - begin != expected:
            raise _header_error(path, f"entry {name!r} of dtype {dtype_name} and shape "
                                f"{tuple(shape)} needs {expected} bytes, its offsets give "
                                f"{end - begin}")
        entries[name] = (dtype_name, tuple(shape), begin, end)
    spans = sorted((b, e, n) for n, (_, _, b, e) in entries.items() if e > b)
    for (_, end0, name0), (begin1, _, name1) in zip(spans, spans[1:]):
        if begin1 < end0:
            raise _header_error(path, f"entries {name0!r} and {name1!r} overlap")
    return entries, metadata, 8 + length


def load_safetensors(path: str | os.PathLike, metadata: bool = False,
                     names: Collection[str] | None = None):
    """Read a whole safetensors file (or only its entries ``names`` that it has) into a
    dict of NumPy arrays.

    Every part of the header is checked (dtypes, shapes, byte ranges in bounds and not
    overlapping, metadata of strings) before any array is read; each array is a fresh,
    writable copy in native byte order. ``BF16`` arrays (which NumPy has no dtype for)
    are widened to float32, exactly.

    Args:
        path: the file.
        metadata: also return the header's ``__metadata__`` map.
        names: read only these entries (the whole header is checked all the same).

    Returns:
        ``{name: array}``, or ``(arrays, metadata)`` when ``metadata`` is True.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: naming the file and the problem, when it is not a valid
            safetensors file (truncated, corrupt, or with a hostile header).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "a.safetensors")
        >>> save_safetensors(path, {"x": np.float16(1.5)}, metadata={"k": "v"})
        >>> load_safetensors(path, metadata=True)
        ({'x': array(1.5, dtype=float16)}, {'k': 'v'})
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        entries, meta, start = _read_safetensors_header(path, f, size)
        arrays = {}
        for name, (dtype_name, shape, begin, end) in entries.items():
            if names is not None and name not in names:
                continue
            f.seek(start + begin)
            raw = np.empty(end - begin, dtype=np.uint8)
            if f.readinto(raw.data) != raw.size:
                raise _header_error(path, f"the data of {name!r} is cut short")
            if dtype_name == _BF16:
                # bfloat16 is the top half of a float32: shift it into place.
                bits = raw.view("<u2").astype(np.uint32) << 16
                array = bits.view(np.float32).reshape(shape)
            else:
                if dtype_name == "BOOL" and raw.size and int(raw.max()) > 1:
                    raise _header_error(path, f"bool entry {name!r} holds bytes other than "
                                        "0 and 1")
                dtype = _SAFETENSORS_DTYPES[dtype_name]
                array = raw.view(dtype).reshape(shape)
                if not dtype.isnative:
                    array = array.astype(dtype.newbyteorder("="))
            arrays[name] = array
    return (arrays, meta) if metadata else arrays



# =========================================================================================
# The entry points
# =========================================================================================
def _is_safetensors(path) -> bool:
    return os.fspath(path).lower().endswith(".safetensors")


def save_arrays(path: str | os.PathLike, arrays: Mapping, metadata=None) -> None:
    """Write ``arrays`` (name -> NumPy array) atomically to ``path``, in the format its
    suffix names: ``.safetensors`` for safetensors, anything else for ``.npz``. Every
    file of named arrays that zerograd writes goes through here.

    Args:
        path: the file to write (exactly this name: no suffix is added).
        arrays: names to arrays.
        metadata: an optional map of strings to strings, read back with
            ``load_arrays(path, metadata=True)`` (kept in the safetensors header, or in an
            ``.npz`` entry named ``__metadata__``).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_arrays(path, {"W": np.ones(2)})
        >>> load_arrays(path)
        {'W': array([1., 1.])}
    """
    if _is_safetensors(path):
        save_safetensors(path, arrays, metadata)
        return
    metadata = _check_metadata("save_arrays", metadata)
    if _NPZ_METADATA in arrays:
        raise ValueError(
            f"save_arrays: the name {_NPZ_METADATA!r} is reserved for the metadata; "
            "rename the array"
        )
    if metadata:
        arrays = {**arrays, _NPZ_METADATA: np.array(json.dumps(metadata))}
    atomic_savez(path, arrays)


def load_arrays(path: str | os.PathLike, metadata: bool = False,
                names: Collection[str] | None = None):
    """Read a whole file written by :func:`save_arrays` (or by the ``safetensors``
    package, or ``np.savez``) into a dict of arrays, choosing the format by suffix.

    Args:
        path: the file.
        metadata: also return the metadata map saved with the arrays (``{}`` if none).
        names: read only these entries (those the file has), not the whole file.

    Returns:
        ``{name: array}``, or ``(arrays, metadata)`` when ``metadata`` is True.

    Raises:
        NotAnArchiveError: when an ``.npz`` path holds a single array (``.npy``).
        OSError, ValueError, zipfile.BadZipFile: when it cannot be read (a safetensors
            file always raises ValueError naming the file and the problem).
    """
    if _is_safetensors(path):
        return load_safetensors(path, metadata, names)
    wanted = None if names is None else {*names, _NPZ_METADATA}
    arrays = load_npz(path, wanted)
    meta = {}
    if _NPZ_METADATA in arrays:
        raw = arrays.pop(_NPZ_METADATA)
        try:
            meta = json.loads(str(raw))
        except (json.JSONDecodeError, RecursionError):
            meta = None
        if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
        ):
            raise ValueError(
                f"load_arrays: the {_NPZ_METADATA!r} entry of {os.fspath(path)!r} is not a "
                "JSON map of strings; the file was not written by save_arrays"
            )
    return (arrays, meta) if metadata else arrays


def read_arrays(path: str | os.PathLike, who: str, hint: str = "",
                names: Collection[str] | None = None) -> dict:
    """:func:`load_arrays` for a reader that promises one clear ``ValueError``: every
    way the file can fail to be read, other than not being there or not being
    readable, raises it, naming ``who`` reads, the file, its format (by suffix) and
    the problem, followed by ``hint`` (what to do).

    Args:
        path: the file.
        who: the reader, e.g. ``"Linear.load_weights"``.
        hint: appended to the message, e.g. ``"save the weights again"``.
        names: read only these entries (see :func:`load_arrays`).

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: as ``open`` raises them.
        ValueError: when the file is empty, truncated, corrupt, of another format, a
            single ``.npy`` array, or has a hostile header.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b"junk")
        >>> read_arrays(path, "Model.load_weights")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Model.load_weights: cannot read '...w.safetensors' as a safetensors file (4 ...
    """
    path = os.fspath(path)
    tail = f"; {hint}" if hint else ""
    kind = "a safetensors file" if _is_safetensors(path) else "an .npz archive"
    try:
        return load_arrays(path, names=names)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except NotAnArchiveError:
        raise ValueError(f"{who}: {path!r} holds a single array (.npy), not an .npz archive "
                         f"of named arrays{tail}") from None
    except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ValueError, ...
        detail = e.problem if isinstance(e, _SafetensorsError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{who}: cannot read {path!r} as {kind} ({detail}); the file is "
                         f"empty, truncated, corrupt or of another format{tail}") from e
