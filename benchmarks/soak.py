"""Soak run: long training, killed with SIGKILL again and again, resumed each time.

Trains the MNIST CNN of ``examples/mnist_cnn.py`` on the bundled digits for
``--steps`` steps (10,000 by default) with Adam, writing ``zerograd.save_checkpoint``
every ``--save-every`` steps (500). The training runs in a child process that this
script kills with ``kill -9`` ``--kills`` times (5 by default), half of the kills at
a random moment and half at a random instant right after the child announces a
checkpoint write (within the time a write takes, so that several land in the middle
of one); after each kill it starts the child again, which resumes from the last
checkpoint on disk, until all the steps are done. Meanwhile it watches the folder
every few milliseconds and keeps a copy of every version of the checkpoint it sees.

Then it reports:

- memory: each child's resident set size (RSS) every 100 steps, and its drift in MiB
  per 1,000 steps (a least-squares slope, after a warm-up), for every life of the
  interrupted run and for one uninterrupted run of all the steps;
- that every checkpoint version ever seen on disk loads (into a fresh model, optimizer
  and loader), and what a kill in the middle of a write left behind (temporary files);
- whether the final parameters equal those of the uninterrupted run (bit for bit, when
  resuming is exact).

    python benchmarks/soak.py                          # 10,000 steps, 5 kills (minutes)
    python benchmarks/soak.py --steps 2000 --kills 3   # quicker
    python benchmarks/soak.py --json soak.json --dir /tmp/soak

This is a script, not a unit test (``tests/test_soak.py`` runs a tiny one). Timings
and RSS taken on a busy machine are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHECKPOINT = "checkpoint.npz"
FINAL = "final.npz"
RSS_LOG = "rss.jsonl"
RSS_EVERY = 100  # steps between two RSS samples


# =========================================================================================
# The training child
# =========================================================================================
def build(channels: int, batch_size: int, seed: int):
    """The CNN of examples/mnist_cnn.py, Adam and a shuffling loader over the bundled
    training digits, all seeded: the same objects in every child and in the checks."""
    import zerograd
    from zerograd import optimizers
    from zerograd.dataloaders import DataLoader
    from zerograd.datasets import MNISTSubset
    from zerograd.transforms import Compose, Normalize, ToFloat

    sys.path.insert(0, str(EXAMPLES))
    from mnist_cnn import CNN  # noqa: E402  (the example's own model)

    zerograd.seed(seed)
    image = Compose([ToFloat(), Normalize(0.0, 255.0)])
    loader = DataLoader(MNISTSubset(train=True, transform=image), batch_size, seed=seed)
    model = CNN(channels)
    model(np.zeros((1, 1, 28, 28), dtype=np.float32))  # the weights exist from the start
    optimizer = optimizers.Adam().setup(model)
    return model, optimizer, loader


def _rss_bytes() -> int:
    """This process's resident set size now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args: argparse.Namespace) -> None:
    """Train from the checkpoint in ``args.dir`` (or from the start) to ``args.steps``,
    saving every ``args.save_every`` steps; announce each save on stdout."""
    import zerograd.functions as F
    from zerograd.checkpoint import load_checkpoint, save_checkpoint

    folder = Path(args.dir)
    model, optimizer, loader = build(args.channels, args.batch_size, args.seed)
    path = folder / CHECKPOINT
    step = 0
    if path.exists():
        step = load_checkpoint(path, model, optimizer, loaders={"train": loader})["iteration"]
    print(f"start {step} {os.getpid()}", flush=True)
    log = open(folder / RSS_LOG, "a")
    while step < args.steps:
        for x, t in loader:  # a resumed loader continues its epoch where it was saved
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            step += 1
            if step % RSS_EVERY == 0:
                log.write(json.dumps({"pid": os.getpid(), "step": step,
                                      "rss": _rss_bytes()}) + "\n")
                log.flush()
            if step % args.save_every == 0:
                print(f"saving {step}", flush=True)
                save_checkpoint(path, model, optimizer, loaders={"train": loader},
                                iteration=step)
                print(f"saved {step}", flush=True)
            if step >= args.steps:
                break
    model.save_weights(folder / FINAL)
    print(f"done {step}", flush=True)


# =========================================================================================
# The supervisor
# =========================================================================================
class Watcher(threading.Thread):
    """Polls ``folder`` every ``interval`` seconds: records every file name seen and
    copies every new version of the checkpoint into ``folder/seen``."""

    def __init__(self, folder: Path, interval: float = 0.005):
        super().__init__(daemon=True)
        self.folder, self.interval = folder, interval
        self.seen_dir = folder / "seen"
        self.seen_dir.mkdir(exist_ok=True)
        self.names: set[str] = set()
        self.versions: list[Path] = []
        self._last = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.poll()
            time.sleep(self.interval)
        self.poll()

    def poll(self) -> None:
        try:
            self.names.update(e.name for e in os.scandir(self.folder) if e.is_file())
            # Open first, then look: the opened file is one complete version (a save
            # replaces the name atomically), whatever happens to the name meanwhile.
            with open(self.folder / CHECKPOINT, "rb") as f:
                st = os.fstat(f.fileno())
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                if key == self._last:
                    return
                copy = self.seen_dir / f"version{len(self.versions):03d}.npz"
                with open(copy, "wb") as out:
                    shutil.copyfileobj(f, out)
        except FileNotFoundError:
            return
        self._last = key
        self.versions.append(copy)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put((time.monotonic(), line.split()))
    lines.put((time.monotonic(), None))


def _child_command(args: argparse.Namespace, folder: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", "--dir", str(folder),
            "--steps", str(args.steps), "--save-every", str(args.save_every),
            "--channels", str(args.channels), "--batch-size", str(args.batch_size),
            "--seed", str(args.seed)]


def run_lives(args: argparse.Namespace, folder: Path, kills: int, rng: random.Random,
              say=print) -> tuple[list[dict], list[float]]:
    """Start the child until it finishes all the steps, killing it ``kills`` times;
    return one record per life."""
    lives = []
    save_times: list[float] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    while True:
        mode = None
        if kills > 0:
            mode = args.kill_mode if args.kill_mode != "mixed" else rng.choice(["time", "save"])
        started = time.monotonic()
        proc = subprocess.Popen(_child_command(args, folder), stdout=subprocess.PIPE,
                                text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
        life = {"mode": mode, "start_step": None, "saves": 0, "killed": False,
                "kill_note": ""}
        kill_at = started + rng.uniform(0.5, args.max_wait) if mode == "time" else None
        saves_to_pass = rng.randint(0, 2) if mode == "save" else None
        saving_since = None
        deadline = started + args.life_timeout
        done = False
        while True:
            now = time.monotonic()
            if now > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"soak: a child ran longer than {args.life_timeout} s")
            try:
                when, words = lines.get(timeout=0.002)
            except queue.Empty:
                words = ()
            if words is None:  # the child's stdout closed: it ended
                break
            if words:
                if words[0] == "start":
                    life["start_step"] = int(words[1])
                elif words[0] == "saving":
                    saving_since = when
                    if saves_to_pass is not None:
                        if saves_to_pass == 0:
                            # within the time a write takes (1.5x the median so far)
                            typical = statistics.median(save_times) if save_times else 0.05
                            kill_at = when + rng.uniform(0, 1.5 * typical)
                            life["kill_note"] = f"{kill_at - when:.3f} s after 'saving " \
                                                f"{words[1]}'"
                            saves_to_pass = None
                        else:
                            saves_to_pass -= 1
                elif words[0] == "saved":
                    life["saves"] += 1
                    if saving_since is not None:
                        save_times.append(when - saving_since)
                    saving_since = None
                elif words[0] == "done":
                    done = True
            if kill_at is not None and time.monotonic() >= kill_at and not done:
                proc.send_signal(signal.SIGKILL)
                life["killed"] = True
                if saving_since is not None:
                    life["kill_note"] += " (during the write)"
                kill_at = None
        proc.wait(timeout=60)
        life["seconds"] = time.monotonic() - started
        life["returncode"] = proc.returncode
        lives.append(life)
        if life["killed"]:
            kills -= 1
        say(f"  life {len(lives)}: from step {life['start_step']}, {life['saves']} saves, "
            + (f"killed ({life['mode']}{', ' + life['kill_note'] if life['kill_note'] else ''})"
               if life["killed"] else f"ended with status {proc.returncode}")
            + f", {life['seconds']:.1f} s")
        if done and proc.returncode == 0:
            break
        if not life["killed"]:
            raise RuntimeError(f"soak: the child failed with status {proc.returncode}")
    return lives, save_times


def rss_drift(folder: Path, warmup: int) -> list[dict]:
    """Per child process: RSS first and last (MiB), and the least-squares slope in MiB
    per 1,000 steps over the samples after ``warmup`` steps of its life."""
    samples: dict[int, list] = {}
    with open(folder / RSS_LOG) as f:
        for line in f:
            record = json.loads(line)
            samples.setdefault(record["pid"], []).append((record["step"], record["rss"]))
    drifts = []
    for pid, points in samples.items():
        first_step = points[0][0]
        kept = [(s, r) for s, r in points if s - first_step >= warmup]
        slope = None
        if len(kept) >= 3:
            steps, rss = np.array(kept, dtype=np.float64).T
            slope = float(np.polyfit(steps, rss / 2**20, 1)[0] * 1000)
        drifts.append({"pid": pid, "from": first_step, "to": points[-1][0],
                       "rss_first_mib": points[0][1] / 2**20,
                       "rss_last_mib": points[-1][1] / 2**20,
                       "drift_mib_per_1000": slope})
    return drifts


def check_versions(args: argparse.Namespace, versions: list[Path]) -> list[str]:
    """Load every saved version into fresh objects; the failures, as messages."""
    from zerograd.checkpoint import load_checkpoint

    failures = []
    for path in versions:
        model, optimizer, loader = build(args.channels, args.batch_size, args.seed)
        try:
            load_checkpoint(path, model, optimizer, loaders={"train": loader})
        except Exception as e:  # any failure is the finding
            failures.append(f"{path.name}: {type(e).__name__}: {e}")
    return failures


def compare(a: Path, b: Path) -> tuple[bool, float]:
    with np.load(a) as fa, np.load(b) as fb:
        if sorted(fa.files) != sorted(fb.files):
            return False, float("inf")
        same = all(np.array_equal(fa[k], fb[k]) for k in fa.files)
        diff = max(float(np.max(np.abs(fa[k].astype(np.float64) - fb[k]))) for k in fa.files)
    return same, diff


def _table(drifts: list[dict]) -> str:
    rows = ["  steps            RSS first   RSS last   drift MiB/1000 steps"]
    for d in drifts:
        slope = "-" if d["drift_mib_per_1000"] is None else f"{d['drift_mib_per_1000']:+.3f}"
        rows.append(f"  {d['from']:>6} - {d['to']:<6}  {d['rss_first_mib']:8.1f}   "
                    f"{d['rss_last_mib']:8.1f}   {slope:>10}")
    return "\n".join(rows)


def soak(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="zerograd-soak-"))
    interrupted, straight = base / "interrupted", base / "straight"
    for folder in (interrupted, straight):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    print(f"soak: {args.steps} steps of the MNIST CNN (channels {args.channels}, batch "
          f"{args.batch_size}), a checkpoint every {args.save_every} steps, {args.kills} "
          f"kill -9 ({args.kill_mode}); in {base}")
    start = time.monotonic()
    watcher = Watcher(interrupted)
    watcher.start()
    try:
        lives, save_times = run_lives(args, interrupted, args.kills, rng)
    finally:
        watcher.stop()
    interrupted_s = time.monotonic() - start
    report = {"steps": args.steps, "kills": sum(life["killed"] for life in lives),
              "lives": lives, "seconds_interrupted": interrupted_s,
              "save_seconds_median": statistics.median(save_times) if save_times else None}

    temps = sorted(n for n in watcher.names if n.endswith(".tmp"))
    left = sorted(n for n in os.listdir(interrupted) if n.endswith(".tmp"))
    failures = check_versions(args, watcher.versions)
    report.update(versions_seen=len(watcher.versions), versions_unloadable=failures,
                  temporary_files_seen=len(temps), temporary_files_left=left)
    report["rss_interrupted"] = rss_drift(interrupted, args.warmup)

    if args.reference:
        print("uninterrupted reference run ...")
        start = time.monotonic()
        run_lives(args, straight, 0, rng, say=lambda *a: None)
        report["seconds_straight"] = time.monotonic() - start
        same, diff = compare(interrupted / FINAL, straight / FINAL)
        report.update(bit_identical=same, max_abs_difference=diff)
        report["rss_straight"] = rss_drift(straight, args.warmup)

    print(f"\nkills: {report['kills']} ({sum(bool(life['kill_note']) for life in lives)} "
          f"near a save, {sum('during the write' in life['kill_note'] for life in lives)} "
          f"during a write); the median write took {report['save_seconds_median'] or 0:.3f} s")
    print(f"checkpoint versions seen on disk: {len(watcher.versions)}, unloadable: "
          f"{len(failures)}")
    for failure in failures:
        print(f"  {failure}")
    print(f"temporary files seen: {len(temps)}; left behind at the end: {len(left)}"
          + (f" ({', '.join(left)})" if left else ""))
    print("RSS of the interrupted run, per life:")
    print(_table(report["rss_interrupted"]))
    if args.reference:
        print("RSS of the uninterrupted run:")
        print(_table(report["rss_straight"]))
        print(f"final parameters: {'bit-identical' if report['bit_identical'] else 'DIFFER'}"
              f" to the uninterrupted run's (largest difference {report['max_abs_difference']:g})")
        print(f"time: {interrupted_s:.0f} s interrupted, {report['seconds_straight']:.0f} s "
              "straight (busy machines make this indicative)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    if not args.keep and not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10_000, help="training steps (10,000)")
    p.add_argument("--kills", type=int, default=5, help="kill -9 this many times (5)")
    p.add_argument("--save-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--kill-mode", choices=("mixed", "time", "save"), default="mixed",
                   help="kill at random times, right after a save starts, or both (mixed)")
    p.add_argument("--max-wait", type=float, default=20.0,
                   help="a random-time kill comes within this many seconds (20)")
    p.add_argument("--warmup", type=int, default=500,
                   help="steps of each life left out of its RSS drift (500)")
    p.add_argument("--channels", type=int, default=16, help="the CNN's width (16)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--life-timeout", type=float, default=1800,
                   help="fail when one child runs longer than this (s)")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the uninterrupted run (no comparison of the parameters)")
    p.add_argument("--dir", help="work folder (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--json", help="also write the report to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("steps", "save_every", "channels", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.kills < 0:
        p.error("--kills must be at least 0")
    if args.child:
        child(args)
        return 0
    report = soak(args)
    ok = not report["versions_unloadable"] and report.get("bit_identical", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
