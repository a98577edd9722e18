"""Integration tests need a real Juju controller and a packed charm; without them they skip.

Which python-libjuju serves which controller (tox -e integration installs the pin that
LXD_CLUSTER_JUJU names, tests/integration/requirements-juju<LXD_CLUSTER_JUJU>.txt):
- Juju 2.9 controller: LXD_CLUSTER_JUJU=2.9, python-libjuju 2.9.x (`juju>=2.9.44,<3`);
- Juju 3.x controller: LXD_CLUSTER_JUJU=3 (the default), python-libjuju 3.x (`juju>=3.3,<4`);
- Juju 4.0: no python-libjuju serves it (4.0 removed the AllWatcher its Model is built on:
  juju/juju docs/releasenotes/juju_4.0.x/juju_4.0.0.md), so the suite skips saying so.
A controller whose major version the installed python-libjuju does not serve skips the suite with
the command that installs the right one. The juju CLI commands the tests type are 3.x's; on a 2.9
controller `juju_args` rewrites them as 2.9's client takes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.controller import controller_unreachable


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
