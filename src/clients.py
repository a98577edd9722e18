"""The `lxd-cluster` client relation: trust each related client's certificate, publish where the cluster is."""

from __future__ import annotations

import logging

import ops
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints, DataError, LXDClusterProvider

from models import ServerInfo
from status import Stop
from workload import LXD, LXDError, certificate_fingerprint

logger = logging.getLogger(__name__)


def client_name(relation: ops.Relation) -> str:
    """The trust-store name of a related client: tied to the relation."""
    return f"juju-{relation.app.name if relation.app else 'client'}-{relation.id}"


def serve_clients(lxd: LXD, provider: LXDClusterProvider, info: ServerInfo) -> None:
    """Trust each related client's certificate; publish where the cluster is (the leader does this)."""
    relations = provider.relations
    if not relations:
        return
    fingerprint = certificate_fingerprint(info.certificate)
    endpoints = tuple(m.url for m in lxd.members())
    trusted = lxd.trusted_clients()
    for relation in relations:
        name = client_name(relation)
        try:
            request = provider.request_of(relation)
        except DataError as e:
            if relation.app and relation.data[relation.app].get("certificate"):
                logger.warning("not trusting %s: %s", name, e)
                provider.publish(relation, ClusterEndpoints((), "", "", error=str(e)))
            continue
        if trusted.get(name) != request.fingerprint:
            try:
                if name in trusted:
                    lxd.untrust_client(trusted[name])
                lxd.trust_client(name, request.certificate, request.projects)
            except LXDError as e:  # one client's bad request must not block the cluster
                logger.warning("not trusting %s: %s", name, e)
                provider.publish(relation, ClusterEndpoints((), "", "", error=f"LXD: {e}"))
                continue
            logger.info("trusted client certificate %s (%s)", name, request.fingerprint[:12])
        provider.publish(relation, ClusterEndpoints(endpoints, info.certificate, fingerprint, request.fingerprint))


def forget_client(lxd: LXD, relation: ops.Relation) -> None:
    """A client relation is gone: remove its certificate from the trust store."""
    name = client_name(relation)
    try:
        fingerprint = lxd.trusted_clients().get(name)
        if fingerprint:
            lxd.untrust_client(fingerprint)
            logger.info("removed client certificate %s", name)
    except LXDError as e:
        raise Stop(ops.BlockedStatus(f"could not remove client certificate {name}: {e}")) from None
