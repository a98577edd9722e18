"""Pure builders of `lxd init --preseed` documents: state in, dict out, no I/O.

The bootstrap preseed forms the cluster on the first member (the primer's `lxd init` answers);
the join preseed is the primer's "modified preseed" every other member applies, with its own
address and its own storage `source` in `member_config`.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
from typing import Any

from redaction import REDACTED

POOL_NAME = "local"
AUTO_UPDATE_HOURS = "6"  # LXD's own default for images.auto_update_interval


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """Where this member's pool lives: a block device, or a loop file of `size` made by LXD."""

    driver: str
    source: str = ""
    size: str = ""

    def member_keys(self) -> dict[str, str]:
        """The member-specific pool keys (differ per member, so joiners pass them in member_config)."""
        if self.source:
            return {"source": self.source}
        if self.size and self.driver != "dir":
            return {"size": self.size}
        return {}


@dataclasses.dataclass(frozen=True)
class JoinCredential:
    """A join token (`POST /1.0/cluster/members`): every supported LXD has them (API extension
    clustering_join_token, in lxd-5.0.2 shared/version/api.go); the trust password is gone from
    LXD 6.1 (core.trust_password) and 6.3 (preseed cluster_password)."""

    value: str = dataclasses.field(repr=False)

    @property
    def fingerprint(self) -> str:
        """The cluster certificate fingerprint the token carries ("" for a malformed token)."""
        try:
            return str(json.loads(base64.b64decode(self.value))["fingerprint"])
        except (ValueError, KeyError, TypeError):
            return ""


@dataclasses.dataclass(frozen=True)
class MaasSettings:
    api_url: str = ""
    api_key: str = dataclasses.field(default="", repr=False)
    subnet_ipv4: str = ""
    subnet_ipv6: str = ""


def https_address(address: str, port: int) -> str:
    """HOST:PORT as LXD wants it, with brackets around an IPv6 address."""
    try:
        if ipaddress.ip_address(address).version == 6:
            return f"[{address}]:{port}"
    except ValueError:
        pass  # a host name
    return f"{address}:{port}"


def default_nic(bridge: str, maas: MaasSettings | None = None) -> dict[str, str]:
    nic = {"name": "eth0", "nictype": "bridged", "parent": bridge, "type": "nic"}
    if maas and maas.subnet_ipv4:
        nic["maas.subnet.ipv4"] = maas.subnet_ipv4
    if maas and maas.subnet_ipv6:
        nic["maas.subnet.ipv6"] = maas.subnet_ipv6
    return nic


def server_config(*, images_auto_update: bool, maas: MaasSettings | None = None) -> dict[str, str]:
    """Cluster-wide server configuration the charm owns."""
    config = {"images.auto_update_interval": AUTO_UPDATE_HOURS if images_auto_update else "0"}
    if maas and maas.api_url:
        config["maas.api.url"] = maas.api_url
        config["maas.api.key"] = maas.api_key
    return config


def bootstrap_preseed(
    *,
    server_name: str,
    address: str,
    port: int,
    pool: PoolSpec,
    bridge: str,
    images_auto_update: bool = True,
    maas: MaasSettings | None = None,
    with_nic: bool = True,
) -> dict[str, Any]:
    """The preseed that makes this member the first member of a new cluster (eth0 bridged on
    `bridge`; without with_nic none: the network is made cluster-wide right after)."""
    config = {"core.https_address": https_address(address, port)}
    config.update(server_config(images_auto_update=images_auto_update, maas=maas))
    return {
        "config": config,
        "cluster": {"server_name": server_name, "enabled": True},
        "storage_pools": [
            {
                "name": POOL_NAME,
                "driver": pool.driver,
                "description": "lxd-cluster pool",
                "config": pool.member_keys(),
            }
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {
                    "root": {"path": "/", "pool": POOL_NAME, "type": "disk"},
                    **({"eth0": default_nic(bridge, maas)} if with_nic else {}),
                },
            }
        ],
    }


def join_preseed(
    *,
    server_name: str,
    address: str,
    port: int,
    cluster_address: str,
    cluster_certificate: str,
    credential: JoinCredential,
    pool: PoolSpec,
    network_config: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The preseed that joins this member to the existing cluster at cluster_address; network_config:
    this member's keys of the cluster's managed network (network.join_member_config)."""
    member_config = [
        {"entity": "storage-pool", "name": POOL_NAME, "key": key, "value": value}
        for key, value in pool.member_keys().items()
    ] + list(network_config or ())
    cluster: dict[str, Any] = {
        "enabled": True,
        "server_name": server_name,
        "server_address": https_address(address, port),
        "cluster_address": cluster_address,
        "cluster_certificate": cluster_certificate,
        "cluster_token": credential.value,
    }
    if member_config:
        cluster["member_config"] = member_config
    return {"cluster": cluster}


def redacted(preseed: dict[str, Any]) -> dict[str, Any]:
    """A copy with every credential replaced, for logs and action output."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in preseed.items()}
    if "cluster_token" in out.get("cluster", {}):
        out["cluster"]["cluster_token"] = REDACTED
    if "maas.api.key" in out.get("config", {}):
        out["config"]["maas.api.key"] = REDACTED
    return out
