"""network.py: what each mode needs from a host (its routes and addresses read from procfs), eth0 of the default
profile, a joiner's member_config."""

from __future__ import annotations

from pathlib import Path

import pytest
from states import announced, ctx, make_state, published

from cluster_network import ipv4_in_use, parse_local_addresses, parse_routes
from lxd_paths import SNAP_LXD_DIR
from network import HostFacts, NetworkChoice, join_member_config, missing


def test_bridged_keeps_the_primers_nic_and_its_maas_subnets():
    nic = NetworkChoice("bridged", "br0").nic("lab-v4")
    assert nic == {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic", "maas.subnet.ipv4": "lab-v4"}


@pytest.mark.parametrize(
    ("mode", "network"), [("macvlan", "lxdmacvlan0"), ("managed-bridge", "lxdbr0"), ("fan", "lxdfan0")]
)
def test_the_other_modes_point_eth0_at_the_charms_managed_network(mode, network):
    choice = NetworkChoice(mode)
    assert choice.nic() == {"name": "eth0", "network": network, "type": "nic"}
    assert choice.key == f"{mode}:{network}"


def test_fan_is_a_fan_bridge_over_the_binding_subnet():
    choice = NetworkChoice("fan")
    assert choice.network_type() == "bridge"
    assert choice.global_config("10.0.0.0/16") == {"bridge.mode": "fan", "fan.underlay_subnet": "10.0.0.0/16"}
    assert choice.member_config("eth0") == {}


def test_fan_on_a_kernel_without_it_names_what_is_missing():
    lacking = missing(NetworkChoice("fan"), HostFacts(underlay="10.0.0.0/24", fan=False))
    assert "fan overlay" in lacking and "/proc/sys/net/fan is missing" in lacking and "macvlan" in lacking
    assert missing(NetworkChoice("fan"), HostFacts(underlay="10.0.0.0/24", fan=True)) == ""
    assert "IPv4 subnet" in missing(NetworkChoice("fan"), HostFacts(underlay="fd00::/64", fan=True))


def test_managed_bridge_names_the_missing_tools():
    lacking = missing(NetworkChoice("managed-bridge"), HostFacts(dnsmasq=False, firewall=False))
    assert "needs dnsmasq and iptables or nftables" in lacking
    assert missing(NetworkChoice("managed-bridge"), HostFacts()) == ""
    assert NetworkChoice("managed-bridge", subnet="10.9.0.1/24").global_config() == {
        "ipv4.address": "10.9.0.1/24",
        "ipv4.nat": "true",
        "ipv6.address": "none",
    }


def test_macvlan_needs_the_binding_interface_and_a_joiner_passes_it():
    assert "names none here" in missing(NetworkChoice("macvlan"), HostFacts(interface=""))
    assert missing(NetworkChoice("macvlan"), HostFacts(interface="eth1")) == ""
    assert join_member_config("macvlan:lxdmacvlan0", "eth1") == [
        {"entity": "network", "name": "lxdmacvlan0", "key": "parent", "value": "eth1"}
    ]
    assert join_member_config("managed-bridge:lxdbr0", "eth1") == []
    assert join_member_config("", "eth1") == []


def test_bridged_names_a_missing_or_wrong_bridge():
    assert missing(NetworkChoice("bridged", "br7"), HostFacts(bridge_type=None)).startswith("bridge br7 does not exist")
    assert "not a bridge" in missing(NetworkChoice("bridged", "eth0"), HostFacts(bridge_type="physical"))
    assert missing(NetworkChoice("bridged", "br0"), HostFacts(bridge_type="bridge")) == ""


def test_storage_sizes_compare_by_bytes():
    from config import size_bytes

    assert size_bytes("1GiB") == size_bytes("1024MiB") == 1024**3
    assert size_bytes("2G") == size_bytes("2GB") == 2 * 1000**3
    assert size_bytes("lots") == 0


def test_a_joiner_follows_the_clusters_pool_and_network_not_changed_options():
    from config import CharmConfig
    from instance_network import as_the_cluster_has_it
    from models import ClusterInfo

    changed = CharmConfig(storage_driver="btrfs", storage_size="5GiB", network_mode="managed-bridge")
    cluster = ClusterInfo("10.0.0.1:8443", "PEM", "fp", network="bridged:br1", pool_driver="dir", pool_size="1GiB")
    followed = as_the_cluster_has_it(changed, cluster)
    assert (followed.storage_driver, followed.storage_size) == ("dir", "1GiB")
    assert (followed.network_mode, followed.bridge) == ("bridged", "br1")
    assert as_the_cluster_has_it(changed, ClusterInfo()) == changed  # no cluster yet: the options


# -- a managed-bridge-subnet that overlaps the host's own network (issue 23.4) -----------------------
# tests/unit/procnet/4242/net holds /proc/self/net/route and fib_trie as read (Linux 6.18) in a network
# namespace with: lo 127.0.0.1/8 and 10.77.0.9/32; lab0 10.251.5.11/24 (a lab member's); lxdbr0
# 10.120.0.1/24 (the charm's own managed bridge); br0 with no address; 172.16.0.0/12 via 10.251.5.1
# dev lab0; default via 10.251.5.1 dev lab0.
PROCNET = Path(__file__).parent / "procnet"


@pytest.fixture
def procnet(monkeypatch):
    import cluster_network

    monkeypatch.setattr(cluster_network, "PROC", str(PROCNET))


def test_the_kernels_route_table_and_local_addresses_are_read_as_they_are():
    routes = parse_routes((PROCNET / "4242/net/route").read_text())
    assert [(str(net), gateway, dev) for net, gateway, dev in routes] == [
        ("0.0.0.0/0", "10.251.5.1", "lab0"),
        ("10.120.0.0/24", "", "lxdbr0"),
        ("10.251.5.0/24", "", "lab0"),
        ("172.16.0.0/12", "10.251.5.1", "lab0"),
    ]
    assert [str(a) for a in parse_local_addresses((PROCNET / "4242/net/fib_trie").read_text())] == [
        "10.77.0.9/32",
        "10.120.0.1/32",
        "10.251.5.11/32",
        "127.0.0.0/8",
        "127.0.0.1/32",
    ]


def test_the_networks_in_use_leave_out_the_default_route_and_the_charms_own_bridge(procnet):
    assert dict(ipv4_in_use(4242, "lxdbr0")) == {
        "10.77.0.9/32": "address 10.77.0.9",
        "10.251.5.11/32": "address 10.251.5.11 (lab0)",
        "127.0.0.0/8": "address 127.0.0.0/8",
        "127.0.0.1/32": "address 127.0.0.1",
        "10.251.5.0/24": "route 10.251.5.0/24 (lab0)",
        "172.16.0.0/12": "route 172.16.0.0/12 via 10.251.5.1 (lab0)",
    }
    assert ipv4_in_use(999999999, "lxdbr0") == ()  # no such process: nothing to check against, no crash


@pytest.mark.parametrize(
    "subnet, named",
    [
        ("10.251.5.254/24", "address 10.251.5.11 (lab0), route 10.251.5.0/24 (lab0)"),  # the member's own LAN
        ("10.251.0.1/16", "address 10.251.5.11 (lab0), route 10.251.5.0/24 (lab0)"),  # a wider one holding it
        ("172.20.0.1/24", "route 172.16.0.0/12 via 10.251.5.1 (lab0)"),  # hosts reached through a gateway
        ("10.77.0.1/24", "address 10.77.0.9"),  # an address with no route of its own
    ],
)
def test_a_subnet_overlapping_the_hosts_network_is_refused_naming_both(procnet, subnet, named):
    facts = HostFacts(in_use=ipv4_in_use(4242, "lxdbr0"))
    assert missing(NetworkChoice("managed-bridge", subnet=subnet), facts) == (
        f"managed-bridge-subnet {subnet} overlaps {named} on this host: the bridge would cut the host off "
        "from that network; set managed-bridge-subnet to a subnet no member uses, or auto (LXD picks a free one)"
    )


@pytest.mark.parametrize("subnet", ["10.120.0.1/24", "10.120.0.1/23", "10.121.0.1/24", "auto"])
def test_a_free_subnet_or_the_charms_own_bridge_or_auto_is_taken(procnet, subnet):
    facts = HostFacts(in_use=ipv4_in_use(4242, "lxdbr0"))
    assert missing(NetworkChoice("managed-bridge", subnet=subnet), facts) == ""


def test_an_overlapping_subnet_blocks_before_lxd_sees_anything(lxd, procnet):
    """Read from LXD's own network namespace (its server_pid), before bootstrap: Blocked, nothing changed."""
    lxd.pid, lxd.lxd_dir = 4242, SNAP_LXD_DIR  # the snap brings dnsmasq and iptables
    config = {"network-mode": "managed-bridge", "managed-bridge-subnet": "10.251.5.254/24"}
    out = ctx().run(ctx().on.install(), make_state(leader=True, config=config))
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(
        "managed-bridge-subnet 10.251.5.254/24 overlaps address 10.251.5.11 (lab0)"
    )
    assert lxd.mutations() == [] and lxd.managed == {}
    config["managed-bridge-subnet"] = "10.251.6.1/24"
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, config=config))
    assert out.unit_status.name != "blocked", out.unit_status
    assert lxd.managed["lxdbr0"]["config"]["ipv4.address"] == "10.251.6.1/24"


def test_changing_to_an_overlapping_subnet_after_deploy_changes_nothing(lxd, procnet, cluster_pem):
    lxd.pid, lxd.lxd_dir = 4242, SNAP_LXD_DIR
    lxd.be_member("lxd-cluster-0")
    lxd.managed["lxdbr0"] = {"type": "bridge", "config": {"ipv4.address": "10.120.0.1/24"}, "status": "Created"}
    config = {"network-mode": "managed-bridge", "managed-bridge-subnet": "172.16.0.1/24"}
    app = published(cluster_pem, network="managed-bridge:lxdbr0")
    state = make_state(leader=True, app=app, unit=announced(0), config=config, planned_units=1)
    out = ctx().run(ctx().on.config_changed(), state)
    assert out.unit_status.name == "blocked"
    assert "lxd-cluster-0: managed-bridge-subnet 172.16.0.1/24 overlaps route 172.16.0.0/12" in out.unit_status.message
    assert lxd.managed["lxdbr0"]["config"]["ipv4.address"] == "10.120.0.1/24"
