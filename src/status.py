"""The unit's status: Stop, which ends a reconcile with its reason, and the member's own message."""

from __future__ import annotations

import ops

from goal_state import GoalState, goal_state
from models import MIN_MEMBERS, Member, server_name_of


class Stop(Exception):
    """Ends a reconcile with the status that says why (and what to do)."""

    def __init__(self, status: ops.StatusBase):
        super().__init__(status.message)
        self.status = status


def member_status(
    members: list[Member], unit: ops.Unit, app: ops.Application, relation: ops.Relation | None
) -> ops.StatusBase:
    """`member lxd-cluster-1 (database) of 3, fully operational`, and what needs attention."""
    name = server_name_of(unit.name)
    mine = next((m for m in members if m.server_name == name), None)
    if mine is None:
        return ops.WaitingStatus("not a cluster member yet")
    role = mine.database_role if mine.database_role != "-" else "no database role"
    message = f"member {name} of {len(members)} ({role}), {mine.message.lower()}"
    down = sorted(m.server_name for m in members if m.status.lower() != "online")
    if down:
        message += f"; not online: {', '.join(down)}"
    units = {name} | {server_name_of(u.name) for u in relation.units} if relation else {name}
    # a member whose unit this unit does not see: Juju drops a unit it removes from the others' view at
    # once (state/relationunit.go PrepareLeaveScope), and shows a joiner only from its relation-joined on
    unseen = [m for m in members if m.server_name not in units]
    juju = goal_state() if unseen else GoalState({})
    dying = {server_name_of(u) for u in juju.dying}
    planned_names = {server_name_of(u) for u in juju.units}
    # a member whose unit Juju is removing leaves by itself only while its LXD is online
    stale = sorted(
        m.server_name
        for m in unseen
        if m.status != "Online" and (m.server_name in dying or m.server_name not in planned_names)
    )
    if stale:
        message += f"; stale member {', '.join(stale)} has no unit: run force-remove"
    orphans = sorted(m.server_name for m in unseen if m.status == "Online" and m.server_name not in planned_names)
    if orphans:  # e.g. its unit was removed with --force after its leave failed: it still serves
        message += f"; member {', '.join(orphans)} is online but has no unit: remove-node it (evacuate=true)"
    leaving = sorted(
        m.server_name
        for m in members
        if m.server_name != name
        and ((m.server_name in dying and m.status == "Online") or (m.leaving and m.server_name in units))
    )
    if leaving:
        message += f"; leaving: {', '.join(leaving)}"
    if len(members) < MIN_MEMBERS and app.planned_units() <= len(members):
        message += f"; fewer than {MIN_MEMBERS} members: no database redundancy"
    if mine.status.lower() == "evacuated":
        return ops.MaintenanceStatus(message)
    return ops.ActiveStatus(message)
