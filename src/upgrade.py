"""The coordinated LXD snap upgrade as data: the plan the leader publishes, what each unit reports,
whose turn it is and what status says. Pure: no ops, no I/O.

LXD lets members of one cluster run different versions only while an upgrade is under way: a
member on the newer version waits (its log says so: `lxd_waiting`) and serves nothing until every
member runs it. So the members refresh one after the other, in a fixed order (non-leaders by unit
number, the leader last: its LXD keeps answering longest), each from the same cohort, and nobody
waits for an upgraded member to become healthy before the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from models import Databag, server_name_of, unit_number, version_tuple
from snap import normalise_channel, track_of


def lxd_waiting(version: str) -> str:
    """What an upgraded LXD logs while it waits for the other members ("" for a version string it
    cannot read): lxd-5.0.2 lxd/daemon.go:1171 (up to 5.21.3 and 6.3), then lxd-5.21.4 and lxd-6.4
    on (lxd-5.21.7 lxd/daemon.go:1566, lxd-6.9 lxd/daemon.go:1610)."""
    number = version_tuple(version)
    if not number:
        return ""
    if (5, 21, 4) <= number < (6,) or number >= (6, 4):
        return "Wait for other cluster members to align their versions, cluster not started yet"
    return "Wait for other cluster nodes to upgrade their versions, cluster not started yet"


@dataclasses.dataclass(frozen=True)
class ClusterSnap(Databag):
    """In the application databag, written by the leader."""

    snap_channel: str = ""  # the channel every member runs (set when the cluster forms, and after upgrades)
    snap_cohort: str = ""  # cohort key joiners install or catch up with
    snap_revision: str = ""  # the revision that cohort gives (the leader's)
    upgrade_channel: str = ""  # target of the upgrade under way
    upgrade_cohort: str = ""  # cohort key every member refreshes with: one revision for all
    upgrade_order: str = ""  # unit names, space-separated, in refresh order

    @property
    def upgrading(self) -> bool:
        return bool(self.upgrade_channel)

    @property
    def order(self) -> list[str]:
        return self.upgrade_order.split()


@dataclasses.dataclass(frozen=True)
class UnitSnap(Databag):
    """In each unit's databag: where its LXD comes from and what it runs."""

    lxd_source: str = ""  # snap, deb, none
    snap_tracking: str = ""
    snap_revision: str = ""
    upgrade_error: str = ""  # why this unit could not refresh (snapd's words)


def plan_order(units: list[str], leader: str) -> list[str]:
    """Non-leaders by unit number, then the leader."""
    return sorted((u for u in units if u != leader), key=unit_number) + ([leader] if leader in units else [])


def downgrade(current: str, target: str) -> bool:
    """5.21 -> 5.0 is a downgrade LXD refuses once initialised; latest is newer than every numbered track."""

    def key(track: str) -> tuple[int, ...]:
        if track == "latest":
            return (10**6,)
        try:
            return tuple(int(p) for p in track.split("."))
        except ValueError:
            return (-1,)

    return key(track_of(target)) < key(track_of(current))


def serves_lxd_without_maas(channel: str) -> bool:
    """Can this channel's track serve LXD 6.8 or later, which has no MAAS integration (lxd-6.8 dropped
    the maas_network API extension)? latest and a bare major track (6) follow the newest release;
    a numbered track (5.21, 6.7) names its version."""
    track = track_of(channel)
    if track == "latest":
        return True
    try:
        number = tuple(int(p) for p in track.split("."))
    except ValueError:
        return True  # a track that names no version: it may serve any
    return number == (6,) or number >= (6, 8)


@dataclasses.dataclass(frozen=True)
class Progress:
    target: str
    done: list[str]  # units on the target channel
    pending: list[str]  # units still to refresh, in order
    failed: dict[str, str]  # unit -> why it could not refresh
    not_snap: list[str]  # units whose LXD is no snap: they cannot follow
    leaving: list[str] = dataclasses.field(default_factory=list)  # planned units gone from view, still members

    @property
    def complete(self) -> bool:
        return not self.pending and not self.leaving

    @property
    def total(self) -> int:
        return len(self.done) + len(self.pending)

    @property
    def next(self) -> str:
        return self.pending[0] if self.pending else ""

    def headline(self) -> str:
        return f"upgrading: {len(self.done)} of {self.total} members on {self.target}"

    def trouble(self) -> str:
        """The members that hold the upgrade up, and why: every other unit shows this."""
        parts = [f"{u} cannot refresh: {why}" for u, why in sorted(self.failed.items())]
        parts += [f"{u} has no LXD snap (a deb cannot follow snap-channel)" for u in self.not_snap]
        return "; ".join(parts)


def progress(plan: ClusterSnap, units: Mapping[str, UnitSnap], members: Collection[str] | None = ()) -> Progress:
    """Where the upgrade stands, over the units present now (a departed unit no longer counts;
    a unit added after the plan refreshes last). members: the cluster's member names (None: LXD did
    not answer). A unit of the plan that departed while its LXD is still a member is leaving, and may
    still run the old LXD: the upgrade is not complete until it left (or, unknown, until LXD answers)."""
    target = plan.upgrade_channel
    gone = [u for u in plan.order if u not in units]
    leaving = gone if members is None else [u for u in gone if server_name_of(u) in members]
    order = [u for u in plan.order if u in units] + sorted((u for u in units if u not in plan.order), key=unit_number)
    done = [u for u in order if normalise_channel(units[u].snap_tracking or "-") == target]
    pending = [u for u in order if u not in done]
    failed = {u: units[u].upgrade_error for u in pending if units[u].upgrade_error}
    not_snap = [u for u in pending if units[u].lxd_source in ("deb", "none") and u not in failed]
    return Progress(target, done, pending, failed, not_snap, leaving)


def turn_of(progress_: Progress, unit: str) -> bool:
    """A unit refreshes when every unit before it in the order is on the target."""
    return progress_.next == unit
