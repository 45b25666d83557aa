"""Downloading data files into a local cache, checked by SHA-256 and written atomically.

Files land in the cache directory ``$ZEROGRAD_HOME`` (default ``~/.zerograd``), each
under a plain file name directly inside it. A file already there is used as it is
(after a checksum check when a digest is given), so a machine without a network works
once the file has been put there by hand. A file that the original DeZero downloaded
into ``~/.dezero`` is copied over instead of being downloaded again, when its SHA-256
is the one expected (never without a digest to check it against). It is copied, not
linked: a hard link would share the file with a program that may rewrite it in place,
and a symbolic link would break when ``~/.dezero`` is cleared.

Downloads of one file are serialised across processes by a lock (on systems with
``fcntl``): a second process waits, then uses the first one's file. A download goes to
a hidden partial file (``.NAME.XXXXXXXX.part``) that is renamed into place once
checked; partial files left by a killed process are removed by the next download of
the same file.

Example:
    >>> import os, tempfile
    >>> from zerograd.utils.download import cache_dir
    >>> os.environ["ZEROGRAD_HOME"] = tempfile.mkdtemp()
    >>> cache_dir() == os.environ["ZEROGRAD_HOME"]
    True
    >>> del os.environ["ZEROGRAD_HOME"]
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
import urllib.parse
import warnings

from zerograd.progress import Progress

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; see _locked()
    fcntl = None

__all__ = ["DownloadError", "ChecksumError", "CacheError", "cache_dir", "dezero_cache_dir",
           "get_file", "sha256sum"]

_CHUNK = 1 << 16
_TIMEOUT_S = 60.0
_USER_AGENT = "zerograd (https://pypi.org/project/zerograd)"
_SCHEMES = ("http", "https", "file")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Where a lock cannot be taken, a partial file is taken for abandoned after this long.
_STALE_AFTER_S = 24 * 3600.0


class DownloadError(OSError):
    """A file could not be fetched (offline, HTTP error, truncated transfer, wrong
    checksum).

    Attributes:
        url: the URL that was tried (None when nothing was fetched).
        path: where the file belongs in the cache.
        reason: why the transfer failed, in a few words (None when it did not run).
        found_sha256: the SHA-256 of a file already at ``path`` that is not the one
            expected, or None when there is no such file.
        expected_sha256: the digest asked for, or None.
    """

    def __init__(self, message: str, *, url: str | None = None, path: str | None = None,
                 reason: str | None = None, found_sha256: str | None = None,
                 expected_sha256: str | None = None):
        super().__init__(message)
        self.url = url
        self.path = path
        self.reason = reason
        self.found_sha256 = found_sha256
        self.expected_sha256 = expected_sha256


class ChecksumError(DownloadError):
    """A downloaded file's SHA-256 digest is not the one expected (it was not kept)."""


class CacheError(DownloadError):
    """The cache directory cannot be used: it is not a directory, or not writable."""


def cache_dir() -> str:
    """The cache directory: ``$ZEROGRAD_HOME`` if set, else ``~/.zerograd``.

    Example:
        >>> import os
        >>> cache_dir().endswith(".zerograd") or "ZEROGRAD_HOME" in os.environ
        True
    """
    home = os.environ.get("ZEROGRAD_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    return os.path.join(os.path.expanduser("~"), ".zerograd")


def dezero_cache_dir() -> str:
    """Where the original DeZero keeps its downloads: ``~/.dezero``, one flat folder.

    Example:
        >>> dezero_cache_dir().endswith(".dezero")
        True
    """
    return os.path.join(os.path.expanduser("~"), ".dezero")


def sha256sum(path: str) -> str:
    """The SHA-256 hex digest of a file, read in chunks.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"abc")
        >>> sha256sum(f.name)[:16]
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- checking the arguments ------------------------------------------------------------


def _check_url(url) -> str:
    if not isinstance(url, str):
        raise TypeError(f"get_file: url must be a str, got {type(url).__name__} ({url!r})")
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"get_file: url must start with http://, https:// or file://, got {url!r}; "
            "for a local file, pass pathlib.Path(path).as_uri()"
        )
    return url


def _check_file_name(file_name, url: str) -> str:
    """A plain file name directly inside the cache directory, or a ValueError."""
    if file_name is None:
        name = os.path.basename(urllib.parse.urlparse(url).path)
        given = f"the name {name!r} taken from url={url!r}"
        hint = "pass file_name='...'"
    else:
        if isinstance(file_name, os.PathLike):
            file_name = os.fspath(file_name)
        if not isinstance(file_name, str):
            raise TypeError(
                f"get_file: file_name must be a str, got {type(file_name).__name__} "
                f"({file_name!r})"
            )
        name = file_name
        given = f"file_name={file_name!r}"
        hint = "pass a plain file name such as 'data.bin'"
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    if not name or name in (".", ".."):
        problem = "names no file"
    elif any(s in name for s in separators) or os.path.splitdrive(name)[0]:
        problem = "is a path, not a plain file name (files stay directly in the cache)"
    elif "\0" in name:
        problem = "contains a NUL character"
    elif name.startswith("."):
        problem = "starts with '.' (hidden names are kept for partial downloads and locks)"
    else:
        return name
    raise ValueError(f"get_file: {given} {problem}; {hint}")


def _check_sha256(sha256) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise ValueError(
            f"get_file: sha256 must be a SHA-256 hex digest (64 hex digits) or None, got "
            f"{sha256!r}; compute one with zerograd.utils.download.sha256sum(path)"
        )
    return sha256.lower()


def _cache_root() -> str:
    """The cache directory, created if needed; a CacheError when it cannot be."""
    root = cache_dir()
    where = "$ZEROGRAD_HOME" if os.environ.get("ZEROGRAD_HOME") else "the default"
    if os.path.isdir(root):
        return root
    if os.path.lexists(root):
        raise CacheError(
            f"get_file: the cache directory {root} ({where}) exists but is not a "
            "directory; point ZEROGRAD_HOME at a directory (or unset it to use "
            "~/.zerograd)",
            path=root,
        )
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise CacheError(
            f"get_file: cannot create the cache directory {root} ({where}): {_describe(e)}; "
            "point ZEROGRAD_HOME at a directory you can write to",
            path=root,
        ) from e
    return root


# --- locks and partial files -----------------------------------------------------------


def _lock_path(root: str, name: str) -> str:
    return os.path.join(root, f".{name}.lock")


def _part_pattern(name: str) -> re.Pattern:
    # Exactly 8 characters between the name and ".part" (this module's random token, or
    # tempfile's in older versions), so that one name's pattern never matches another's.
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}\.part")


def _new_part(root: str, name: str) -> tuple[int, str]:
    """Create a fresh partial file for ``name``: ``(fd, path)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        part = os.path.join(root, f".{name}.{os.urandom(4).hex()}.part")
        try:
            return os.open(part, flags, 0o666), part  # the umask applies, as for open()
        except FileExistsError:
            continue


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _remove_stale_parts(root: str, name: str, locked: bool) -> None:
    """Remove partial files of ``name`` left by killed downloads.

    Under the lock every partial file of ``name`` is abandoned: whoever wrote it held
    the lock and no longer does. Without a lock, only old ones are removed (a removal
    that fails, as on Windows for a file another process has open, is skipped).
    """
    pattern = _part_pattern(name)
    try:
        entries = os.listdir(root)
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not pattern.fullmatch(entry):
            continue
        part = os.path.join(root, entry)
        with contextlib.suppress(OSError):
            if locked or now - os.stat(part).st_mtime > _STALE_AFTER_S:
                os.remove(part)


@contextlib.contextmanager
def _locked(root: str, name: str):
    """Hold the lock of ``name`` for as long as the block runs; yields whether a lock is
    held (False where the platform or file system has no advisory locks).

    The holder removes the lock file before releasing it, so that no lock files pile
    up; a process that was waiting on the removed file then sees that the file on disk
    is another one (or none) and tries again.
    """
    fd = _lock(root, name) if fcntl is not None else None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            _remove_quietly(_lock_path(root, name))
            os.close(fd)


def _lock(root: str, name: str) -> int | None:
    """Take the lock of ``name``: the open lock file, or None when locks are unsupported."""
    lock_path = _lock_path(root, name)
    told = False
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise CacheError(
                f"get_file: cannot write in the cache directory {root} ({_describe(e)}); "
                "make it writable or point ZEROGRAD_HOME at another directory",
                path=os.path.join(root, name),
            ) from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not told and sys.stderr is not None:
                    sys.stderr.write(f"get_file: waiting for another download of {name} "
                                     f"to finish (lock {lock_path})\n")
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None  # removed by its holder meanwhile
        except OSError:
            os.close(fd)  # a file system without locks (some network mounts)
            return None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and os.path.samestat(os.fstat(fd), current):
            return fd
        os.close(fd)  # locked a file its holder had already removed: try again


# --- transfers --------------------------------------------------------------------------


def _describe(e: BaseException) -> str:
    import http.client
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{type(e).__name__}: {e.reason}"
    if isinstance(e, http.client.IncompleteRead):
        return f"the transfer stopped with {e.expected} bytes missing"
    return f"{type(e).__name__}: {e}"


def _progress(name: str, total: int | None):
    """Report a download's progress on stderr, through :mod:`zerograd.progress`.

    On a terminal, a bar with the bytes, the rate and the time left; in a log (stderr
    a file or a pipe), a line when the transfer starts, one every 10 seconds and one at
    the end with the time taken, so that a log shows a slow download is alive and how
    long it took. Returns ``(update, finish)``: ``update(done)`` with the bytes read so
    far, and ``finish()`` once at the end. This is the one place that reports progress.
    """
    bar = Progress(total, desc=f"Downloading {name}", unit="B",
                   disable=sys.stderr is None)  # no stderr at all (pythonw)

    def update(done: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _download(url: str, out, name: str) -> str:
    """Stream ``url`` into the open file ``out``; return the SHA-256 of what was read."""
    # The network modules load here, not with zerograd: http.client, email and ssl
    # would add about 20 ms to every `import zerograd` (and to every book step).
    import http.client
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    h = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        update, finish = _progress(name, total)
        done = 0
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                update(done)
        finally:
            finish()
    # http.client returns b"" rather than raising when a connection closes early.
    if total is not None and done != total:
        raise http.client.IncompleteRead(b"", total - done)
    return h.hexdigest()


def _write_part(root: str, name: str, path: str, write) -> tuple[str, str]:
    """Write a fresh partial file of ``name`` through ``write(out)``, which returns the
    SHA-256 of what it wrote; return ``(digest, partial file)``, flushed to disk. On a
    failure nothing is left behind. The caller renames the file into place (``path``)
    or removes it, from the digest."""
    try:
        fd, part = _new_part(root, name)
    except OSError as e:
        raise CacheError(
            f"get_file: cannot write in the cache directory {root} ({_describe(e)}); "
            "make it writable or point ZEROGRAD_HOME at another directory",
            path=path,
        ) from e
    try:
        with os.fdopen(fd, "wb") as out:
            digest = write(out)
            out.flush()
            os.fsync(out.fileno())
        return digest, part
    except BaseException:
        _remove_quietly(part)
        raise


def _copy_from_dezero(root: str, name: str, path: str, expected: str) -> bool:
    """Copy the original DeZero's download of ``name`` into the cache when its SHA-256 is
    ``expected``; warn and return False when it is there but is not that file.

    The file is copied, not linked: a hard link would share the file with a program that
    may rewrite it in place, a symbolic link would break when ``~/.dezero`` is cleared.
    The digest is taken from the bytes copied, so a file that changes meanwhile is caught.
    """
    source = os.path.join(dezero_cache_dir(), name)
    if not os.path.isfile(source):
        return False
    with contextlib.suppress(OSError):
        if os.path.samefile(source, path):
            return False  # ZEROGRAD_HOME is ~/.dezero: the file was checked already

    def copy(out):
        h = hashlib.sha256()
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                out.write(chunk)
                h.update(chunk)
        return h.hexdigest()

    try:
        digest, part = _write_part(root, name, path, copy)
    except CacheError:
        raise
    except OSError as e:
        warnings.warn(f"get_file: could not copy {source}, the original DeZero's download "
                      f"({_describe(e)}); downloading {name} instead", stacklevel=3)
        return False
    if digest != expected:
        _remove_quietly(part)
        warnings.warn(
            f"get_file: ignoring {source}, the original DeZero's download: its SHA-256 is "
            f"{digest}, expected {expected} (a partial download or another version); "
            f"downloading {name} instead",
            stacklevel=3,
        )
        return False
    os.replace(part, path)
    return True


def _check_cached(path: str, expected: str | None):
    """``(usable, found)``: whether the file at ``path`` can be used, and the SHA-256 of
    one that is there but is not the file expected (None otherwise)."""
    if not os.path.isfile(path):
        if os.path.lexists(path):
            raise CacheError(
                f"get_file: {path} is in the cache but is not a file; remove it",
                path=path,
            )
        return False, None
    if expected is None:
        return True, None
    found = sha256sum(path)
    return found == expected, (None if found == expected else found)


def get_file(url: str, file_name: str | None = None, sha256: str | None = None) -> str:
    """Download ``url`` into the cache directory once and return the local path.

    A file already in the cache is returned without touching the network; when
    ``sha256`` is given it must match, and a cached file that does not is fetched
    again. With ``sha256``, a download that the original DeZero made (a file of the
    same name in ``~/.dezero``) is copied into the cache instead, if its digest matches
    (a warning says so when it does not). A download goes to a partial file in the
    cache directory, is checked, and is then renamed into place, so an interrupted
    download never leaves a partial file under the final name.

    Args:
        url: where to fetch the file (``http``, ``https`` or ``file``).
        file_name: the name in the cache directory, a plain file name (no folders);
            by default the URL's last part.
        sha256: the expected SHA-256 hex digest, or None to skip the check.

    Returns:
        The path of the cached file.

    Raises:
        DownloadError: when the file cannot be fetched; the message names the URL,
            why, and where to put the file by hand (or, when a file with another
            digest is already there, that it is, with both digests).
        ChecksumError: when the downloaded file's digest is not ``sha256``.
        CacheError: when the cache directory is not a directory or not writable.
        ValueError: for a URL, file name or digest that cannot be right.

    Example:
        >>> import os, pathlib, tempfile
        >>> src = pathlib.Path(tempfile.mkdtemp(), "hello.txt")
        >>> _ = src.write_text("hello")
        >>> os.environ["ZEROGRAD_HOME"] = tempfile.mkdtemp()
        >>> path = get_file(src.as_uri())
        >>> open(path).read(), os.path.basename(path)
        ('hello', 'hello.txt')
        >>> del os.environ["ZEROGRAD_HOME"]
    """
    url = _check_url(url)
    name = _check_file_name(file_name, url)
    expected = _check_sha256(sha256)
    root = _cache_root()
    path = os.path.join(root, name)

    usable, _ = _check_cached(path, expected)
    if usable:
        return path
    with _locked(root, name) as locked:
        _remove_stale_parts(root, name, locked)
        # Another process may have put the file there while this one waited.
        usable, found = _check_cached(path, expected)
        if usable:
            return path
        if expected is not None and _copy_from_dezero(root, name, path, expected):
            return path
        import http.client

        try:
            actual, part = _write_part(root, name, path, lambda out: _download(url, out, name))
        except (OSError, http.client.HTTPException, ValueError) as e:
            if isinstance(e, CacheError):
                raise
            raise _transfer_failed(url, path, expected, found, _describe(e)) from e
        if expected is not None and actual != expected:
            _remove_quietly(part)
            raise _wrong_download(url, path, expected, found, actual)
        os.replace(part, path)
    return path


def _by_hand_hint(url: str, path: str) -> str:
    return (
        f"If this machine is offline, download {url} elsewhere and put it at {path} "
        "(the cache directory is $ZEROGRAD_HOME, default ~/.zerograd)"
    )


def _bad_cached_file(path: str, expected: str, found: str) -> str:
    return (
        f"{path} is in the cache but has the wrong SHA-256: expected {expected}, got "
        f"{found} (a damaged copy, or another version of the file)"
    )


def _transfer_failed(url, path, expected, found, reason) -> DownloadError:
    if found is not None:
        message = (
            f"get_file: {_bad_cached_file(path, expected, found)}, and downloading a "
            f"fresh copy from {url} failed ({reason}). Delete {path}, or replace it "
            f"with a good copy of {url} downloaded elsewhere"
        )
    else:
        message = f"get_file: could not download {url} ({reason}). " + _by_hand_hint(url, path)
    return DownloadError(message, url=url, path=path, reason=reason, found_sha256=found,
                         expected_sha256=expected)


def _wrong_download(url, path, expected, found, actual) -> ChecksumError:
    reason = f"its SHA-256 is {actual}, expected {expected}"
    message = (
        f"get_file: SHA-256 mismatch for {url}: expected {expected}, got {actual}; "
        "the download is corrupt or the file changed upstream and was not kept. "
    )
    if found is not None:
        message += f"Also, {_bad_cached_file(path, expected, found)}: delete or replace it"
    else:
        message += _by_hand_hint(url, path)
    return ChecksumError(message, url=url, path=path, reason=reason, found_sha256=found,
                         expected_sha256=expected)
