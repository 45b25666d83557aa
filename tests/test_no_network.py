"""The suite's guard (tests/conftest.py): no connection beyond this machine."""

import socket

import pytest


def test_a_connection_beyond_the_loopback_fails():
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="network"):
        s.settimeout(2)  # without the guard: fail, never hang
        s.connect(("192.0.2.1", 80))  # TEST-NET-1 (RFC 5737): never routed anyway


def test_the_loopback_stays_open():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
