"""Checks of the benchmark suite itself (run with ``pytest benchmarks``).

The numpy floor's hand-written backward passes must be right, or the floor is not the
same work: each is compared with PyTorch's autograd on the same weights. A smoke test
runs the runner end to end. Nothing here asserts anything about time.
"""

import cProfile
import importlib.util
import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "workloads"))

import cnn  # noqa: E402
import elementwise  # noqa: E402
import lstm  # noqa: E402
import mlp  # noqa: E402
import overhead  # noqa: E402
from common import softmax_cross_entropy_np  # noqa: E402

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _close(actual, expected, name):
    np.testing.assert_allclose(actual, expected, rtol=2e-3, atol=2e-5, err_msg=name)


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal((5, 4)).astype(np.float32), np.array([0, 3, 1, 1, 2])
    loss, gy = softmax_cross_entropy_np(y, t)
    ty = _t(y)
    tloss = TF.cross_entropy(ty, torch.from_numpy(t))
    tloss.backward()
    _close(loss, tloss.item(), "loss")
    _close(gy, ty.grad.numpy(), "gy")


@pytest.mark.parametrize("sizes", [[7, 3], [6, 5, 3]])
def test_mlp_floor_gradients(sizes):
    rng = np.random.default_rng(1)
    Ws, bs = mlp.numpy_params(sizes)
    bs = [rng.standard_normal(b.shape).astype(np.float32) * 0.1 for b in bs]
    x, t = rng.random((4, 784), dtype=np.float32), np.array([0, 2, 1, 2])
    loss, gWs, gbs = mlp.numpy_grads(Ws, bs, x, t)
    tWs, tbs = [_t(W) for W in Ws], [_t(b) for b in bs]
    h = torch.from_numpy(x).double()
    for W, b in zip(tWs[:-1], tbs[:-1]):
        h = torch.relu(h @ W + b)
    tloss = TF.cross_entropy(h @ tWs[-1] + tbs[-1], torch.from_numpy(t))
    tloss.backward()
    _close(loss, tloss.item(), "loss")
    for i in range(len(Ws)):
        _close(gWs[i], tWs[i].grad.numpy(), f"W{i}")
        _close(gbs[i], tbs[i].grad.numpy(), f"b{i}")


def test_cnn_floor_pieces_match_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    W = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    y, cols = cnn.conv3x3_forward(x, W, b)
    tx, tW, tb = _t(x), _t(W), _t(b)
    ty = TF.conv2d(tx, tW, tb, padding=1)
    _close(y, ty.detach().numpy(), "conv forward")
    gy = rng.standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.from_numpy(gy).double())
    gx, gW, gb = cnn.conv3x3_backward(gy, W, cols, need_gx=True)
    _close(gx, tx.grad.numpy(), "conv gx")
    _close(gW, tW.grad.numpy(), "conv gW")
    _close(gb, tb.grad.numpy(), "conv gb")

    m, idx = cnn.maxpool2_forward(x)
    tx = _t(x)
    tm = TF.max_pool2d(tx, 2)
    _close(m, tm.detach().numpy(), "pool forward")
    gm = rng.standard_normal(m.shape).astype(np.float32)
    tm.backward(torch.from_numpy(gm).double())
    _close(cnn.maxpool2_backward(gm, idx), tx.grad.numpy(), "pool gx")


def test_cnn_floor_gradients():
    rng = np.random.default_rng(3)
    p = cnn.numpy_params()
    x = rng.random((3, 1, 28, 28), dtype=np.float32)
    t = np.array([1, 7, 3])
    loss, grads = cnn.numpy_loss_and_grads(p, x, t)
    tp = {k: _t(v) for k, v in p.items()}
    h = torch.from_numpy(x).double()
    h = TF.max_pool2d(torch.relu(TF.conv2d(h, tp["W1"], tp["b1"], padding=1)), 2)
    h = TF.max_pool2d(torch.relu(TF.conv2d(h, tp["W2"], tp["b2"], padding=1)), 2)
    tloss = TF.cross_entropy(h.reshape(3, -1) @ tp["W3"] + tp["b3"], torch.from_numpy(t))
    tloss.backward()
    _close(loss, tloss.item(), "loss")
    for name, g in grads.items():
        _close(g, tp[name].grad.numpy(), name)


@pytest.mark.parametrize("batch", [1, 3])
def test_lstm_floor_gradients(batch):
    rng = np.random.default_rng(4)
    net = lstm.NumpyLSTM()
    net.p["b"] = rng.standard_normal(net.p["b"].shape).astype(np.float32) * 0.1
    H = lstm.HIDDEN
    h0 = rng.standard_normal((batch, H)).astype(np.float32) * 0.5
    c0 = rng.standard_normal((batch, H)).astype(np.float32) * 0.5
    net.hc = (h0, c0)
    xs = rng.standard_normal((5, batch, 1)).astype(np.float32)
    ts = rng.standard_normal((5, batch, 1)).astype(np.float32)
    loss, grads = net.loss_and_grads(xs, ts)

    tp = {k: _t(v) for k, v in net.p.items()}
    h, c = torch.from_numpy(h0).double(), torch.from_numpy(c0).double()
    tloss = 0
    for x, t in zip(torch.from_numpy(xs).double(), torch.from_numpy(ts).double()):
        a = x @ tp["Wx"] + h @ tp["Wh"] + tp["b"]
        i, f, o = (torch.sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
        c = f * c + i * torch.tanh(a[:, 3 * H :])
        h = o * torch.tanh(c)
        tloss = tloss + ((h @ tp["Wy"] + tp["by"] - t) ** 2).mean()
    tloss.backward()
    _close(loss, tloss.item(), "loss")
    for name, g in grads.items():
        _close(g, tp[name].grad.numpy(), name)
    _close(net.hc[0], h.detach().numpy(), "carried h")


@pytest.mark.parametrize("batch", [1, 3])
def test_gru_floor_gradients(batch):
    rng = np.random.default_rng(5)
    net = lstm.NumpyGRU()
    for name in ("bx", "bh"):
        net.p[name] = rng.standard_normal(net.p[name].shape).astype(np.float32) * 0.1
    H = lstm.HIDDEN
    h0 = rng.standard_normal((batch, H)).astype(np.float32) * 0.5
    net.hc = h0
    xs = rng.standard_normal((5, batch, 1)).astype(np.float32)
    ts = rng.standard_normal((5, batch, 1)).astype(np.float32)
    loss, grads = net.loss_and_grads(xs, ts)

    tp = {k: _t(v) for k, v in net.p.items()}
    h = torch.from_numpy(h0).double()
    tloss = 0
    for x, t in zip(torch.from_numpy(xs).double(), torch.from_numpy(ts).double()):
        ax = x @ tp["Wx"] + tp["bx"]
        ah = h @ tp["Wh"] + tp["bh"]
        r = torch.sigmoid(ax[:, :H] + ah[:, :H])
        z = torch.sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
        n = torch.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
        h = (1 - z) * n + z * h
        tloss = tloss + ((h @ tp["Wy"] + tp["by"] - t) ** 2).mean()
    tloss.backward()
    _close(loss, tloss.item(), "loss")
    assert set(grads) == set(tp)
    for name, g in grads.items():
        _close(g, tp[name].grad.numpy(), name)
    _close(net.hc, h.detach().numpy(), "carried h")


def test_overhead_floor_gradient():
    _, forward_backward = overhead._numpy(())
    x = _t(0.5)
    y = x
    for _ in range(overhead.N_OPS // 5):
        y = -torch.tanh(torch.sin(y * 0.9 + 0.1))
    y.backward()
    _close(forward_backward(), x.grad.numpy(), "chain gradient")


# The floor's hand-written derivative of every elementwise function and reduction that
# NumPy can compute (it has no erf: no erf, no exact GELU), against PyTorch's autograd.
@pytest.mark.parametrize("op", [op for op in elementwise.OPS if op not in ("erf", "gelu")])
def test_elementwise_floor_gradients(op):
    rng = np.random.default_rng(6)
    shape = (4, 5)
    positive = op in elementwise.POSITIVE
    x = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    x = x.astype(np.float32)
    gy = rng.standard_normal(shape if op not in ("sum", "mean", "max", "min") else ())
    gy = np.asarray(gy, dtype=np.float32)
    _, torch_f = elementwise._torch_op(op)
    tx = _t(x)
    if op in elementwise.BINARY:
        b = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        fwd, bwd = elementwise._np_binary(op)
        y, saved = fwd(x, b)
        gx, gb = bwd(gy, saved)
        tb = _t(b)
        ty = torch_f(tx, tb)
        ty.backward(torch.from_numpy(gy).double())
        _close(gb, tb.grad.numpy(), f"{op} second operand")
    else:
        fwd, bwd = (elementwise._np_reduction(op) if op in elementwise.REDUCTIONS
                    else elementwise._np_unary(op))
        y, saved = fwd(x)
        gx = bwd(gy, saved)
        ty = torch_f(tx)
        ty.backward(torch.from_numpy(gy).double())
    _close(y, ty.detach().numpy(), f"{op} forward")
    _close(gx, tx.grad.numpy(), f"{op} gradient")


def test_runner_smoke(tmp_path):
    out = tmp_path / "out.json"
    cmd = [
        sys.executable, str(HERE / "run.py"), "--quick", "--rounds", "1", "--only",
        "overhead", "--frameworks", "numpy", "--json", str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "overhead" in proc.stdout and "numpy BLAS" in proc.stdout
    payload = json.loads(out.read_text())
    assert {"header", "rows"} <= set(payload)
    metrics = {(r["case"], r["metric"]) for r in payload["rows"]}
    assert ("shape ()", "forward+backward") in metrics
    assert all(r["median"]["numpy"] > 0 for r in payload["rows"])


def test_profile_report_categories():
    spec = importlib.util.spec_from_file_location("bench_profile", HERE / "profiling.py")
    bench_profile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_profile)
    profiler = cProfile.Profile()
    profiler.enable()
    overhead._numpy(())[1]()
    profiler.disable()
    stats = pstats.Stats(profiler)
    parts = bench_profile.split_time(stats)
    assert parts and all(t >= 0 for t in parts.values())
    assert "top 5 functions" in bench_profile.report(stats, 5, "tottime", stats.total_tt)


def _load_run_module():
    spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_processes_run_and_stop():
    run = _load_run_module()
    with run.Load(2) as load:
        procs = list(load.procs)
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)


def test_under_load_pairs_each_loaded_row_with_its_idle_twin():
    run = _load_run_module()

    def row(load, zg, torch_, np_):
        return {"workload": "cnn", "case": "batch 32", "metric": "step", "malloc": "tuned",
                "load": load, "median": {"zerograd": zg, "torch": torch_, "numpy": np_},
                "zerograd/torch": zg / torch_, "numpy/torch": np_ / torch_}

    pairs = run.under_load([row(0, 8.0, 4.0, 9.0), row(2, 12.0, 8.0, 27.0)])
    assert len(pairs) == 1
    p = pairs[0]
    assert p["idle zg/torch"] == 2.0 and p["loaded zg/torch"] == 1.5
    assert p["worse by"] == 0.75
    assert (p["zerograd slowdown"], p["torch slowdown"], p["numpy slowdown"]) == (1.5, 2.0, 3.0)
    assert "0.75x" in run.format_under_load(pairs)


def test_book_steps_smoke(tmp_path):
    out = tmp_path / "steps.json"
    cmd = [sys.executable, str(HERE / "book_steps.py"), "--steps", "1,9", "--book", "",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ZEROGRAD_BOOK_REPO": ""})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["step"] for r in rows] == [1, 9]
    # step 9 ends with the book's TypeError (exit status 1): that is its expected end
    assert all(r["zerograd"]["ok"] and r["zerograd"]["wall"] > 0 for r in rows)
    assert "zerograd s (idle)" in proc.stdout


def test_report_renders_the_tables(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_report", HERE / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)

    def row(workload, case, zg, torch_, load=0):
        return {"workload": workload, "case": case, "metric": "m", "unit": "ms",
                "malloc": "default", "load": load,
                "median": {"zerograd": zg, "torch": torch_, "numpy": None},
                "zerograd/torch": zg / torch_, "numpy/torch": None}

    rows = [row("cnn", "batch 32", 8.0, 4.0), row("cnn", "batch 32", 12.0, 8.0, load=2),
            row("elementwise", "tanh 1e6", 3.0, 2.0), row("elementwise", "tanh 1e7", 1.0, 1.0)]
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps({
        "header": {"zerograd_revision": "abc", "rounds": 5}, "rows": rows,
        "under_load": [{"workload": "cnn", "case": "batch 32", "metric": "m",
                        "malloc": "default", "load": 2, "idle zg/torch": 2.0,
                        "loaded zg/torch": 1.5, "worse by": 0.75, "zerograd slowdown": 1.5,
                        "torch slowdown": 2.0, "numpy slowdown": None}],
    }))
    steps_json = tmp_path / "steps.json"
    steps_json.write_text(json.dumps({"rows": [{
        "step": 60, "load": 0, "ratio": 0.5, "cpu ratio": 0.6,
        "zerograd": {"wall": 2.0}, "original": {"wall": 4.0}}]}))
    assert report.main([str(run_json), "--steps", str(steps_json)]) == 0
    out = capsys.readouterr().out
    assert "### CNN" in out
    assert "| batch 32 | m | ms | default | 8.000 | 4.000 | – | 2.00× |" in out
    assert "| tanh | 1.50× | 1.00× |" in out  # functions down, sizes across
    assert "| cnn | batch 32 | m | default | 2 | 2.00× | 1.50× | 0.75× |" in out
    assert "| 60 | 2.000 | 4.000 | 0.50× | 0.60× |" in out
