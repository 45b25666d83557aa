"""One measurement in a fresh process: ``run.py`` starts this file, never a user.

    python benchmarks/workloads/worker.py WORKLOAD FRAMEWORK '["case", ...]' [--quick]
    python benchmarks/workloads/worker.py --info

Prints one line ``@@RESULT <json>`` on stdout: for each case either its figures or the
reason it was skipped, plus where the data came from and the allocator setting seen.
The thread count and the allocator setting arrive through the environment, which
``run.py`` sets before NumPy (and its BLAS) or PyTorch is imported.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import traceback

MARKER = "@@RESULT "


def measure(workload: str, framework: str, cases: list[str], quick: bool) -> dict:
    import common

    module = importlib.import_module(workload)
    out: dict = {"cases": {}, "skipped": {}}
    try:
        results = module.run(framework, cases, quick)
    except common.Skip as e:
        results = {case: e for case in cases}
    for case, value in results.items():
        if isinstance(value, Exception):
            out["skipped"][case] = str(value)
        else:
            out["cases"][case] = [r.as_dict() for r in value]
    out["data"] = common.data_source()
    out["malloc_env"] = {
        k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES"))
    }
    return out


def info() -> dict:
    """Versions of Python, NumPy (and its BLAS), PyTorch, zerograd; thread pools."""
    import numpy as np

    out: dict = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "glibc": " ".join(platform.libc_ver()),
        "numpy": np.__version__,
    }
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        out["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # NumPy 1.x has no mode="dicts"
        out["numpy_blas"] = "unknown"
    try:
        import zerograd

        out["zerograd"] = f"{zerograd.__version__} ({os.path.dirname(zerograd.__file__)})"
    except Exception as e:
        out["zerograd"] = f"not importable: {e}"
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("ZG_BENCH_THREADS", "0") or 1))
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
        settings = torch.__config__.show().replace(",", " ").split()
        blas = [s.split("=", 1)[1] for s in settings if s.startswith("BLAS_INFO=")]
        out["torch_blas"] = blas[0] if blas else "see torch.__config__.show()"
        out["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    except ImportError:
        out["torch"] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        out["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "filepath")}
            for p in threadpool_info()
        ]
    except ImportError:
        out["threadpools"] = "threadpoolctl not installed"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", nargs="?")
    parser.add_argument("framework", nargs="?")
    parser.add_argument("cases", nargs="?", help="a JSON list of case names")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--info", action="store_true")
    args = parser.parse_args(argv)
    if args.info:
        result = info()
    else:
        try:
            result = measure(args.workload, args.framework, json.loads(args.cases), args.quick)
        except Exception:
            result = {"error": traceback.format_exc()}
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
