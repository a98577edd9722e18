"""The packed .charm forms a cluster under Juju 2.9 (issue 24): JujuSim playing 2.9 (no secret-*
hook tools on a unit's PATH, no `type: secret` option, JUJU_VERSION=2.9.52) with every hook of every
unit one process of the artefact's own `dispatch` (tests/packed/packed_context.py), on real LXD
5.0.2 daemons. The join tokens travel sealed in the peer databag: no databag and no hook-tool call
holds one, nor its secret.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.harness.cluster import FormedCluster, form
from tests.packed.packed_context import lab_context_factory

pytestmark = pytest.mark.packed


@pytest.fixture(scope="module")
def cluster(packed_charm: Path, module_lab, tmp_path_factory: pytest.TempPathFactory) -> FormedCluster:
    factory = lab_context_factory(packed_charm, tmp_path_factory.mktemp("packed-juju29"), module_lab)
    return form(module_lab, 3, driver="dir", context_factory=factory, juju_version="2.9")


def test_packed_charm_forms_3_under_juju29(cluster):
    rows = json.loads(cluster.lxc(0, "cluster", "list", "--format", "json").stdout)
    assert {r["server_name"]: r["status"] for r in rows} == {f"lxd-cluster-{u}": "Online" for u in range(3)}
    for uid, status in cluster.sim.statuses().items():
        assert status.name == "active" and f"member lxd-cluster-{uid} of 3" in status.message, status
    calls = [call for unit in cluster.sim.units.values() for call in unit.ctx.calls]
    assert calls and not [c for c in calls if c[0].startswith("secret-")]  # none found, none attempted by path
    assert all(unit.ctx.juju_version == "2.9.52" for unit in cluster.sim.units.values())


def test_packed_juju29_no_join_token_in_any_databag_or_hook_tool_call(cluster):
    """Every base64 JSON with a `secret` (an LXD join token's shape) anywhere in the databags or in the
    hook-tool calls' arguments (juju-log lines too) is a leak: none."""
    sim = cluster.sim
    bags = [sim.app_data, *(unit.unit_data for unit in sim.units.values())]
    words = [v for bag in bags for v in bag.values()]
    words += [arg for unit in sim.units.values() for call in unit.ctx.calls for arg in call]
    leaked = []
    for word in words:
        for piece in word.replace('"', " ").split():
            try:
                decoded = json.loads(base64.b64decode(piece, validate=True))
            except (ValueError, TypeError):
                continue
            if isinstance(decoded, dict) and "secret" in decoded:
                leaked.append(piece[:12])
    assert leaked == []
