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
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
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


BASE = os.environ.get("LXD_CLUSTER_BASE", "ubuntu@24.04")


@pytest.fixture(scope="module")
async def charm_path(ops_test) -> Path:
    """CHARM_PATH (e.g. ./lxd-cluster_ubuntu@24.04-amd64.charm), else `charmcraft pack` for BASE."""
    if os.environ.get("CHARM_PATH"):
        path = Path(os.environ["CHARM_PATH"]).resolve()
        assert path.is_file(), f"CHARM_PATH={path} does not exist"
        return path
    built = await ops_test.build_charm(".", return_all=True)
    wanted = f"lxd-cluster_{BASE}-amd64.charm"
    match = [Path(p) for p in built if Path(p).name == wanted]
    assert match, f"charmcraft built {[Path(p).name for p in built]}, not {wanted}"
    return match[0]
