#!/usr/bin/env bash
# The GPU verification run (issue 5), for a machine with an NVIDIA GPU and CuPy:
# the whole test suite with the CuPy cases enabled, the GPU benchmark against PyTorch
# CUDA, and the MNIST MLP/CNN trained with --gpu. Results go to $OUT (default ./gpu-out).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, numpy, cupy, zerograd.cuda as c; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'gpu_enable', c.gpu_enable)"

workers=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8" || echo "")
timeout "${SUITE_TIMEOUT:-150}" python3 -m pytest -q -p no:cacheprovider $workers -m "not slow" \
    --junitxml="$OUT/junit.xml" 2>&1 | tail -n 25 | tee "$OUT/pytest.log"
python3 - "$OUT/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
def status(c):
    return next((s.tag for s in c if s.tag in ("failure", "error", "skipped")), "passed")
cupy = [c for c in cases if "cupy" in c.get("name", "")]
print(f"test cases: {len(cases)}; CuPy cases: {len(cupy)}, of which passed "
      f"{sum(status(c) == 'passed' for c in cupy)}, skipped "
      f"{sum(status(c) == 'skipped' for c in cupy)}, failed "
      f"{sum(status(c) in ('failure', 'error') for c in cupy)}")
for c in cases:
    if status(c) in ("failure", "error"):
        print("FAILED:", c.get("classname"), c.get("name"))
PY

timeout 70 python3 benchmarks/gpu_bench.py --rounds 3 --json "$OUT/gpu_bench.json" 2>&1 | tee "$OUT/bench.log"
timeout 50 python3 -m zerograd train --gpu --out /tmp/zg-train 2>&1 | tail -n 4 | tee "$OUT/train_gpu.log"
if [ -f examples/mnist_cnn.py ]; then
    timeout 60 python3 examples/mnist_cnn.py --gpu --out /tmp/zg-cnn 2>&1 | tail -n 4 | tee "$OUT/cnn_gpu.log"
fi
