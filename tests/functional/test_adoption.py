"""An LXD already in use on the leader's machine becomes member 1, keeping its instances; a joiner
holding an instance is refused. Real daemons (the lab), the charm driven per unit."""

from __future__ import annotations

import json

import pytest

from tests.harness.cluster import charm_sim

pytestmark = pytest.mark.functional

STANDALONE = """
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root: {path: /, pool: default, type: disk}
    eth0: {name: eth0, nictype: bridged, parent: br0, type: nic}
"""


def in_use(lab, member, container: str) -> None:
    """`lxd init` by hand, a custom profile, an image and a running container."""
    lab.in_netns(member, ["lxd", "init", "--preseed"], input=STANDALONE)
    lab.lxc(member, "profile", "create", "web")
    lab.lxc(member, "profile", "set", "web", "limits.memory", "256MiB")
    lab.import_image(member)
    lab.lxc(member, "launch", "busybox", container, "-p", "default", "-p", "web", "-q")


def instances(lab, member) -> dict[str, dict]:
    return {i["name"]: i for i in json.loads(lab.lxc(member, "list", "--format", "json").stdout)}


def test_a_daemon_in_use_becomes_member_1_keeping_its_container_and_two_members_join(lab):
    m1, m2, m3 = lab.up(3)
    in_use(lab, m1, "web1")
    pid_before = instances(lab, m1)["web1"]["state"]["pid"]

    sim = charm_sim(lab, {"storage-driver": "dir"})
    sim.deploy(3)
    sim.settle()
    leader = sim.units[0].status
    assert leader.name == "blocked", leader
    assert (
        "already initialised and in use: 1 instance (web1), 1 image (busybox), storage pools (default), "
        "profiles (default, web); set adopt-existing-lxd=true" in leader.message
    )
    assert "cluster-address" not in sim.app_data
    info = json.loads(lab.lxc(m1, "query", "/1.0").stdout)
    assert info["environment"]["server_clustered"] is False  # nothing changed

    sim.set_config(**{"adopt-existing-lxd": True})
    sim.settle()
    rows = {m["server_name"]: m for m in json.loads(lab.lxc(m1, "cluster", "list", "--format", "json").stdout)}
    assert sorted(rows) == ["lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2"]
    assert all(r["status"] == "Online" for r in rows.values()), rows
    for uid in range(3):
        assert sim.units[uid].status.name == "active", (uid, sim.units[uid].status)

    # the container kept running through the adoption (same process) and answers through another member
    web1 = instances(lab, m3)["web1"]
    assert web1["status"] == "Running" and web1["location"] == "lxd-cluster-0"
    assert web1["state"]["pid"] == pid_before
    assert lab.lxc(m3, "exec", "web1", "--", "echo", "still here").stdout.strip() == "still here"
    # its profile, its image and its pool are the cluster's now; the charm's pool `local` beside them
    assert lab.lxc(m2, "profile", "get", "web", "limits.memory").stdout.strip() == "256MiB"
    assert "busybox" in lab.lxc(m2, "image", "list", "--format", "csv").stdout
    pools = lab.lxc(m2, "storage", "list", "--format", "csv").stdout
    assert "default," in pools and "local," in pools
    # a new container lands on a joined member from the adopted default profile
    lab.lxc(m1, "launch", "busybox", "c2", "--target", "lxd-cluster-2", "-q")
    assert instances(lab, m1)["c2"]["status"] == "Running"


def test_a_joiner_whose_lxd_holds_a_container_is_refused_and_keeps_it(lab):
    m1, m2 = lab.up(2)
    in_use(lab, m2, "precious")
    sim = charm_sim(lab, {"storage-driver": "dir"})
    sim.deploy(2)
    sim.settle()
    status = sim.units[1].status
    assert status.name == "blocked" and status.message.startswith(
        "LXD here holds 1 instance (precious), 1 image (busybox): joining the cluster erases them"
    ), status
    assert instances(lab, m2)["precious"]["status"] == "Running"
    assert [m["server_name"] for m in json.loads(lab.lxc(m1, "cluster", "list", "--format", "json").stdout)] == [
        "lxd-cluster-0"
    ]
