"""Launching real ranks for the distributed tests: ``mpiexec -n P python worker.py``.

The launching itself (``launch_alone``, ``mpi_launch``: timeouts, and the clean-up of
every process started) lives in ``tests/conftest.py``, shared with the other tests that
start ranks (the ``train`` command's).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def reference(tmp_path_factory, launch_alone):
    """The worker's suite in one process, without mpiexec, even and weighted."""
    runs = {}
    for weighted in (False, True):
        out = tmp_path_factory.mktemp("reference")
        run = launch_alone(None, out, "suite", *(["--weighted"] if weighted else []))
        runs[weighted] = run.results(1)[0]
    return runs
