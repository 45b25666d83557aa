"""The progress helper: a bar on a terminal, periodic plain lines in a file or pipe."""

import io

import numpy as np
import pytest

from zerograd.progress import Progress, progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_a_file_gets_a_line_at_the_start_every_interval_and_at_the_end():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(40, desc="epoch 1", unit="batch", file=out, clock=clock)
    assert not bar.tty and bar.interval == 10.0
    for i in range(40):
        clock.now += 0.5  # 2 batches a second: a line every 20 batches
        bar.update(loss=1.0 / (i + 1))
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "epoch 1: 1/40 batch (2%), 2.0 batch/s, 0:20 left, loss 1",
        "epoch 1: 21/40 batch (52%), 2.0 batch/s, 0:10 left, loss 0.04762",
        "epoch 1: 40/40 batch (100%), in 20.0s, 2.0 batch/s, loss 0.025",
    ]


def test_a_terminal_gets_one_line_redrawn_in_place():
    out, clock = FakeTerminal(), FakeClock()
    with Progress(4, desc="epoch 2", unit="batch", file=out, clock=clock) as bar:
        assert bar.tty and bar.interval == 0.1
        for _ in range(4):
            clock.now += 1.0
            bar.update()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text.rstrip("\n").split("\r")[1:]
    assert frames[0].startswith("epoch 2 [#######.......................] 1/4 batch  25%")
    assert "1.0 batch/s  0:03 left" in frames[0]
    last = "epoch 2 [##############################] 4/4 batch 100%  in 4.0s"
    assert frames[-1].startswith(last)
    assert all(len(f) >= len(frames[0].rstrip()) for f in frames)  # shorter frames padded


def test_bytes_are_counted_in_binary_units_and_an_unknown_total_has_no_bar():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(3 * 2**20, desc="mnist.npz", unit="B", file=out, clock=clock, interval=0)
    clock.now += 1.0
    bar.update(2**20)
    assert out.getvalue() == "mnist.npz: 1.0 MiB/3.0 MiB (33%), 1.0 MiB/s, 0:02 left\n"
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(None, desc="stream", unit="B", file=out, clock=clock)
    clock.now += 2.0
    bar.update(3000)
    bar.close()
    assert out.getvalue().splitlines() == [
        "stream: 2.9 KiB, 1.5 KiB/s",
        "stream: 2.9 KiB, in 2.0s, 1.5 KiB/s",
    ]


def test_long_runs_show_hours_and_minutes():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(10, file=out, clock=clock)
    clock.now += 3700.0
    bar.update()
    bar.close()
    first, last = out.getvalue().splitlines()
    assert first.endswith("9:15:00 left") and ", in 1:01:40," in last


def test_disabled_writes_nothing_and_close_is_idempotent():
    out = io.StringIO()
    bar = Progress(3, file=out, disable=True)
    bar.update(3)
    bar.close()
    assert out.getvalue() == ""
    out = io.StringIO()
    bar = Progress(3, file=out)
    bar.close()
    bar.close()
    bar.update()  # after close: counted, not written
    assert len(out.getvalue().splitlines()) == 1 and bar.n == 1


def test_the_wrapper_reports_even_when_the_loop_stops_early():
    out = io.StringIO()
    for i in progress(range(10), desc="scan", file=out):
        if i == 2:
            break
    lines = out.getvalue().splitlines()
    # items 0 and 1 were finished; the loop left during item 2
    assert lines[0].startswith("scan: 1/10 it (10%)") and lines[-1].startswith("scan: 2/10 it")
    assert list(progress(iter([5, 6]), file=io.StringIO())) == [5, 6]  # no len: no total


@pytest.mark.parametrize("kwargs, error", [
    ({"total": -1}, ValueError), ({"total": float("inf")}, ValueError),
    ({"total": float("nan")}, ValueError), ({"interval": -1.0}, ValueError),
    ({"total": "10"}, TypeError), ({"total": True}, TypeError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match="Progress: (total|interval) must be"):
        Progress(**{"total": 3, **kwargs})


def test_an_infinite_total_is_refused_with_a_hint():
    # (it used to be accepted, and its first report raised OverflowError)
    with pytest.raises(ValueError, match="None when the total is not known"):
        Progress(total=float("inf"), file=io.StringIO(), tty=False, interval=0).update()


@pytest.mark.parametrize("total", [np.int64(5), np.int32(5), np.float64(5.0), 5.0])
def test_a_numpy_or_float_total_is_a_total(total):
    out = io.StringIO()
    bar = Progress(total, desc="work", file=out, tty=False, interval=0)
    bar.update()
    assert out.getvalue().startswith("work: 1/5 it (20%)")


def test_a_closed_or_odd_file_counts_as_no_terminal():
    closed = io.StringIO()
    closed.close()
    assert not Progress(3, file=closed).tty
    assert not Progress(3, file=object()).tty


def test_a_resumed_count_starts_from_initial_and_its_rate_counts_new_steps_only():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(40, desc="epoch 3", unit="batch", file=out, clock=clock, initial=30)
    clock.now += 2.0
    bar.update()
    assert out.getvalue() == "epoch 3: 31/40 batch (77%), 0.5 batch/s, 0:18 left\n"
