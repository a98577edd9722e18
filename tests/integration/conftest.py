"""Integration tests need a real Juju controller and a packed charm; without them they skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def controller_unreachable() -> str:
    """Why no Juju controller can be used here, or '' when one answers."""
    if shutil.which("juju") is None:
        return "no Juju controller: the juju CLI is not installed on this machine"
    try:
        out = subprocess.run(
            ["juju", "show-controller", "--format=json"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except subprocess.TimeoutExpired:
        return "no Juju controller: `juju show-controller` timed out"
    if out.returncode != 0 or not json.loads(out.stdout or "{}"):
        return f"no Juju controller reachable: {(out.stderr or 'juju show-controller failed').strip()}"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = controller_unreachable()
    if not reason:
        return
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def charm_path() -> Path:
    """The charm built outside the tests: `charmcraft pack`, then CHARM_PATH=./lxd-cluster_*.charm."""
    path = os.environ.get("CHARM_PATH") or next(iter(sorted(Path(".").glob("lxd-cluster_*.charm"))), None)
    if not path:
        pytest.skip("no packed charm: run `charmcraft pack` and set CHARM_PATH")
    return Path(path).resolve()
