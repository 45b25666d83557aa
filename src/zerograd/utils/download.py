"""Downloading data files into a local cache, checked by SHA-256 and written atomically.

Files land in the cache directory ``$ZEROGRAD_HOME`` (default ``~/.zerograd``). A file
already there is used as it is (after a checksum check when a digest is given), so a
machine without a network works once the file has been put there by hand.

Example:
    >>> import os, tempfile
    >>> from zerograd.utils.download import cache_dir
    >>> os.environ["ZEROGRAD_HOME"] = tempfile.mkdtemp()
    >>> cache_dir() == os.environ["ZEROGRAD_HOME"]
    True
    >>> del os.environ["ZEROGRAD_HOME"]
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from zerograd.utils.io import give_default_mode

__all__ = ["DownloadError", "ChecksumError", "cache_dir", "get_file", "sha256sum"]

_CHUNK = 1 << 16
_TIMEOUT_S = 60.0
_USER_AGENT = "zerograd (https://pypi.org/project/zerograd)"


class DownloadError(OSError):
    """A file could not be fetched (offline, HTTP error, truncated transfer)."""


class ChecksumError(DownloadError):
    """A downloaded file's SHA-256 digest is not the one expected."""


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


def _file_name_of(url: str) -> str:
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ValueError(
            f"get_file: cannot tell a file name from url={url!r}; pass file_name='...'"
        )
    return name


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{type(e).__name__}: {e.reason}"
    if isinstance(e, http.client.IncompleteRead):
        return f"the transfer stopped with {e.expected} bytes missing"
    return f"{type(e).__name__}: {e}"


def _by_hand_hint(url: str, path: str) -> str:
    return (
        f"If this machine is offline, download {url} elsewhere and put it at {path} "
        "(the cache directory is $ZEROGRAD_HOME, default ~/.zerograd)"
    )


class _Progress:
    """A one-line progress display on stderr, shown only when stderr is a terminal."""

    def __init__(self, name: str, total: int | None):
        self.name = name
        self.total = total
        self.enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.last_percent = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        mb = done / 2**20
        if self.total:
            percent = int(100 * done / self.total)
            if percent == self.last_percent:
                return
            self.last_percent = percent
            line = f"{mb:.1f} / {self.total / 2**20:.1f} MiB ({percent}%)"
        else:
            line = f"{mb:.1f} MiB"
        sys.stderr.write(f"\rDownloading {self.name}: {line}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _download(url: str, tmp, name: str) -> str:
    """Stream ``url`` into the open file ``tmp``; return the SHA-256 of what was read."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    h = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        progress = _Progress(name, total)
        done = 0
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                tmp.write(chunk)
                h.update(chunk)
                done += len(chunk)
                progress.update(done)
        finally:
            progress.close()
    # http.client returns b"" rather than raising when a connection closes early.
    if total is not None and done != total:
        raise http.client.IncompleteRead(b"", total - done)
    return h.hexdigest()


def get_file(url: str, file_name: str | None = None, sha256: str | None = None) -> str:
    """Download ``url`` into the cache directory once and return the local path.

    A file already in the cache is returned without touching the network; when
    ``sha256`` is given it must match, and a cached file that does not is fetched
    again. A download goes to a temporary file in the cache directory, is checked,
    and is then renamed into place, so an interrupted download never leaves a
    partial file under the final name.

    Args:
        url: where to fetch the file (``http``, ``https`` or ``file``).
        file_name: the name in the cache directory; by default the URL's last part.
        sha256: the expected SHA-256 hex digest, or None to skip the check.

    Returns:
        The path of the cached file.

    Raises:
        DownloadError: when the file cannot be fetched; the message names the URL
            and where to put the file by hand.
        ChecksumError: when the downloaded file's digest is not ``sha256``.

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
    if file_name is None:
        file_name = _file_name_of(url)
    root = cache_dir()
    path = os.path.join(root, file_name)
    expected = sha256.lower() if sha256 is not None else None

    if os.path.exists(path):
        if expected is None or sha256sum(path) == expected:
            return path
        # A stale or corrupt cached copy: fetch it again below, replacing it.

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        prefix=f".{os.path.basename(file_name)}.", suffix=".part", dir=os.path.dirname(path)
    )
    try:
        give_default_mode(fd)
        with os.fdopen(fd, "wb") as tmp:
            try:
                actual = _download(url, tmp, file_name)
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise DownloadError(
                    f"get_file: could not download {url} ({_describe(e)}). "
                    + _by_hand_hint(url, path)
                ) from e
        if expected is not None and actual != expected:
            raise ChecksumError(
                f"get_file: SHA-256 mismatch for {url}: expected {expected}, got {actual}; "
                "the download is corrupt or the file changed upstream and was not kept. "
                + _by_hand_hint(url, path)
            )
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return path
