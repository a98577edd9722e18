"""A charm-formed LXD cluster on real daemons: the lab's members played as Juju units.

Shared by the functional tests, the demo (the primer's walkthrough) and the benchmarks: unit N
of the application talks to lab member N+1 (its LXD_DIR, its address, its loop device).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

from tests.harness.juju import JujuSim
from tests.harness.lab import Lab, Member

for _var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)  # pylxd talks to unix sockets; a CA bundle variable only confuses it


@dataclasses.dataclass
class FormedCluster:
    lab: Lab
    sim: JujuSim
    seconds: float  # from the first hook until every unit settled
    hooks: int

    def member(self, uid: int) -> Member:
        return self.lab.members[uid]

    def lxc(self, uid: int, *args: str, **kw: Any):
        return self.lab.lxc(self.member(uid), *args, **kw)

    def hook_seconds(self, uid: int) -> float:
        """The longest hook of a unit: its bootstrap or its join."""
        return max((r.seconds for r in self.sim.log if r.uid == uid), default=0.0)


def charm_sim(
    lab: Lab, config: dict[str, Any] | None = None, storage_for_unit: Callable[[int], str | None] | None = None
) -> JujuSim:
    """Unit N plays on lab member N+1; its Juju storage `local` is that member's loop device
    unless storage_for_unit says otherwise."""
    from charm import LXDClusterCharm

    def member(uid: int) -> Member:
        return lab.members[uid]

    return JujuSim(
        LXDClusterCharm,
        env_for_unit=lambda uid: {"LXD_DIR": str(member(uid).lxd_dir)},
        address_for_unit=lambda uid: member(uid).address,
        storage_for_unit=storage_for_unit or (lambda uid: member(uid).loop),
        config=config,
    )


def form(lab: Lab, n: int, driver: str = "btrfs", config: dict[str, Any] | None = None) -> FormedCluster:
    """Start n members (loop devices for block drivers), deploy n units, settle."""
    lab.up(n, loop_devices=driver != "dir")
    sim = charm_sim(lab, {"storage-driver": driver, **(config or {})})
    sim.deploy(n)
    t0 = time.monotonic()
    hooks = sim.settle()
    return FormedCluster(lab, sim, time.monotonic() - t0, hooks)


def add_units(cluster: FormedCluster, count: int, loop_devices: bool) -> list[int]:
    """`juju add-unit -n count`: new lab members, new units, settle."""
    uids = []
    for _ in range(count):
        cluster.lab.add_member(loop_devices=loop_devices)
        uids.append(cluster.sim.add_unit())
    cluster.sim.settle()
    return uids
