"""Functional tests: the unchanged charm against real LXD daemons (see tests/harness/lab.py)."""

from __future__ import annotations

import pytest

from tests.harness.lab import Lab, LabUnavailable, leftovers, require_root_and_lxd


@pytest.fixture
def lab():
    """A fresh lab per test; everything it started is gone afterwards (asserted)."""
    try:
        require_root_and_lxd()
    except LabUnavailable as e:
        pytest.fail(f"functional tests need real LXD daemons: {e} (run: bash scripts/setup.sh as root)")
    lab = Lab(prefix="lxdtest")
    try:
        yield lab
    finally:
        lab.down()
    left = leftovers("lxdtest")
    assert not any(left.values()), f"the lab left something behind: {left}"
