"""docs/interop.md runs as written and prints what it says it prints."""

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

PAGE = Path(__file__).resolve().parents[2] / "docs" / "interop.md"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def test_interop_page_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = PAGE.read_text(encoding="utf-8")
    blocks = [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
              for m in _FENCE.finditer(text)]
    namespace = {"__name__": "__docs__"}
    ran = 0
    for k, (lang, code, line) in enumerate(blocks):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"interop.md:{line}", "exec"), namespace)
        ran += 1
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        if following and following[0] == "text":
            assert out.getvalue() == following[1], f"interop.md, block at line {line}"
    assert ran >= 6
    assert os.path.exists(namespace["path"]) and os.path.exists(namespace["weights"])
