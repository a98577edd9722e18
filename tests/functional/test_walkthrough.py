"""The primer's walkthrough through the charm's actions and Juju scaling, on real LXD daemons."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness.cluster import FormedCluster, add_units, form

pytestmark = pytest.mark.functional


def instances(cluster: FormedCluster, via: int = 0) -> dict[str, dict]:
    out = cluster.lxc(via, "list", "--format", "json").stdout
    return {i["name"]: i for i in json.loads(out)}


def member_states(cluster: FormedCluster, via: int = 0) -> dict[str, str]:
    rows = json.loads(cluster.lxc(via, "cluster", "list", "--format", "json").stdout)
    return {r["server_name"]: r["status"] for r in rows}


def wait_offline(cluster: FormedCluster, name: str, via: int, timeout: float = 90) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if member_states(cluster, via).get(name) == "Offline":
            return time.monotonic() - t0
        time.sleep(1)
    raise AssertionError(f"{name} never went offline")


def test_primer_walkthrough_launch_exec_remove_force_remove(lab):
    cluster = form(lab, 4, driver="dir")
    sim = cluster.sim
    lab.import_image(cluster.member(0))

    # three auto-placed containers spread over three members (LXD picks the emptiest)
    for i in range(3):
        launched = sim.run_action(0, "launch", name=f"auto{i}", image="busybox")
        assert launched.ok, launched.failure
        assert launched.results["status"] == "Running"
    placed = {instances(cluster)[f"auto{i}"]["location"] for i in range(3)}
    assert len(placed) == 3, placed

    # a targeted launch lands where asked, from another unit
    pinned = sim.run_action(1, "launch", name="pinned", image="busybox", target="lxd-cluster-3")
    assert pinned.ok, pinned.failure
    assert pinned.results["location"] == "lxd-cluster-3"

    # an alias with a slash, as `lxc image copy images:ubuntu/24.04 local: --copy-aliases` makes
    fingerprint = json.loads(cluster.lxc(0, "image", "list", "--format", "json").stdout)[0]["fingerprint"]
    cluster.lxc(0, "image", "alias", "create", "distro/busybox", fingerprint)
    slashed = sim.run_action(0, "launch", name="slashed", image="distro/busybox")
    assert slashed.ok and slashed.results["status"] == "Running", slashed.failure

    # exec in the container on member 3 through the API of member 1 (lab member index 0)
    hostname = cluster.lxc(0, "exec", "pinned", "--", "hostname").stdout.strip()
    assert hostname == "pinned"
    addresses = cluster.lxc(0, "exec", "pinned", "--", "ip", "-o", "addr").stdout
    assert "eth0" in addresses

    # bad requests fail with the reason and create nothing
    before = sorted(instances(cluster))
    for params, reason in [
        ({"name": "pinned", "image": "busybox"}, "exists already"),
        ({"name": "x1", "image": "no-such-image"}, "no image"),
        ({"name": "x3", "image": "no such image?"}, "no image"),  # quoted in the URL, not "cannot reach LXD"
        ({"name": "x2", "image": "busybox", "target": "lxd-cluster-9"}, "no cluster member named"),
        ({"name": "9bad", "image": "busybox"}, "not a valid instance name"),
    ]:
        outcome = sim.run_action(0, "launch", **params)
        assert reason in outcome.failure, (params, outcome)
    assert sorted(instances(cluster)) == before

    listed = sim.run_action(2, "cluster-list")
    assert listed.ok
    assert all(r["state"] == "ONLINE" for r in json.loads(listed.results["members"]))
    assert "lxd-cluster-3" in listed.results["table"]

    # remove-node refuses the leader's own member (that is juju remove-unit's job)
    own = sim.run_action(sim.leader, "remove-node", name=f"lxd-cluster-{sim.leader}", evacuate=True)
    assert "juju remove-unit" in own.failure

    # remove-node refuses a member with instances, naming them
    leader_member = f"lxd-cluster-{sim.leader}"
    holder = next(i["location"] for i in instances(cluster).values() if i["location"] != leader_member)
    held = sorted(n for n, i in instances(cluster).items() if i["location"] == holder)
    refused = sim.run_action(0, "remove-node", name=holder)
    assert refused.failure and all(n in refused.failure for n in held)
    assert holder in member_states(cluster)

    # with evacuate it moves them and loses none
    removed = sim.run_action(0, "remove-node", name=holder, evacuate=True)
    assert removed.ok, removed.failure
    after = instances(cluster, via=sim.leader)
    assert sorted(after) == before
    assert all(i["status"] == "Running" for i in after.values())
    assert holder not in {i["location"] for i in after.values()}
    assert removed.results["lost"] == "none"
    holder_uid = int(holder.rsplit("-", 1)[1])
    sim.settle()
    assert "juju remove-unit" in sim.units[holder_uid].status.message  # it must not rejoin
    sim.remove_unit(holder_uid)  # the operator removes its unit too
    sim.settle()

    # below three members it refuses
    survivors = sorted(member_states(cluster, via=sim.leader))
    assert len(survivors) == 3
    below = sim.run_action(sim.leader, "remove-node", name=survivors[-1])
    assert "would leave 2" in below.failure

    # a dead member: force-remove needs confirmation, then leaves the survivors operational
    dead = next(n for n in survivors if n != f"lxd-cluster-{sim.leader}")
    dead_uid = int(dead.rsplit("-", 1)[1])
    lost = sorted(n for n, i in after.items() if i["location"] == dead)
    lab.kill(cluster.member(dead_uid))
    wait_offline(cluster, dead, via=sim.leader)
    sim.vanish(dead_uid)  # its machine is gone too: no hook runs there any more
    sim.settle()
    for unit in sim.units.values():  # the others' status names the dead member and the fix
        if unit.alive:
            assert f"not online: {dead}" in unit.status.message, unit.status
            assert f"stale member {dead} has no unit: run force-remove" in unit.status.message
    unconfirmed = sim.run_action(sim.leader, "force-remove", name=dead)
    assert "confirm=true" in unconfirmed.failure
    forced = sim.run_action(sim.leader, "force-remove", name=dead, confirm=True)
    assert forced.ok, forced.failure
    assert forced.results["lost-instances"] == (", ".join(lost) or "none")
    assert "wipe" in forced.results["next-step"]
    states = member_states(cluster, via=sim.leader)
    assert dead not in states and set(states.values()) == {"Online"}
    remaining = instances(cluster, via=sim.leader)
    assert sorted(remaining) == sorted(set(before) - set(lost))
    assert all(i["status"] == "Running" for i in remaining.values())


def test_scale_out_and_in_with_instances_loses_none(lab):
    cluster = form(lab, 3, driver="dir")
    sim = cluster.sim
    lab.import_image(cluster.member(0))
    for i in range(6):
        assert sim.run_action(0, "launch", name=f"c{i}", image="busybox").ok
    before = sorted(instances(cluster))

    add_units(cluster, 2, loop_devices=False)  # juju add-unit -n 2: both join, one at a time
    assert len(member_states(cluster)) == 5
    for uid in (3, 4):
        assert sim.run_action(uid, "launch", name=f"new{uid}", image="busybox", target=f"lxd-cluster-{uid}").ok
    before = sorted(instances(cluster))

    for uid in (4, 3):  # juju remove-unit: each departing unit moves its instances, then leaves
        sim.remove_unit(uid)
        sim.settle()
    assert sorted(member_states(cluster)) == ["lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2"]
    after = instances(cluster)
    assert sorted(after) == before
    assert all(i["status"] == "Running" for i in after.values())
    for uid in range(3):
        message = sim.units[uid].status.message
        assert "of 3 " in message and "fully operational" in message, message
