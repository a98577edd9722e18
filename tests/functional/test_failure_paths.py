"""Issue 13 on real LXD daemons: scale-in and failure paths that never strand an instance.

One test per item of the issue (docs/reliability.md, rows 9a-9h): a member whose instance cannot
move, two units removed at once, a join that keeps failing the same way, storage-device paths
os.stat cannot look at, loop41 beside a mounted loop410, a MAAS URL with credentials, a
cluster-port another service holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.functional.test_reliability import instance_locations, members_of, snapshot
from tests.harness.cluster import charm_sim, form
from tests.harness.juju import HookFailed

pytestmark = pytest.mark.functional


def statuses_of(cluster, via: int = 0) -> dict[str, str]:
    rows = json.loads(cluster.lxc(via, "list", "--format", "json").stdout)
    return {i["name"]: i["status"] for i in rows}


def logs(sim, uid: int) -> str:
    return "\n".join(line.message for line in sim.units[uid].ctx.juju_log)


# -- 1. an instance that cannot start on any other member ---------------------------------------------
def test_removing_a_member_whose_instance_cannot_move_fails_the_hook_and_keeps_everything(lab):
    cluster = form(lab, 3, driver="dir")
    sim = cluster.sim
    lab.import_image(cluster.member(0))
    # a NIC on a bridge only lxd-cluster-2's host has: LXD moves the stopped container, then
    # refuses to start it elsewhere ('Parent device "onlyhere" doesn't exist')
    lab.in_netns(cluster.member(2), ["ip", "link", "add", "onlyhere", "type", "bridge"])
    lab.in_netns(cluster.member(2), ["ip", "link", "set", "onlyhere", "up"])
    for name in ("free", "pinned"):
        assert sim.run_action(0, "launch", name=name, image="busybox", target="lxd-cluster-2").ok
    cluster.lxc(0, "config", "device", "add", "pinned", "eth1", "nic", "nictype=bridged", "parent=onlyhere")
    cluster.lxc(0, "restart", "pinned", "--force")

    sim.remove_unit(2)
    with pytest.raises(HookFailed, match="cannot leave the cluster"):
        sim.settle()
    unit = sim.units[2]
    assert unit.alive and unit.error  # Juju holds the removal: the unit, its machine, its LXD stay
    rows = {
        m["server_name"]: m["status"] for m in json.loads(cluster.lxc(0, "cluster", "list", "--format", "json").stdout)
    }
    assert rows["lxd-cluster-2"] == "Online"  # still a member, still serving
    where = instance_locations(cluster)
    assert where["pinned"] == "lxd-cluster-2" and where["free"] != "lxd-cluster-2"
    assert statuses_of(cluster) == {"free": "Running", "pinned": "Running"}  # moved back and running again
    said = logs(sim, 2)
    assert "pinned cannot start on" in said and "doesn't exist" in said and "juju resolve lxd-cluster/2" in said

    # the operator's fix: the instance gives up its host-only NIC; retry at once (the record of the
    # failed move otherwise keeps Juju's retries from stopping it again for 10 minutes)
    cluster.lxc(0, "config", "device", "remove", "pinned", "eth1")
    cluster.lxc(0, "cluster", "unset", "lxd-cluster-2", "user.lxd-cluster.leaving")
    sim.settle()  # Juju's next retry of the failed hook (or `juju resolve lxd-cluster/2`) runs it again
    assert not sim.units[2].alive
    assert members_of(cluster, 0) == ["lxd-cluster-0", "lxd-cluster-1"]
    assert statuses_of(cluster) == {"free": "Running", "pinned": "Running"}


# -- 2. two units removed at once -------------------------------------------------------------------
def test_two_units_removed_at_once_lose_nothing_and_never_move_onto_each_other(lab):
    """`juju remove-unit 3 4`, both units' hooks at the same time (JujuSim.interleaved): a unit that finds
    the other not marked yet waits in its hook for its mark, so no hook fails when nothing is wrong."""
    cluster = form(lab, 5, driver="dir")
    sim = cluster.sim
    lab.import_image(cluster.member(0))
    for i in range(10):
        target = {0: "lxd-cluster-3", 1: "lxd-cluster-4"}.get(i)  # instances on both leaving members
        assert sim.run_action(0, "launch", name=f"c{i}", image="busybox", **({"target": target} if target else {})).ok
    before = instance_locations(cluster)
    assert {"lxd-cluster-3", "lxd-cluster-4"} <= set(before.values())
    sim.log.clear()
    with sim.interleaved():
        sim.remove_units(3, 4)
        sim.settle()
    assert [(r.uid, r.name, r.error) for r in sim.log if r.error] == []
    said = logs(sim, 3) + logs(sim, 4)
    assert "waiting for another to mark itself" in said  # one found the other unmarked, and waited
    after = instance_locations(cluster)
    assert sorted(after) == sorted(before)
    assert not {"lxd-cluster-3", "lxd-cluster-4"} & set(after.values())
    assert set(statuses_of(cluster).values()) == {"Running"}
    moves = [line for uid in (3, 4) for line in logs(sim, uid).splitlines() if line.startswith("moving ")]
    assert moves and not [m for m in moves if m.endswith(("to lxd-cluster-3", "to lxd-cluster-4"))], moves
    assert members_of(cluster, 0) == ["lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2"]


# -- 3. a join that keeps failing with the same LXD error ----------------------------------------------
def test_a_join_failing_the_same_way_blocks_with_lxd_words_and_costs_two_tokens(lab):
    lab.up(2)
    # a pool `local` of another driver on the joiner: LXD refuses every join the same way
    lab.lxc(lab.members[1], "storage", "create", "local", "btrfs", "size=1GiB")
    sim = charm_sim(lab, {"storage-driver": "dir"})
    sim.deploy(2)
    sim.settle()
    for _ in range(10):  # an hour of update-status, compressed
        sim.update_status()
        sim.settle()
    status = sim.units[1].status
    assert status.name == "blocked" and "join failed" in status.message, status
    assert 'Storage pool "local" is of type "btrfs" instead of "dir"' in status.message
    assert "fix the cause on this machine" in status.message
    issued = [line for line in logs(sim, 0).splitlines() if "issued a join token" in line]
    assert len(issued) == 2, issued  # not one per hook
    assert sim.units[0].status.name == "active"


# -- 4. storage-device paths os.stat cannot look at -------------------------------------------------------
@pytest.mark.parametrize(
    "device, words",
    [("/dev/null/vdb", "Not a directory"), ("/dev/" + "x" * 4090, "storage-device is 4095 characters long")],
)
def test_a_storage_device_os_stat_cannot_look_at_blocks_with_the_fix(lab, device, words):
    lab.up(1, loop_devices=True)
    before = snapshot(lab, lab.members[0])
    sim = charm_sim(lab, {"storage-driver": "btrfs", "storage-device": device}, storage_for_unit=lambda uid: None)
    sim.deploy(1)
    sim.settle()
    status = sim.units[0].status
    assert status.name == "blocked" and words in status.message and "storage-device" in status.message, status
    assert len(status.message) < 300 and "x" * 100 not in status.message
    assert snapshot(lab, lab.members[0]) == before


# -- 5. /dev/loopN beside a mounted /dev/loopN0 ------------------------------------------------------------
def free_loop_pair() -> int:
    used = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    for n in range(131, 200):
        if f"/dev/loop{n}:" not in used and f"/dev/loop{n}0:" not in used:
            return n
    raise RuntimeError("no free loop pair")


def test_an_empty_loop41_is_not_refused_because_loop410_is_mounted(lab):
    lab.up(1)
    n = free_loop_pair()
    short, long_ = f"/dev/loop{n}", f"/dev/loop{n}0"
    made, mnt = [], lab.root / "mnt410"
    mnt.mkdir()
    try:
        for path, minor in ((short, n), (long_, n * 10)):
            if not os.path.exists(path):
                subprocess.run(["mknod", path, "b", "7", str(minor)], check=True)
                made.append(path)
            image = lab.root / f"{os.path.basename(path)}.img"
            subprocess.run(["truncate", "-s", "300M", str(image)], check=True)
            subprocess.run(["losetup", path, str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", long_], check=True)
        subprocess.run(["mount", long_, str(mnt)], check=True)
        sim = charm_sim(lab, {"storage-driver": "btrfs", "storage-device": short}, storage_for_unit=lambda uid: None)
        sim.deploy(1)
        sim.settle()
        assert sim.units[0].status.name == "active", sim.units[0].status  # loop{n} is empty and unused
        source = lab.lxc(lab.members[0], "storage", "get", "local", "source", "--target", "lxd-cluster-0")
        assert source.stdout.strip() == short
    finally:
        lab.stop(lab.members[0])
        subprocess.run(["umount", str(mnt)], capture_output=True)
        for path in (short, long_):
            subprocess.run(["losetup", "-d", path], capture_output=True)
        for path in made:
            os.unlink(path)


def test_a_mounted_device_is_still_refused(lab):
    lab.up(1, loop_devices=True)
    dev, mnt = lab.members[0].loop, lab.root / "mnt"
    mnt.mkdir()
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    subprocess.run(["mount", dev, str(mnt)], check=True)
    try:
        sim = charm_sim(lab, {"storage-driver": "btrfs", "storage-device": dev}, storage_for_unit=lambda uid: None)
        sim.deploy(1)
        sim.settle()
        assert "is mounted" in sim.units[0].status.message
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# -- 6. credentials inside maas-api-url -----------------------------------------------------------------
def test_a_maas_url_with_credentials_is_refused_and_never_reaches_lxd(lab):
    cluster = form(lab, 1, driver="dir")
    sim = cluster.sim
    before = snapshot(lab, cluster.member(0))
    sim.set_config(**{"maas-api-url": "http://admin:hunter2@maas:5240/MAAS", "maas-api-key": "secret:" + "a" * 20})
    sim.settle()
    status = sim.units[0].status
    assert status.name == "blocked" and "maas-api-url must not carry credentials" in status.message
    assert "hunter2" not in status.message and "hunter2" not in logs(sim, 0)
    assert snapshot(lab, cluster.member(0)) == before
    assert "hunter2" not in cluster.lxc(0, "config", "show").stdout


# -- 7. cluster-port held by another service ---------------------------------------------------------------
def test_a_cluster_port_another_service_holds_blocks_naming_the_option_and_the_fix(lab):
    lab.up(1)
    member = lab.members[0]
    squatter = subprocess.Popen(
        [
            "nsenter",
            f"--net=/run/netns/{member.netns}",
            "python3",
            "-c",
            "import socket, time\n"
            f"s = socket.socket(); s.bind(('{member.address}', 2222)); s.listen(); time.sleep(600)",
        ],
        start_new_session=True,
    )
    try:
        time.sleep(0.5)
        before = snapshot(lab, member)
        sim = charm_sim(lab, {"storage-driver": "dir", "cluster-port": 2222})
        sim.deploy(1)
        sim.settle()
        status = sim.units[0].status
        assert status.name == "blocked", status
        assert (
            "cluster-port 2222 is taken on this machine" in status.message
            and "address already in use" in status.message
        )
        assert snapshot(lab, member) == before
    finally:
        os.killpg(squatter.pid, signal.SIGTERM)
        squatter.wait()
    sim.update_status()
    sim.settle()
    assert sim.units[0].status.name == "active", sim.units[0].status  # the port is free: it bootstraps
