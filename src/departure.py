"""Scale-in: move a member's instances, of every project, to the emptiest online members that stay, then
leave the cluster.

A departure never strands an instance. The departing member is marked leaving in LXD's own
database first (every member sees it at once, unlike a Juju databag), so no other departing unit
moves instances onto it; a move whose start fails on the target is moved back and started where
it was; and any failure raises LeaveError, which fails the Juju hook: Juju then holds the removal
(the machine and its instances stay) and retries, while the status and juju-log say what to do.
No ops import here.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping

from action_checks import ActionError
from models import Instance, Member
from workload import LEAVING_KEY, LXD, LXDError

logger = logging.getLogger(__name__)
MOVE_ROUNDS = 3  # instances may land on us while we move ours away (another unit's move in flight)
RETRY_MOVE_AFTER = 600  # seconds before a move that failed (and was rolled back) is tried again
# `juju remove-unit a b`: Juju runs a's and b's hooks at the same time. A unit that sees the other one
# not marked yet waits this long in its hook (nothing moved yet), reading LXD's marks every POLL seconds
PEER_MARK_WAIT = 60
PEER_MARK_POLL = 2


class LeaveError(Exception):
    """The member could not leave; str() says what happened, where the instances are, and the fix."""


class MoveFailed(LXDError):
    """An instance could not move; it was put back (running again) where it was, unless said otherwise."""


def leave(lxd: LXD, name: str, planned: int | None = None, app: str = "", now: float = 0.0) -> None:
    """`juju remove-unit`: mark this member leaving, move its instances away, then leave while alive.

    planned: Juju's planned units (goal state: units not dying). If more unmarked online members
    of this application's units stay than Juju plans, another departing unit has not marked
    itself yet: wait for it up to PEER_MARK_WAIT seconds (its hook runs beside this one), then fail
    and let Juju retry rather than risk moving onto it.
    """
    if not lxd.info().clustered:
        return
    members = lxd.members()
    if [m.server_name for m in members] == [name]:
        logger.warning("%s is the last member: the cluster stays on this machine", name)
        return
    mine = next((m for m in members if m.server_name == name), None)
    if mine is None:
        return  # removed already (remove-node, or a retry after the removal went through)
    now = now or time.time()
    if not mine.leaving:
        lxd.mark_leaving(name, "leaving")
    blocked = _recent_failures(mine.leaving, now)
    for _ in range(MOVE_ROUNDS):
        left = lxd.instances(location=name)  # of every project
        if not left:
            break
        stuck = sorted(set(blocked) & {i.ref for i in left})
        if stuck:
            again = time.strftime("%H:%M:%S UTC", time.gmtime(max(blocked.values()) + RETRY_MOVE_AFTER))
            raise LeaveError(
                f"{', '.join(stuck)} could not move (LXD's words in juju debug-log); "
                f"not stopped again before {again} (at once after `lxc cluster unset {name} {LEAVING_KEY}`)"
            )
        staying, units = _staying(lxd, name, app, planned)
        if planned is not None and len(units) > planned:
            raise LeaveError(
                f"{len(units)} members with units stay ({', '.join(units)}) but Juju plans {planned}: another "
                "unit is leaving and has not marked its member yet (Juju retries this hook), or one of them has "
                "no unit (remove-node it)"
            )
        try:
            move_off(lxd, name, left, logger.info, eligible=lambda m, ok=staying: m.server_name in ok)
        except MoveFailed as e:
            failed = str(e).split(" ", 1)[0]  # its ref: no space in a project or instance name
            lxd.mark_leaving(name, f"leaving {failed}@{int(now)}")
            raise LeaveError(str(e)) from None
    lxd.remove_member(name)
    logger.info("%s left the cluster", name)


def _staying(lxd: LXD, name: str, app: str, planned: int | None) -> tuple[set[str], list[str]]:
    """The members instances may move to, and those of them with units of `app`; while more of these
    stay than Juju plans, LXD's marks are read again for up to PEER_MARK_WAIT seconds."""
    deadline = time.monotonic() + PEER_MARK_WAIT
    members = lxd.members()
    while True:
        staying = targets(members, name)
        units = sorted(m for m in staying if _is_unit(m, app))
        if planned is None or len(units) <= planned or time.monotonic() >= deadline:
            return staying, units
        logger.info(
            "%d members with units stay but Juju plans %d: waiting for another to mark itself", len(units), planned
        )
        time.sleep(PEER_MARK_POLL)
        members = lxd.members(fresh=True)


def advice(name: str, unit: str, error: Exception) -> str:
    """What the operator sees when a leave failed: what happened and what to do next."""
    return (
        f"cannot leave the cluster: {error}; {name} stays a member with its instances. Fix: make room on "
        f"another member or move/delete the instance by hand (lxc move NAME --target MEMBER [--project P]), then "
        f"`juju resolve {unit}`; Juju holds the removal until this hook succeeds"
    )


def targets(members: list[Member], name: str) -> set[str]:
    """Members instances may move to: online, not `name`, and not leaving."""
    return {m.server_name for m in members if m.server_name != name and m.status == "Online" and not m.leaving}


def move_off(
    lxd: LXD,
    name: str,
    instances: list[Instance],
    log: Callable[[str], object],
    members: list[Member] | None = None,
    eligible: Callable[[Member], bool] = lambda m: True,
) -> dict[str, str]:
    """Move instances (of any project) off member `name`, each to the eligible online member with the
    fewest instances of all projects; returns each instance's ref -> its new member.

    The member list is read again before each move: a member marked leaving meanwhile is skipped.
    """
    moved = {}
    for instance in instances:
        current = lxd.members() if members is None or moved else members
        allowed = {m.server_name for m in current if eligible(m)} & targets(current, name)
        counts = dict.fromkeys(allowed, 0)
        for other in lxd.instances():
            if other.location in counts:
                counts[other.location] += 1
        target = pick_target(counts)
        log(f"moving {instance.ref} from {name} to {target}")
        move_instance(lxd, instance, name, target, log)
        moved[instance.ref] = target
    return moved


def move_instance(lxd: LXD, instance: Instance, source: str, target: str, log: Callable[[str], object]) -> None:
    """Stop, move, start, in its project; if the move or the start fails, the instance goes back and
    runs where it was."""
    name, project, ref = instance.name, instance.project, instance.ref
    running = lxd.instance(name, project).status == "Running"
    if running:
        lxd.set_instance_state(name, "stop", project)
    try:
        lxd.migrate(name, target, project)
    except LXDError as e:
        _restart(lxd, instance, running)
        raise MoveFailed(f"{ref} cannot move to {target}: {e}; it {_where(running, source)}") from None
    if not running:
        return
    try:
        lxd.set_instance_state(name, "start", project)
    except LXDError as e:
        log(f"{ref} does not start on {target} ({e}): moving it back to {source}")
        try:
            lxd.migrate(name, source, project)
            lxd.set_instance_state(name, "start", project)
        except LXDError as back:
            raise MoveFailed(
                f"{ref} cannot start on {target}: {e}; moving it back to {source} failed too ({back}): "
                f"it is stopped on {lxd.instance(name, project).location}"
            ) from None
        raise MoveFailed(f"{ref} cannot start on {target}: {e}; it {_where(True, source)}") from None


def pick_target(counts: Mapping[str, int]) -> str:
    """The member with the fewest instances (LXD's own placement rule); ties by name."""
    if not counts:
        raise ActionError("no other online member to move instances to (members that are leaving do not count)")
    return min(sorted(counts), key=lambda m: counts[m])


def _restart(lxd: LXD, instance: Instance, running: bool) -> None:
    if running:
        try:
            lxd.set_instance_state(instance.name, "start", instance.project)
        except LXDError as e:
            logger.error("%s did not start again after a failed move: %s", instance.ref, e)


def _where(running: bool, source: str) -> str:
    return f"runs again on {source}" if running else f"stays (stopped) on {source}"


def _is_unit(member: Member | str, app: str) -> bool:
    name = member if isinstance(member, str) else member.server_name
    return bool(app) and re.fullmatch(rf"{re.escape(app)}-\d+", name) is not None


def _recent_failures(leaving: str, now: float) -> dict[str, int]:
    """Instances whose move failed less than RETRY_MOVE_AFTER ago (recorded on the member), and
    when: a Juju retry must not stop and restart them every few seconds."""
    failed = {}
    for entry in leaving.split()[1:]:
        instance, _, when = entry.rpartition("@")
        if when.isdigit() and now - int(when) < RETRY_MOVE_AFTER:
            failed[instance] = int(when)
    return failed
