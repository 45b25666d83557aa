"""A tiny run of the soak script (benchmarks/soak.py): training in a child process that
is killed with SIGKILL next to a checkpoint write and resumed, every checkpoint version
seen on disk loading, and the final parameters equal to an uninterrupted run's."""

import json
import os
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def test_a_killed_and_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "ZEROGRAD_CPU_ONLY": "1"}
    report = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SOAK), "--steps", "60", "--save-every", "20", "--kills", "1",
         "--kill-mode", "save", "--channels", "2", "--batch-size", "8", "--life-timeout",
         "60", "--dir", str(tmp_path / "work"), "--json", str(report)],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["kills"] == 1 and data["lives"][0]["killed"]
    assert data["lives"][-1]["returncode"] == 0
    assert data["versions_seen"] >= 2 and data["versions_unloadable"] == []
    assert data["bit_identical"] is True
    assert "final parameters: bit-identical" in result.stdout
