"""zerograd.distributed on real ranks: ``mpiexec -n 2`` and ``-n 3`` running worker.py.

One launch per job size runs the worker's whole suite (a few seconds); the tests below
read what each rank wrote and compare it with the same script run without mpiexec.
"""

from __future__ import annotations

import numpy as np
import pytest

TRAINED = [f"{name}/{dtype}" for name in ("sgd", "momentum", "adam")
           for dtype in ("float64", "float32")]
TOLERANCE = {"float64": 1e-6, "float32": 1e-5}


@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def job(request, tmp_path_factory, mpi_launch):
    """(size, weighted, each rank's results). Three ranks take uneven shares of each
    global batch (4 + 3 + 3) and weight their update by it; two take 6 + 6."""
    size = request.param
    weighted = size == 3
    # Two ranks get the default BLAS threads (no variable set); three keep the user's.
    env = ({"OPENBLAS_NUM_THREADS": None, "OMP_NUM_THREADS": None, "MKL_NUM_THREADS": None,
            "GOTO_NUM_THREADS": None, "BLIS_NUM_THREADS": None}
           if size == 2 else {"OPENBLAS_NUM_THREADS": "2"})
    out = tmp_path_factory.mktemp(f"ranks{size}")
    run = mpi_launch(size, out, "suite", *(["--weighted"] if weighted else []), env=env)
    return size, weighted, run.results(size)


def keys(results: dict, prefix: str) -> list[str]:
    found = [k for k in results if k.startswith(prefix + "/")]
    assert found, f"nothing under {prefix!r}"
    return found


def test_the_job_has_the_ranks_asked_for(job):
    size, _, ranks = job
    assert [int(r["size"]) for r in ranks] == [size] * size
    # One machine: the local ranks are the ranks.
    assert sorted(tuple(r["local"]) for r in ranks) == [(i, size) for i in range(size)]


@pytest.mark.parametrize("case", TRAINED)
def test_every_rank_ends_with_the_same_parameters(job, case):
    _, _, ranks = job
    for key in keys(ranks[0], case):
        for r, result in enumerate(ranks[1:], 1):
            np.testing.assert_array_equal(result[key], ranks[0][key],
                                          err_msg=f"{key}: rank {r} differs from rank 0")


@pytest.mark.parametrize("case", TRAINED)
def test_training_equals_one_process_over_the_same_global_batches(job, reference, case):
    # The ranks start from different seeds; the broadcast gives them rank 0's weights,
    # which is what the one-process run (rank 0 of a world of one) starts from.
    _, weighted, ranks = job
    expected = reference[weighted]
    tolerance = TOLERANCE[case.split("/")[1]]
    for key in keys(expected, case):
        if key.endswith("/t"):
            assert int(ranks[0][key]) == int(expected[key]) == 4
            continue
        np.testing.assert_allclose(ranks[0][key], expected[key], rtol=0, atol=tolerance,
                                   err_msg=key)
        assert not np.array_equal(ranks[0][key], 0 * ranks[0][key]) or key.endswith(".b")


def test_lazily_sized_layers_start_from_rank_0(job, reference):
    _, weighted, ranks = job
    for key in keys(reference[weighted], "lazy"):
        np.testing.assert_allclose(ranks[0][key], reference[weighted][key], atol=1e-6)
    # Created only at the first update, with different seeds: they still agree.
    for key in keys(ranks[0], "lazy_late"):
        for result in ranks[1:]:
            np.testing.assert_array_equal(result[key], ranks[0][key], err_msg=key)


def test_batch_norm_and_dropout_train_and_statistics_agree(job, reference):
    size, weighted, ranks = job
    # Dropout masks differ between ranks; rank 0's are a single process's.
    masks = [r["dropout_mask"] for r in ranks]
    assert all(not np.array_equal(masks[0], m) for m in masks[1:])
    np.testing.assert_array_equal(masks[0], reference[weighted]["dropout_mask"])
    # Parameters, running statistics and test-mode outputs agree on every rank.
    for key in keys(ranks[0], "bn/final"):
        assert np.isfinite(ranks[0][key]).all(), key
        for result in ranks[1:]:
            np.testing.assert_array_equal(result[key], ranks[0][key], err_msg=key)
    assert not np.allclose(ranks[0]["bn/final/bn.avg_mean"], 0)  # it did train
    # After one step the running mean is that of the whole global batch, as in one
    # process (before dropout, so the masks do not enter).
    np.testing.assert_allclose(ranks[0]["bn/step1/avg_mean"],
                               reference[weighted]["bn/step1/avg_mean"], atol=1e-10)


def test_a_gradient_missing_on_some_ranks_counts_as_zero(job):
    size, _, ranks = job
    for key in keys(ranks[0], "missing/avg"):
        name = key.split("/")[-1]
        local = [r[f"missing/local/{name}"] for r in ranks]
        present = [not np.isnan(g).all() for g in local]
        averaged = [r[key] for r in ranks]
        for a in averaged[1:]:
            np.testing.assert_array_equal(a, averaged[0], err_msg=key)
        if not any(present):  # head c: used nowhere, so still no gradient anywhere
            assert np.isnan(averaged[0]).all(), key
            continue
        expected = sum(g for g, p in zip(local, present) if p) / size
        np.testing.assert_allclose(averaged[0], expected, rtol=1e-12, atol=1e-15,
                                   err_msg=key)
    assert [not np.isnan(r["missing/local/b.W"]).all() for r in ranks] == \
        [False] * (size - 1) + [True]
    for key in keys(ranks[0], "missing/final"):
        for result in ranks[1:]:
            np.testing.assert_array_equal(result[key], ranks[0][key], err_msg=key)


def test_scatter_dataset_splits_an_agreed_permutation(job):
    size, _, ranks = job
    n = 11
    shards = {mode: [r[f"scatter/{mode}/data"] for r in ranks]
              for mode in ("pad", "drop", "keep")}
    for mode, parts in shards.items():
        for r, part in enumerate(parts):  # labels travel with their samples
            np.testing.assert_array_equal(ranks[r][f"scatter/{mode}/label"], 2 * part)
    assert [len(p) for p in shards["pad"]] == [-(-n // size)] * size
    assert set(np.concatenate(shards["pad"])) == set(range(n))
    assert [len(p) for p in shards["drop"]] == [n // size] * size
    assert len(set(np.concatenate(shards["drop"]))) == size * (n // size)
    keep = np.concatenate(shards["keep"])
    assert sorted(keep) == list(range(n))
    assert max(map(len, shards["keep"])) - min(map(len, shards["keep"])) <= 1
    assert list(keep) != list(range(n))  # shuffled
    # A plain sequence, unshuffled: contiguous slices, the last padded from the start.
    lists = [list(r["scatter/list"]) for r in ranks]
    per = -(-n // size)
    order = list(range(100, 100 + n)) + list(range(100, 100 + per * size - n))
    assert lists == [order[r * per:(r + 1) * per] for r in range(size)]


def test_metric_helpers_add_sums_and_counts(job):
    size, _, ranks = job
    counts = np.arange(1, size + 1)  # rank r saw r + 1 samples
    for result in ranks:
        np.testing.assert_allclose(result["average"], [10.0, 1.0])
        assert float(result["average_scalar"]) == pytest.approx(3.0)
        np.testing.assert_array_equal(result["allreduce"], np.arange(4.0) * counts.sum())
        assert int(result["allreduce_max"]) == size - 1
        assert int(result["bcast"]) == 42


def test_blas_threads_per_rank(job):
    size, _, ranks = job
    for result in ranks:
        if size == 2:  # nothing in the environment: the cores are shared out
            expected = max(1, int(result["cores"]) // size)
            assert int(result["comm_blas_threads"]) == expected
            assert int(result["blas_threads"]) in (expected, -1)  # -1: no BLAS found
        else:  # the user's OPENBLAS_NUM_THREADS=2 stands
            assert int(result["comm_blas_threads"]) == -1
            assert int(result["blas_threads"]) in (2, -1)


@pytest.mark.parametrize("mode, message", [
    ("raise", "planted failure on rank 1"),
    ("kill", "rank 1 fails"),
    ("mismatch", "different parameters"),
])
def test_a_failing_rank_ends_the_job(tmp_path, mpi_launch, mode, message):
    # rank 1 raises / kills itself with SIGKILL / builds another model, while rank 0
    # goes on into its next Allreduce: the job must end, non-zero, well within 30 s.
    run = mpi_launch(2, tmp_path, mode, timeout=60)
    assert run.returncode != 0
    assert run.seconds < 30, f"the job took {run.seconds:.1f} s to end"
    assert message in run.stdout + run.stderr
    if mode == "raise":
        assert ("uncaught ValueError on rank 1 of 2: planted failure on rank 1; aborting every "
                "rank") in run.stderr
    if mode == "mismatch":  # every rank raises; the first to abort ends the job
        assert "aborting every rank" in run.stderr
    assert not (tmp_path / "rank0.npz").exists()


# ---- mixed precision and resuming on real ranks -------------------------------------------
@pytest.fixture(scope="module")
def amp_job(tmp_path_factory, mpi_launch):
    out = tmp_path_factory.mktemp("amp")
    # Before the fix, rank 0 updated (entering an Allreduce) while rank 1 skipped: a hang
    # or ranks out of step, which the timeout turns into a failure.
    return mpi_launch(2, out, "amp", timeout=90).results(2)


def test_an_overflow_on_one_rank_skips_the_step_on_every_rank(amp_job):
    for result in amp_job:
        assert result["overflow/took"].tolist() == [False, True, True]
        assert float(result["overflow/scale"]) == 2.0**9  # halved once, everywhere
        # two good steps of 0.5 * 2 (2**10 unscaled by the halved scale 2**9)
        np.testing.assert_array_equal(result["overflow/w"], [-1.0] * 3)


def test_unscaled_gradients_stay_float32_through_the_average(amp_job):
    for result in amp_job:
        assert result["tiny/grad"].dtype == np.float32  # (float16 made them 0)
        np.testing.assert_allclose(result["tiny/grad"], 1.5e-8, rtol=1e-6)


def test_float16_training_with_a_loss_scaler_agrees_on_every_rank(amp_job):
    first, second = amp_job
    for key in keys(first, "train"):
        assert np.isfinite(first[key]).all(), key
        np.testing.assert_array_equal(second[key], first[key], err_msg=key)


@pytest.fixture(scope="module")
def resume_job(tmp_path_factory, mpi_launch):
    out = tmp_path_factory.mktemp("resume")
    return mpi_launch(2, out, "resume", timeout=90).results(2)


@pytest.mark.parametrize("case", ["adam", "sgd16"])
@pytest.mark.parametrize("way", ["every", "broadcast"])
def test_a_resumed_run_is_the_straight_run_on_every_rank(resume_job, case, way):
    # "broadcast": rank 0 alone loads the checkpoint, broadcast_state() gives every rank
    # its parameters and optimizer state (moments, step counts, float16 masters)
    straight = keys(resume_job[0], f"{case}/straight")
    assert any("/optimizer/param/" in k for k in straight)
    if case == "sgd16":
        assert any(k.endswith("/master") for k in straight)
    for r, result in enumerate(resume_job):
        for key in straight:
            resumed = key.replace("/straight/", f"/{way}/")
            np.testing.assert_array_equal(result[resumed], resume_job[0][key],
                                          err_msg=f"rank {r}: {resumed}")
