"""Profile one zerograd workload under cProfile: where does the time go?

    python benchmarks/profiling.py WORKLOAD [--case CASE] [--repeat N] [--top N]
                                 [--threads N] [--sort tottime|cumtime] [--out FILE]

WORKLOAD is one of ``overhead``, ``mlp``, ``cnn``, ``lstm``, ``memory``, ``elementwise``
(as in run.py); CASE one of its cases (default: the first; for ``elementwise`` a function
and a size, ``"tanh 1e6"``). Prints:

- the time split into NumPy (C calls and NumPy's Python wrappers), the bodies of
  zerograd's ``forward`` and optimizer-update methods (NumPy operators such as ``x @ W``
  run inside them, and cProfile charges an operator to the function that uses it), and
  the rest of zerograd's Python (engine, wrappers, layers, and the builtins they call);
- the time per zerograd source file;
- the top functions by own time, and zerograd's top functions by cumulative time.

cProfile adds a cost to every Python call, so it inflates the framework's share; compare
with ``run.py``'s zerograd/numpy ratio, which needs no profiler. ``--out`` saves the raw
stats for ``snakeviz`` or ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Profile a zerograd workload under cProfile.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        "workload", choices=("overhead", "mlp", "cnn", "lstm", "memory", "elementwise")
    )
    parser.add_argument("--case", help="a case of the workload (default: its first)")
    parser.add_argument("--repeat", type=int, default=10, help="profiled units of work")
    parser.add_argument("--top", type=int, default=25, help="rows per listing")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--sort", choices=("tottime", "cumtime"), default="tottime")
    parser.add_argument("--out", help="write the raw cProfile stats to this file")
    return parser.parse_args(argv)


# ---- classifying profile entries -------------------------------------------------------
ARRAY_MATH_METHODS = {"forward", "update_one", "update"}


def _is_builtin(func) -> bool:
    return func[0] == "~"


def category(func) -> str:
    """Which part of the stack a profile entry (filename, line, name) belongs to."""
    filename, _, name = func
    if _is_builtin(func):
        if "numpy" in name or "ndarray" in name or "ufunc" in name:
            return "numpy C calls"
        return "builtin"
    path = filename.replace(os.sep, "/")
    if "/zerograd/" in path:
        if name in ARRAY_MATH_METHODS:
            return "zerograd forward/update bodies (NumPy operators inside)"
        return "zerograd Python (engine, wrappers, layers)"
    if "/numpy/" in path:
        return "numpy Python wrappers"
    return "benchmark and other"


def split_time(stats) -> dict[str, float]:
    """Own time per category; builtins (isinstance, heapq, ...) go to their caller's."""
    out: dict[str, float] = defaultdict(float)
    for func, (_, _, tottime, _, callers) in stats.stats.items():
        cat = category(func)
        if cat != "builtin":
            out[cat] += tottime
            continue
        for caller, caller_stats in callers.items():
            caller_cat = category(caller)
            if caller_cat.startswith("zerograd"):
                caller_cat = "zerograd Python (engine, wrappers, layers)"
            elif caller_cat == "builtin":
                caller_cat = "benchmark and other"
            out[caller_cat] += caller_stats[2]
    return dict(out)


def per_file(stats) -> dict[str, float]:
    """Own time per zerograd source file (builtins charged to their caller's file)."""
    out: dict[str, float] = defaultdict(float)

    def zg_file(func):
        path = func[0].replace(os.sep, "/")
        return path.split("/zerograd/", 1)[1] if "/zerograd/" in path else None

    for func, (_, _, tottime, _, callers) in stats.stats.items():
        if _is_builtin(func) and category(func) == "builtin":
            for caller, caller_stats in callers.items():
                name = zg_file(caller)
                if name:
                    out[name] += caller_stats[2]
        elif zg_file(func):
            out[zg_file(func)] += tottime
    return dict(out)


def _label(func) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    path = filename.replace(os.sep, "/")
    for root in ("/zerograd/", "/numpy/", "/benchmarks/"):
        if root in path:
            path = root.strip("/") + "/" + path.split(root, 1)[1]
            break
    else:
        path = os.path.basename(path)
    return f"{path}:{line}({name})"


def report(stats, top: int, sort: str, total: float) -> str:
    lines = []

    def pct(t):
        return f"{100 * t / total:5.1f}%"

    lines.append("time by part of the stack (own time, cProfile):")
    for cat, t in sorted(split_time(stats).items(), key=lambda kv: -kv[1]):
        lines.append(f"  {pct(t)}  {t:8.3f} s  {cat}")
    lines.append("")
    lines.append("zerograd's own time per file (with the builtins it calls):")
    for name, t in sorted(per_file(stats).items(), key=lambda kv: -kv[1]):
        lines.append(f"  {pct(t)}  {t:8.3f} s  {name}")
    lines.append("")
    key = 2 if sort == "tottime" else 3
    lines.append(f"top {top} functions by {sort}:")
    lines.append(f"  {'own %':>6} {'own s':>8} {'cum s':>8} {'calls':>9}  function")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][key])[:top]
    for func, (_, nc, tt, ct, _) in rows:
        lines.append(f"  {pct(tt)} {tt:8.3f} {ct:8.3f} {nc:9d}  {_label(func)}")
    lines.append("")
    lines.append(f"top {top} zerograd functions by cumulative time:")
    zg = [kv for kv in stats.stats.items() if "/zerograd/" in kv[0][0].replace(os.sep, "/")]
    for func, (_, nc, tt, ct, _) in sorted(zg, key=lambda kv: -kv[1][3])[:top]:
        lines.append(f"  {pct(ct)} {tt:8.3f} {ct:8.3f} {nc:9d}  {_label(func)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    # The thread count must be in the environment before NumPy loads its BLAS.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("ZEROGRAD_CPU_ONLY", "1")
    sys.path.insert(0, os.path.join(HERE, "workloads"))
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
    import importlib
    import time

    import common

    module = importlib.import_module(args.workload)
    case = args.case or module.CASES[0]
    if case not in module.CASES:
        print(f"unknown case {case!r}; choose from {list(module.CASES)}", file=sys.stderr)
        return 2
    try:
        unit = module.zerograd_step(case)  # builds the model, runs one warm-up unit
        unit()
    except common.Skip as e:
        print(f"cannot profile {args.workload} {case}: {e}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        unit()
    plain = (time.perf_counter() - t0) / args.repeat
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(args.repeat):
        unit()
    profiler.disable()
    profiled = (time.perf_counter() - t0) / args.repeat
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"{args.workload} / {case}: {args.repeat} units, {plain * 1e3:.2f} ms per unit "
          f"without the profiler, {profiled * 1e3:.2f} ms with it; threads={args.threads}")
    print()
    print(report(stats, args.top, args.sort, total))
    if args.out:
        stats.dump_stats(args.out)
        print(f"\nraw stats written to {args.out}")
    return 0


# This file shares its name with the standard library's ``profile``, which cProfile
# imports: take this folder off the path before importing cProfile.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
import cProfile  # noqa: E402
import pstats  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
