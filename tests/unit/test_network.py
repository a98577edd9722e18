"""network.py: what each mode needs from a host, eth0 of the default profile, a joiner's member_config."""

from __future__ import annotations

import pytest

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
