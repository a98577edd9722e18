"""An LXD that is initialised and in use before the charm came: what it holds, and what may happen to it.

The leader's host becomes the cluster's first member keeping its instances, images, pools and
profiles, but only with the operator's consent (adopt-existing-lxd): clustering is enabled on the
running daemon instead of applying a bootstrap preseed, which would rewrite the default profile
that its instances rely on. A joiner's LXD is erased by joining, so a joiner that holds instances
or images is refused. No ops import; the LXD calls are workload's.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Inventory:
    """What a standalone LXD holds (names only)."""

    instances: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # aliases, or short fingerprints
    pools: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()  # profiles other than an empty default
    networks: tuple[str, ...] = ()  # LXD-managed networks
    https_address: str = ""

    @property
    def initialised(self) -> bool:
        """`lxd init` (or an operator) has configured it: adopting or refusing, never a bootstrap."""
        return bool(self.instances or self.images or self.pools or self.profiles or self.networks)

    @property
    def holds_data(self) -> bool:
        return bool(self.instances or self.images)


def _count(items: tuple[str, ...], one: str, many: str, limit: int = 3) -> str:
    shown = ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
    return f"{len(items)} {one if len(items) == 1 else many} ({shown})"


def describe(inv: Inventory) -> str:
    """`2 instances (web, db), 1 image (busybox), storage pools (default), profiles (default, web)`."""
    parts = []
    if inv.instances:
        parts.append(_count(inv.instances, "instance", "instances"))
    if inv.images:
        parts.append(_count(inv.images, "image", "images"))
    if inv.pools:
        parts.append(f"storage pools ({', '.join(inv.pools)})")
    if inv.profiles:
        parts.append(f"profiles ({', '.join(inv.profiles)})")
    if inv.networks:
        parts.append(f"networks ({', '.join(inv.networks)})")
    return ", ".join(parts) or "nothing"


def refuse_adoption(inv: Inventory, consent: bool) -> str:
    """Why the leader must not form the cluster on this LXD yet ("" when it may)."""
    if not inv.initialised or consent:
        return ""
    return (
        f"LXD here is already initialised and in use: {describe(inv)}; set adopt-existing-lxd=true "
        "to make it the cluster's first member keeping them, or use a machine with a fresh LXD"
    )


def refuse_join(inv: Inventory) -> str:
    """Why this unit must not join (joining replaces its LXD database: instances and images are lost)."""
    if not inv.holds_data:
        return ""
    return (
        f"LXD here holds {describe(dataclasses.replace(inv, pools=(), profiles=(), networks=()))}: "
        "joining the cluster erases them; move them away (lxc move/lxc copy to another server) or delete "
        "them (lxc delete, lxc image delete), or remove this unit"
    )


def adopted_status(found: str, server_name: str) -> str:
    return f"adopted the existing LXD as {server_name}, the cluster's first member (kept: {found})"


def adopt(lxd: Any, inv: Inventory, server_name: str, https_address: str, pool: Any) -> None:
    """Enable clustering on the running daemon; add the charm's pool `local` beside the existing ones.

    lxd is a workload.LXD, pool a preseed.PoolSpec. The default profile is left as it is: its
    instances rely on its root disk, and LXD refuses to change that.
    """
    if "local" not in inv.pools:
        lxd.create_pool("local", pool.driver, pool.member_keys())
    lxd.enable_clustering(server_name, https_address)
