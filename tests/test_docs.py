"""The documentation's code runs and prints what the pages say it prints.

Each page's ```python blocks run in order in one namespace (as a reader typing them
into one session would). A ```text block right after a python block is that block's
printed output, compared exactly.
"""

import contextlib
import functools
import io
import re
from pathlib import Path

import pytest

from zerograd import compat

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [
    "index.md", "tutorial/stages-1-3.md", "training.md", "engine.md", "extending.md", "book.md",
]

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(page):
    """The page's fenced blocks as (language, text, line number)."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(text)
    ]


@functools.cache
def run_page(page):
    """Run the page's python blocks; return [(line, expected or None, printed)].

    Cached: two tests look at the same run."""
    namespace = {"__name__": "__docs__"}
    found = blocks(page)
    results = []
    was_installed = compat.is_installed()
    try:
        for k, (lang, code, line) in enumerate(found):
            if lang != "python":
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(compile(code, f"{page}:{line}", "exec"), namespace)
                except Exception as e:
                    raise AssertionError(f"{page}, block at line {line} raised {e!r}") from e
            following = found[k + 1] if k + 1 < len(found) else None
            expected = following[1] if following and following[0] == "text" else None
            results.append((line, expected, out.getvalue()))
    finally:
        if not was_installed:
            compat.uninstall()
    return results


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_print_what_the_page_shows(page):
    results = run_page(page)
    assert results, f"{page} has no python blocks"
    for line, expected, printed in results:
        if expected is not None:
            assert printed == expected, (
                f"{page}, block at line {line}: the page shows\n{expected}\nbut it printed\n"
                f"{printed}"
            )
        else:
            assert printed == "", (
                f"{page}, block at line {line} prints output that the page does not show "
                f"(add a ```text block after it):\n{printed}"
            )


def test_index_opens_with_manual_backprop():
    first = [b for b in blocks("index.md") if b[0] in ("python", "text")][:2]
    (lang, code, _), (out_lang, out, _) = first
    assert lang == "python" and out_lang == "text"
    assert "C.backward(y.grad)" in code and "np.array(0.5)" in code
    assert out == "variable(3.297442541400256)\n"


def test_tutorial_opens_with_manual_backprop_and_ends_with_newton():
    python = [b for b in blocks("tutorial/stages-1-3.md") if b[0] == "python"]
    assert "C.backward(y.grad)" in python[0][1]
    assert "create_graph=True" in python[-1][1] and "gx2" in python[-1][1]
    outputs = run_page("tutorial/stages-1-3.md")
    assert outputs[-1][2].splitlines()[-1].endswith("variable(1.0)")
