"""Arranging the charm's ops.testing states: the peer relation, what the leader published, what units announced."""

from __future__ import annotations

import json

from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from ops import testing

import charm

REL = 1


def ctx(uid: int = 0) -> testing.Context:
    return testing.Context(charm.LXDClusterCharm, unit_id=uid)


def published(pem: str, **extra: str) -> dict[str, str]:
    return {
        "cluster-address": "10.0.0.1:8443",
        "certificate": pem,
        "fingerprint": certificate_fingerprint(pem),
        "lxd-version": "5.21.2",
        "bootstrap-unit": "lxd-cluster/0",
        **extra,
    }


def announced(uid: int, **extra: str) -> dict[str, str]:
    return {"server-name": f"lxd-cluster-{uid}", "address": f"10.0.0.{uid + 1}:8443", "lxd-version": "5.21.2", **extra}


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
