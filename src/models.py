"""Typed models the modules share: what the `cluster` peer relation carries and what LXD reports.

Plain databags carry only public facts (addresses, the cluster certificate and its fingerprint,
versions, whose turn it is to join). Join credentials travel in Juju secrets, one per joiner, or
on Juju 2.9 (no secrets) sealed to the joiner's own public key (sealing.py), which only it can open.
No I/O and no ops import here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, MutableMapping
from typing import Any

PEER = "cluster"
MIN_MEMBERS = 3  # the primer: keep at least three active members


# -- the peer relation ------------------------------------------------------------------------
class Databag:
    """Dataclass <-> databag: field foo_bar is key foo-bar; empty values are not written."""

    @classmethod
    def load(cls, data: Mapping[str, str]):  # noqa: ANN206 - returns cls
        return cls(**{f.name: data.get(f.name.replace("_", "-"), "") for f in dataclasses.fields(cls)})

    def dump(self, data: MutableMapping[str, str]) -> None:
        """Writes only what differs: ops sends each write as its own relation-set round trip."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            key, value = f.name.replace("_", "-"), getattr(self, f.name)
            if value and data.get(key) != value:
                data[key] = value
            elif not value and key in data:
                del data[key]


@dataclasses.dataclass(frozen=True)
class ClusterInfo(Databag):
    """The leader's application databag."""

    cluster_address: str = ""  # HOST:PORT of a member joiners contact (the bootstrap member)
    certificate: str = ""  # cluster certificate, PEM
    fingerprint: str = ""  # SHA-256 of its DER
    lxd_version: str = ""  # the version every unit must run
    bootstrap_unit: str = ""
    issuer: str = ""  # the unit that issues join credentials: the leader, or a member if it is not one
    removed: str = ""  # server names removed by remove-node/force-remove (space-separated)
    network: str = ""  # what eth0 of the default profile uses, e.g. bridged:br0 (network.NetworkChoice.key)
    pool_driver: str = ""  # the pool `local` as it is: joiners follow it, not a changed option
    pool_size: str = ""  # its loop size on the bootstrap member ("" when on a device)
    ca: str = ""  # PEM of the CA that signed the cluster certificate ("" when it is self-signed)

    @property
    def formed(self) -> bool:
        return bool(self.cluster_address and self.certificate and self.fingerprint)


@dataclasses.dataclass(frozen=True)
class JoinOffer:
    """One join credential, for one unit."""

    join_unit: str = ""  # the unit it is for
    join_secret: str = ""  # Juju secret id of the credential, or on Juju 2.9 the credential sealed to the joiner
    join_id: str = ""  # identifies the credential, so a joiner can report it failed


@dataclasses.dataclass(frozen=True)
class JoinQueue(Databag):
    """Every credential issued ahead, in the order the units join (one at a time: each waits for the
    one before it), in its issuer's databag: the application's when the leader issues, the issuing
    unit's otherwise. Entries of units that joined stay until the issuer next writes it."""

    join_queue: str = ""  # JSON: [[unit, secret id or sealed credential, join id], ...]

    @property
    def offers(self) -> list[JoinOffer]:
        try:
            return [JoinOffer(*entry) for entry in json.loads(self.join_queue or "[]")]
        except (ValueError, TypeError):
            return []

    @classmethod
    def of(cls, offers: list[JoinOffer]) -> JoinQueue:
        entries = [[o.join_unit, o.join_secret, o.join_id] for o in offers]
        return cls(json.dumps(entries, separators=(",", ":")) if entries else "")


@dataclasses.dataclass(frozen=True)
class UnitInfo(Databag):
    """A unit's own databag."""

    server_name: str = ""
    address: str = ""  # its HOST:PORT on the cluster binding
    lxd_version: str = ""
    member: str = ""  # "yes" once a cluster member, on Juju 2.9 (no membership secret; earlier versions: a fingerprint)
    announced: str = ""  # epoch seconds of its first announcement (the issuer waits for stragglers so long)
    member_secret: str = ""  # its membership secret: {"member": "yes" or "no"} (see membership.py)
    join_failed: str = ""  # join_id of a credential that failed, so the leader issues a new one
    join_error: str = ""  # LXD's words for that failure
    join_attempts: str = ""  # failed joins in a row
    join_retry: str = ""  # epoch seconds before which it does not ask for another credential (backoff)
    left: str = ""  # "yes" once this unit's member left the cluster (on its way out of the model)
    join_held: str = ""  # "yes" while a check before joining blocks it: the queue goes on without it
    join_blocked: str = ""  # "<epoch>:<config digest>": a permanent failure; no credential until fixed
    seal_key: str = ""  # Juju 2.9: its X25519 public key (base64); its join credential is sealed to it

    @property
    def is_member(self) -> bool:
        return bool(self.member)


def server_name_of(unit_name: str) -> str:
    """lxd-cluster/1 -> lxd-cluster-1: the member name LXD shows."""
    return unit_name.replace("/", "-")


def unit_number(unit_name: str) -> int:
    return int(unit_name.rsplit("/", 1)[-1])


# -- what LXD reports ---------------------------------------------------------------------------
def version_tuple(version: str) -> tuple[int, ...]:
    """5.21.7 -> (5, 21, 7), snapd's 5.21.3-c5ae129 -> (5, 21, 3); () when it is not dotted numbers."""
    try:
        return tuple(int(part) for part in version.split("-")[0].split("."))
    except ValueError:
        return ()


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    version: str
    api_extensions: frozenset[str]
    storage_drivers: frozenset[str] | None  # None: this LXD does not report them
    clustered: bool
    server_name: str
    certificate: str  # PEM; the cluster certificate once clustered
    pid: int = 0  # the daemon's process (server_pid): its /proc/PID/net is the network it makes bridges in

    def supports(self, extension: str) -> bool:
        return extension in self.api_extensions


@dataclasses.dataclass(frozen=True)
class Member:
    """One row of `lxc cluster list`."""

    server_name: str
    url: str
    roles: tuple[str, ...]
    status: str  # Online, Offline, Evacuated, ...
    message: str
    leaving: str = ""  # set while its unit leaves: no instance may move onto it (see departure.py)
    database: bool = False  # LXD's `database` field: a raft voter, standby or the leader, in every version

    @property
    def database_role(self) -> str:
        """database-leader, database (a voter), database-standby, or - (no database role).

        From LXD's `database` field and the role names every version shares: 5.x lists a voter as
        `database` (the leader as `database` and `database-leader`), 6.7+ as `database-voter` (the leader
        only as `database-leader`): lxd-5.21.7 lxd/db/node.go:146-159, lxd-6.9 lxd/db/node.go:150-165.
        """
        if not self.database:
            return "-"
        if "database-leader" in self.roles:
            return "database-leader"
        return "database-standby" if "database-standby" in self.roles else "database"


@dataclasses.dataclass(frozen=True)
class TrustedClient:
    """A client certificate in the trust store."""

    fingerprint: str
    restricted: bool  # False: full access to every project (root on every member)
    projects: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: Mapping[str, object]) -> TrustedClient:
        return cls(str(row["fingerprint"]), bool(row.get("restricted")), tuple(sorted(row.get("projects") or ())))  # type: ignore[arg-type]

    @property
    def grant(self) -> tuple[str, ...] | None:
        """The projects it may use; None: all of them."""
        return self.projects if self.restricted else None


@dataclasses.dataclass(frozen=True)
class PendingToken:
    """A join or client token not used yet: LXD keeps it as a running operation."""

    operation_id: str
    kind: str  # join or client
    name: str  # the member or client it is for
    created_at: str  # RFC 3339, as LXD reports it

    @classmethod
    def of(cls, op: Mapping[str, Any]) -> PendingToken:
        meta = op.get("metadata") or {}
        if "serverName" in meta:
            return cls(op["id"], "join", meta["serverName"], op.get("created_at", ""))
        return cls(op["id"], "client", (meta.get("request") or {}).get("name", ""), op.get("created_at", ""))


@dataclasses.dataclass(frozen=True)
class Instance:
    name: str
    location: str
    status: str  # Running, Stopped, ...
    type: str = "container"
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    project: str = "default"  # two projects may each hold an instance of the same name

    @property
    def ref(self) -> str:
        """How the charm names it: `name` in the default project, `project/name` elsewhere (LXD refuses
        a slash or a space in a project name: lxd-5.0.2 lxd/api_project.go:1154-1160)."""
        return self.name if self.project == "default" else f"{self.project}/{self.name}"


@dataclasses.dataclass(frozen=True)
class DeviceState:
    path: str
    exists: bool
    is_block: bool = False
    mounted: bool = False
    signatures: tuple[str, ...] = ()  # filesystem / partition table / pool signatures found
    error: str = ""  # why the path could not be looked at (not a directory, name too long, ...)
