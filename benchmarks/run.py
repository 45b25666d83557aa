"""zerograd's benchmark suite: zerograd, PyTorch (CPU) and the bare-NumPy floor, side by side.

    python benchmarks/run.py [--quick] [--json out.json] [--only NAME[,NAME]] [--threads N]
                             [--rounds N] [--clock wall|cpu] [--malloc auto|default|tuned|both]
                             [--load N] [--load-kind python|numpy]

Workloads (``--only`` names): ``overhead`` (µs per op of a 1,000-op chain on one
element), ``mlp`` (s per epoch over 5k MNIST digits), ``cnn`` (ms per training step),
``lstm`` (ms per 30-step truncated-BPTT chunk, LSTM and GRU), ``memory`` (MiB of
resident memory), ``elementwise`` (µs per op, every elementwise function and reduction
from 1 to 10^7 elements).

Under load. ``--load N`` measures every workload twice in each round, idle and with N
busy processes running beside it (started before the framework's process, stopped
after it), and prints the two zerograd/torch ratios side by side with how much worse
the loaded one is. The busy processes are pure-Python loops by default (``--load-kind
python``): one CPU-bound thread each, like another interpreter or a test run on the
machine, touching no memory to speak of, so that the figure shows how a framework's
threads fare when they must share the cores, not memory-bandwidth contention (which
hits every framework alike). ``--load-kind numpy`` makes them loop over elementwise
NumPy operations on 4 MiB arrays (one BLAS thread each) instead: cache and memory
traffic as well. ``memory`` is measured idle only.

How it measures: every figure comes from a fresh subprocess per workload and framework
(so one framework's allocator state never helps or hurts another), and the frameworks
take turns within each round, in a rotating order. A figure is the median over the
rounds (5 by default; 1 with ``--quick``) of each process's own median over its steps.
All frameworks get the same thread count: the BLAS through ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``, PyTorch through ``torch.set_num_threads``.
The allocator setting is the same for every framework of a row: ``default`` is glibc as
it comes; ``tuned`` raises its mmap and trim thresholds (PERF-NOTES finding 5), so that
freed blocks stay in the process. The CNN is measured under both.

The table shows medians, and the ratios zerograd/torch and numpy/torch (below 1 is
faster than PyTorch). A ``~`` after a figure marks a spread over the rounds above 25%
of the median: the machine was busy, rerun before trusting it. On a shared machine,
``--threads 1 --clock cpu`` gives the steadiest comparison (CPU time of a one-thread
process does not count the time others hold the core).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS_DIR = HERE / "workloads"
# The workload modules live in their own folder, imported by their short names.
sys.path.insert(0, str(WORKLOADS_DIR))

import cnn  # noqa: E402
import elementwise  # noqa: E402
import lstm  # noqa: E402
import memory  # noqa: E402
import mlp  # noqa: E402
import overhead  # noqa: E402
from worker import MARKER  # noqa: E402

WORKLOADS = {m.NAME: m for m in (overhead, mlp, cnn, lstm, memory, elementwise)}
MAIN_FRAMEWORKS = ("zerograd", "torch", "numpy")

# glibc keeps blocks below the mmap threshold in its heap, and returns the top of the
# heap to the OS only beyond the trim threshold; 32 MiB is the largest mmap threshold
# glibc accepts on 64-bit systems. "default" is glibc's own behaviour for every
# framework (zerograd's tuning at import, zerograd.allocator, is switched off); "tuned"
# sets the same thresholds for every framework through glibc's environment variables
# (what `import zerograd` does for a zerograd process).
MALLOC_ENV = {
    "default": {"ZEROGRAD_TUNE_MALLOC": "0"},
    "tuned": {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)},
}
NOISY_SPREAD = 0.25

# The busy processes of --load. Each stops by itself once its parent (this runner) is
# gone, so that a runner killed hard leaves nothing spinning.
_SPIN = {
    "python": (
        "import os\nparent = os.getppid()\nwhile True:\n"
        "    for _ in range(2_000_000):\n        pass\n"
        "    if os.getppid() != parent:\n        break\n"
    ),
    "numpy": (
        "import os\nimport numpy as np\nparent = os.getppid()\n"
        "a = np.ones(2**20, np.float32)\nb = np.empty_like(a)\nwhile True:\n"
        "    for _ in range(200):\n        np.multiply(a, 1.0001, out=b)\n"
        "        np.add(b, 0.5, out=a)\n"
        "    if os.getppid() != parent:\n        break\n"
    ),
}


class Load:
    """``n`` busy processes, running for the duration of a ``with`` block."""

    def __init__(self, n: int, kind: str = "python"):
        self.n, self.kind, self.procs = n, kind, []

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", _SPIN[self.kind]], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        if self.n:
            time.sleep(0.5)  # running at full speed before the measurement starts
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait(timeout=30)
        self.procs = []
        return False


# ---- running one measurement -----------------------------------------------------------
def worker_env(threads: int, malloc: str, clock: str = "wall") -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "ZEROGRAD_TUNE_MALLOC"}
    env.pop("GLIBC_TUNABLES", None)
    env.update(MALLOC_ENV[malloc])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    # The count above is the most any framework uses; zerograd's load watcher (off by
    # default: it trades bit-identical reruns for throughput, zerograd.threads) adapts
    # below it while other processes keep the cores busy (PyTorch's MKL and OpenMP make
    # their own choices per operation).
    env.setdefault("ZEROGRAD_ADAPT_THREADS", "1")
    env["ZG_BENCH_THREADS"] = str(threads)
    env["ZG_BENCH_CLOCK"] = clock
    env["ZEROGRAD_CPU_ONLY"] = "1"  # this suite measures the CPU
    # Measure this checkout's zerograd, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), str(WORKLOADS_DIR)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


def run_worker(args: list[str], env: dict, timeout: float) -> dict:
    """Run worker.py with ``args`` in a fresh process; its parsed result (or an error)."""
    cmd = [sys.executable, str(WORKLOADS_DIR / "worker.py"), *args]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO)
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    return {"error": f"exit status {proc.returncode}: {proc.stderr.strip()[-2000:]}"}


# ---- the machine -----------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_header(threads: int) -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    header = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "threads": threads,
        "load_average_start": os.getloadavg(),
        "platform": platform.platform(),
    }
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        header["zerograd_revision"] = rev or "unknown"
    except (OSError, subprocess.SubprocessError):
        header["zerograd_revision"] = "unknown"
    header.update(run_worker(["--info"], worker_env(threads, "default"), 120))
    return header


# ---- planning and collecting -----------------------------------------------------------
# Workloads whose figures do not depend on the machine's load (measured idle only).
LOAD_INSENSITIVE = ("memory",)


def plan(names, frameworks, malloc_choice, load: int = 0):
    """The jobs of one round: (workload module, malloc setting, cases, frameworks, load)."""
    jobs = []
    for name in names:
        module = WORKLOADS[name]
        mallocs = getattr(module, "MALLOC_SETTINGS", ("default",))
        if malloc_choice != "auto":
            mallocs = ("default", "tuned") if malloc_choice == "both" else (malloc_choice,)
        fws = [fw for fw in module.FRAMEWORKS if fw.split("-")[0] in frameworks]
        loads = (0, load) if load and name not in LOAD_INSENSITIVE else (0,)
        for malloc in mallocs:
            for group in module.GROUPS:
                for n in loads:
                    jobs.append((module, malloc, group, fws, n))
    return jobs


def run_rounds(jobs, rounds: int, threads: int, quick: bool, clock: str, log,
               load_kind: str = "python"):
    """Run every job ``rounds`` times, frameworks interleaved; raw figures and notes.

    A job with a load runs each framework's process beside that many busy processes.
    """
    # (workload, case, metric, unit, malloc, load) -> {framework: [values]}
    figures: dict = {}
    notes: dict = {"skipped": {}, "errors": [], "data": set(), "malloc_env": {}, "seconds": {}}
    timeout = 300 if quick else 900
    for r in range(rounds):
        t0 = time.perf_counter()
        for module, malloc, group, fws, load in jobs:
            if r >= getattr(module, "MAX_ROUNDS", rounds):
                continue
            env = worker_env(threads, malloc, clock)
            shift = r % len(fws)
            for fw in fws[shift:] + fws[:shift]:  # rotate who goes first
                args = [module.NAME, fw, json.dumps(group)] + (["--quick"] if quick else [])
                where = f"{module.NAME}/{fw}/{malloc}" + (f"/load {load}" if load else "")
                t_job = time.perf_counter()
                with Load(load, load_kind):
                    result = run_worker(args, env, timeout)
                notes["seconds"][where] = (
                    notes["seconds"].get(where, 0.0) + time.perf_counter() - t_job
                )
                if "error" in result:
                    notes["errors"].append(f"{where}: {result['error']}")
                    log(f"  ERROR {where}: {result['error'].splitlines()[-1]}")
                    continue
                if result.get("data"):
                    notes["data"].add(result["data"])
                notes["malloc_env"][malloc] = result.get("malloc_env", {})
                for case, reason in result["skipped"].items():
                    notes["skipped"][(module.NAME, case, fw)] = reason
                for case, rows in result["cases"].items():
                    for row in rows:
                        key = (module.NAME, case, row["metric"], row["unit"], malloc, load)
                        figures.setdefault(key, {}).setdefault(fw, []).append(row["value"])
        log(f"round {r + 1}/{rounds} done in {time.perf_counter() - t0:.1f} s")
    return figures, notes


def summarize(figures: dict) -> list[dict]:
    """Medians, spreads and ratios per row, in workload/case order."""
    rows = []
    for (workload, case, metric, unit, malloc, load), per_fw in figures.items():
        med = {fw: statistics.median(v) for fw, v in per_fw.items()}
        spread = {
            fw: (max(v) - min(v)) / abs(statistics.median(v)) if statistics.median(v) else 0.0
            for fw, v in per_fw.items()
        }
        base = {
            "workload": workload,
            "case": case,
            "metric": metric,
            "unit": unit,
            "malloc": malloc,
            "load": load,
            "rounds": per_fw,
        }
        variants = [fw for fw in per_fw if fw not in MAIN_FRAMEWORKS]
        for torch_name in ["torch"] + variants:
            row = dict(base)
            row["case"] = case if torch_name == "torch" else f"{case} [{torch_name}]"
            row["median"] = {fw: med.get(fw) for fw in ("zerograd", "numpy")}
            row["median"]["torch"] = med.get(torch_name)
            row["spread"] = {fw: spread.get(fw) for fw in ("zerograd", "numpy")}
            row["spread"]["torch"] = spread.get(torch_name)
            row["torch_is"] = torch_name
            t = med.get(torch_name)
            for fw in ("zerograd", "numpy"):
                v = med.get(fw)
                row[f"{fw}/torch"] = v / t if v is not None and t else None
            rows.append(row)
    order = {name: i for i, name in enumerate(WORKLOADS)}
    rows.sort(key=lambda row: order[row["workload"]])  # stable: keeps case order
    return rows


# ---- printing --------------------------------------------------------------------------
def _num(value, spread) -> str:
    if value is None:
        return "-"
    digits = 3 if abs(value) < 10 else (2 if abs(value) < 100 else 1)
    text = f"{value:.{digits}f}"
    return text + ("~" if spread is not None and spread > NOISY_SPREAD else " ")


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _columns(head: tuple, lines: list, left: int) -> str:
    """Aligned text columns: the first ``left`` to the left, the rest to the right."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    out = []
    for i, line in enumerate([head] + lines):
        cells = [
            str(c).ljust(w) if j < left else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(line, widths))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_table(rows: list[dict]) -> str:
    loaded = any(row.get("load") for row in rows)
    head = ("workload", "case", "metric", "unit", "malloc") + (("load",) if loaded else ()) + (
        "zerograd", "torch", "numpy", "zg/torch", "np/torch")
    lines = []
    for row in rows:
        m, s = row["median"], row["spread"]
        lines.append((
            row["workload"], row["case"], row["metric"], row["unit"], row["malloc"],
            *((row.get("load", 0),) if loaded else ()),
            _num(m["zerograd"], s["zerograd"]), _num(m["torch"], s["torch"]),
            _num(m["numpy"], s["numpy"]), _ratio(row["zerograd/torch"]),
            _ratio(row["numpy/torch"]),
        ))
    return _columns(head, lines, 5)


def under_load(rows: list[dict]) -> list[dict]:
    """Each loaded row beside its idle twin: both zerograd/torch ratios, how much worse
    the loaded one is, and how much each framework slowed down."""
    idle = {(r["workload"], r["case"], r["metric"], r["malloc"]): r
            for r in rows if not r.get("load")}
    out = []
    for row in rows:
        if not row.get("load"):
            continue
        base = idle.get((row["workload"], row["case"], row["metric"], row["malloc"]))
        if base is None:
            continue
        pair = {
            "workload": row["workload"], "case": row["case"], "metric": row["metric"],
            "malloc": row["malloc"], "load": row["load"],
            "idle zg/torch": base["zerograd/torch"], "loaded zg/torch": row["zerograd/torch"],
        }
        a, b = pair["idle zg/torch"], pair["loaded zg/torch"]
        pair["worse by"] = b / a if a and b is not None else None
        for fw in ("zerograd", "torch", "numpy"):
            before, after = base["median"].get(fw), row["median"].get(fw)
            pair[f"{fw} slowdown"] = after / before if before and after is not None else None
        out.append(pair)
    return out


def format_under_load(pairs: list[dict]) -> str:
    head = ("workload", "case", "metric", "malloc", "load", "zg/torch idle",
            "zg/torch loaded", "worse by", "zerograd slower", "torch slower", "numpy slower")
    lines = [(
        p["workload"], p["case"], p["metric"], p["malloc"], p["load"],
        _ratio(p["idle zg/torch"]), _ratio(p["loaded zg/torch"]), _ratio(p["worse by"]),
        _ratio(p["zerograd slowdown"]), _ratio(p["torch slowdown"]),
        _ratio(p["numpy slowdown"]),
    ) for p in pairs]
    return _columns(head, lines, 4)


def format_header(h: dict) -> str:
    keys = [
        ("date", "date"), ("cpu", "cpu"), ("cores", "cores"), ("usable_cores", "usable cores"),
        ("threads", "threads"), ("load_average_start", "load avg at start"),
        ("load_average_end", "load avg at end"), ("python", "python"), ("glibc", "libc"),
        ("numpy", "numpy"), ("numpy_blas", "numpy BLAS"), ("torch", "torch"),
        ("torch_threads", "torch threads"), ("torch_blas", "torch BLAS"),
        ("zerograd", "zerograd"), ("zerograd_revision", "revision"), ("rounds", "rounds"),
        ("quick", "quick"), ("clock", "clock"), ("load", "busy processes"),
        ("load_kind", "busy loop"),
    ]
    lines = [f"{label:18s} {h[k]}" for k, label in keys if k in h]
    pools = h.get("threadpools")
    if isinstance(pools, list):
        for p in pools:
            lines.append(
                f"{'thread pool':18s} {p['internal_api']} {p['version']} "
                f"({p['num_threads']} threads)"
            )
    elif pools:
        lines.append(f"{'thread pools':18s} {pools}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Time zerograd against PyTorch (CPU) and a bare-NumPy floor.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps (<1 min)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--only", metavar="NAME", help=f"comma-separated workloads of: {', '.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(),
        help="BLAS and torch threads (default: all cores)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 5; 1 with --quick)")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall time, or the process's CPU time (steadier on a busy machine; use "
        "with --threads 1)",
    )
    parser.add_argument(
        "--frameworks", default=",".join(MAIN_FRAMEWORKS),
        help="comma-separated subset of zerograd,torch,numpy",
    )
    parser.add_argument(
        "--malloc", choices=("auto", "default", "tuned", "both"), default="auto",
        help="glibc allocator setting: auto = mlp, cnn and lstm under both, the rest default",
    )
    parser.add_argument(
        "--load", type=int, default=0, metavar="N",
        help="also measure every workload beside N busy processes (idle and loaded "
        "side by side)",
    )
    parser.add_argument(
        "--load-kind", choices=tuple(_SPIN), default="python",
        help="what the busy processes run: a pure-Python loop (default) or NumPy "
        "elementwise loops over 4 MiB arrays",
    )
    args = parser.parse_args(argv)
    if args.load < 0:
        parser.error(f"--load must be 0 or more, got {args.load}")
    names = list(WORKLOADS) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    frameworks = [s.strip() for s in args.frameworks.split(",")]
    rounds = args.rounds or (1 if args.quick else 5)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    header = machine_header(args.threads)
    header.update(rounds=rounds, quick=args.quick, clock=args.clock)
    if args.load:
        header.update(load=args.load, load_kind=args.load_kind)
    log(format_header(header) + "\n")
    jobs = plan(names, frameworks, args.malloc, args.load)
    figures, notes = run_rounds(jobs, rounds, args.threads, args.quick, args.clock, log,
                                args.load_kind)
    header["load_average_end"] = os.getloadavg()
    header["wall_seconds"] = round(time.perf_counter() - t0, 1)
    rows = summarize(figures)
    pairs = under_load(rows)

    print(format_header(header))
    print()
    print(format_table(rows))
    print()
    if pairs:
        print(f"under load ({args.load} busy {args.load_kind} processes beside each run):")
        print(format_under_load(pairs))
        print()
    for source in sorted(notes["data"]):
        print(f"data: {source}")
    for malloc, env in sorted(notes["malloc_env"].items()):
        print(f"malloc {malloc}: {env or 'glibc defaults'}")
    for (workload, case, fw), reason in sorted(notes["skipped"].items()):
        print(f"skipped: {workload} {case} {fw}: {reason}")
    for error in notes["errors"]:
        print(f"ERROR: {error}")
    print(f"({header['wall_seconds']} s; '~' = spread over rounds > {NOISY_SPREAD:.0%})")

    if args.json:
        payload = {
            "header": header,
            "rows": rows,
            "under_load": pairs,
            "data": sorted(notes["data"]),
            "malloc_env": notes["malloc_env"],
            "skipped": [
                {"workload": w, "case": c, "framework": f, "reason": r}
                for (w, c, f), r in sorted(notes["skipped"].items())
            ],
            "errors": notes["errors"],
            "worker_seconds": notes["seconds"],
        }
        Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 1 if notes["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
