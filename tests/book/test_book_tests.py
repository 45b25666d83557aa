"""The book's own unit tests (its repository's ``tests/``) pass on zerograd through the
``dezero`` alias, when ``ZEROGRAD_BOOK_REPO`` points at a checkout of the book's code.

Left out: ``tests/gpu`` (CuPy copies of the same tests), every case that compares with
Chainer (skipped at its first use of Chainer, see ``book_tests_runner.py``), and the
cases below, where zerograd deliberately differs from the original (``docs/book.md``
lists the differences and their reasons).
"""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BOOK_REPO = os.environ.get("ZEROGRAD_BOOK_REPO")

#: The book's test cases zerograd fails on purpose, and why.
DIFFERENCES = {
    "test_sum.py::TestSumTo::test_backward3": (
        "zerograd's sum_to raises for a shape the input does not broadcast from: "
        "(10, 20, 20) cannot be summed to (10,) (the original returns shape (20,))"
    ),
}

#: The book's test files (all of tests/ but tests/gpu).
BOOK_TEST_FILES = [
    "test_basic_math.py", "test_batchnorm.py", "test_broadcast.py", "test_conv2d.py",
    "test_deconv2d.py", "test_dropout.py", "test_getitem.py", "test_im2col.py",
    "test_linear.py", "test_loss.py", "test_matmul.py", "test_max.py", "test_pooling.py",
    "test_relu.py", "test_resnet.py", "test_sigmoid.py", "test_softmax.py",
    "test_softmax_cross_entropy.py", "test_sum.py", "test_transpose.py", "test_vgg16.py",
    "test_weight_decay.py",
]

needs_book = pytest.mark.skipif(
    not BOOK_REPO,
    reason="set ZEROGRAD_BOOK_REPO to a checkout of oreilly-japan/deep-learning-from-scratch-3 "
    "to run the book's own tests",
)


@needs_book
def test_the_list_of_files_is_the_books():
    found = sorted(p.name for p in (Path(BOOK_REPO) / "tests").glob("test_*.py"))
    assert found == sorted(BOOK_TEST_FILES)


@needs_book
@pytest.mark.parametrize("name", BOOK_TEST_FILES)
def test_book_test_file(name, tmp_path):
    path = Path(BOOK_REPO) / "tests" / name
    skips = tmp_path / "skips.json"
    skips.write_text(json.dumps(DIFFERENCES))
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "ZEROGRAD_CPU_ONLY": "1",
           "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, str(HERE / "book_tests_runner.py"), str(junit), str(skips),
         str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200,
    )
    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {}
    for case in cases:
        skipped = case.find("skipped")
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        name_ = f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}"
        if failed is not None:
            outcomes[name_] = "failed: " + (failed.get("message") or "")[:300]
        elif skipped is not None:
            outcomes[name_] = "skipped: " + (skipped.get("message") or "")
        else:
            outcomes[name_] = "passed"
    failures = {k: v for k, v in outcomes.items() if v.startswith("failed")}
    assert out.returncode == 0 and not failures, (failures, out.stdout[-3000:], out.stderr)
    assert "passed" in outcomes.values(), outcomes  # every file has cases without Chainer
    for case, outcome in outcomes.items():
        if outcome.startswith("skipped"):
            reason = DIFFERENCES.get(f"{name}::{case}")
            assert reason is not None or "Chainer" in outcome, (case, outcome)
