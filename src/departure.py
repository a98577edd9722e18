"""Scale-in: move a member's instances to the emptiest online members, then leave the cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from action_checks import ActionError
from models import Member
from workload import LXD

logger = logging.getLogger(__name__)


def leave(lxd: LXD, name: str) -> None:
    """`juju remove-unit`: move this member's instances away, then leave while alive."""
    if not lxd.info().clustered:
        return
    members = lxd.members()
    if [m.server_name for m in members] == [name]:
        logger.warning("%s is the last member: the cluster stays on this machine", name)
        return
    mine = lxd.instances(location=name)
    if mine:
        move_off(lxd, name, members, [i.name for i in mine], logger.info)
    lxd.remove_member(name)
    logger.info("%s left the cluster", name)


def move_off(
    lxd: LXD, name: str, members: list[Member], instances: list[str], log: Callable[[str], object]
) -> dict[str, str]:
    """Move instances off member `name`, each to the online member with fewest instances."""
    counts = {m.server_name: 0 for m in members if m.server_name != name and m.status == "Online"}
    for instance in lxd.instances():
        if instance.location in counts:
            counts[instance.location] += 1
    moved = {}
    for instance in instances:
        target = pick_target(counts)
        log(f"moving {instance} from {name} to {target}")
        lxd.move_instance(instance, target)
        counts[target] += 1
        moved[instance] = target
    return moved


def pick_target(counts: Mapping[str, int]) -> str:
    """The member with the fewest instances (LXD's own placement rule); ties by name."""
    if not counts:
        raise ActionError("no other online member to move instances to")
    return min(sorted(counts), key=lambda m: counts[m])
