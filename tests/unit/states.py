"""Arranging the charm's ops.testing states: the peer relation, what the leader published, what units announced."""

from __future__ import annotations

import json

from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from ops import testing

import charm

REL = 1


def ctx(uid: int = 0) -> testing.Context:
    return testing.Context(charm.LXDClusterCharm, unit_id=uid)


def queued(extra: dict[str, str]) -> dict[str, str]:
    """One offer given as join-unit/join-secret/join-id: the issuer's queue holding just it."""
    entry = [extra.pop(k, "") for k in ("join-unit", "join-secret", "join-id")]
    return {"join-queue": json.dumps([entry], separators=(",", ":")), **extra} if entry[0] else extra


def offers(bag: dict[str, str]) -> list[dict[str, str]]:
    """The issuer's queue, as join-unit/join-secret/join-id dicts, in join order."""
    entries = json.loads(bag.get("join-queue") or "[]")
    return [dict(zip(("join-unit", "join-secret", "join-id"), e, strict=True)) for e in entries]


def offer(bag: dict[str, str], unit: str | None = None) -> dict[str, str]:
    """The offer for `unit` (the only one when None); {} when there is none."""
    found = [o for o in offers(bag) if unit is None or o["join-unit"] == unit]
    assert unit is not None or len(found) <= 1, found
    return found[0] if found else {}


def published(pem: str, **extra: str) -> dict[str, str]:
    return {
        "cluster-address": "10.0.0.1:8443",
        "certificate": pem,
        "fingerprint": certificate_fingerprint(pem),
        "lxd-version": "5.21.2",
        "bootstrap-unit": "lxd-cluster/0",
        **queued(dict(extra)),
    }


def announced(uid: int, **extra: str) -> dict[str, str]:
    base = {"server-name": f"lxd-cluster-{uid}", "address": f"10.0.0.{uid + 1}:8443", "lxd-version": "5.21.2"}
    return {**base, **queued(dict(extra))}


def membership(out: testing.State) -> str:
    """What this unit's membership secret says: yes, no ("" without one)."""
    secret = next((s for s in out.secrets if s.label == "membership"), None)
    return secret.latest_content["member"] if secret else ""


def make_state(
    *,
    leader=False,
    ip="10.0.0.1",
    app=None,
    unit=None,
    peers=None,
    config=None,
    secrets=(),
    storages=(),
    planned_units=3,
) -> testing.State:
    relation = testing.PeerRelation(
        "cluster", id=REL, local_app_data=app or {}, local_unit_data=unit or {}, peers_data=peers or {}
    )
    network = testing.Network("cluster", bind_addresses=[testing.BindAddress([testing.Address(ip)])])
    return testing.State(
        leader=leader,
        relations=[relation],
        networks=[network],
        config=config or {},
        secrets=list(secrets),
        storages=list(storages),
        planned_units=planned_units,
    )


def databags(out: testing.State) -> str:
    rel = out.get_relation(REL)
    return json.dumps([rel.local_app_data, rel.local_unit_data])
