"""get_file: cache, SHA-256 checks, atomic writes, offline errors, names, locks and
partial files, and reuse of the original DeZero's downloads, against a local HTTP server
on 127.0.0.1 (the tests never touch the network)."""

import functools
import hashlib
import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

import zerograd
from zerograd.utils import download
from zerograd.utils.download import (
    CacheError,
    ChecksumError,
    DownloadError,
    cache_dir,
    get_file,
    sha256sum,
)

PAYLOAD = b"zerograd test payload\n" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            # Promise more bytes than are sent, then close: a transfer cut midway.
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD) * 10))
            self.end_headers()
            self.wfile.write(PAYLOAD)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/slow/"):
            # Half the file, then wait until the test lets the rest go: a download that
            # is under way for as long as the test needs.
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            self.server.release.wait(timeout=30)
            try:
                self.wfile.write(PAYLOAD[1000:])
            except OSError:  # the client was killed meanwhile
                pass
            return
        super().do_GET()


@pytest.fixture
def httpd(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www``; ``httpd.requests``
    lists the paths asked for, ``httpd.release`` lets the ``/slow/`` transfers finish."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.root = root
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.requests = []
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(httpd):
    """(root, base_url, requests) of the local server."""
    return httpd.root, httpd.base, httpd.requests


@pytest.fixture
def home(tmp_path, monkeypatch):
    """ZEROGRAD_HOME pointed at an empty temporary directory."""
    path = tmp_path / "cache"
    monkeypatch.setenv("ZEROGRAD_HOME", str(path))
    return path


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket closes


def test_cache_dir_follows_env(home, monkeypatch, tmp_path):
    assert cache_dir() == str(home)
    monkeypatch.delenv("ZEROGRAD_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == os.path.join(str(tmp_path), ".zerograd")


def test_download_then_cache_hit(server, home):
    _, base, requests = server
    path = get_file(f"{base}/data.bin")
    assert path == os.path.join(str(home), "data.bin")
    assert open(path, "rb").read() == PAYLOAD
    assert requests == ["/data.bin"]
    assert get_file(f"{base}/data.bin") == path
    assert get_file(f"{base}/data.bin", sha256=PAYLOAD_SHA) == path
    assert requests == ["/data.bin"]  # both answered from the cache
    assert sorted(os.listdir(home)) == ["data.bin"]


def test_file_name_and_checksum(server, home):
    _, base, _ = server
    path = get_file(f"{base}/data.bin?version=2", "renamed.bin", sha256=PAYLOAD_SHA.upper())
    assert os.path.basename(path) == "renamed.bin"
    assert sha256sum(path) == PAYLOAD_SHA


def test_checksum_mismatch_leaves_nothing(server, home):
    _, base, _ = server
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as e:
        get_file(f"{base}/data.bin", sha256=wrong)
    message = str(e.value)
    assert wrong in message and PAYLOAD_SHA in message and f"{base}/data.bin" in message
    assert isinstance(e.value, DownloadError) and isinstance(e.value, OSError)
    assert os.listdir(home) == []


def test_stale_cached_file_is_downloaded_again(server, home):
    _, base, requests = server
    home.mkdir()
    (home / "data.bin").write_bytes(b"corrupt")
    path = get_file(f"{base}/data.bin", sha256=PAYLOAD_SHA)
    assert open(path, "rb").read() == PAYLOAD
    assert requests == ["/data.bin"]
    # Without a digest, whatever is cached is trusted.
    (home / "data.bin").write_bytes(b"hand-placed")
    assert open(get_file(f"{base}/data.bin"), "rb").read() == b"hand-placed"


def test_offline_error_says_where_to_put_the_file(home):
    url = f"http://127.0.0.1:{_closed_port()}/mnist/train.gz"
    with pytest.raises(DownloadError) as e:
        get_file(url)
    message = str(e.value)
    assert url in message
    assert os.path.join(str(home), "train.gz") in message
    assert "ZEROGRAD_HOME" in message
    assert not os.path.exists(os.path.join(str(home), "train.gz"))


def test_http_error(server, home):
    _, base, _ = server
    with pytest.raises(DownloadError, match="404"):
        get_file(f"{base}/missing.bin")
    assert os.listdir(home) == []


def test_transfer_cut_midway_leaves_no_partial_file(server, home):
    _, base, _ = server
    with pytest.raises(DownloadError, match="truncated/data.bin"):
        get_file(f"{base}/truncated/data.bin")
    assert os.listdir(home) == []


def test_no_file_name_in_url(home):
    with pytest.raises(ValueError, match="file_name"):
        get_file("http://127.0.0.1/")


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log(server, home, monkeypatch,
                                                             capsys):
    _, base, _ = server
    get_file(f"{base}/data.bin", "logged.bin")
    lines = capsys.readouterr().err.splitlines()
    # in a log: a line when the transfer starts (unless one read brought it all), one
    # every 10 seconds, and one at the end with the time taken
    assert 1 <= len(lines) <= 2 and all("\r" not in line for line in lines), lines
    assert lines[-1].startswith("Downloading logged.bin: 2.1 KiB/2.1 KiB (100%), in "), lines

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    get_file(f"{base}/data.bin", "loud.bin")
    text = terminal.getvalue()
    assert text.startswith("\rDownloading loud.bin [") and text.endswith("\n")
    assert "2.1 KiB/2.1 KiB 100%" in text


def test_no_stderr_at_all_is_fine(server, home, monkeypatch):
    _, base, _ = server
    monkeypatch.setattr("sys.stderr", None)
    assert os.path.exists(get_file(f"{base}/data.bin", "silent.bin"))


# --- what is true when a cached file is wrong (issue 13, item 4) ------------------------


def test_corrupt_cached_file_offline_says_so(home):
    home.mkdir()
    (home / "train.gz").write_bytes(b"corrupt")
    corrupt_sha = hashlib.sha256(b"corrupt").hexdigest()
    url = f"http://127.0.0.1:{_closed_port()}/mnist/train.gz"
    with pytest.raises(DownloadError) as e:
        get_file(url, sha256=PAYLOAD_SHA)
    message = str(e.value)
    path = os.path.join(str(home), "train.gz")
    assert f"{path} is in the cache but has the wrong SHA-256" in message
    assert PAYLOAD_SHA in message and corrupt_sha in message
    assert "Delete" in message and "Connection refused" in message
    assert "could not download" not in message and "put it at" not in message
    assert (e.value.path, e.value.found_sha256) == (path, corrupt_sha)
    assert e.value.expected_sha256 == PAYLOAD_SHA and e.value.url == url
    assert (home / "train.gz").read_bytes() == b"corrupt"  # left for the user to judge
    assert os.listdir(home) == ["train.gz"]


def test_corrupt_cached_file_and_a_corrupt_download(server, home):
    root, base, _ = server
    home.mkdir()
    (home / "data.bin").write_bytes(b"old")
    (root / "data.bin").write_bytes(b"changed upstream")
    with pytest.raises(ChecksumError) as e:
        get_file(f"{base}/data.bin", sha256=PAYLOAD_SHA)
    message = str(e.value)
    assert hashlib.sha256(b"changed upstream").hexdigest() in message  # what came
    assert hashlib.sha256(b"old").hexdigest() in message  # what is in the cache
    assert "was not kept" in message and "delete or replace it" in message
    assert (home / "data.bin").read_bytes() == b"old"
    assert os.listdir(home) == ["data.bin"]


def test_offline_without_a_cached_file_says_where_to_put_it(home):
    url = f"http://127.0.0.1:{_closed_port()}/x.bin"
    with pytest.raises(DownloadError) as e:
        get_file(url, sha256=PAYLOAD_SHA)
    assert "could not download" in str(e.value) and "wrong SHA-256" not in str(e.value)
    assert e.value.found_sha256 is None and "Connection refused" in e.value.reason


# --- names, URLs and digests (issue 13, item 10) ------------------------------------------


@pytest.mark.parametrize("tail", ["/..", "/.", "/a/..", "/"])
def test_url_naming_no_file_is_refused(server, home, tail):
    _, base, requests = server
    with pytest.raises(ValueError, match="names no file; pass file_name="):
        get_file(base + tail)
    assert requests == []
    assert not home.exists() or os.listdir(home) == []


@pytest.mark.parametrize(
    "file_name",
    ["../../x", "../x", "..", ".", "", "a/b", "/tmp/escape.bin", "a\\b", "x\0y", ".hidden",
     ".data.bin.abcd1234.part"],
)
def test_file_name_must_be_a_plain_name(server, home, tmp_path, file_name):
    _, base, requests = server
    with pytest.raises(ValueError, match=r"get_file: file_name=.*; pass a plain file name"):
        get_file(f"{base}/data.bin", file_name)
    assert requests == []
    assert not (tmp_path / "x").exists() and not os.path.exists("/tmp/escape.bin")


def test_file_name_may_be_a_path_object(server, home):
    import pathlib

    _, base, _ = server
    path = get_file(f"{base}/data.bin", pathlib.Path("renamed.bin"))
    assert path == os.path.join(str(home), "renamed.bin")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"url": b"http://x/y"}, TypeError, "url must be a str, got bytes"),
        ({"url": "data.bin"}, ValueError, "url must start with http://"),
        ({"url": "ftp://127.0.0.1/data.bin"}, ValueError, "url must start with http://"),
        ({"file_name": 3}, TypeError, "file_name must be a str, got int"),
        ({"sha256": "abc"}, ValueError, "sha256 must be a SHA-256 hex digest"),
        ({"sha256": "g" * 64}, ValueError, "sha256 must be a SHA-256 hex digest"),
        ({"sha256": b"0" * 64}, ValueError, "sha256 must be a SHA-256 hex digest"),
    ],
)
def test_bad_arguments_are_refused_before_anything_happens(server, home, kwargs, error, match):
    _, base, requests = server
    args = {"url": f"{base}/data.bin", **kwargs}
    with pytest.raises(error, match=match):
        get_file(**args)
    assert requests == [] and not home.exists()


def test_cache_dir_that_is_a_file(home, tmp_path, monkeypatch):
    home.write_bytes(b"not a directory")
    with pytest.raises(CacheError) as e:
        get_file("http://127.0.0.1:1/data.bin")
    assert f"the cache directory {home} ($ZEROGRAD_HOME) exists but is not a directory" in str(
        e.value
    )
    assert isinstance(e.value, DownloadError) and isinstance(e.value, OSError)
    monkeypatch.setenv("ZEROGRAD_HOME", str(home / "below"))
    with pytest.raises(CacheError, match="cannot create the cache directory"):
        get_file("http://127.0.0.1:1/data.bin")


def test_a_folder_in_the_files_place(server, home):
    _, base, requests = server
    (home / "data.bin").mkdir(parents=True)
    with pytest.raises(CacheError, match="is in the cache but is not a file; remove it"):
        get_file(f"{base}/data.bin")
    assert requests == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="needs a user whom file permissions bind (not root)")
def test_read_only_cache(server, home):
    _, base, _ = server
    home.mkdir()
    (home / "there.bin").write_bytes(PAYLOAD)
    home.chmod(0o500)
    try:
        assert get_file(f"{base}/data.bin", "there.bin", sha256=PAYLOAD_SHA).endswith("there.bin")
        with pytest.raises(CacheError, match="cannot write in the cache directory"):
            get_file(f"{base}/data.bin")
    finally:
        home.chmod(0o700)


# --- partial files and locks ----------------------------------------------------------------


def test_stale_partial_files_are_removed(server, home):
    _, base, _ = server
    home.mkdir()
    stale = [".data.bin.0123abcd.part", ".data.bin.a_b1c2d3.part"]  # ours, tempfile's
    others = [".data.bin.x.0123abcd.part", ".other.bin.0123abcd.part", ".data.bin.part",
              "data.bin.0123abcd.part"]
    for name in stale + others:
        (home / name).write_bytes(b"partial")
    get_file(f"{base}/data.bin")
    assert sorted(os.listdir(home)) == sorted(others + ["data.bin"])  # no lock file left


def test_failed_download_leaves_no_lock_or_partial_file(server, home):
    _, base, _ = server
    with pytest.raises(DownloadError):
        get_file(f"{base}/missing.bin")
    with pytest.raises(DownloadError):
        get_file(f"{base}/truncated/data.bin")
    assert os.listdir(home) == []


def _wait_for(predicate, timeout=20.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _partial_files(home):
    return [n for n in os.listdir(home) if n.endswith(".part")] if home.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_download_killed_with_sigkill_is_cleaned_up_by_the_next(httpd, home):
    src = os.path.dirname(os.path.dirname(os.path.abspath(zerograd.__file__)))
    env = dict(os.environ, PYTHONPATH=src, ZEROGRAD_HOME=str(home))
    code = ("import sys; from zerograd.utils.download import get_file; "
            "get_file(sys.argv[1], 'data.bin')")
    proc = subprocess.Popen([sys.executable, "-c", code, f"{httpd.base}/slow/data.bin"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: httpd.requests and _partial_files(home) or proc.poll() is not None,
                  what="the download to start")
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
        proc.stderr.close()
    assert len(_partial_files(home)) == 1 and not (home / "data.bin").exists()
    path = get_file(f"{httpd.base}/data.bin", sha256=PAYLOAD_SHA)
    assert open(path, "rb").read() == PAYLOAD
    assert os.listdir(home) == ["data.bin"]  # the partial file and the lock are gone


@pytest.mark.skipif(download.fcntl is None, reason="no advisory locks on this platform")
def test_two_downloads_at_once_share_one_transfer(httpd, home):
    results, errors = [], []

    def fetch(url):
        try:
            results.append(get_file(url, "data.bin", sha256=PAYLOAD_SHA))
        except BaseException as e:  # reported by the assertions below
            errors.append(e)

    first = threading.Thread(target=fetch, args=(f"{httpd.base}/slow/data.bin",))
    second = threading.Thread(target=fetch, args=(f"{httpd.base}/data.bin",))
    try:
        first.start()
        _wait_for(lambda: httpd.requests and _partial_files(home),
                  what="the first download to start")
        second.start()
        second.join(timeout=0.5)
        # The second waits on the first: it neither downloads nor removes the
        # first one's partial file.
        assert second.is_alive() and len(_partial_files(home)) == 1
    finally:
        httpd.release.set()
        first.join(timeout=20)
        second.join(timeout=20)
    assert not first.is_alive() and not second.is_alive() and errors == []
    assert results == [os.path.join(str(home), "data.bin")] * 2
    assert httpd.requests == ["/slow/data.bin"]  # one transfer for both
    assert os.listdir(home) == ["data.bin"]


# --- downloads made by the original DeZero (issue 9, item 5) --------------------------------


@pytest.fixture
def dezero_home(tmp_path, monkeypatch):
    """HOME pointed at a temporary folder; returns its ``.dezero`` folder (created)."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    path = tmp_path / "user" / ".dezero"
    path.mkdir(parents=True)
    return path


def test_dezero_download_is_copied_when_its_checksum_matches(home, dezero_home):
    (dezero_home / "train.gz").write_bytes(PAYLOAD)
    url = f"http://127.0.0.1:{_closed_port()}/train.gz"  # offline: nothing to download
    path = get_file(url, sha256=PAYLOAD_SHA)
    assert path == os.path.join(str(home), "train.gz")
    assert open(path, "rb").read() == PAYLOAD
    # A copy, not a link: the two files are independent.
    assert not os.path.islink(path) and os.stat(path).st_nlink == 1
    assert not os.path.samefile(path, dezero_home / "train.gz")
    assert sorted(os.listdir(home)) == ["train.gz"]


def test_dezero_download_is_not_trusted_without_a_checksum(server, home, dezero_home):
    _, base, requests = server
    (dezero_home / "data.bin").write_bytes(b"anything")
    assert open(get_file(f"{base}/data.bin"), "rb").read() == PAYLOAD
    assert requests == ["/data.bin"]


def test_wrong_dezero_download_is_ignored_with_a_note(server, home, dezero_home):
    _, base, requests = server
    (dezero_home / "data.bin").write_bytes(b"partial")
    with pytest.warns(UserWarning, match="ignoring .*data.bin, the original DeZero's download"):
        path = get_file(f"{base}/data.bin", sha256=PAYLOAD_SHA)
    assert open(path, "rb").read() == PAYLOAD and requests == ["/data.bin"]
    assert (dezero_home / "data.bin").read_bytes() == b"partial"  # never touched
    assert sorted(os.listdir(home)) == ["data.bin"]


def test_dezero_download_replaces_a_corrupt_cached_file(home, dezero_home):
    home.mkdir()
    (home / "data.bin").write_bytes(b"corrupt")
    (dezero_home / "data.bin").write_bytes(PAYLOAD)
    path = get_file(f"http://127.0.0.1:{_closed_port()}/data.bin", sha256=PAYLOAD_SHA)
    assert open(path, "rb").read() == PAYLOAD


def test_zerograd_home_may_be_the_dezero_folder(home, dezero_home, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_HOME", str(dezero_home))
    (dezero_home / "data.bin").write_bytes(b"corrupt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note about ignoring the file it just checked
        with pytest.raises(DownloadError, match="wrong SHA-256"):
            get_file(f"http://127.0.0.1:{_closed_port()}/data.bin", sha256=PAYLOAD_SHA)


def test_import_zerograd_leaves_the_network_stack_unloaded():
    # urllib.request, http.client and ssl load when a download starts: together about
    # 20 ms that every `import zerograd` (and every book step) would otherwise pay.
    code = (
        "import sys, zerograd, zerograd.datasets\n"
        "print(sorted(m for m in ('urllib.request', 'http.client', 'ssl', 'email')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
