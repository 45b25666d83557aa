"""Shared fixtures: the array module (NumPy always, CuPy where a GPU exists) and dtypes;
launching processes alone or as MPI ranks; no network beyond this machine.

Every test that computes on arrays takes ``xp`` and builds its inputs with it, so the
same test runs on the GPU without a copy of the file.

Launching (``launch_alone``, ``mpi_launch``, ``mpi_started``): ``mpiexec -n P python
ARGS...`` or ``python ARGS...``. Every launch is bounded by a timeout, and whatever
happens every process it started is ended: mpiexec with SIGTERM (MPICH's hydra then
kills its ranks) and SIGKILL after a grace period; then any rank of
``distributed/worker.py`` still alive, by the process id it wrote at start-up (hydra
starts each rank in a session of its own, out of reach of mpiexec's process group).
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import zerograd
from zerograd import cuda


# ---- no network: a connection anywhere but this machine fails the test that tries it -----
class NetworkBlocked(ConnectionRefusedError):
    """Raised by a socket of the test process that connects beyond the loopback."""


def _local(address) -> bool:
    if not isinstance(address, tuple):  # a Unix socket's path
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name: it would go through DNS
        return False


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Tests talk to 127.0.0.1 at most (the download tests' local HTTP server, MPI
    through its own processes); a connection elsewhere raises NetworkBlocked, an
    OSError, as an offline machine would."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def checked(method):
        def call(self, address):
            if not _local(address):
                raise NetworkBlocked(f"tests must not use the network: {address!r}")
            return method(self, address)
        return call

    socket.socket.connect, socket.socket.connect_ex = checked(connect), checked(connect_ex)
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex


def _array_modules():
    yield pytest.param(np, id="numpy")
    if cuda.gpu_enable:
        import cupy

        yield pytest.param(cupy, id="cupy", marks=pytest.mark.gpu)
    else:
        yield pytest.param(
            None,
            id="cupy",
            marks=pytest.mark.skip(reason="no usable CUDA device (CuPy missing or no GPU)"),
        )


@pytest.fixture(params=list(_array_modules()))
def xp(request):
    """numpy, or cupy on a machine with a usable GPU."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---- launching processes, alone or as MPI ranks ------------------------------------------
WORKER = Path(__file__).resolve().parent / "distributed" / "worker.py"
SRC = Path(zerograd.__file__).resolve().parent.parent


def mpi_missing() -> str | None:
    """Why real ranks cannot be launched here, or None when they can."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'zerograd[mpi]')"
    if shutil.which("mpiexec") is None:
        return "no mpiexec on PATH (pip install 'zerograd[mpi]' brings MPICH's)"
    return None


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    out: Path

    def results(self, size: int) -> list[dict]:
        """Each rank's ``rank<r>.npz``, in rank order."""
        assert self.returncode == 0, f"the job failed:\n{self.stdout}\n{self.stderr}"
        return [dict(np.load(self.out / f"rank{r}.npz")) for r in range(size)]


def _env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["ZEROGRAD_CPU_ONLY"] = "1"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _end(proc: subprocess.Popen, out: Path) -> None:
    """End mpiexec and every rank it started, if any is still running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid_file in out.glob("pid.*"):
        pid = int(pid_file.read_text() or 0)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone (or not Linux: hydra has ended it with mpiexec)
        if str(WORKER).encode() in cmdline:  # still ours, not a reused process id
            os.kill(pid, signal.SIGKILL)


def _command(ranks: int | None, out: Path, args: Sequence[str],
             script: Path | Sequence[str] | None) -> list[str]:
    if script is None:
        command = [sys.executable, str(WORKER), str(out), *args]
    elif isinstance(script, (str, os.PathLike)):
        command = [sys.executable, str(script), *args]
    else:  # the arguments of python itself, e.g. ["-m", "zerograd", "train"]
        command = [sys.executable, *script, *args]
    if ranks is not None:
        command = [shutil.which("mpiexec"), "-n", str(ranks), *command]
    return command


@contextlib.contextmanager
def started(ranks: int | None, out: Path, *args: str, env: dict | None = None,
            script: Path | Sequence[str] | None = None) -> Iterator[subprocess.Popen]:
    """``worker.py OUT ARGS...`` (or ``script ARGS...``; ``script`` may be python's own
    arguments, as ``["-m", "zerograd", "train"]``) started on ``ranks`` ranks under
    mpiexec (None: alone), in the folder ``out``, with text pipes; ended on leaving."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(_command(ranks, out, args, script), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(env), cwd=out,
                            start_new_session=True)
    try:
        yield proc
    finally:
        _end(proc, out)
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()


def launch(ranks: int | None, out: Path, *args: str, timeout: float = 120,
           env: dict | None = None, script: Path | Sequence[str] | None = None) -> Run:
    """Run ``worker.py OUT ARGS...`` (or ``script ARGS...``) on ``ranks`` ranks under
    mpiexec (None: alone, no mpiexec), in the folder ``out``, to its end."""
    start = time.monotonic()
    with started(ranks, out, *args, env=env, script=script) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end(proc, out)
            stdout, stderr = proc.communicate()
            command = " ".join(_command(ranks, out, args, script))
            pytest.fail(f"{command} still ran after {timeout} s:\n{stdout}\n{stderr}")
    return Run(proc.returncode, stdout, stderr, time.monotonic() - start, out)


@pytest.fixture(scope="session")
def launch_alone():
    """``launch``, for runs without mpiexec (which need no MPI)."""
    return launch


@pytest.fixture(scope="session")
def mpi_launch():
    """``launch``, or a skip when real ranks cannot be started here."""
    reason = mpi_missing()
    if reason is not None:
        pytest.skip(reason)
    return launch


@pytest.fixture(scope="session")
def mpi_started():
    """``started``, or a skip when real ranks cannot be started here."""
    reason = mpi_missing()
    if reason is not None:
        pytest.skip(reason)
    return started
