"""The LXD calls of the instances' network and of the pool facts a joiner needs (no ops import).

Takes the LXD object and uses its REST helper, as metrics.py does; network.py decides.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from lxd_paths import SNAP_LXD_DIR
from network import FAN_SYSCTL, NETWORK_NAMES, HostFacts, NetworkChoice
from preseed import POOL_NAME
from workload import LXD, LXDError

logger = logging.getLogger(__name__)
PROC = "/proc"
_LOCAL = re.compile(r"^\s+/(\d+) \w+ LOCAL$")  # a fib_trie leaf's line for a local address: /32 host LOCAL


def host_facts(lxd: LXD, choice: NetworkChoice, interface: str, underlay: str) -> HostFacts:
    """What this host offers the chosen mode (only what that mode needs is asked)."""
    bundled = lxd.lxd_dir.startswith(SNAP_LXD_DIR)  # the snap ships dnsmasq, iptables and nft
    fixed_subnet = choice.mode == "managed-bridge" and choice.subnet != "auto"  # auto: LXD picks a free one
    return HostFacts(
        bridge_type=lxd.network_type(choice.bridge) if choice.mode == "bridged" else None,
        interface=interface,
        underlay=underlay,
        dnsmasq=bundled or shutil.which("dnsmasq") is not None,
        firewall=bundled or any(shutil.which(t) for t in ("iptables", "nft")),
        fan=os.path.exists(FAN_SYSCTL),
        in_use=ipv4_in_use(lxd.info().pid, choice.network) if fixed_subnet else (),
    )


def ipv4_in_use(pid: int, own_bridge: str) -> tuple[tuple[str, str], ...]:
    """The IPv4 routes and local addresses in LXD's network namespace (/proc/PID/net: where it makes
    its bridges, the host's own outside a test lab), but those of the charm's own bridge `own_bridge`,
    as (CIDR, name). The default route overlaps everything and is left out."""
    base = Path(PROC, str(pid or "self"), "net")
    try:
        route_table, trie = (base / "route").read_text(), (base / "fib_trie").read_text()
    except OSError as e:
        logger.warning("cannot read %s (%s): managed-bridge-subnet not checked against the host's routes", base, e)
        return ()
    routes = [r for r in parse_routes(route_table) if r[0].prefixlen]
    found: dict[str, str] = {}
    for address in parse_local_addresses(trie):
        via = [(net, dev) for net, gateway, dev in routes if not gateway and address.subnet_of(net)]
        dev = max(via, key=lambda r: r[0].prefixlen)[1] if via else ""
        if dev != own_bridge:
            shown = address.network_address if address.prefixlen == 32 else address
            found[str(address)] = f"address {shown}" + (f" ({dev})" if dev else "")
    for net, gateway, dev in routes:
        if dev != own_bridge:
            found.setdefault(str(net), f"route {net}" + (f" via {gateway}" if gateway else "") + f" ({dev})")
    return tuple(found.items())


def parse_routes(text: str) -> list[tuple[ipaddress.IPv4Network, str, str]]:
    """/proc/net/route: (destination, gateway or "", interface) of each IPv4 route of the main table;
    addresses are hexadecimal in the kernel's (little-endian) byte order."""

    def address(word: str) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(word), "little"))

    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8:
            dev, destination, gateway, mask = fields[0], fields[1], fields[2], fields[7]
            net = ipaddress.IPv4Network(f"{address(destination)}/{address(mask)}", strict=False)
            routes.append((net, "" if int(gateway, 16) == 0 else str(address(gateway)), dev))
    return routes


def parse_local_addresses(text: str) -> list[ipaddress.IPv4Network]:
    """/proc/net/fib_trie: the host's own IPv4 addresses (leaves of type LOCAL), e.g. 10.0.0.2/32 and 127.0.0.0/8."""
    found, leaf = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("|-- "):
            leaf = line.split("|-- ", 1)[1].strip()
        elif (local := _LOCAL.match(line)) and leaf:
            net = ipaddress.IPv4Network(f"{leaf}/{local.group(1)}", strict=False)
            if net not in found:
                found.append(net)
    return found


def _get(lxd: LXD, path: str, **params: Any) -> dict[str, Any] | None:
    try:
        return lxd._api("get", path, params=params)["metadata"] if params else lxd._api("get", path)["metadata"]
    except LXDError as e:
        if "not found" in str(e).lower():
            return None
        raise


def ensure_network(lxd: LXD, choice: NetworkChoice, interfaces: dict[str, str], underlay: str) -> list[str]:
    """The managed network of the mode on every member: pending per member (its own keys), then
    instantiated cluster-wide; a half-made or errored one is removed and made again. Returns changes."""
    name = choice.network
    wanted = choice.global_config(underlay)
    current = _get(lxd, f"networks/{name}")
    if current and current.get("status") == "Created":
        if stale := _stale(current, choice, underlay):
            lxd._api("patch", f"networks/{name}", json={"config": stale})
            return [f"network {name}: {', '.join(sorted(stale))}"]
        return []
    if current:  # pending or errored from an earlier attempt
        lxd._api("delete", f"networks/{name}")
    kind = choice.network_type()
    for member, interface in sorted(interfaces.items()):
        body = {"name": name, "type": kind, "config": choice.member_config(interface)}
        lxd._api("post", "networks", json=body, params={"target": member})
    try:
        lxd._api("post", "networks", json={"name": name, "type": kind, "config": wanted})
    except LXDError:
        try:
            lxd._api("delete", f"networks/{name}")  # nothing half-made is left behind
        except LXDError:
            pass
        raise
    return [f"network {name} created"]


def network_ready(lxd: LXD, choice: NetworkChoice) -> bool:
    """The mode's managed network exists on every member with the wanted keys (bridged: nothing to make)."""
    if not choice.network:
        return True
    current = _get(lxd, f"networks/{choice.network}")
    return bool(
        current and current.get("status") == "Created" and not _stale(current, choice, current_underlay(current))
    )


def current_underlay(network: dict[str, Any]) -> str:
    return str((network.get("config") or {}).get("fan.underlay_subnet", ""))


def _stale(current: dict[str, Any], choice: NetworkChoice, underlay: str) -> dict[str, str]:
    wanted = choice.global_config(underlay)
    if wanted.get("ipv4.address") == "auto":  # LXD picked one: keep it
        wanted.pop("ipv4.address")
    return {k: v for k, v in wanted.items() if (current.get("config") or {}).get(k) != v}


def default_nic(lxd: LXD) -> dict[str, str]:
    profile = _get(lxd, "profiles/default") or {}
    return dict((profile.get("devices") or {}).get("eth0") or {})


def set_default_nic(lxd: LXD, nic: dict[str, str]) -> bool:
    """eth0 of the default profile (LXD applies it to the instances using the profile)."""
    profile = _get(lxd, "profiles/default") or {}
    devices = dict(profile.get("devices") or {})
    if devices.get("eth0") == nic:
        return False
    devices["eth0"] = nic
    body = {"config": profile.get("config") or {}, "description": profile.get("description", ""), "devices": devices}
    lxd._api("put", "profiles/default", json=body)
    return True


def drop_unused_networks(lxd: LXD, keep: str) -> list[str]:
    """Managed networks of other modes that nothing uses any more (the charm made them)."""
    dropped = []
    for name in NETWORK_NAMES.values():
        if name == keep:
            continue
        network = _get(lxd, f"networks/{name}")
        if network and network.get("managed") and not network.get("used_by"):
            lxd._api("delete", f"networks/{name}")
            dropped.append(name)
    return dropped


def pool_facts(lxd: LXD, server_name: str) -> tuple[str, str]:
    """The driver of the pool `local` and its loop size on this member ("" when on a device)."""
    pool = _get(lxd, f"storage-pools/{POOL_NAME}") or {}
    mine = _get(lxd, f"storage-pools/{POOL_NAME}", target=server_name) or {}
    config = mine.get("config") or {}
    size = "" if config.get("source", "").startswith("/dev/") else str(config.get("size", ""))
    return str(pool.get("driver", "")), size
