"""The logs writer: JSON lines always, TensorBoard event files through tensorboardX."""

import json
import os
import sys

import numpy as np
import pytest

from zerograd import Parameter, Variable
from zerograd.logs import LogWriter, plot_log, read_log


def test_scalars_are_json_lines_readable_while_the_writer_is_open(tmp_path):
    writer = LogWriter(tmp_path, tensorboard=False)
    writer.add_scalar("loss/train", 0.5, 10)
    writer.add_scalar("loss/train", np.float32(0.25), 20)
    writer.add_scalar("acc", Variable(np.array(0.75)), 20)
    writer.add_scalar("acc", np.array([0.8]))  # step defaults to this tag's next: 21
    lines = (tmp_path / "log.jsonl").read_text().splitlines()  # nothing buffered
    records = [json.loads(line) for line in lines]
    assert [(r["tag"], r["step"], r["value"]) for r in records] == [
        ("loss/train", 10, 0.5), ("loss/train", 20, 0.25), ("acc", 20, 0.75), ("acc", 21, 0.8)]
    assert all(abs(r["time"] - records[0]["time"]) < 60 for r in records)
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.add_scalar("acc", 1.0, 30)


def test_non_finite_values_round_trip(tmp_path):
    with LogWriter(tmp_path, tensorboard=False) as writer:
        writer.add_scalar("loss", float("nan"), 0)
        writer.add_scalar("loss", float("inf"), 1)
    values = [r["value"] for r in read_log(tmp_path)]
    assert np.isnan(values[0]) and values[1] == float("inf")


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda w: w.add_scalar("", 1.0, 0), ValueError, "tag"),
        (lambda w: w.add_scalar("x", 1.0, -1), ValueError, "step"),
        (lambda w: w.add_scalar("x", 1.0, 1.5), ValueError, "step"),
        (lambda w: w.add_scalar("x", np.zeros(3), 0), TypeError, r"shape \(3,\)"),
        (lambda w: w.add_scalar("x", "0.5", 0), TypeError, "single number"),
        (lambda w: w.add_histogram("x", np.zeros(3), 0, bins=0), ValueError, "bins"),
    ],
)
def test_bad_calls_are_refused_and_write_nothing(tmp_path, call, error, message):
    with LogWriter(tmp_path, tensorboard=False) as writer:
        with pytest.raises(error, match=message):
            call(writer)
    assert read_log(tmp_path) == []


def test_histograms_summarise_the_values(tmp_path, rng):
    values = rng.standard_normal(1000)
    with LogWriter(tmp_path, tensorboard=False) as writer:
        writer.add_histogram("weights/W", Parameter(values), 5, bins=10)
        writer.add_histogram("grads/W", np.array([1.0, np.nan, np.inf]), 5)
        writer.add_histogram("empty", np.array([np.nan]), 5)
    first, second, third = read_log(tmp_path)
    h = first["histogram"]
    assert first["step"] == 5 and h["count"] == 1000 and sum(h["counts"]) == 1000
    assert len(h["edges"]) == 11 and h["min"] == values.min() and h["max"] == values.max()
    assert h["mean"] == pytest.approx(values.mean()) and h["std"] == pytest.approx(values.std())
    assert second["histogram"]["nonfinite"] == 2 and second["histogram"]["count"] == 3
    assert third["histogram"] == {"count": 1, "nonfinite": 1}


def test_purge_step_drops_what_an_interrupted_run_wrote_after_its_checkpoint(tmp_path):
    with LogWriter(tmp_path, tensorboard=False) as writer:
        for step in range(10):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
    with LogWriter(tmp_path, tensorboard=False, purge_step=6) as writer:
        writer.add_scalar("loss", 0.5, 6)
    assert [r["step"] for r in read_log(tmp_path)] == [0, 1, 2, 3, 4, 5, 6]
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]  # no temporary left
    with pytest.raises(ValueError, match="purge_step"):
        LogWriter(tmp_path, tensorboard=False, purge_step=-1)


def test_read_log_skips_a_line_being_written_and_junk(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"tag": "a", "step": 0, "value": 1.0}\nnot json\n[1, 2]\n'
                    '{"tag": "a", "step": 1, "val')
    assert read_log(path) == [{"tag": "a", "step": 0, "value": 1.0}]
    with pytest.raises(FileNotFoundError):
        read_log(tmp_path / "missing")


BAD_RECORDS = [
    '{"tag": "a", "step": "7", "value": 1.0}', '{"tag": "a", "step": 2.5, "value": 1.0}',
    '{"tag": "a", "step": true, "value": 1.0}', '{"tag": "a", "step": -1, "value": 1.0}',
    '{"tag": "a", "step": null, "value": 1.0}', '{"tag": "a", "value": 1.0}',
    '{"tag": "", "step": 1, "value": 1.0}', '{"tag": 3, "step": 1, "value": 1.0}',
    '{"tag": "a", "step": 1, "value": "x"}', '{"tag": "a", "step": 1}',
    "[" * 100_000 + "]" * 100_000,
]


def test_records_with_a_bad_step_or_value_are_skipped(tmp_path):
    good = ['{"tag": "a", "step": 0, "value": 1.0}', '{"tag": "h", "step": 3, "histogram": {}}']
    (tmp_path / "log.jsonl").write_text("\n".join([good[0], *BAD_RECORDS, good[1]]) + "\n")
    assert [r["tag"] for r in read_log(tmp_path)] == ["a", "h"]


def test_resuming_over_a_log_with_bad_records_drops_only_the_purged_steps(tmp_path):
    # (a record whose step was not an int made the purge of a resumed run raise TypeError)
    lines = ['{"tag": "a", "step": 0, "value": 1.0}', *BAD_RECORDS,
             '{"tag": "a", "step": 5, "value": 2.0}', b"\xff\xfe not UTF-8".decode("latin-1")]
    path = tmp_path / "log.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1") + b'{"tag": "a", "st')
    with LogWriter(tmp_path, tensorboard=False, purge_step=3) as writer:
        writer.add_scalar("a", 3.0, 3)
    text = path.read_bytes().decode("latin-1").split("\n")
    # the bad lines are kept as they were, step 5 and the cut last line are dropped
    assert text == [lines[0], *BAD_RECORDS, lines[-1], text[-2], ""]
    assert [(r["step"], r["value"]) for r in read_log(tmp_path)] == [(0, 1.0), (3, 3.0)]
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]  # no temporary left


def test_plot_log_draws_one_panel_per_tag_prefix(tmp_path):
    pytest.importorskip("matplotlib")
    with LogWriter(tmp_path, tensorboard=False) as writer:
        for step in range(5):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step)
            writer.add_scalar("loss/test", 1.2 / (step + 1), step)
            writer.add_scalar("lr", 0.1, step)
        writer.add_histogram("w", np.ones(3), 0)
    out = plot_log(tmp_path)
    assert out == os.path.join(tmp_path, "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = plot_log(tmp_path / "log.jsonl", tmp_path / "lr.png", tags=["lr"])
    assert os.path.getsize(other) > 0
    with pytest.raises(ValueError, match="no scalars"):
        plot_log(tmp_path, tags=["nope"])


def test_plot_log_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    with LogWriter(tmp_path, tensorboard=False) as writer:
        writer.add_scalar("loss", 1.0, 0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_log(tmp_path)


def test_tensorboard_true_without_tensorboardx_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        LogWriter(tmp_path, tensorboard=True)
    with LogWriter(tmp_path) as writer:  # by default, the JSON lines alone
        assert not writer.tensorboard
        writer.add_scalar("loss", 1.0, 0)
    assert os.listdir(tmp_path) == ["log.jsonl"]


def test_tensorboard_reads_the_event_files(tmp_path, rng):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    with LogWriter(tmp_path) as writer:
        assert writer.tensorboard
        for step in range(3):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step * 10)
        writer.add_histogram("weights", rng.standard_normal(500), 20)
    events = [name for name in os.listdir(tmp_path) if name.startswith("events.out.tfevents")]
    assert len(events) == 1
    reader = accumulator.EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    reader.Reload()
    scalars = reader.Scalars("loss/train")
    assert [s.step for s in scalars] == [0, 10, 20]
    np.testing.assert_allclose([s.value for s in scalars], [1.0, 0.5, 1 / 3], rtol=1e-6)
    (histogram,) = reader.Histograms("weights")
    assert histogram.step == 20 and histogram.histogram_value.num == 500


def test_tensorboard_purge_on_resume(tmp_path):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    with LogWriter(tmp_path) as writer:
        for step in range(6):
            writer.add_scalar("loss", float(step), step)
    with LogWriter(tmp_path, purge_step=3) as writer:
        writer.add_scalar("loss", 30.0, 3)
    reader = accumulator.EventAccumulator(str(tmp_path))
    reader.Reload()
    assert [(s.step, s.value) for s in reader.Scalars("loss")] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]
