"""The instances' network on real daemons: each mode this kernel supports, and every option's
meaning after deploy (applied cluster-wide, or Blocked with the reason and nothing changed).

The fan needs an Ubuntu kernel (this lab's Debian kernel has none): tests/unit/test_network.py.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.harness.cluster import FormedCluster, add_units, charm_sim, form

pytestmark = pytest.mark.functional


def eth0(cluster: FormedCluster, uid: int = 0) -> dict:
    return yaml.safe_load(cluster.lxc(uid, "profile", "show", "default").stdout)["devices"].get("eth0", {})


def launch(cluster: FormedCluster, name: str, member: int) -> None:
    cluster.lxc(0, "launch", "busybox", name, "--target", f"lxd-cluster-{member}", "-q")


def sh(cluster: FormedCluster, name: str, command: str, check: bool = True):
    return cluster.lxc(0, "exec", name, "--", "sh", "-c", command, check=check)


def pings(cluster: FormedCluster, name: str, address: str) -> bool:
    return sh(cluster, name, f"ping -c1 -W2 {address}", check=False).returncode == 0


def statuses(cluster: FormedCluster) -> list[str]:
    return [f"{u.status.name}: {u.status.message}" for u in cluster.sim.units.values()]


def test_macvlan_instances_on_two_members_reach_each_other_and_the_host_network(lab):
    cluster = form(lab, 2, driver="dir", config={"network-mode": "macvlan"})
    assert all(s.startswith("active") for s in statuses(cluster)), statuses(cluster)
    assert eth0(cluster) == {"name": "eth0", "network": "lxdmacvlan0", "type": "nic"}
    for uid in range(2):  # the parent is each member's own interface carrying its cluster address
        parent = cluster.lxc(0, "network", "get", "lxdmacvlan0", "parent", "--target", f"lxd-cluster-{uid}")
        assert parent.stdout.strip() == "lab0"
    add_units(cluster, 1, loop_devices=False)  # a joiner passes its own parent in member_config
    assert cluster.sim.units[2].status.name == "active", cluster.sim.units[2].status
    lab.import_image(cluster.member(0))
    for uid in range(3):
        launch(cluster, f"c{uid}", uid)
        sh(cluster, f"c{uid}", f"ip addr add {lab.net}.{201 + uid}/24 dev eth0")
    assert pings(cluster, "c0", f"{lab.net}.202")  # member A's instance reaches member B's
    assert pings(cluster, "c2", f"{lab.net}.201")  # the joiner's too
    assert pings(cluster, "c1", f"{lab.net}.1")  # and the hosts' network segment (the lab bridge)


def test_managed_bridge_gives_dhcp_addresses_per_member_and_nat_to_the_other_members(lab):
    a, b, _ = lab.net.split(".")
    subnet = f"{a}.{b}.{int(_) + 100}.1/24"
    cluster = form(lab, 2, driver="dir", config={"network-mode": "managed-bridge", "managed-bridge-subnet": subnet})
    assert all(s.startswith("active") for s in statuses(cluster)), statuses(cluster)
    assert eth0(cluster) == {"name": "eth0", "network": "lxdbr0", "type": "nic"}
    network = yaml.safe_load(cluster.lxc(0, "network", "show", "lxdbr0").stdout)
    assert network["status"] == "Created" and network["config"]["ipv4.address"] == subnet
    assert sorted(network["locations"]) == ["lxd-cluster-0", "lxd-cluster-1"]
    lab.import_image(cluster.member(0))
    gateway = subnet.split("/")[0]
    for uid in range(2):
        launch(cluster, f"c{uid}", uid)
        lease = sh(cluster, f"c{uid}", "udhcpc -i eth0 -n -q -t 5 -s /bin/true 2>&1").stdout
        address = re.search(r"lease of (\S+) obtained", lease).group(1)  # the member's own dnsmasq
        sh(cluster, f"c{uid}", f"ip addr add {address}/24 dev eth0 && ip route add {lab.net}.0/24 via {gateway}")
        assert pings(cluster, f"c{uid}", gateway)  # its member
        other = lab.members[1 - uid].address
        assert pings(cluster, f"c{uid}", other), f"c{uid} cannot reach {other} through its member's NAT"


def test_a_managed_bridge_subnet_inside_the_members_own_network_is_refused_before_lxd_sees_it(lab):
    """Issue 23.4: the member's lab0 (NET.11/24) is in the network namespace LXD runs in, where the
    bridge would be made; the charm reads it there (/proc/<server_pid>/net), not in its own."""
    member = lab.up(1)[0]
    clash = f"{lab.net}.254/24"
    sim = charm_sim(lab, {"storage-driver": "dir", "network-mode": "managed-bridge", "managed-bridge-subnet": clash})
    sim.deploy(1)
    sim.settle()
    assert sim.units[0].status.message == (
        f"managed-bridge-subnet {clash} overlaps address {member.address} (lab0), route {lab.net}.0/24 (lab0) on "
        "this host: the bridge would cut the host off from that network; set managed-bridge-subnet to a subnet "
        "no member uses, or auto (LXD picks a free one)"
    )
    assert lab.lxc(member, "cluster", "list", check=False).returncode != 0  # not even bootstrapped
    a, b, c = lab.net.split(".")
    free = f"{a}.{b}.{int(c) + 100}.1/24"
    sim.set_config(**{"managed-bridge-subnet": free})
    sim.settle()
    assert sim.units[0].status.name == "active", sim.units[0].status
    sim.set_config(**{"managed-bridge-subnet": clash})  # after deploy: blocked, the bridge keeps its subnet
    sim.settle()
    assert f"managed-bridge-subnet {clash} overlaps address {member.address}" in sim.units[0].status.message
    assert lab.lxc(member, "network", "get", "lxdbr0", "ipv4.address").stdout.strip() == free


def test_options_after_deploy_apply_cluster_wide_or_block_with_the_reason(lab):
    cluster = form(lab, 2, driver="dir")
    sim = cluster.sim
    assert eth0(cluster)["parent"] == "br0"
    # bridge: a bridge missing on one member blocks the leader with its name; nothing changes
    subprocess.run(["ip", "-n", lab.members[0].netns, "link", "add", "br1", "type", "bridge"], check=True)
    sim.set_config(bridge="br1")
    sim.settle()
    assert "lxd-cluster-1: bridge br1 does not exist" in sim.units[0].status.message, statuses(cluster)
    assert sim.units[1].status.name == "blocked" and "bridge br1 does not exist" in sim.units[1].status.message
    assert eth0(cluster)["parent"] == "br0"
    # once every member has it, the default profile follows
    subprocess.run(["ip", "-n", lab.members[1].netns, "link", "add", "br1", "type", "bridge"], check=True)
    sim.set_config()
    sim.settle()
    assert eth0(cluster)["parent"] == "br1" and all(s.startswith("active") for s in statuses(cluster))
    # network-mode: applied to a running instance's profile too
    lab.import_image(cluster.member(0))
    launch(cluster, "c0", 1)
    sim.set_config(**{"network-mode": "macvlan"})
    sim.settle()
    assert eth0(cluster) == {"name": "eth0", "network": "lxdmacvlan0", "type": "nic"}, statuses(cluster)
    assert all(s.startswith("active") for s in statuses(cluster)), statuses(cluster)
    assert "eth0" in cluster.lxc(0, "exec", "c0", "--", "ip", "link").stdout
    assert sim.app_data["network"] == "macvlan:lxdmacvlan0"
    # storage-driver: fixed; a unit added afterwards joins with the cluster's driver anyway
    sim.set_config(**{"storage-driver": "btrfs"})
    sim.settle()
    for unit in sim.units.values():
        assert (
            unit.status.message == "storage-driver is fixed once the cluster exists (it is dir): set storage-driver=dir"
        )
    add_units(cluster, 1, loop_devices=False)
    names = [m["server_name"] for m in yaml.safe_load(cluster.lxc(0, "cluster", "list", "--format", "yaml").stdout)]
    assert "lxd-cluster-2" in names, statuses(cluster)
    assert "storage-driver is fixed" in sim.units[2].status.message
    sim.set_config(**{"storage-driver": "dir"})
    sim.settle()
    assert all(s.startswith("active") for s in statuses(cluster)), statuses(cluster)


def test_storage_size_of_an_existing_loop_pool_is_fixed(lab):
    lab.up(1)
    sim = charm_sim(lab, {"storage-driver": "btrfs", "storage-size": "1GiB"}, storage_for_unit=lambda uid: None)
    sim.deploy(1)
    sim.settle()
    assert sim.units[0].status.name == "active", sim.units[0].status
    sim.set_config(**{"storage-size": "2GiB"})
    sim.settle()
    assert (
        sim.units[0].status.message
        == "storage-size is fixed once the cluster exists (it is 1GiB): set storage-size=1GiB"
    )
    sim.set_config(**{"storage-size": "1024MiB"})  # the same size, written otherwise
    sim.settle()
    assert sim.units[0].status.name == "active", sim.units[0].status
