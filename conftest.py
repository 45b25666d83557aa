"""Doctest namespace: docstring examples may use ``np`` without importing it."""

import numpy as np
import pytest

# Import the package first: pytest's importlib mode would otherwise run a module such
# as core.py a second time for its doctests, giving two Variable classes.
import zerograd  # noqa: F401


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["np"] = np
