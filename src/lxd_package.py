"""LXD's package on this unit, every hook before LXD is touched: install, hold, catch up, upgrade.

- No LXD yet (or only lxd-installer's shim): install the snap from snap-channel with a cohort.
- The snap, uninitialised, on another track (Ubuntu 22.04's preinstalled 5.0) or another revision
  than the cluster's: refresh it to snap-channel with the cluster's cohort.
- The snap, initialised and not a member, on another track: Blocked with the exact fix.
- A deb LXD (no snap) is used as it is, as before; it cannot follow snap-channel.
- Automatic refreshes of lxd are held; a snap-channel change on a formed cluster is the
  coordinated upgrade of upgrade.py: the leader plans it, each member refreshes in its turn.
Returns the status to stop the hook with, or None when the flow may go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import ops

from snap import LXDPackage, LXDSnap, SnapError, normalise_channel
from upgrade import LXD_WAITING, ClusterSnap, Progress, UnitSnap, downgrade, plan_order, progress, turn_of

logger = logging.getLogger(__name__)


class PackageStep:
    def __init__(
        self,
        snap: LXDSnap,
        unit: ops.Unit,
        app: ops.Application,
        relation: ops.Relation | None,
        initialised: Callable[[], bool],
        member: Callable[[], bool] | None = None,
        *,
        cluster_members: Callable[[], set[str] | None],
    ):
        self.snap = snap
        self.unit = unit
        self.app = app
        self.relation = relation
        self.initialised = initialised  # asks LXD: has it been configured (lxd init, or by hand)?
        self.member = member  # is this unit a cluster member (its membership secret says so)?
        self.cluster_members = cluster_members  # the cluster's member names (None: LXD does not answer)

    # -- data -----------------------------------------------------------------------------
    @property
    def plan(self) -> ClusterSnap:
        return ClusterSnap.load(self.relation.data[self.app]) if self.relation else ClusterSnap()

    def _publish(self, plan: ClusterSnap) -> None:
        if self.relation and self.unit.is_leader():
            plan.dump(self.relation.data[self.app])

    @property
    def is_member(self) -> bool:
        if self.member is not None:
            return self.member()
        return bool(self.relation and self.relation.data[self.unit].get("member"))

    def _report(self, package: LXDPackage, error: str = "") -> None:
        if self.relation is None:
            return
        source = package.source if package.source != "shim" else "none"
        UnitSnap(source, package.tracking, package.revision, error).dump(self.relation.data[self.unit])

    def _units(self) -> dict[str, UnitSnap]:
        assert self.relation is not None
        units = {u.name: UnitSnap.load(self.relation.data[u]) for u in self.relation.units}
        units[self.unit.name] = UnitSnap.load(self.relation.data[self.unit])
        return units

    # -- the step -------------------------------------------------------------------------
    def ensure(self, channel: str) -> ops.StatusBase | None:
        target = normalise_channel(channel)
        try:
            package = self.snap.package()
        except SnapError as e:
            return ops.BlockedStatus(f"cannot ask snapd about LXD: {e}")
        try:
            package = self._install(package, target)
            if not package.is_snap:
                self._report(package)
                return self._deb(package)
            if not package.held:
                self.snap.hold()
            if self.is_member:
                return self._member(package, target)
            return self._catch_up(package, target)
        except SnapError as e:
            self._report(package, str(e))
            return ops.BlockedStatus(f"cannot install LXD from {target}: {e}")

    def _install(self, package: LXDPackage, target: str) -> LXDPackage:
        if package.source not in ("none", "shim"):
            return package
        if not package.snapd:
            return package  # _deb says why
        self.unit.status = ops.MaintenanceStatus(f"installing LXD from {target}")
        logger.info("installing the lxd snap from %s (found: %s)", target, package.source)
        self.snap.install(target, self._cohort_for(target))
        self.snap.hold()
        return self.snap.package()

    def _cohort_for(self, target: str) -> str:
        plan = self.plan
        if plan.upgrade_channel == target and plan.upgrade_cohort:
            return plan.upgrade_cohort
        if plan.snap_channel == target and plan.snap_cohort:
            return plan.snap_cohort
        return "+"

    def _deb(self, package: LXDPackage) -> ops.StatusBase | None:
        if package.source == "none":
            return ops.BlockedStatus(
                "LXD is not installed and snapd is not available to install it: install snapd, or an LXD package"
            )
        if self.plan.upgrading and self.is_member:  # the databag first: membership costs secret reads
            return ops.BlockedStatus(
                f"LXD here is not the snap (no snapd, or a deb): it cannot follow snap-channel "
                f"{self.plan.upgrade_channel}, and the cluster's upgrade waits for it: replace this machine"
            )
        return None  # an LXD installed otherwise is used as it is

    def _catch_up(self, package: LXDPackage, target: str) -> ops.StatusBase | None:
        """A unit that is no member yet: while its LXD is uninitialised, put it on the cluster's revision."""
        plan = self.plan
        tracking = normalise_channel(package.tracking)
        behind = plan.snap_channel == target and plan.snap_revision and package.revision != plan.snap_revision
        if tracking == target and not behind:
            self._report(package)
            return ops.WaitingStatus(self._wait_upgrade(plan)) if plan.upgrading else None
        if self.initialised():
            self._report(package)
            if tracking == target:
                return None  # same channel, another revision: the version check speaks
            return ops.BlockedStatus(
                f"LXD is initialised here and tracks {tracking}, not snap-channel {target}: run "
                f"`snap refresh lxd --channel={target} --cohort=+` on this machine, or set snap-channel={tracking}"
            )
        self.unit.status = ops.MaintenanceStatus(f"refreshing LXD from {tracking} to {target}")
        logger.info("refreshing the uninitialised lxd snap from %s r%s to %s", tracking, package.revision, target)
        self.snap.refresh(target, self._cohort_for(target))
        package = self.snap.package()
        self._report(package)
        return ops.WaitingStatus(self._wait_upgrade(plan)) if plan.upgrading else None

    @staticmethod
    def _wait_upgrade(plan: ClusterSnap) -> str:
        return f"waiting for the cluster's LXD upgrade to {plan.upgrade_channel} to finish before joining"

    # -- the coordinated upgrade ------------------------------------------------------------
    def _member(self, package: LXDPackage, target: str) -> ops.StatusBase | None:
        self._report(package)
        plan = self.plan
        tracking = normalise_channel(package.tracking)
        if not plan.upgrading:
            current = plan.snap_channel or tracking
            if current == target:
                if self.unit.is_leader() and not plan.snap_channel:
                    self._publish(self._formed(plan, package))
                return None
            if downgrade(current, target):
                return ops.BlockedStatus(f"LXD cannot go back from {current} to {target}: set snap-channel={current}")
            if not self.unit.is_leader():
                return ops.WaitingStatus(
                    f"snap-channel is {target}, the cluster runs {current}: waiting for the leader to start the upgrade"
                )
            plan = self._start(plan, current, target)
        if plan.upgrade_channel != target:
            return ops.BlockedStatus(
                f"the upgrade to {plan.upgrade_channel} is under way: set snap-channel={plan.upgrade_channel} "
                "until every member runs it"
            )
        return self._take_turn(package, plan, target)

    def _formed(self, plan: ClusterSnap, package: LXDPackage) -> ClusterSnap:
        """The leader records the channel, the revision and a cohort key joiners install with."""
        try:
            cohort = self.snap.create_cohort()
        except SnapError as e:
            logger.warning("no cohort key for joiners (%s): they install with --cohort=+", e)
            cohort = ""
        return replace(
            plan,
            snap_channel=normalise_channel(package.tracking),
            snap_revision=package.revision,
            snap_cohort=cohort,
        )

    def _start(self, plan: ClusterSnap, current: str, target: str) -> ClusterSnap:
        units = sorted(self._units())
        cohort = self.snap.create_cohort()
        plan = replace(
            plan,
            snap_channel=current,
            upgrade_channel=target,
            upgrade_cohort=cohort,
            upgrade_order=" ".join(plan_order(units, self.unit.name)),
        )
        self._publish(plan)
        logger.info("upgrade of LXD from %s to %s planned: %s", current, target, plan.upgrade_order)
        return plan

    def _take_turn(self, package: LXDPackage, plan: ClusterSnap, target: str) -> ops.StatusBase | None:
        assert self.relation is not None
        state = self._progress(plan)
        me = self.unit.name
        if me in state.pending and turn_of(state, me):
            self.unit.status = ops.MaintenanceStatus(
                f"{state.headline()}: refreshing this member ({len(state.done) + 1} of {state.total})"
            )
            logger.info("refreshing lxd to %s with the upgrade's cohort", target)
            try:
                self.snap.refresh(target, plan.upgrade_cohort or "+")
            except SnapError as e:
                self._report(package, str(e))
                return ops.BlockedStatus(
                    f"cannot refresh LXD to {target}: {e}; the cluster's upgrade waits for this member: "
                    "fix the cause here, the charm retries on every hook"
                )
            package = self.snap.package()
            self._report(package)
            state = self._progress(plan)
        if state.complete:
            if self.unit.is_leader():
                self._finish(plan, package)
                return None
            return ops.WaitingStatus(f"{state.headline()}: waiting for the leader to complete the upgrade")
        if not state.pending:  # Juju removes it: the others no longer see its unit, LXD still has its member
            return ops.WaitingStatus(
                f"{state.headline()}: {', '.join(state.leaving)} is leaving the cluster and may run the old LXD: "
                "the upgrade completes once it left"
            )
        return ops.WaitingStatus(self._progress_message(state, me, package))

    def _progress(self, plan: ClusterSnap) -> Progress:
        units = self._units()
        departed = any(u not in units for u in plan.order)  # asks LXD only when a planned unit is gone
        return progress(plan, units, self.cluster_members() if departed else ())

    def _progress_message(self, state: Progress, me: str, package: LXDPackage) -> str:
        if me in state.done:
            message = (
                f"{state.headline()}: this member runs revision {package.revision}, its LXD is "
                f"{LXD_WAITING.lower()} (next: {state.next})"
            )
        else:
            message = f"{state.headline()}: this member refreshes after {state.next}"
        trouble = state.trouble()
        return f"{message}; {trouble}" if trouble else message

    def _finish(self, plan: ClusterSnap, package: LXDPackage) -> None:
        done = replace(
            plan,
            snap_channel=plan.upgrade_channel,
            snap_cohort=plan.upgrade_cohort,
            snap_revision=package.revision,
            upgrade_channel="",
            upgrade_cohort="",
            upgrade_order="",
        )
        self._publish(done)
        logger.info("every member runs LXD from %s (revision %s)", done.snap_channel, done.snap_revision)
