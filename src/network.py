"""The instances' network: which mode, what each host needs for it, the default profile's eth0.

Pure: facts in, decisions out (cluster_network.py makes the LXD calls). Modes:
- bridged: eth0 bridged on an existing host bridge (the primer's br0); nothing is created.
- macvlan: an LXD-managed macvlan network whose per-member `parent` is the interface carrying
  that member's `cluster` binding address; instances sit on the host's own network segment.
- managed-bridge: an LXD-managed bridge on every member (same subnet everywhere, NAT out through
  the member); instances reach their member and, through NAT, what the member reaches.
- fan: an LXD fan bridge (bridge.mode=fan) over the binding subnet; needs an Ubuntu kernel.
"""

from __future__ import annotations

import dataclasses
import ipaddress

MODES = ("bridged", "macvlan", "managed-bridge", "fan")
NETWORK_NAMES = {"macvlan": "lxdmacvlan0", "managed-bridge": "lxdbr0", "fan": "lxdfan0"}
FAN_SYSCTL = "/proc/sys/net/fan"  # present only on kernels with the fan patches (Ubuntu's)


@dataclasses.dataclass(frozen=True)
class NetworkChoice:
    """What network-mode (and bridge / managed-bridge-subnet) ask for."""

    mode: str = "bridged"
    bridge: str = "br0"
    subnet: str = "auto"  # the managed bridge's ipv4.address (gateway/prefix) or auto

    @property
    def network(self) -> str:
        """Name of the LXD network the charm manages for this mode ("" for bridged: the host's)."""
        return NETWORK_NAMES.get(self.mode, "")

    @property
    def key(self) -> str:
        """What the profile's eth0 points at, e.g. bridged:br0 or macvlan:lxdmacvlan0."""
        return f"{self.mode}:{self.bridge if self.mode == 'bridged' else self.network}"

    def nic(self, maas_ipv4: str = "", maas_ipv6: str = "") -> dict[str, str]:
        """eth0 of the default profile."""
        if self.mode != "bridged":
            return {"name": "eth0", "network": self.network, "type": "nic"}
        nic = {"name": "eth0", "nictype": "bridged", "parent": self.bridge, "type": "nic"}
        if maas_ipv4:
            nic["maas.subnet.ipv4"] = maas_ipv4
        if maas_ipv6:
            nic["maas.subnet.ipv6"] = maas_ipv6
        return nic

    def network_type(self) -> str:
        return "macvlan" if self.mode == "macvlan" else "bridge"

    def member_config(self, interface: str) -> dict[str, str]:
        """The member-specific keys of the managed network (LXD asks every member for them)."""
        return {"parent": interface} if self.mode == "macvlan" else {}

    def global_config(self, underlay: str = "") -> dict[str, str]:
        """The cluster-wide keys, given once the network is pending on every member."""
        if self.mode == "managed-bridge":
            return {"ipv4.address": self.subnet, "ipv4.nat": "true", "ipv6.address": "none"}
        if self.mode == "fan":
            return {"bridge.mode": "fan", "fan.underlay_subnet": underlay}
        return {}


@dataclasses.dataclass(frozen=True)
class HostFacts:
    """What this host offers the network modes (gathered by cluster_network.host_facts)."""

    bridge_type: str | None = None  # type of the `bridge` interface (None: absent)
    interface: str = ""  # the interface carrying the cluster binding address
    underlay: str = ""  # the binding's subnet (CIDR)
    dnsmasq: bool = True  # LXD's DHCP/DNS for a managed bridge (the snap bundles it)
    firewall: bool = True  # iptables or nft, for the managed bridge's NAT (the snap bundles them)
    fan: bool = False  # the kernel has the fan overlay
    # IPv4 routes and addresses on this host, (CIDR, how to name it), but the charm's own bridge's
    in_use: tuple[tuple[str, str], ...] = ()


def missing(choice: NetworkChoice, facts: HostFacts) -> str:
    """What this host lacks for the choice, with the fix; "" when it can take it."""
    if choice.mode == "bridged":
        if facts.bridge_type is None:
            return f"bridge {choice.bridge} does not exist: create it, set bridge, or choose another network-mode"
        if facts.bridge_type != "bridge":
            return f"{choice.bridge} is a {facts.bridge_type} interface, not a bridge: set bridge"
        return ""
    if choice.mode == "macvlan" and not facts.interface:
        return (
            "network-mode macvlan needs the interface carrying the cluster binding address, and Juju "
            "names none here: choose network-mode managed-bridge"
        )
    if choice.mode == "managed-bridge" and (clash := overlapping(choice.subnet, facts.in_use)):
        return (
            f"managed-bridge-subnet {choice.subnet} overlaps {', '.join(clash)} on this host: the bridge "
            "would cut the host off from that network; set managed-bridge-subnet to a subnet no member "
            "uses, or auto (LXD picks a free one)"
        )
    if choice.mode == "managed-bridge":
        needs = (("dnsmasq", facts.dnsmasq), ("iptables or nftables", facts.firewall))
        lacking = [tool for tool, ok in needs if not ok]
        if lacking:
            return (
                f"network-mode managed-bridge needs {' and '.join(lacking)} on this host (LXD's DHCP and NAT "
                "for the bridge): install dnsmasq-base and iptables, or choose another network-mode"
            )
    if choice.mode == "fan":
        if not facts.fan:
            return (
                f"network-mode fan needs a kernel with the fan overlay (Ubuntu's; {FAN_SYSCTL} is missing "
                "here): choose network-mode macvlan or managed-bridge"
            )
        if not facts.underlay or ipaddress.ip_network(facts.underlay, strict=False).version != 4:
            return "network-mode fan needs an IPv4 subnet on the cluster binding: choose another network-mode"
    return ""


def overlapping(subnet: str, in_use: tuple[tuple[str, str], ...]) -> list[str]:
    """The names of the routes and addresses a managed bridge's subnet (gateway/prefix) overlaps."""
    if subnet == "auto":
        return []
    bridge = ipaddress.IPv4Interface(subnet).network
    return [name for cidr, name in in_use if bridge.overlaps(ipaddress.IPv4Network(cidr))]


def parse_choice(key: str) -> tuple[str, str]:
    """mode, name from a published key such as macvlan:lxdmacvlan0 (("", "") when empty)."""
    mode, _, name = key.partition(":")
    return mode, name


def join_member_config(network_key: str, interface: str) -> list[dict[str, str]]:
    """member_config entries a joiner passes for the cluster's managed network (macvlan: its parent)."""
    mode, name = parse_choice(network_key)
    if mode != "macvlan" or not name:
        return []
    return [{"entity": "network", "name": name, "key": "parent", "value": interface}]
