"""What Juju plans for this application, read once from the `goal-state` hook tool.

`goal-state --format=json` gives {"units": {name: {"status", "since"}}, "relations": {...}}
(worker/uniter/runner/jujuc/goal-state.go, formattedGoalState). `units` holds every unit of the
application that is not dead, joined or not, with its workload status, or `dying` once Juju is
removing it (apiserver/facades/agent/uniter/uniter.go:2358-2391 in 3.6, goalStateUnits:
`if unitLife == state.Dying`). Under `relations`, the remote application's entry carries the
relation's status (goalStateRelations: joining, joined, broken, suspended), never `dying`; only
units say `dying`. Whether a relation-broken means "the relation is going" or "this unit is going"
is therefore told by this unit's own entry: a live unit's relation breaks only when the relation
itself is dying or suspended (worker/uniter/relation/resolver.go NextOp: `remoteState.Life ==
life.Dying || relationSnapshot.Life == life.Dying || relationSnapshot.Suspended`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import ops

DYING = "dying"


@dataclasses.dataclass(frozen=True)
class GoalState:
    units: Mapping[str, str]  # unit name -> its workload status, or "dying"

    @property
    def dying(self) -> frozenset[str]:
        """The units Juju is removing (`juju remove-unit`, remove-application)."""
        return frozenset(name for name, status in self.units.items() if status == DYING)


def goal_state() -> GoalState:
    """This application's units as Juju plans them. A failing hook tool fails the hook (Juju retries)."""
    goal = ops.hookcmds.goal_state()  # every Juju the charm deploys on has the tool (2.9 included)
    return GoalState({name: unit.status for name, unit in goal.units.items()})
