"""Run test files of the book's repository (its ``tests/``) on zerograd, through the alias.

Usage: ``python book_tests_runner.py JUNIT_XML SKIPS_JSON TEST_FILE...``

``SKIPS_JSON`` maps a test case (``test_sum.py::TestSumTo::test_backward3``) to the
reason it is skipped: a place where zerograd deliberately differs from the original.
Chainer, which many of the book's tests compare with, no longer installs: a stand-in
``chainer`` module skips each case at its first use of Chainer, so the rest of those
files still runs.
"""

import json
import os
import sys
import types
import unittest

import pytest

CHAINER_GONE = "compares with Chainer, which no longer installs (Python 3.11, NumPy 2)"


class _Chainer(types.ModuleType):
    """``chainer`` and ``chainer.functions``: any use skips the test case."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise unittest.SkipTest(CHAINER_GONE)


def _install_chainer_stand_in():
    chainer = _Chainer("chainer")
    chainer.__path__ = []
    for sub in ("functions", "links"):
        module = _Chainer(f"chainer.{sub}")
        setattr(chainer, sub, module)
        sys.modules[module.__name__] = module
    sys.modules["chainer"] = chainer


class _Skips:
    """A pytest plugin: skip the listed cases with their reasons."""

    def __init__(self, skips):
        self.skips = skips

    def pytest_collection_modifyitems(self, items):
        for item in items:
            case = f"{os.path.basename(item.path)}::{item.nodeid.split('::', 1)[1]}"
            if case in self.skips:
                item.add_marker(pytest.mark.skip(reason=self.skips[case]))


def main(argv):
    junit, skips, *files = argv
    from zerograd import compat

    compat.install()
    _install_chainer_stand_in()
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=",
            "--rootdir", os.getcwd(), f"--junitxml={junit}", *files]
    with open(skips) as f:
        return pytest.main(args, plugins=[_Skips(json.load(f))])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
