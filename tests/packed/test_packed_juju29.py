"""The packed .charm forms a cluster under Juju 2.9 (issue 24): JujuSim playing 2.9 (no secret-*
hook tools on a unit's PATH, no `type: secret` option, JUJU_VERSION=2.9.52) with every hook of every
unit one process of the artefact's own `dispatch` (tests/packed/packed_context.py), on real LXD
5.0.2 daemons. The join tokens travel sealed in the peer databag: no databag and no hook-tool call
holds one, nor its secret.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sealing
import unit_key
from tests.conftest import fresh_lab
from tests.harness.cluster import FormedCluster, charm_sim
from tests.harness.juju import JujuSim
from tests.packed.packed_context import lab_context_factory

pytestmark = pytest.mark.packed


def sealed_in_databags(sim: JujuSim) -> list[tuple[str, str]]:
    """(sealed value, the unit it is for) of every join-queue entry any databag holds."""
    bags = [sim.app_data, *(unit.unit_data for unit in sim.units.values())]
    return [
        (entry[1], entry[0])
        for bag in bags
        for entry in json.loads(bag.get("join-queue") or "[]")
        if sealing.is_sealed(entry[1])
    ]


@pytest.fixture(scope="module")
def formed(
    packed_charm: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FormedCluster, list[tuple[str, str]]]]:
    """Deploy 3 under 2.9 on a lab of its own; after every hook, each sealed token the databags hold
    is noted."""
    with fresh_lab() as lab:
        factory = lab_context_factory(packed_charm, tmp_path_factory.mktemp("packed-juju29"), lab)
        lab.up(3)
        sim = charm_sim(lab, {"storage-driver": "dir"}, context_factory=factory, juju_version="2.9")
        seen: set[tuple[str, str]] = set()
        sim.after_hook.append(lambda sim: seen.update(sealed_in_databags(sim)))
        sim.deploy(3)
        t0 = time.monotonic()
        hooks = sim.settle()
        yield FormedCluster(lab, sim, time.monotonic() - t0, hooks), sorted(seen)


def test_packed_charm_forms_3_under_juju29(formed):
    cluster, _ = formed
    rows = json.loads(cluster.lxc(0, "cluster", "list", "--format", "json").stdout)
    assert {r["server_name"]: r["status"] for r in rows} == {f"lxd-cluster-{u}": "Online" for u in range(3)}
    for uid, status in cluster.sim.statuses().items():
        assert status.name == "active" and f"member lxd-cluster-{uid} of 3" in status.message, status
    calls = [call for unit in cluster.sim.units.values() for call in unit.ctx.calls]
    assert calls and not [c for c in calls if c[0].startswith("secret-")]  # none found, none attempted by path
    assert all(unit.ctx.juju_version == "2.9.52" for unit in cluster.sim.units.values())


def test_packed_juju29_each_token_opens_for_its_joiner_only_and_is_in_no_databag_or_hook_tool_call(formed):
    """Each sealed token the issuer put in a databag opens with its joiner's private key (0600 in the
    joiner's unpacked charm directory) and with no other unit's; the token inside, and its raw
    secret, are in no databag and in no argument of any hook-tool call any unit made (juju-log too)."""
    cluster, sealed = formed
    sim = cluster.sim
    assert len({recipient for _, recipient in sealed}) == 2  # both joiners got theirs
    keys = {f"lxd-cluster/{u}": unit_key.key_path(unit.ctx.packed.charm_dir) for u, unit in sim.units.items()}
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in keys.values())
    tokens = []
    for value, recipient in sealed:
        tokens.append(sealing.unseal(value, keys[recipient].read_bytes(), recipient))
        for other, path in keys.items():
            if other != recipient:
                with pytest.raises(sealing.SealError):
                    sealing.unseal(value, path.read_bytes(), recipient)
    raw = [json.loads(base64.b64decode(token))["secret"] for token in tokens]
    bags = [sim.app_data, *(unit.unit_data for unit in sim.units.values())]
    text = json.dumps(bags) + json.dumps([unit.ctx.calls for unit in sim.units.values()])
    assert [t for t in tokens + raw if t in text] == []
