"""Data-parallel training on this machine: samples per second at 1, 2 and 4 ranks.

    python benchmarks/distributed.py [--ranks 1,2,4] [--only mlp,cnn] [--steps 40]
                                     [--json out.json]
    python benchmarks/distributed.py --report out.json    # the tables of a saved run

Trains the examples' models on the bundled MNIST digits (``MLP((1000, 1000, 10))`` of
``examples/mnist_mlp.py``, batch 100; the ``CNN`` of ``examples/mnist_cnn.py``, batch
32) with Adam under ``zerograd.distributed``, each job size in its own ``mpiexec``.
The global batch stays the same at every job size (each rank takes ``batch / ranks``
of it), as in the examples, so the figures are strong scaling. Each rank gets the BLAS
threads ``init()`` gives it (the machine's cores shared out); the one-rank row also
runs with one thread.

For each run it reports, from the timed steps (after 3 warm-up steps):

- samples per second (global batch x steps / wall time, between two barriers);
- the time of ``allreduce_grads`` per step (packing, the 16-byte layout check, the
  Allreduce, unpacking, and any wait for a slower rank) and its share of the step;
- a bare ``Allreduce`` of the gradients' size (float32, already packed), after a
  barrier: what the network itself costs.

Then it predicts the step time on N machines from the one-rank step time and the
model's size, with the ring allreduce's cost ``2 (N - 1) / N * bytes / bandwidth +
2 (N - 1) * latency`` for two networks (see docs/distributed.md).

The machine may be shared: run it on a quiet one before trusting the figures. Needs
mpi4py and an ``mpiexec`` (``pip install 'zerograd[mpi]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MARKER = "DISTRIBUTED-BENCH "
GLOBAL_BATCH = {"mlp": 100, "cnn": 32}
NETWORKS = {  # name: (bandwidth in bytes/s, latency of one message in s)
    "10 Gb/s Ethernet": (1.25e9, 25e-6),
    "100 Gb/s InfiniBand": (12.5e9, 2e-6),
}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "GOTO_NUM_THREADS", "BLIS_NUM_THREADS")


# =========================================================================================
# One rank
# =========================================================================================
def build(workload: str):
    """(model, training set) as the example builds them."""
    sys.path.insert(0, str(REPO / "examples"))
    import zerograd.functions as F
    from zerograd.datasets import MNISTSubset
    from zerograd.models import MLP
    from zerograd.transforms import Compose, Normalize, ToFloat

    if workload == "mlp":
        return MLP((1000, 1000, 10), activation=F.relu), MNISTSubset(train=True)
    from mnist_cnn import CNN

    image = Compose([ToFloat(), Normalize(0.0, 255.0)])
    return CNN(16), MNISTSubset(train=True, transform=image)


def worker(workload: str, steps: int) -> None:
    import numpy as np

    import zerograd.functions as F
    from zerograd import distributed, optimizers, threads
    from zerograd.dataloaders import DataLoader

    comm = distributed.init()
    comm.seed(0)
    model, train_set = build(workload)
    batch = GLOBAL_BATCH[workload] // comm.size
    loader = DataLoader(distributed.scatter_dataset(train_set, comm, seed=0), batch, seed=0)
    optimizer = distributed.DistributedOptimizer(optimizers.Adam().setup(model), comm)

    def batches():
        while True:
            yield from loader

    stream = batches()
    reduce_time = 0.0

    def step():
        nonlocal reduce_time
        x, t = next(stream)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        start = time.perf_counter()
        optimizer.allreduce_grads()
        reduce_time += time.perf_counter() - start
        optimizer.optimizer.update()

    for _ in range(3):  # creates the weights (and broadcasts them), warms the caches
        step()
    reduce_time = 0.0
    comm.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    comm.barrier()
    wall = time.perf_counter() - start

    # The bare Allreduce of a gradient-sized float32 buffer, ranks in step.
    n_params = sum(p.data.size for p in model.params())
    buf = np.ones(n_params, dtype=np.float32)
    repeats = 20
    comm.barrier()
    bare = time.perf_counter()
    for _ in range(repeats):
        comm._allreduce_buffer(buf)
    bare = (time.perf_counter() - bare) / repeats
    bare = comm.allreduce(bare, op="max")
    reduce_step = comm.allreduce(reduce_time / steps) / comm.size
    if comm.rank == 0:
        print(MARKER + json.dumps({
            "workload": workload, "ranks": comm.size, "steps": steps,
            "global_batch": batch * comm.size, "params": int(n_params),
            "blas_threads": threads.get_num_threads(),
            "samples_per_s": batch * comm.size * steps / wall,
            "step_ms": 1e3 * wall / steps,
            "allreduce_step_ms": 1e3 * reduce_step,
            "bare_allreduce_ms": 1e3 * bare,
        }), flush=True)


# =========================================================================================
# The launcher
# =========================================================================================
def launch(workload: str, ranks: int, steps: int, threads: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"),
                                                      env.get("PYTHONPATH")]))
    env["ZEROGRAD_CPU_ONLY"] = "1"
    command = [shutil.which("mpiexec"), "-n", str(ranks), sys.executable, __file__,
               "--worker", workload, "--steps", str(steps)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        proc.terminate()  # hydra ends the ranks it started
        stdout, stderr = proc.communicate(timeout=30)
        raise RuntimeError(f"{workload} on {ranks} ranks did not finish in 30 min") from None
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{workload} on {ranks} ranks failed:\n{stdout}\n{stderr}")
    return json.loads(lines[-1][len(MARKER):])


def ring_allreduce_s(nbytes: float, machines: int, bandwidth: float, latency: float) -> float:
    """Seconds for a bandwidth-optimal ring allreduce of ``nbytes`` over ``machines``:
    a reduce-scatter and an all-gather, each 2 (N - 1) / 2 steps of nbytes / N."""
    if machines == 1:
        return 0.0
    return (2 * (machines - 1) / machines * nbytes / bandwidth
            + 2 * (machines - 1) * latency)


def report(rows: list[dict]) -> None:
    print(f"{'workload':8} {'ranks':>5} {'BLAS thr':>8} {'samples/s':>10} {'speed-up':>8} "
          f"{'step ms':>8} {'allreduce ms':>12} {'share':>6} {'bare ms':>8}")
    # The base of the speed-ups: the faster one-rank run (with all cores for BLAS, or
    # with one thread: on a busy machine, threads waiting for a core can be slower).
    base = {}
    for row in rows:
        if row["ranks"] == 1:
            base[row["workload"]] = max(base.get(row["workload"], 0), row["samples_per_s"])
    for row in rows:
        key = row["workload"]
        print(f"{row['workload']:8} {row['ranks']:5d} {row['blas_threads'] or '?':>8} "
              f"{row['samples_per_s']:10.0f} {row['samples_per_s'] / base[key]:8.2f} "
              f"{row['step_ms']:8.1f} {row['allreduce_step_ms']:12.2f} "
              f"{row['allreduce_step_ms'] / row['step_ms']:6.1%} "
              f"{row['bare_allreduce_ms']:8.2f}")
    print("\nPredicted for N machines like this one (one rank each), from the faster "
          "one-rank step time\nand the ring allreduce of the float32 gradients; "
          "strong scaling keeps the global batch, weak scaling\nkeeps each machine's "
          "batch (the global batch grows N times). Speed-up in samples per second:")
    machines = (2, 4, 8, 16, 64)
    print(f"{'workload':8} {'network':22} {'scaling':7} "
          + " ".join(f"{'N=' + str(n):>7}" for n in machines))
    for row in rows:
        if row["ranks"] != 1 or row is not _fastest_alone(rows, row["workload"]):
            continue
        step = row["step_ms"] / 1e3
        nbytes = 4 * row["params"]
        for network, (bandwidth, latency) in NETWORKS.items():
            strong = [step / (step / n + ring_allreduce_s(nbytes, n, bandwidth, latency))
                      for n in machines]
            weak = [n * step / (step + ring_allreduce_s(nbytes, n, bandwidth, latency))
                    for n in machines]
            for name, speedups in (("strong", strong), ("weak", weak)):
                print(f"{row['workload']:8} {network:22} {name:7} "
                      + " ".join(f"{s:7.2f}" for s in speedups))


def _fastest_alone(rows: list[dict], workload: str) -> dict:
    alone = [r for r in rows if r["workload"] == workload and r["ranks"] == 1]
    return min(alone, key=lambda r: r["step_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2,4", help="job sizes (default 1,2,4)")
    parser.add_argument("--only", default="mlp,cnn", help="workloads (default mlp,cnn)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--report", metavar="JSON", help="print the tables of a saved run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    if args.report:
        report(json.loads(Path(args.report).read_text()))
        return
    if shutil.which("mpiexec") is None:
        sys.exit("no mpiexec on PATH: pip install 'zerograd[mpi]' (mpi4py and MPICH)")
    rows = []
    for workload in args.only.split(","):
        if workload not in GLOBAL_BATCH:
            sys.exit(f"unknown workload {workload!r}; choose from {sorted(GLOBAL_BATCH)}")
        for ranks in map(int, args.ranks.split(",")):
            rows.append(launch(workload, ranks, args.steps, None))
            print(f"  {workload} on {ranks} rank(s): {rows[-1]['samples_per_s']:.0f} "
                  "samples/s", file=sys.stderr)
            if ranks == 1:  # also one rank on one thread, for reference
                rows.append(launch(workload, 1, args.steps, 1))
    print(f"zerograd.distributed on {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
