"""Render saved benchmark results as the markdown tables of docs/performance.md.

    python benchmarks/report.py RUN_JSON [--steps BOOK_STEPS_JSON]

RUN_JSON is what ``run.py --json`` wrote (with ``--load N`` for the table under load);
BOOK_STEPS_JSON what ``book_steps.py --json`` wrote. Prints, in the order of
docs/performance.md: the run's header, a table per workload (per-op, MLP, CNN,
LSTM/GRU, memory), elementwise as a function-by-size grid of zerograd/torch ratios,
the loaded ratios beside the idle ones, and the book steps against the original. Paste
the output over the tables of the same names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SECTIONS = (
    ("overhead", "Per-op overhead"),
    ("mlp", "MLP"),
    ("cnn", "CNN"),
    ("lstm", "LSTM and GRU"),
    ("memory", "Memory"),
)


def _num(value) -> str:
    if value is None:
        return "–"
    digits = 3 if abs(value) < 10 else (2 if abs(value) < 100 else 1)
    return f"{value:.{digits}f}"


def _ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown(head: list, lines: list) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def header(h: dict) -> str:
    load = h.get("load_average_start")
    end = h.get("load_average_end")
    parts = [
        f"revision {h.get('zerograd_revision', '?')}", f"{h.get('cpu', '?')}",
        f"{h.get('usable_cores', '?')} cores, {h.get('threads', '?')} threads",
        f"Python {h.get('python', '?')}", f"NumPy {h.get('numpy', '?')} "
        f"({h.get('numpy_blas', '?')})", f"PyTorch {h.get('torch', '?')}",
        f"{h.get('rounds', '?')} rounds" + (" (quick)" if h.get("quick") else ""),
        f"clock {h.get('clock', 'wall')}",
    ]
    if load and end:
        parts.append(f"load average {load[0]:.1f} at the start, {end[0]:.1f} at the end")
    return "; ".join(parts) + "."


def workload_table(rows: list) -> str:
    head = ["case", "metric", "unit", "malloc", "zerograd", "torch", "numpy", "zg/torch",
            "numpy/torch"]
    lines = [(
        r["case"], r["metric"], r["unit"], r["malloc"], _num(r["median"]["zerograd"]),
        _num(r["median"]["torch"]), _num(r["median"]["numpy"]), _ratio(r["zerograd/torch"]),
        _ratio(r["numpy/torch"]),
    ) for r in rows if not r.get("load")]
    return markdown(head, lines)


def elementwise_grid(rows: list) -> str:
    """Functions down, sizes across, zerograd/torch in each cell."""
    sizes, grid = [], {}
    for r in rows:
        if r.get("load") or r["workload"] != "elementwise":
            continue
        op, size = r["case"].split()
        if size not in sizes:
            sizes.append(size)
        grid.setdefault(op, {})[size] = r["zerograd/torch"]
    lines = [[op] + [_ratio(cells.get(size)) for size in sizes] for op, cells in grid.items()]
    return markdown(["function"] + [f"{s} elements" for s in sizes], lines)


def load_table(pairs: list) -> str:
    head = ["workload", "case", "metric", "malloc", "busy", "zg/torch idle",
            "zg/torch loaded", "worse by", "zerograd slower", "torch slower",
            "numpy slower"]
    lines = [(
        p["workload"], p["case"], p["metric"], p["malloc"], p["load"],
        _ratio(p["idle zg/torch"]), _ratio(p["loaded zg/torch"]), _ratio(p["worse by"]),
        _ratio(p["zerograd slowdown"]), _ratio(p["torch slowdown"]),
        _ratio(p["numpy slowdown"]),
    ) for p in pairs]
    return markdown(head, lines)


def steps_table(payload: dict) -> str:
    loads = sorted({r["load"] for r in payload["rows"]})
    by_step: dict = {}
    for r in payload["rows"]:
        by_step.setdefault(r["step"], {})[r["load"]] = r
    head = ["step"]
    for load in loads:
        tag = "idle" if load == 0 else f"{load} busy"
        head += [f"zerograd s ({tag})", f"original s ({tag})", f"zg/original ({tag})",
                 "CPU time ratio"]
    lines = []
    for step, per_load in sorted(by_step.items()):
        line = [step]
        for load in loads:
            r = per_load.get(load, {})
            zg, orig = r.get("zerograd") or {}, r.get("original") or {}
            line += [_num(zg.get("wall")), _num(orig.get("wall")), _ratio(r.get("ratio")),
                     _ratio(r.get("cpu ratio"))]
        lines.append(line)
    return markdown(head, lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_json", nargs="?", help="what run.py --json wrote")
    parser.add_argument("--steps", help="what book_steps.py --json wrote")
    args = parser.parse_args(argv)
    if not args.run_json and not args.steps:
        parser.error("give run.py's JSON, book_steps.py's (--steps), or both")
    out = []
    if args.run_json:
        payload = json.loads(Path(args.run_json).read_text())
        rows = payload["rows"]
        out += [header(payload["header"]), ""]
        for name, title in SECTIONS:
            these = [r for r in rows if r["workload"] == name]
            if these:
                out += [f"### {title}", "", workload_table(these), ""]
        if any(r["workload"] == "elementwise" for r in rows):
            out += ["### Elementwise (zerograd / torch)", "", elementwise_grid(rows), ""]
        if payload.get("under_load"):
            out += ["### Under load", "", load_table(payload["under_load"]), ""]
    if args.steps:
        steps = json.loads(Path(args.steps).read_text())
        out += ["### Book steps (wall seconds of a fresh process)", "", steps_table(steps), ""]
    print("\n".join(out).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
