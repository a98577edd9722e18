"""The packed .charm forms and operates an LXD cluster: JujuSim with every hook of every unit one
process of the artefact's own `dispatch` (tests/packed/packed_context.py), Juju's hook tools
emulated from the model (hooktools.py), each unit on its own real LXD 5.0.2 daemon.

The tests play one model's life in order on one lab (formation costs most of the time): deploy 3,
add two units, the primer's actions (launch with and without a target, remove-node with evacuate
from 5 to 4 members, force-remove of a dead host to 3), then remove the leader's unit while a
client is related (to 2: LXD cannot take a member out of a 2-member cluster gracefully, "context
deadline exceeded", so that removal comes while 3 are alive).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import fresh_lab
from tests.functional.test_client_library import runner_request, tls_client
from tests.harness.cluster import FormedCluster, add_units, form
from tests.packed.packed_context import PackedContext, lab_context_factory
from tests.packed.platforms import PLATFORMS

pytestmark = pytest.mark.packed


@pytest.fixture(scope="module", params=PLATFORMS)
def cluster(request: pytest.FixtureRequest, packs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FormedCluster]:
    """One model's life per platform, on a lab of its own: that platform's .charm, its hooks on the
    platform's Python (3.10 for ubuntu@22.04, 3.12 for ubuntu@24.04, where this host has them)."""
    charm = packs(request.param).charm
    with fresh_lab() as lab:
        factory = lab_context_factory(charm, tmp_path_factory.mktemp("packed-units"), lab)
        yield form(lab, 3, driver="dir", context_factory=factory)


def members(cluster: FormedCluster, via: int) -> dict[str, str]:
    rows = json.loads(cluster.lxc(via, "cluster", "list", "--format", "json").stdout)
    return {r["server_name"]: r["status"] for r in rows}


def instances(cluster: FormedCluster, via: int) -> dict[str, str]:
    rows = json.loads(cluster.lxc(via, "list", "--format", "json").stdout)
    return {r["name"]: r["location"] for r in rows}


def live(cluster: FormedCluster) -> list[int]:
    return [u for u, unit in cluster.sim.units.items() if unit.alive]


def test_packed_cluster_forms_at_3(cluster):
    sim = cluster.sim
    assert all(isinstance(sim.units[u].ctx, PackedContext) for u in sim.units)  # the artefact ran every hook
    assert members(cluster, 0) == {f"lxd-cluster-{u}": "Online" for u in range(3)}
    for uid in range(3):
        status = sim.units[uid].status
        assert status.name == "active" and f"member lxd-cluster-{uid} of 3" in status.message, status
        assert sim.units[uid].ctx.packed.state["unknown"] == []  # no hook tool or flag Juju lacks
    assert sim.app_data["cluster-address"] == f"{cluster.member(0).address}:8443"


def test_packed_cluster_grows_with_add_unit(cluster):
    assert add_units(cluster, 2, loop_devices=False) == [3, 4]  # juju add-unit -n 2
    assert members(cluster, 4) == {f"lxd-cluster-{u}": "Online" for u in range(5)}
    assert all(cluster.sim.units[u].status.name == "active" for u in range(5)), cluster.sim.statuses()


def test_packed_cluster_launches_with_and_without_a_target(cluster):
    sim = cluster.sim
    cluster.lab.import_image(cluster.member(0))
    auto = sim.run_action(sim.leader, "launch", name="auto0", image="busybox")
    assert auto.ok, auto.failure
    assert auto.results["status"] == "Running" and auto.results["location"].startswith("lxd-cluster-")
    pinned = sim.run_action(1, "launch", name="pinned", image="busybox", target="lxd-cluster-3")
    assert pinned.ok, pinned.failure
    assert pinned.results["location"] == "lxd-cluster-3"
    assert instances(cluster, 2) == {"auto0": auto.results["location"], "pinned": "lxd-cluster-3"}


def test_packed_cluster_remove_node_with_evacuate_moves_the_instances_away(cluster):
    sim = cluster.sim
    sim.run_action(sim.leader, "launch", name="held", image="busybox", target="lxd-cluster-2")
    before = instances(cluster, sim.leader)
    refused = sim.run_action(sim.leader, "remove-node", name="lxd-cluster-2")
    assert "held" in refused.failure
    removed = sim.run_action(sim.leader, "remove-node", name="lxd-cluster-2", evacuate=True)
    assert removed.ok, removed.failure
    assert removed.results["lost"] == "none"
    after = instances(cluster, sim.leader)
    assert sorted(after) == sorted(before) and "lxd-cluster-2" not in after.values()
    sim.remove_unit(2)  # the operator removes its unit too
    sim.settle()
    assert "lxd-cluster-2" not in members(cluster, sim.leader)


def test_packed_cluster_force_removes_a_dead_host(cluster):
    sim = cluster.sim
    dead_uid = 3  # holds "pinned"; not the leader
    assert sim.leader != dead_uid
    lost = sorted(n for n, where in instances(cluster, sim.leader).items() if where == "lxd-cluster-3")
    cluster.lab.kill(cluster.member(dead_uid))
    t0 = time.monotonic()
    while members(cluster, sim.leader).get("lxd-cluster-3") != "Offline":
        assert time.monotonic() - t0 < 90, "lxd-cluster-3 never went offline"
        time.sleep(1)
    sim.vanish(dead_uid)
    sim.settle()
    assert "stale member lxd-cluster-3 has no unit: run force-remove" in sim.units[sim.leader].status.message
    forced = sim.run_action(sim.leader, "force-remove", name="lxd-cluster-3", confirm=True)
    assert forced.ok, forced.failure
    assert "pinned" in lost and forced.results["lost-instances"] == ", ".join(lost)
    assert members(cluster, sim.leader) == {
        name: "Online" for name in ("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-4")
    }


def test_packed_cluster_leader_removal_keeps_a_related_client_trusted(cluster, tmp_path):
    sim = cluster.sim
    request, crt, key = runner_request(tmp_path)
    rid = sim.relate("lxd-cluster", "runner", request)
    sim.settle()
    provided = sim.provided[rid]
    server_pem = tmp_path / "cluster.crt"
    server_pem.write_text(provided["certificate"])
    old_leader = sim.leader
    staying = next(u for u in live(cluster) if u != old_leader)
    endpoint = f"https://{cluster.member(staying).address}:8443"
    assert tls_client(endpoint, crt, key, server_pem, project="runner").instances.all() == []

    # Juju: the dying leader runs relation-broken for lxd-cluster while it still leads, and a new
    # leader is elected only once it is gone: the client must stay trusted after every hook, not
    # only once a new leader has reconciled
    untrusted_after: list[str] = []

    def still_trusted(model) -> None:
        if not tls_client(endpoint, crt, key, server_pem, project="runner").trusted:
            untrusted_after.append(f"lxd-cluster/{model.log[-1].uid} {model.log[-1].name}")

    sim.after_hook.append(still_trusted)
    try:
        sim.remove_unit(old_leader)
        sim.settle()
    finally:
        sim.after_hook.remove(still_trusted)
    assert untrusted_after == [], f"the client was untrusted after {untrusted_after}"
    assert sim.leader not in (None, old_leader) and not sim.units[old_leader].alive
    assert f"lxd-cluster-{old_leader}" not in members(cluster, staying)
    client = tls_client(endpoint, crt, key, server_pem, project="runner")
    assert client.trusted and client.instances.all() == []
    sim.update_status()  # the new leader's next hook does not untrust it either
    sim.settle()
    assert tls_client(endpoint, crt, key, server_pem, project="runner").trusted
