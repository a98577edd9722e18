"""The real-LXD lab for the functional and packed-charm tests (see tests/harness/lab.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from tests.harness.lab import Lab, LabUnavailable, leftovers, require_root_and_lxd


@contextlib.contextmanager
def fresh_lab() -> Iterator[Lab]:
    """A lab; everything it started is gone afterwards (asserted)."""
    try:
        require_root_and_lxd()
    except LabUnavailable as e:
        pytest.fail(f"functional tests need real LXD daemons: {e} (run: bash scripts/setup.sh as root)")
    # two checkouts may run their suites side by side: each with its own prefix and /24
    prefix = os.environ.get("LAB_PREFIX", "lxdtest")
    lab = Lab(prefix=prefix, net=os.environ.get("LAB_NET", "10.250.0"))
    try:
        yield lab
    finally:
        lab.down()
    left = leftovers(prefix)
    assert not any(left.values()), f"the lab left something behind: {left}"


@pytest.fixture
def lab():
    """A fresh lab per test."""
    with fresh_lab() as fresh:
        yield fresh
