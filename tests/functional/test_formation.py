"""`juju deploy lxd-cluster -n N` played on real LXD daemons: the cluster LXD itself reports."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.harness.cluster import FormedCluster, add_units, form

pytestmark = pytest.mark.functional


def lxc_json(cluster: FormedCluster, uid: int, *args: str):
    return json.loads(cluster.lxc(uid, *args, "--format", "json").stdout)


def lxc_yaml(cluster: FormedCluster, uid: int, *args: str):
    return yaml.safe_load(cluster.lxc(uid, *args).stdout)


def members(cluster: FormedCluster, via: int = 0) -> dict[str, dict]:
    return {m["server_name"]: m for m in lxc_json(cluster, via, "cluster", "list")}


def assert_all_operational(cluster: FormedCluster, n: int) -> dict[str, dict]:
    rows = members(cluster)
    assert sorted(rows) == sorted(f"lxd-cluster-{u}" for u in range(n))
    for name, row in rows.items():
        assert row["status"] == "Online", (name, row)
        assert row["message"] == "Fully operational", (name, row)
    for uid, unit in cluster.sim.units.items():
        assert unit.status.name == "active", (uid, unit.status)
        assert f"member lxd-cluster-{uid} of {n} " in unit.status.message, unit.status.message
        assert "fully operational" in unit.status.message
    return rows


def test_three_btrfs_members_form_one_cluster_with_own_devices(lab):
    cluster = form(lab, 3, driver="btrfs")
    rows = assert_all_operational(cluster, 3)
    for name, row in rows.items():
        assert "database" in row["roles"], (name, row["roles"])  # 3 members: all voters
    # every member sees the same cluster (asked through each member's own daemon)
    for uid in range(3):
        assert sorted(members(cluster, via=uid)) == sorted(rows)

    # storage pool `local` on each member's own device, the one Juju storage gave that unit
    for uid in range(3):
        source = cluster.lxc(0, "storage", "get", "local", "source", "--target", f"lxd-cluster-{uid}")
        assert source.stdout.strip() == cluster.member(uid).loop
    assert lxc_yaml(cluster, 0, "storage", "show", "local")["driver"] == "btrfs"

    profile = lxc_yaml(cluster, 1, "profile", "show", "default")
    assert profile["devices"]["eth0"] == {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"}
    assert profile["devices"]["root"] == {"path": "/", "pool": "local", "type": "disk"}

    # a busybox container starts on every member
    lab.import_image(cluster.member(0))
    for uid in range(3):
        cluster.lxc(0, "launch", "busybox", f"c{uid}", "--target", f"lxd-cluster-{uid}", "-q")
    listed = {i["name"]: i for i in lxc_json(cluster, 2, "list")}
    for uid in range(3):
        assert listed[f"c{uid}"]["status"] == "Running"
        assert listed[f"c{uid}"]["location"] == f"lxd-cluster-{uid}"

    # the peer databags carry public facts only: no credential the leader issued
    credentials = [v for s in cluster.sim.app_secrets.values() for v in s.latest_content.values()]
    databags = [cluster.sim.app_data] + [u.unit_data for u in cluster.sim.units.values()]
    for bag in databags:
        for value in bag.values():
            assert not any(c and c in value for c in credentials)
    # every join credential is removed once its unit joined
    assert cluster.sim.app_secrets == {}
    assert "join-unit" not in cluster.sim.app_data


def test_five_dir_members_three_voters_two_standbys(lab):
    cluster = form(lab, 5, driver="dir")
    rows = assert_all_operational(cluster, 5)
    roles = sorted(
        "database" if "database" in r["roles"] else "database-standby" if "database-standby" in r["roles"] else "-"
        for r in rows.values()
    )
    assert roles == ["database"] * 3 + ["database-standby"] * 2


def test_added_unit_joins_the_existing_cluster_and_nothing_rebootstraps(lab):
    cluster = form(lab, 3, driver="dir")
    fingerprint = cluster.sim.app_data["fingerprint"]
    add_units(cluster, 1, loop_devices=False)
    assert_all_operational(cluster, 4)
    assert cluster.sim.app_data["fingerprint"] == fingerprint

    # a new leader never starts a second cluster; re-running every hook changes nothing
    cluster.sim.elect(2)
    cluster.sim.set_config(**{"images-auto-update": False})
    cluster.sim.settle()
    assert cluster.sim.app_data["fingerprint"] == fingerprint
    assert cluster.sim.app_data["cluster-address"].startswith(cluster.member(2).address)
    assert_all_operational(cluster, 4)
    interval = cluster.lxc(3, "config", "get", "images.auto_update_interval").stdout.strip()
    assert interval == "0"


# -- scale (issue 26) ------------------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_twenty_dir_members_form_within_the_hook_and_round_budget(lab):
    """N=20 (MicroCloud documents clusters of up to 50): every member operational, hooks within Juju's
    floor + 2N and rounds within N + 1. Memory and time are printed (pytest -s) for docs/benchmarks.md."""
    n = 20
    cluster = form(lab, n, driver="dir")
    assert_all_operational(cluster, n)
    sim = cluster.sim
    # issue 26's goal is floor + 2N; measured: floor + 2N + 1 or 2 (922-923 against 881): the driver's
    # settle() runs a second update-status round (N hooks) to prove nothing changes once the first has
    # brought every member's status up to date (the floor counts one round): the bound holds within N more
    assert cluster.hooks <= sim.floor() + 3 * n, (cluster.hooks, sim.floor())
    assert sim.rounds() <= n + 1, sim.rounds()
    daemons = [rss_mib(m.pid) for m in lab.members if m.pid]
    assert len(daemons) == n
    print(
        f"\nN={n}: {cluster.hooks} hooks (floor {sim.floor()}), {sim.rounds()} rounds, "
        f"{cluster.seconds:.1f} s of hooks; "
        f"LXD daemons {sum(daemons):.0f} MiB RSS in all, {max(daemons):.0f} MiB the largest"
    )
