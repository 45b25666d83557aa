"""Time the book's steps: zerograd against the original DeZero, one fresh process each.

    python benchmarks/book_steps.py [--book PATH] [--steps 44,60] [--rounds N] [--load N]
                                    [--load-kind python|numpy] [--json out.json]

Every step of the book that runs offline (the programs of ``tests/book/``, which make
the calls of the book's ``steps/stepNN.py`` in the same order) runs to its end in a
fresh process: under zerograd as ``python -m zerograd run tests/book/stepNN.py``, and,
when the book's checkout is given (``--book`` or ``ZEROGRAD_BOOK_REPO``), under the
original as the book's own ``steps/stepNN.py`` run from that checkout, with its
``dezero`` package on the path. Both get the same start: NumPy's global seed for the
steps that draw unseeded (54, 59, 60, as ``tests/book`` does), sockets cut off,
matplotlib's Agg backend, an empty working folder, ``ZEROGRAD_CPU_ONLY=1``.

A figure is the wall time of the whole process (imports included: what a reader
waits for), the median over ``--rounds`` (the two frameworks take turns). Beside it,
the process's CPU time (user + system, all its threads), which on a busy machine
shows how much of the wall time was the program's own work. ``--load N`` times every
step a second time with N busy processes running beside it (see ``run.py --load``),
and prints both ratios side by side.

The table: per step, zerograd's seconds, the original's, and zerograd/original in
wall time and in CPU time (below 1 is faster than the original); an ``!`` marks a step
that did not end as the book's does (its exit status), and its figures are not
comparable. On a shared machine the CPU ratio is the steadier of the two.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BOOK_TESTS = REPO / "tests" / "book"
sys.path.insert(0, str(HERE))

from run import _SPIN, Load  # noqa: E402


def _book_table():
    """``tests/book/test_book.py``'s table of steps (seed, expected error) and the list
    of empty steps, read from the file rather than copied."""
    spec = importlib.util.spec_from_file_location("_book_steps_table", BOOK_TESTS / "test_book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look themselves up there)
    spec.loader.exec_module(module)
    return module.STEPS


# The same start for both frameworks: the seed (for the steps that need one), sockets
# cut off, then the program as __main__ ("run" through zerograd's alias, or the book's
# own file as `python steps/stepNN.py` would run it).
_PREAMBLE = """\
import runpy, socket, sys
import numpy as np

def _offline(*args, **kwargs):
    raise OSError("the book's steps run offline here")

socket.socket.connect = _offline
socket.create_connection = _offline
if {seed!r} is not None:
    np.random.seed({seed!r})
sys.argv = [{path!r}]
{run}
"""
_RUN_ZEROGRAD = "from zerograd.__main__ import main\nsys.exit(main(['run', {path!r}]))"
_RUN_ORIGINAL = "runpy.run_path({path!r}, run_name='__main__')"


# Compiled bytecode goes to a cache of this run's own (never into the source trees,
# the book's checkout may be read-only), so that, as for a user whose install wrote its
# .pyc files, no run pays for compiling either framework's modules.
PYCACHE = Path(tempfile.gettempdir()) / "zerograd-book-steps-pycache"


def step_command(framework: str, number: int, seed, book: Path | None) -> tuple[list, dict]:
    """The command and environment that run one step under one framework."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update(MPLBACKEND="Agg", ZEROGRAD_CPU_ONLY="1", PYTHONWARNINGS="ignore",
               PYTHONPYCACHEPREFIX=str(PYCACHE))
    if framework == "zerograd":
        path = str(BOOK_TESTS / f"step{number:02d}.py")
        env["PYTHONPATH"] = str(REPO / "src")
        run = _RUN_ZEROGRAD.format(path=path)
    else:
        path = str(book / "steps" / f"step{number:02d}.py")
        env["PYTHONPATH"] = str(book)  # the checkout's own dezero package
        run = _RUN_ORIGINAL.format(path=path)
    code = _PREAMBLE.format(seed=seed, path=path, run=run)
    return [sys.executable, "-c", code], env


def time_step(framework: str, number: int, seed, book: Path | None, timeout: float,
              warm_up: bool = False) -> dict:
    """Run one step to its end in a fresh process: wall and CPU seconds, exit status.
    ``warm_up`` only imports the framework and matplotlib (compiling them), untimed."""
    command, env = step_command(framework, number, seed, book)
    if warm_up:
        imports = "import zerograd" if framework == "zerograd" else "import dezero"
        imports += "\ntry:\n    import matplotlib.pyplot\nexcept ImportError:\n    pass"
        subprocess.run([sys.executable, "-c", imports], env=env, capture_output=True,
                       timeout=timeout)
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix=f"book-step{number:02d}-") as folder:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(command, cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"wall": None, "cpu": None, "status": "timeout", "stderr": ""}
        wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "status": proc.returncode,
            "stderr": proc.stderr.strip().splitlines()[-1:] if proc.returncode else ""}


def measure(numbers, steps, frameworks, rounds: int, loads, load_kind: str,
            book: Path | None, timeout: float, log) -> dict:
    """{(number, framework, load): [result per round]}, frameworks taking turns."""
    results: dict = {}
    for framework in frameworks:  # fill the bytecode cache: imports compile once, untimed
        time_step(framework, numbers[0], None, book, timeout, warm_up=True)
    for r in range(rounds):
        for number in numbers:
            step = steps[number]
            order = frameworks if (r + number) % 2 == 0 else frameworks[::-1]
            for load in loads:
                for framework in order:
                    with Load(load, load_kind):
                        result = time_step(framework, number, step.seed, book, timeout)
                    results.setdefault((number, framework, load), []).append(result)
                    wall = "timeout" if result["wall"] is None else f"{result['wall']:.2f} s"
                    log(f"round {r + 1} step {number:2d} {framework:8s} load {load}: {wall}")
    return results


def expected_status(step) -> int:
    return 0 if step.error is None else 1


def summarize(results: dict, steps) -> list[dict]:
    """A row per (step, load): each framework's median wall and CPU time, the ratio."""
    rows = {}
    for (number, framework, load), runs in results.items():
        row = rows.setdefault((number, load), {"step": number, "load": load})
        ok = all(run["status"] == expected_status(steps[number]) for run in runs)
        walls = [run["wall"] for run in runs if run["wall"] is not None]
        cpus = [run["cpu"] for run in runs if run["cpu"] is not None]
        row[framework] = {
            "wall": statistics.median(walls) if walls else None,
            "cpu": statistics.median(cpus) if cpus else None,
            "rounds": [run["wall"] for run in runs],
            "ok": ok,
            "status": [run["status"] for run in runs],
        }
    out = []
    for _, row in sorted(rows.items()):
        zg, orig = row.get("zerograd"), row.get("original")
        for key, name in (("wall", "ratio"), ("cpu", "cpu ratio")):
            row[name] = (zg[key] / orig[key]
                         if zg and orig and zg[key] and orig[key] else None)
        out.append(row)
    return out


def _fmt(entry, key="wall") -> str:
    if not entry or entry.get(key) is None:
        return "-"
    return f"{entry[key]:.2f}" + ("" if entry["ok"] else "!")


def format_rows(rows: list[dict], loads) -> str:
    by_step: dict = {}
    for row in rows:
        by_step.setdefault(row["step"], {})[row["load"]] = row
    head = ["step"]
    for load in loads:
        tag = "idle" if load == 0 else f"load {load}"
        head += [f"zerograd s ({tag})", "cpu s", f"original s ({tag})", "cpu s",
                 f"zg/orig ({tag})", "cpu"]
    lines = []
    for number, per_load in sorted(by_step.items()):
        line = [str(number)]
        for load in loads:
            row = per_load.get(load, {})
            ratios = [row.get("ratio"), row.get("cpu ratio")]
            line += [_fmt(row.get("zerograd")), _fmt(row.get("zerograd"), "cpu"),
                     _fmt(row.get("original")), _fmt(row.get("original"), "cpu")]
            line += ["-" if r is None else f"{r:.2f}x" for r in ratios]
        lines.append(line)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    text = ["  ".join(str(c).rjust(w) for c, w in zip(head, widths))]
    text.append("  ".join("-" * w for w in widths))
    text += ["  ".join(str(c).rjust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the book's steps under zerograd and the original DeZero.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
    )
    parser.add_argument("--book", default=os.environ.get("ZEROGRAD_BOOK_REPO"),
                        help="the book's checkout (default: $ZEROGRAD_BOOK_REPO); without "
                        "it only zerograd is timed")
    parser.add_argument("--steps", help="comma-separated step numbers (default: all)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per figure (median)")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="also time every step beside N busy processes")
    parser.add_argument("--load-kind", choices=tuple(_SPIN), default="python")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    steps = _book_table()
    numbers = sorted(steps)
    if args.steps:
        numbers = [int(s) for s in args.steps.split(",")]
        unknown = [n for n in numbers if n not in steps]
        if unknown:
            parser.error(f"steps {unknown} do not run offline; choose from {sorted(steps)}")
    book = Path(args.book) if args.book else None
    if book is not None and not (book / "steps" / "step60.py").exists():
        parser.error(f"{book} is not a checkout of the book's code (no steps/step60.py)")
    frameworks = ["zerograd"] + (["original"] if book else [])
    loads = [0] + ([args.load] if args.load else [])

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    load_start = os.getloadavg()
    results = measure(numbers, steps, frameworks, args.rounds, loads, args.load_kind,
                      book, args.timeout, log)
    rows = summarize(results, steps)
    print(f"python {sys.version.split()[0]}, book checkout: {book or 'not given'}, "
          f"rounds {args.rounds}, load average {load_start[0]:.2f} at the start and "
          f"{os.getloadavg()[0]:.2f} at the end"
          + (f", {args.load} busy {args.load_kind} processes" if args.load else ""))
    print(format_rows(rows, loads))
    slower = [r for r in rows if r["ratio"] is not None and r["ratio"] > 1]
    for row in slower:
        where = "idle" if row["load"] == 0 else f"load {row['load']}"
        print(f"slower than the original: step {row['step']} ({where}) {row['ratio']:.2f}x")
    failed = [(r["step"], fw) for r in rows for fw in frameworks
              if r.get(fw) and not r[fw]["ok"]]
    for number, fw in failed:
        print(f"! step {number} under {fw} ended with status {rows_status(rows, number, fw)}, "
              f"expected {expected_status(steps[number])}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        revision = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                  capture_output=True, text=True).stdout.strip()
        Path(args.json).write_text(json.dumps({
            "python": sys.version, "book": str(book) if book else None,
            "zerograd_revision": revision or "unknown",
            "rounds": args.rounds, "load": args.load, "load_kind": args.load_kind,
            "load_average_start": load_start, "load_average_end": os.getloadavg(),
            "rows": rows,
        }, indent=1) + "\n")
    return 1 if failed else 0


def rows_status(rows, number, framework):
    for row in rows:
        if row["step"] == number and row.get(framework):
            return row[framework]["status"]
    return None


if __name__ == "__main__":
    sys.exit(main())
