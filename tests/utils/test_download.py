"""get_file: cache, SHA-256 checks, atomic writes and offline errors, against a local
HTTP server on 127.0.0.1 (the tests never touch the network)."""

import functools
import hashlib
import http.server
import io
import os
import socket
import threading

import pytest

from zerograd.utils.download import (
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
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www``: (root, base_url, requests)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


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


def test_progress_only_on_a_terminal(server, home, monkeypatch, capsys):
    _, base, _ = server
    get_file(f"{base}/data.bin", "quiet.bin")
    assert capsys.readouterr().err == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    get_file(f"{base}/data.bin", "loud.bin")
    assert "Downloading loud.bin" in terminal.getvalue()
    assert "(100%)" in terminal.getvalue()
