"""A charm-formed LXD cluster on real daemons: the lab's members played as Juju units.

Shared by the functional tests, the demo (the primer's walkthrough) and the benchmarks: unit N
of the application talks to lab member N+1 (its LXD_DIR, its address, its loop device).
"""

from __future__ import annotations

import dataclasses
import json
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


def membership(sim: JujuSim, uid: int) -> str:
    """ "yes" when a unit's membership secret says it is a cluster member, else "" """
    for owner, secret in sim.unit_secrets.values():
        if owner == uid and secret.label == "membership":
            return "yes" if secret.latest_content.get("member") == "yes" else ""
    return sim.units[uid].unit_data.get("member", "")  # written by earlier versions of the charm


def one_join_at_a_time() -> Callable[[JujuSim], None]:
    """An after-hook check: at most one unit becomes a member per hook, and only once every unit
    queued before it (still there, its join not failed) is a member: LXD never sees two joins at once."""
    before: set[int] = set()

    def check(sim: JujuSim) -> None:
        live = [u for u, unit in sim.units.items() if unit.alive]
        members = {u for u in live if membership(sim, u)}
        new = members - before
        assert len(new) <= 1, f"two units joined in one hook: {sorted(new)}"
        bags = [sim.app_data] + [sim.units[u].unit_data for u in live]
        queue = [entry for bag in bags for entry in json.loads(bag.get("join-queue") or "[]")]
        for uid in new:
            mine = [i for i, entry in enumerate(queue) if entry[0] == f"{sim.app}/{uid}"]
            for name, _, join_id in queue[: mine[0]] if mine else []:
                other = int(name.rsplit("/", 1)[1])
                bag = sim.units[other].unit_data if other in live else {}
                if other in live and bag.get("join-failed") != join_id and not bag.get("join-blocked"):
                    assert other in members, f"{uid} joined before {other}, queued ahead of it"
        before.clear()
        before.update(members)

    return check


def charm_sim(
    lab: Lab,
    config: dict[str, Any] | None = None,
    storage_for_unit: Callable[[int], str | None] | None = None,
    **sim_kw: Any,
) -> JujuSim:
    """Unit N plays on lab member N+1; its Juju storage `local` is that member's loop device
    unless storage_for_unit says otherwise. production-tuning is off unless config turns it on: the
    lab's members share the real host's kernel. sim_kw go to JujuSim (e.g. the packed charm's
    context_factory, tests/packed/packed_context.py)."""
    from charm import LXDClusterCharm

    def member(uid: int) -> Member:
        return lab.members[uid]

    return JujuSim(
        LXDClusterCharm,
        env_for_unit=lambda uid: {"LXD_DIR": str(member(uid).lxd_dir)},
        address_for_unit=lambda uid: member(uid).address,
        storage_for_unit=storage_for_unit or (lambda uid: member(uid).loop),
        config={"production-tuning": False, **(config or {})},
        **sim_kw,
    )


def form(lab: Lab, n: int, driver: str = "btrfs", config: dict[str, Any] | None = None, **sim_kw: Any) -> FormedCluster:
    """Start n members (loop devices for block drivers), deploy n units, settle."""
    lab.up(n, loop_devices=driver != "dir")
    sim = charm_sim(lab, {"storage-driver": driver, **(config or {})}, **sim_kw)
    sim.deploy(n)
    t0 = time.monotonic()
    hooks = sim.settle(max_hooks=hook_budget(n))
    return FormedCluster(lab, sim, time.monotonic() - t0, hooks)


def hook_budget(n: int) -> int:
    """Enough hooks for a formation of n units to settle: 500, or 4N² at scale (Juju's floor is ~2N²)."""
    return max(500, 4 * n * n)


def add_units(cluster: FormedCluster, count: int, loop_devices: bool) -> list[int]:
    """`juju add-unit -n count`: new lab members, new units, settle."""
    uids = []
    for _ in range(count):
        cluster.lab.add_member(loop_devices=loop_devices)
        uids.append(cluster.sim.add_unit())
    cluster.sim.settle()
    return uids
